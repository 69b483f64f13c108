"""`jazzd monitor`: a terminal view of the running daemon, read at a glance, with keys to
steer it.  Needs the optional extra `monitor` (Rich); the daemon never imports this.

It talks to the control socket (`jazzd.live.control`) on two connections: one subscribed
to the daemon's events (beats, heard and played notes, chords, answers, settings), one
for requests (a status every second, the keys' commands).  `View` keeps what it was
told and `View.render` draws it, so both are tested without a terminal; `run` is the
loop: it reads the keyboard and the events, redraws ten times a second, and reconnects
when the daemon restarts.

Keys: c / d / s  mode call, duet, solo;  + / -  temperature up or down 0.1;  ] / [  density;
p or space  panic;  q  quit.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import sys
import time
from collections import deque
from dataclasses import dataclass

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from jazzd.errors import ControlError
from jazzd.live.control import Client

BARS = 4                 # bars of piano roll shown
STEPS_PER_BEAT = 4       # columns per beat (sixteenths)
MAX_ROWS = 24            # pitches shown at most (the ones around the notes played)
PLAYER, JAZZD = "bold cyan", "bold yellow"
KEYS = {"c": ("mode", "call"), "d": ("mode", "duet"), "s": ("mode", "solo"),
        "+": ("nudge", "engine.temperature", 0.1, 0.0, 3.0), "=": ("nudge", "engine.temperature", 0.1, 0.0, 3.0),
        "-": ("nudge", "engine.temperature", -0.1, 0.0, 3.0),
        "]": ("nudge", "engine.density", 0.1, 0.0, 1.0), "[": ("nudge", "engine.density", -0.1, 0.0, 1.0),
        "p": ("panic",), " ": ("panic",)}
HELP = "keys: c/d/s mode  +/- temperature  ]/[ density  p panic  q quit"


@dataclass
class Note:
    who: str           # "player" or "jazzd"
    pitch: int
    start: float       # beats
    end: float | None  # None while it sounds


class View:
    """What the monitor knows: the last status, the beat grid, the notes and chords of
    the last bars, and a line about the connection or the last command."""

    def __init__(self) -> None:
        self.status: dict | None = None
        self.grid: tuple[float, float, float] | None = None  # (t, beat, tempo) of the last beat
        self.notes: deque[Note] = deque(maxlen=2000)
        self.chords: deque[tuple[float, str]] = deque(maxlen=200)  # (beat, symbol)
        self.message = ""

    def beat_at(self, t: float) -> float | None:
        if self.grid is None:
            return None
        t0, beat, tempo = self.grid
        return beat + (t - t0) * tempo / 60.0

    def event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "beat":
            self.grid = (ev["t"], ev["beat"], ev["tempo"])
            if self.status is not None:
                self.status.update(tempo=ev["tempo"], beat=ev["beat"], bar=ev["bar"], beat_in_bar=ev["beat_in_bar"])
        elif kind in ("heard", "played"):
            beat = self.beat_at(ev["t"])
            if beat is None:
                return
            if ev.get("hand") == "chord":
                return  # the chord hand is the chord line under the roll
            who = "player" if kind == "heard" else "jazzd"
            if ev["kind"] == "on":
                self.notes.append(Note(who, ev["note"], beat, None))
            else:
                self._end(who, ev["note"], beat)
        elif kind == "silence":
            beat = self.beat_at(ev["t"])
            for n in self.notes:
                if n.who == "jazzd" and n.end is None:
                    n.end = beat if beat is not None else n.start
        elif kind == "chord":
            beat = self.beat_at(ev["t"])
            if beat is not None and ev["chord"]:
                self.chords.append((beat, ev["chord"]))
            if self.status is not None:
                self.status["chord"] = ev["chord"]
        elif kind == "settings" and self.status is not None:
            self.status["settings"] = ev["settings"]
            self.status["mode"] = ev["mode"]

    def _end(self, who: str, pitch: int, beat: float) -> None:
        for n in reversed(self.notes):
            if n.who == who and n.pitch == pitch and n.end is None:
                n.end = max(beat, n.start)
                return

    # --- drawing -------------------------------------------------------------------------
    def render(self, now_beat: float | None = None):
        st = self.status
        if st is None:
            return Panel(Text(self.message or "connecting to jazzd ..."), title="jazzd monitor")
        head = self._head(st)
        roll = self._roll(now_beat if now_beat is not None else (st.get("beat") or 0.0),
                          st["settings"].get("clock.beats_per_bar", 4))
        c, t = st["counters"], st["timing"]
        late = t.get("oversleep_ms") or {}
        foot = Text(f"received {c['received']}  sent {c['sent']}  dropped {c['dropped']}  "
                    f"queue full {c['queue_full']}" + (f"  clock: {c['clock_faults']}" if c["clock_faults"] else "")
                    + f"  |  poll {t['poll_ms']:g} ms, spin {t['spin_ms']:g} ms"
                    + (f", sleeps late p98 {late['p98']:g} ms" if late else ""), style="dim")
        lines = [head, roll, foot, Text(HELP, style="dim")]
        if self.message:
            lines.append(Text(self.message, style="bold red" if "error" in self.message else "green"))
        return Panel(Group(*lines), title=f"jazzd monitor: {st['ports']}", title_align="left")

    def _head(self, st: dict) -> Text:
        s = st["settings"]
        where = "-" if st["beat"] is None else f"bar {st['bar']} beat {st['beat_in_bar']}"
        text = Text()
        text.append(f"{st['tempo']:.0f} bpm ", style="bold")
        text.append(f"{where}  {st['transport']}  ")
        text.append("mode ", style="dim")
        text.append(f"{st['mode']}", style="bold magenta")
        text.append(f" ({st.get('state', '')})  ")
        text.append("chord ", style="dim")
        text.append(f"{st['chord'] or '-'}", style="bold green")
        text.append(f"  model {st['model']}\n", style="dim")
        text.append(f"temperature {s['engine.temperature']:.2g}  density {s['engine.density']:.2g}  "
                    f"imitation {s['engine.imitation']:.2g}  feel {s['engine.feel']} {s['engine.feel_amount']:.2g}  "
                    f"articulation {s['engine.articulation']}  memory {st['memory_values']}")
        if st["port_state"] != "ok":
            text.append(f"\n{st['port_state']}", style="bold red")
        return text

    def _roll(self, now: float, bpb: int) -> Text:
        """A piano roll of the last BARS bars up to `now`: a row per pitch, the player's
        notes and jazzd's in two colours, the chords under them."""
        first_bar = max(0, math.floor(now / bpb) - BARS + 1)
        start, end = first_bar * bpb, (first_bar + BARS) * bpb
        width = (end - start) * STEPS_PER_BEAT
        shown = [n for n in self.notes if (n.end if n.end is not None else now) >= start and n.start < end]
        text = Text()
        if not shown:
            pitches = []
        else:
            lo, hi = min(n.pitch for n in shown), max(n.pitch for n in shown)
            if hi - lo + 1 > MAX_ROWS:  # keep the pitches around the latest note
                centre = shown[-1].pitch
                lo, hi = centre - MAX_ROWS // 2, centre + MAX_ROWS // 2 - 1
            pitches = range(hi, lo - 1, -1)
        for pitch in pitches:
            cells = [(" ", "")] * width
            for k in range(0, width, STEPS_PER_BEAT):
                cells[k] = ("|" if k % (bpb * STEPS_PER_BEAT) == 0 else "·", "dim")
            for n in shown:
                if n.pitch != pitch:
                    continue
                a = max(0, int((n.start - start) * STEPS_PER_BEAT))
                b = min(width, max(a + 1, math.ceil(((n.end if n.end is not None else now) - start) * STEPS_PER_BEAT)))
                for k in range(a, b):
                    cells[k] = ("█" if k == a else "▬", PLAYER if n.who == "player" else JAZZD)
            text.append(f"{_name(pitch):>4} ", style="dim")
            for ch, style in cells:
                text.append(ch, style=style)
            text.append("\n")
        chords = [" "] * width
        for beat, symbol in self.chords:
            if start <= beat < end:
                k = int((beat - start) * STEPS_PER_BEAT)
                for j, ch in enumerate(symbol[: width - k]):
                    chords[k + j] = ch
        text.append("     " + "".join(chords), style="green")
        text.append("\n     ")
        text.append("█ you", style=PLAYER)
        text.append("  ")
        text.append("█ jazzd", style=JAZZD)
        text.append(f"   bars {first_bar + 1}-{first_bar + BARS}", style="dim")
        return text


