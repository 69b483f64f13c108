"""`jazzd demo`: the whole live path in about half a minute, with no keyboard.

A real `jazzd run` process plays on the MIDI system (a JACK server already running, else
jazzd's own: `--start-jack`), and a built-in player, a JACK client of this process,
plays into jazzd's input port exactly as a keyboard player with a DAW would: it is the
MIDI clock master (Start, then 24 pulses a beat: jazzd follows with `--clock midi`),
counts in a bar of side-stick clicks (channel 10, which jazzd does not listen to), then
plays three two-bar calls over a ii-V-I with a turnaround (Dm7 | G7 | Cmaj7 | A7), left-hand
chords below middle C, leaving jazzd two bars to answer each, then switches jazzd to
duet (CC 80) for an eight-bar chorus in which it plays every other bar.  It records
jazzd's output port meanwhile, with the MIDI system's own arrival times.

The phrases are the project's own, written for this demo (simple bebop-ish lines over the
changes); no copyrighted solo is played.

It writes `demo.mid` (player, jazzd and the chords on three tracks, from bar 1: the
count-in is left out), `demo.png` (both voices on one piano roll; needs matplotlib) and
prints a summary: every call answered or not, the gap from each call's end to jazzd's
first note (beats), jazzd's onsets against the beat grid (feel straight, so every onset
belongs on a grid point: sixteenths, eighth triplets), and notes left hanging.

Above the live layer (it drives `jazzd run` from outside, as a user would); never
imports TensorFlow.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jazzd.errors import PortError
from jazzd.live import jackserver
from jazzd.live.ports import jack_server_pid, jack_server_socket, list_ports, open_ports
from jazzd.music.progression import parse_progression
from jazzd.play.render import Note, voicing, write_midi

TEMPO = 160.0
BPB = 4
PROGRESSION = "Dm7 | G7 | Cmaj7 | A7"
CLIENT = "jazzd-demo"
PPQN = 24
READY_TIMEOUT_S = 30.0
TAIL_S = 1.0           # recorded after the last beat
ON_GRID_MS = 10.0      # an onset this close to a grid point is on the grid
MODE_CC, DUET = 80, 64
# jazzd's engine.seed for the show.  The notes are the model's draws: with the pitch
# chooser's line tables (2026-12-06) seed 7 answered the first call with nothing but
# rests for its whole two bars (the report's listening measure has 15 such answers in
# 480), and the demo failed; seed 3 answers all three calls on the next beat (1.6 beats
# after each call's last note).  The engine has since been fixed at the cause (a turn
# opens with a note: `jazzd.play.engine.OPENING_REST`); the show keeps seed 3.
SEED = 3
CALL_BARS = 4          # one call every four bars: two to call, two to answer
MELODY, CHORDS, CLICK = 0, 0, 9  # MIDI channels (0-based): jazzd listens to channel 1 only

# The player's phrases: (beat in the phrase, length in beats, MIDI note), written for
# this demo.  Calls span the ii-V (two bars) and end with a longer note.
CALLS = (
    ((0, .5, 62), (.5, .5, 65), (1, .5, 69), (1.5, .5, 72), (2, 1, 76), (3, .5, 74), (3.5, .5, 72),
     (4, .5, 71), (4.5, .5, 67), (5, 1.5, 65)),
    ((.5, .5, 69), (1, .5, 67), (1.5, 1, 65), (3, .5, 64), (3.5, .5, 65), (4, .5, 67), (4.5, .5, 71),
     (5, .5, 74), (5.5, 1, 77)),
    ((0, 1 / 3, 74), (1 / 3, 1 / 3, 72), (2 / 3, 1 / 3, 69), (1, 1, 65), (2, .5, 69), (2.5, .5, 72),
     (3, 1, 74), (4, .5, 71), (4.5, .5, 69), (5, .5, 67), (5.5, 1, 71)),
)
# The duet chorus: the player's bar, then jazzd's, four times.
DUET_BARS = (
    ((0, .5, 69), (.5, .5, 72), (1, .5, 76), (1.5, .5, 74), (2, 1, 72), (3, .75, 69)),
    ((0, .5, 71), (.5, .5, 74), (1, .5, 77), (1.5, .5, 76), (2, 1.5, 72)),
    ((0, 1, 67), (1, .5, 69), (1.5, .5, 72), (2, .5, 74), (2.5, .5, 76), (3, .75, 77)),
    ((0, .5, 76), (.5, .5, 74), (1, .5, 72), (1.5, .5, 69), (2, 1.5, 72)),
)
COUNT_IN_BARS = 1
FIRST_CALL_BAR = COUNT_IN_BARS
DUET_BAR = FIRST_CALL_BAR + CALL_BARS * len(CALLS)
END_BAR = DUET_BAR + 2 * len(DUET_BARS)


@dataclass
class Script:
    """What the player sends, in beats from beat 0 (the first pulse after Start)."""

    events: list[tuple[float, bytes]]  # (beat, message), not sorted
    melody: list[Note]                  # the right hand
    calls: list[tuple[float, float, float]]  # (first onset, end, next call's start or duet) in beats


def script() -> Script:
    """The whole performance: count-in, calls, the switch to duet, the chorus, chords."""
    events: list[tuple[float, bytes]] = []
    melody: list[Note] = []

    def play(beat: float, dur: float, note: int, channel: int = MELODY, velocity: int = 92) -> None:
        events.append((beat, bytes((0x90 | channel, note, velocity))))
        events.append((beat + dur * 0.9, bytes((0x80 | channel, note, 0))))  # a touch detached
        if channel == MELODY and note >= 60:
            melody.append(Note(beat, dur * 0.9, note, velocity))

    for k in range(COUNT_IN_BARS * BPB):
        play(k, 0.25, 37, CLICK, 100 if k % BPB == 0 else 70)
    calls = []
    for c, phrase in enumerate(CALLS):
        start = (FIRST_CALL_BAR + c * CALL_BARS) * BPB
        for at, dur, note in phrase:
            play(start + at, dur, note)
        end = start + max(at + dur * 0.9 for at, dur, _ in phrase)
        calls.append((start + phrase[0][0], end, start + CALL_BARS * BPB))
    events.append((DUET_BAR * BPB - 0.5, bytes((0xB0 | MELODY, MODE_CC, DUET))))
    for k, phrase in enumerate(DUET_BARS):
        start = (DUET_BAR + 2 * k) * BPB
        for at, dur, note in phrase:
            play(start + at, dur, note, velocity=88)
    progression = parse_progression(PROGRESSION, BPB)
    for bar in range(FIRST_CALL_BAR, END_BAR):
        chord = progression.chords_in_bar(bar - FIRST_CALL_BAR)[0][1]
        for note in voicing(chord, low=48):
            play(bar * BPB, BPB - 0.05, note, CHORDS, 60)
    return Script(events, melody, calls)


def _jack_environment() -> tuple[str, bool]:
    """The JACK server to play on: the one running (JACK_DEFAULT_SERVER or "default"),
    else the name of jazzd's own (`jackserver.server_name`).  Sets JACK_DEFAULT_SERVER here and
    for jazzd.  Returns (name, started by jazzd)."""
    os.environ["JACK_NO_START_SERVER"] = "1"
    if jack_server_pid(jack_server_socket()) is not None:
        return os.environ.get("JACK_DEFAULT_SERVER") or "default", False
    # jazzd's own name (`make run`'s server too): jack2 frees a killed server's place in
    # its table of servers only when one of the same name starts again.
    name = jackserver.server_name()
    os.environ["JACK_DEFAULT_SERVER"] = name
    return name, True


def _start_jazzd(work: Path, tempo: float, seed: int, model: str | None) -> tuple[subprocess.Popen, list[str]]:
    """`jazzd run` on JACK (its own server if none runs), following the player's clock;
    returns the process and the lines it printed up to its ready line."""
    cmd = [sys.executable, "-m", "jazzd", "run", "--backend", "jack", "--start-jack", "--clock", "midi",
           "--mode", "call", "--feel", "straight", "--tempo", f"{tempo:g}", "--memory", "off",
           "--set", f"midi.client_name={CLIENT}", "--set", "midi.input_channel=1", "--set", f"engine.seed={seed}",
           *(["--model", model] if model else [])]
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "OPENBLAS_NUM_THREADS": "1"}
    with open(work / "jazzd.stderr", "w") as err:  # a file, not a pipe nobody reads
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, bufsize=0)
    # Raw reads: a buffered readline can take the ready line into its buffer with the
    # line before it, where select() no longer sees it.
    lines: list[str] = []
    pending = b""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *done, pending = pending.split(b"\n")
            lines += [line.decode(errors="replace") for line in done]
            if any(line.startswith("jazzd ready") for line in lines):
                return proc, lines
        elif proc.poll() is not None:
            break
    _stop(proc)
    why = (work / "jazzd.stderr").read_text(errors="replace").strip().splitlines()[-3:]
    raise PortError(f"jazzd did not get ready for the demo within {READY_TIMEOUT_S:.0f} s: " + " | ".join(why))


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def _player_ports():
    """This process's JACK client: its output into jazzd:in, its input from jazzd's out."""
    listed = list_ports("jack")
    sources = [p for p in listed["inputs"] if p.startswith(CLIENT) and p.endswith(":out")]
    sinks = [p for p in listed["outputs"] if p == f"{CLIENT}:in"]
    if not sources or not sinks:
        raise PortError(f"jazzd's demo ports are not on the JACK server: inputs {listed['inputs']}, "
                        f"outputs {listed['outputs']}")
    return open_ports("jack", "demo-player", input=sources[0], output=sinks[0])


def perform(ports, plan: Script, tempo: float) -> tuple[float, list[tuple[float, bytes]], list[tuple[float, bytes]]]:
    """Send the clock and the script on time while recording; returns (time of beat 0,
    what was sent (time, message), what came back (arrival time, message))."""
    spb = 60.0 / tempo
    t0 = time.monotonic() + 0.3
    end_beat = END_BAR * BPB
    timed = [(t0 + b * spb, m) for b, m in plan.events]
    timed += [(t0 + k * spb / PPQN, b"\xf8") for k in range(end_beat * PPQN + 1)]
    timed += [(t0 - spb / PPQN / 2, b"\xfa"), (t0 + end_beat * spb + 0.001, b"\xfc")]
    timed.sort(key=lambda e: e[0])
    sent: list[tuple[float, bytes]] = []
    got: list[tuple[float, bytes]] = []
    finish = timed[-1][0] + TAIL_S
    i = 0
    while (now := time.monotonic()) < finish:
        while i < len(timed) and timed[i][0] <= now:
            ports.send(timed[i][1])
            sent.append((time.monotonic(), timed[i][1]))
            i += 1
        got += [(t, m) for m, t in ports.poll(now)]
        wake = timed[i][0] if i < len(timed) else finish
        time.sleep(max(0.0, min(wake - time.monotonic(), 0.003)))
    time.sleep(0.05)
    got += [(t, m) for m, t in ports.poll()]
    return t0, sent, got


def notes_of(messages: list[tuple[float, bytes]], t0: float, spb: float) -> tuple[list[Note], int]:
    """Notes (onset and length in beats) from timed note messages, and how many were left
    sounding at the end (note ons without their off)."""
    sounding: dict[tuple[int, int], tuple[float, int]] = {}
    notes: list[Note] = []
    for t, m in messages:
        if len(m) != 3 or m[0] & 0xE0 != 0x80:
            continue
        key, beat = (m[0] & 0x0F, m[1]), (t - t0) / spb
        if key in sounding:  # its note off, or a new note on over it (which ends it too)
            start, velocity = sounding.pop(key)
            notes.append(Note(start, beat - start, key[1], velocity))
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding[key] = (beat, m[2])
    return sorted(notes, key=lambda n: n.onset), len(sounding)


def grid_error_beats(beat: float) -> float:
    """Distance of an onset to the nearest grid point: sixteenths or eighth triplets."""
    return min(abs(beat * d - round(beat * d)) / d for d in (4, 6))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


@dataclass
class Result:
    answered: list[bool]
    gaps: list[float | None]
    onsets: int
    on_grid: int
    p50_ms: float
    p99_ms: float
    hanging: int
    jazzd_notes: list[Note]

    @property
    def ok(self) -> bool:
        return all(self.answered) and self.hanging == 0


def judge(plan: Script, jazzd_notes: list[Note], hanging: int, tempo: float) -> Result:
    spb_ms = 60000.0 / tempo
    gaps: list[float | None] = []
    for _first, end, stop in plan.calls:
        inside = [n.onset for n in jazzd_notes if end <= n.onset < stop]
        gaps.append(min(inside) - end if inside else None)
    played = [n for n in jazzd_notes if n.onset >= FIRST_CALL_BAR * BPB]
    errors = [grid_error_beats(n.onset) * spb_ms for n in played]
    return Result([g is not None for g in gaps], gaps, len(errors), sum(e <= ON_GRID_MS for e in errors),
                  _percentile(errors, 0.5), _percentile(errors, 0.99), hanging, jazzd_notes)


def _shift(notes: list[Note], beats: float) -> list[Note]:
    return [Note(n.onset - beats, n.dur, n.midi, n.velocity) for n in notes if n.onset >= beats]


def write_files(out: Path, plan: Script, result: Result, tempo: float) -> list[str]:
    """demo.mid and demo.png, from bar 1 (the count-in left out); the lines to print."""
    progression = parse_progression(PROGRESSION, BPB)
    start = FIRST_CALL_BAR * BPB
    bars = END_BAR - FIRST_CALL_BAR
    player, jazzd = _shift(plan.melody, start), _shift(result.jazzd_notes, start)
    lines = [f"wrote {write_midi(out / 'demo.mid', jazzd, progression, bars, tempo, player=player, solo_name='jazzd')}"
             " (tracks: jazzd, chords, player)"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        lines.append("no piano roll: it needs matplotlib (pip install 'jazzd[demo]', or `make demo`)")
        return lines
    from jazzd.judge.plots import piano_roll

    title = f"jazzd demo: three calls, then a duet chorus ({tempo:g} bpm)"
    lines.append(f"wrote {piano_roll(out / 'demo.png', jazzd, progression, bars, title, others={'player': player}, label='jazzd')}")
    return lines


def summary(result: Result, tempo: float, seconds: float, server: str, own: bool) -> list[str]:
    gaps = ", ".join("none" if g is None else f"{g:.2f}" for g in result.gaps)
    where = f'jazzd\'s own JACK server "{server}"' if own else f'the running JACK server "{server}"'
    return [
        f"demo on {where}: {seconds:.1f} s, {tempo:g} bpm, {len(CALLS)} calls then a duet chorus",
        f"calls answered: {sum(result.answered)} of {len(result.answered)}; answer gaps (beats after the call's "
        f"last note): {gaps}",
        f"jazzd played {len(result.jazzd_notes)} notes; on the grid (within {ON_GRID_MS:g} ms of a sixteenth or "
        f"triplet): {result.on_grid} of {result.onsets}; timing error p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms",
        f"hanging notes: {result.hanging}",
    ]


def run_demo(out: Path, tempo: float = TEMPO, seed: int = SEED, model: str | None = None, echo=print) -> int:
    """The demo; 0 when jazzd answered every call and left no note hanging, else 1."""
    out.mkdir(parents=True, exist_ok=True)
    plan = script()
    server, own = _jack_environment()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jazzd-demo-") as tmp:
        work = Path(tmp)
        proc, lines = _start_jazzd(work, tempo, seed, model)
        try:
            for line in lines:
                echo(line)
            ports = _player_ports()
            try:
                echo(f"playing: a bar of count-in, {len(CALLS)} calls over {PROGRESSION}, then a duet chorus "
                     f"({END_BAR * BPB * 60 / tempo:.0f} s)")
                t0, _sent, got = perform(ports, plan, tempo)
            finally:
                ports.close()
        finally:
            code = _stop(proc)
        stderr = (work / "jazzd.stderr").read_text(errors="replace")
    jazzd_notes, hanging = notes_of(got, t0, 60.0 / tempo)
    result = judge(plan, jazzd_notes, hanging, tempo)
    for line in write_files(out, plan, result, tempo):
        echo(line)
    for line in summary(result, tempo, time.monotonic() - began, server, own):
        echo(line)
    if code != 0:
        echo(f"jazzd exited {code}: " + " | ".join(stderr.strip().splitlines()[-3:]))
    if not result.ok:
        echo("demo failed: " + ("a call went unanswered" if not all(result.answered) else "notes were left hanging"))
    return 0 if result.ok and code == 0 else 1