def _name(pitch: int) -> str:
    return ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[pitch % 12] + str(pitch // 12 - 1)


def command(view: View, key: str) -> tuple[str, dict] | None:
    """The request a key asks for, (cmd, arguments), or None."""
    what = KEYS.get(key)
    if what is None:
        return None
    if what[0] == "mode":
        return "mode", {"mode": what[1]}
    if what[0] == "panic":
        return "panic", {}
    _, setting, step, lo, hi = what
    if view.status is None:
        return None
    value = round(min(hi, max(lo, view.status["settings"][setting] + step)), 2)
    return "set", {"key": setting, "value": value}


# --- the loop ------------------------------------------------------------------------------


def run(paths, console=None) -> int:
    """Show the daemon at `paths` until q (or Ctrl-C); reconnect while it is away."""
    import termios
    import tty

    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    view = View()
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if os.isatty(fd) else None
    try:
        if old is not None:
            tty.setcbreak(fd)
        with Live(view.render(), console=console, auto_refresh=False, screen=True) as live:
            while True:
                try:
                    if _session(view, paths, live, fd):
                        return 0
                except (ControlError, OSError) as err:
                    view.status = None
                    view.message = f"{err}; retrying every second (q quits)"
                live.update(view.render(), refresh=True)
                if _key(fd, 1.0) == "q":
                    return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _key(fd: int, timeout: float) -> str | None:
    ready, _, _ = select.select([fd], [], [], timeout)
    return os.read(fd, 1).decode(errors="replace") if ready else None


def _session(view: View, paths, live, fd: int) -> bool:
    """One connection's life: True when the user quits, an exception when it is lost."""
    with Client(paths) as steer, Client(paths) as events:
        view.status = steer.request("status")["status"]
        view.message = ""
        events.request("subscribe")
        events.sock.setblocking(False)
        next_status = time.monotonic() + 1.0
        buf = b""
        while True:
            ready, _, _ = select.select([fd, events.sock], [], [], 0.1)
            if events.sock in ready:
                data = events.sock.recv(65536)
                if not data:
                    raise ControlError("jazzd closed the connection (stopped or restarting)")
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    with contextlib.suppress(ValueError):
                        view.event(json.loads(line))
            if fd in ready:
                key = os.read(fd, 1).decode(errors="replace")
                if key == "q":
                    return True
                request = command(view, key)
                if request is not None:
                    try:
                        reply = steer.request(request[0], **request[1])
                        view.message = f"{request[0]} " + " ".join(f"{v}" for v in request[1].values()) + ": ok"
                        if "key" in reply:
                            view.status["settings"][reply["key"]] = reply["value"]
                    except ControlError as err:
                        view.message = f"error: {err}"
            if time.monotonic() >= next_status:
                view.status = steer.request("status")["status"]
                next_status = time.monotonic() + 1.0
            now = view.beat_at(time.monotonic())
            live.update(view.render(now), refresh=True)
