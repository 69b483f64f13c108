"""The daemon: MIDI ports, beat clock, engine and systemd in one real-time loop.

Main thread only, and the process's only Python thread (a second one holding the GIL
makes this loop ~5 ms late: ../shared/notes/realtime.md).  Never imports tensorflow or
music21.  The loop polls input (Python never runs in JACK's thread), feeds the engine,
sends what the schedule says is due at absolute deadlines (sleep, then spin the last
stretch), pings the watchdog from the beat path, and turns signals into flags:
SIGTERM/SIGINT stop (everything silenced), SIGHUP reloads config, model and the
program-change bundles atomically (a program change itself reads no file; a bundle
file that has not changed is not read again), SIGUSR1 clears the session memory (as the
forget CC does).  Memory stays flat for weeks (issue 16): every container has a bound,
and the C heap is kept from growing by reloads (`tune_heap`, `trim_heap`).
Bad input is dropped and counted, never raised.  The control socket
(`jazzd.live.control`: `jazzd status`, `jazzd ctl`, `jazzd monitor`) is served in the
loop's slack, like the port checks, and never waited on.

The session memory (`jazzd.model.memory`) belongs to the daemon, not to an engine: a
reload or a program change hands the same memory to the new engine.  It is loaded from
[model] memory at start (a file that is not a memory: a warning and an empty memory)
and saved there on stop, after the notes are silenced.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import math
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from jazzd.errors import BundleError, ConfigError, JazzdError, NoMidiSystem
from jazzd.live import jackserver, midi
from jazzd.live.clock import (
    InternalClock,
    LinkFollower,
    LinkTimeline,
    MidiClockFollower,
    TransportStop,
)
from jazzd.live.config import Config, load_config, resolve_key, with_setting
from jazzd.live.control import ControlServer, open_server
from jazzd.live.memtrace import MemoryTrace
from jazzd.live.midi import SUSTAIN
from jazzd.live.notify import Notifier
from jazzd.live.ports import open_ports
from jazzd.model.bundle import load_bundle
from jazzd.model.memory import SessionMemory, load_memory, memory_path
from jazzd.model.runtime import Runtime
from jazzd.model.shipped import default_model
from jazzd.music.progression import parse_progression
from jazzd.play.driver import Driver
from jazzd.play.engine import MODES, Engine, Settings
from jazzd.play.events import Control, NoteOff, NoteOn, Out, Plan, Tick
from jazzd.play.schedule import Schedule
from jazzd.play.settings import engine_value

log = logging.getLogger("jazzd")

POLL_S = 0.001          # input is polled this often while it must be acted on at once (below)
POLL_ACTIVE_S = 0.005   # ... this often while the player plays (input in the last ACTIVE_S)
POLL_IDLE_S = 0.020     # ... and this often when nothing comes in
ACTIVE_S = 2.0
SPIN_S = 0.0015         # the most of the stretch before a deadline that is spun, not slept
START_DELAY_S = 0.25    # the internal clock's first beat, after ready
CHECK_S = 0.1           # lost and returning ports are looked for this often
REPORT_S = 5.0          # new drops reach STATUS and the log at most this often
TRANSPORT_LOG_S = 1.0   # transport changes reach the log at most this often

# The engine settings `jazzd ctl set` changes while jazzd plays, as the CCs do: every
# field of `Settings` but those an engine reads only when it is made (the chord hand,
# the output channel) or that the clock shares (beats per bar); and clock.tempo.
FIELDS = {f.metadata["key"]: f for f in fields(Settings)}
NOT_LIVE = frozenset({"clock.beats_per_bar", "engine.split", "engine.chord_channel", "engine.melody_channel",
                      "midi.output_channel"})


@dataclass
class Counters:
    received: int = 0
    dropped: int = 0      # input messages dropped, with the reason in `by_reason`
    sent: int = 0
    unsent: int = 0       # output dropped while the MIDI system was gone
    reloads: int = 0
    rejected_reloads: int = 0
    by_reason: dict = field(default_factory=dict)  # one key per reason `midi.parse` names, and "error"

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    def drops_text(self) -> str:
        """"dropped 12 (malformed 10, other channel 2)", or "dropped 0"."""
        if not self.dropped:
            return "dropped 0"
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.by_reason.items(), key=lambda i: -i[1]))
        return f"dropped {self.dropped} ({reasons})"


def model_path(cfg: Config) -> Path:
    if cfg.model.path:
        return Path(cfg.model.path)
    return default_model()


class Daemon:
    def __init__(self, cfg: Config, config_file=None, overrides=None, notifier: Notifier | None = None,
                 clock_out: bool | None = None):
        self.cfg = cfg
        self._config_args = (config_file, overrides)
        self.notifier = notifier or Notifier()
        self.counters = Counters()
        self.schedule = Schedule()
        self.driver = Driver(None, self._send_out, self.schedule)  # the engine comes at start
        # Everything the daemon keeps has a bound (issue 16: it runs for weeks, its memory
        # flat after warm-up; tests/test_longrun.py holds it to that), stated where it is
        # made: here, in the engine (`jazzd.play.engine`), the schedule, the control socket.
        self.sounding: set[tuple[int, int]] = set()  # (channel, note) sent on and not yet off: 16 x 128 at most
        self.channels_used: set[int] = {cfg.midi.output_channel - 1}  # 16 at most
        self.stop_requested = False
        self.reload_requested = False
        self.forget_requested = False
        self.memory = SessionMemory()  # CAPACITY values at most (`jazzd.model.memory`)
        self.memory_file: Path | None = None
        self.ports = None
        self.jack: jackserver.EmbeddedServer | None = None  # jazzd's own JACK server ([midi] start_jack)
        self.clock_out = cfg.clock.send if clock_out is None else clock_out
        self.model_name = ""
        self.programs: list[tuple[Path, Runtime]] = []  # [model] folder, loaded: program k is the kth (replaced at reload)
        # The runtimes loaded, by file: {path: (file_key, runtime)}, the model's and the
        # programs' (replaced at each reload: as many as the folder has bundles, and one).
        self._loaded: dict[Path, tuple[tuple | None, Runtime]] = {}
        self.input_held: set[tuple[int, int]] = set()  # the player's keys down (channel, note): 16 x 128 at most
        self.input_pedal: set[int] = set()              # channels with the sustain pedal down: 16 at most
        self._next_check = 0.0
        self._last_input = -math.inf  # when the loop last read a message
        self._oversleep = Oversleep()
        self._next_report = 0.0
        self._transport_logged, self._transport_changes = -math.inf, 0  # see `_system`
        self._reported = (0, 0, 0, 0)  # (dropped, unsent, queue full, clock faults) as last reported
        self.port_state = "ok"
        self.monotonic = time.monotonic  # the clock `step` reads after planning (tests: a fake)
        self.clock = None                  # InternalClock or LinkFollower: beats from a timeline
        self.follower = None               # MidiClockFollower: beats from MIDI clock
        self.link = None                   # LinkSession (source = "link")
        self._planned_on: LinkTimeline | None = None  # the Link snapshot the schedule was planned on
        self._link_peers = 0
        self.control: ControlServer | None = None  # the control socket (`open_control`)
        self._published = (None, "", (0, 0, 0))  # (tick, chord, answer counts) last sent to subscribers
        self._settings_changed = False           # a setting changed since subscribers last heard
        self._reload_error = ""
        self._memtrace = MemoryTrace()  # `memory` requests (PYTHONTRACEMALLOC): one snapshot kept

    @property
    def engine(self) -> Engine:
        return self.driver.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self.driver.engine = engine

    # --- start-up -------------------------------------------------------------------------
    @staticmethod
    def _new_engine(cfg: Config, runtime: Runtime, memory: SessionMemory | None = None) -> Engine:
        """An engine on a loaded runtime, from the start of a sequence, seeded by
        `engine.seed` (0: a new seed), with the session `memory` (a new one if None).
        Reads no file."""
        import numpy as np

        runtime.reset()
        progression = parse_progression(cfg.engine.progression, cfg.clock.beats_per_bar) \
            if cfg.engine.progression else None
        rng = np.random.default_rng(cfg.engine.seed or None)
        # trace=0: the engine's traces of what it played and heard are for tests and
        # renders; nothing reads them live, and a service keeps no container that only fills
        return Engine(runtime, rng, Settings.from_config(cfg.flat()), progression=progression, memory=memory,
                      trace=0)

    def start(self, now: float | None = None, ports=None) -> str:
        """Load the model and the program-change bundles, open the ports (or use `ports`:
        anything with MidiPorts' poll/send/check/close/description), start the clock;
        returns the ready line."""
        cfg = self.cfg
        if cfg.clock.source == "link":  # first: a missing extra is reported before anything loads,
            from jazzd.live.abletonlink import LinkSession  # and jazzd joins while the model loads

            self.link = LinkSession(cfg.clock.tempo, cfg.clock.beats_per_bar, cfg.clock.link_start_stop)
        path = model_path(cfg)
        used: dict = {}
        runtime = load_runtime(path, None, used)
        self.memory_file = memory_path(cfg.model.memory)
        if self.memory_file is not None:
            self.memory = load_memory(self.memory_file, log.warning)
            log.info("session memory %s: %d values", self.memory_file, len(self.memory))
        self.engine = self._new_engine(cfg, runtime, memory=self.memory)
        self.model_name = path.name
        self.programs = load_programs(cfg, None, used)
        self._loaded = used
        self.ports = ports or self._open_ports()
        now = time.monotonic() if now is None else now
        if cfg.clock.source == "internal":
            self.clock = InternalClock(cfg.clock.tempo, now + START_DELAY_S, cfg.clock.beats_per_bar)
        elif cfg.clock.source == "link":
            self.clock = LinkFollower(self.link.enabled_at, cfg.clock.beats_per_bar, cfg.clock.link_latency_ms / 1000,
                                      cfg.clock.link_start_stop)
            self._follow_link(now)
        else:
            self.follower = MidiClockFollower(cfg.clock.beats_per_bar)
        # As clock master, the same clock's 0xF8 pulses (and Start) go out with the beats.
        self.out_clock = self.clock if self.clock_out and isinstance(self.clock, InternalClock) else None
        if self.clock_out and self.out_clock is None:
            log.warning("clock.send: jazzd sends MIDI clock only with its own clock (clock.source = "
                        "\"internal\"); not sending")
        line = (f"jazzd ready: {self.ports.description()}; model {self.model_name}; "
                f"{self._clock_text()}; mode {cfg.engine.mode}")
        self.notifier.ready(self.status_text())
        return line

    def _open_ports(self):
        """Open the configured ports; with no MIDI system at all and `start_jack = "auto"`,
        start jazzd's own JACK server (`jazzd.live.jackserver`) and open them on it."""
        m = self.cfg.midi
        if m.start_jack == "auto" and m.backend in ("auto", "jack"):
            # A server a killed jazzd left behind would pass for a running one: stop it first.
            jackserver.clean_stale(jackserver.server_name(), log.warning)
        try:
            return open_ports(m.backend, m.client_name, m.input or None, m.output or None)
        except NoMidiSystem as err:
            if m.backend not in ("auto", "jack"):
                raise
            if m.start_jack != "auto":
                raise NoMidiSystem(f"{str(err).rstrip('.')}; or let jazzd start its own JACK server: "
                                   f"--start-jack ([midi] start_jack = \"auto\"; needs jackd2)") from None
            why = str(err).split(". To fix it")[0]
            self.jack = jackserver.start(log=log.warning, why=why)
        os.environ["JACK_DEFAULT_SERVER"] = self.jack.name  # for rtmidi and the server watch
        return open_ports("jack", m.client_name, m.input or None, m.output or None)

    def jack_line(self) -> str:
        """The line saying that jazzd runs on its own JACK server and how to reach it ("" if not)."""
        if self.jack is None or self.ports is None:
            return ""
        return self.jack.connect_line(self.ports.input_name, self.ports.output_name)

    def stop_jack(self) -> None:
        """Stop jazzd's own JACK server, if it started one: last, after the ports closed."""
        if self.jack is not None:
            self.jack.stop()

    def _clock_text(self) -> str:
        if self.link is not None:
            sync = ", start/stop sync" if self.cfg.clock.link_start_stop else ""
            return f"Ableton Link (quantum {self.cfg.clock.beats_per_bar} beats{sync})"
        if self.clock is not None:
            return f"internal clock {self.cfg.clock.tempo:g} bpm"
        return "following MIDI clock"

    def tempo(self) -> float:
        if self.clock is not None:
            return self.clock.tempo
        return self.follower.tempo or 0.0

    def status_text(self) -> str:
        ports = "" if self.port_state == "ok" else f", {self.port_state}"
        clock = f", clock: {faults}" if (faults := self._clock_faults()) else ""
        return (f"{self.engine.settings.mode}, {self.tempo():.0f} bpm, model {self.model_name}, "
                f"temperature {self.engine.settings.temperature:.1f}, "
                f"heard {self.engine.stats.heard_notes} notes, imitation {self.engine.settings.imitation:.1f} "
                f"(memory {len(self.memory)} values){ports}, {self.counters.drops_text()}{clock}")

    def status(self, now: float) -> dict:
        """Everything `jazzd status` shows (the control socket's status): STATUS's line
        (`status_text`) and its pieces, the beat, the chord heard, every setting in effect,
        the counters and the loop's timing."""
        e, c = self.engine, self.counters
        beat = e.beat_of(now) if e.last_tick is not None else None
        bpb = e.settings.beats_per_bar
        chord = e.chord_at(now)
        return {
            "text": self.status_text(),
            "tempo": round(self.tempo(), 2),
            "beat": None if beat is None else round(beat, 2),
            "bar": None if beat is None else math.floor(beat / bpb) + 1,
            "beat_in_bar": None if beat is None else math.floor(beat % bpb) + 1,
            "transport": self._transport_state(),
            "clock": self._clock_text(),
            "mode": e.settings.mode,
            "state": e.state,
            "chord": None if chord is None else str(chord),
            "model": self.model_name,
            "memory_values": len(self.memory),
            "ports": self.ports.description() if self.ports is not None else "",
            "port_state": self.port_state,
            "settings": self.settings_now(),
            "counters": {"received": c.received, "sent": c.sent, "unsent": c.unsent, "dropped": c.dropped,
                         "drops": dict(c.by_reason), "queue_full": self.schedule.dropped,
                         "clock_faults": self._clock_faults(), "reloads": c.reloads,
                         "rejected_reloads": c.rejected_reloads},
            "engine": {"heard_notes": e.stats.heard_notes, "played_notes": e.stats.played_notes,
                       "answers": e.stats.answers, "ignored_calls": e.stats.ignored_calls,
                       "withdrawn": e.stats.withdrawn, "player_turns": e.stats.player_turns},
            "timing": {"poll_ms": round(self._poll_interval(now) * 1000, 1),
                       "spin_ms": round(self._oversleep.spin * 1000, 2),
                       "oversleep_ms": self._oversleep.figures()},
            "sounding": len(self.sounding),
            "control": dict(self.control.counts) if self.control is not None else {},
        }

    def settings_now(self) -> dict:
        """Every setting in effect, {"section.key": value} in the file's units: the config
        (with `jazzd ctl set`'s changes), and what the CCs changed since."""
        values = self.cfg.flat()
        s = self.engine.settings
        for key, f in FIELDS.items():
            if f.metadata["load"] is None:
                values[key] = getattr(s, f.name)
        return values

    def _transport_state(self) -> str:
        if self.follower is not None:
            return "playing" if self.follower.running else "stopped"
        if self.link is not None and self.cfg.clock.link_start_stop:
            view = getattr(self.clock, "view", None)
            return "playing" if view is not None and view.playing else "stopped"
        return "playing"

    def _clock_faults(self) -> str:
        """"812 stray pulses dropped, 3 lost" once the MIDI clock followed has had pulses
        that were no pulses of it (a second clock master, a bad cable) or gaps where
        pulses were lost; "" otherwise."""
        if self.follower is None:
            return ""
        flt = self.follower.filter
        dropped = sum(flt.dropped.values())
        return ", ".join(([f"{dropped} stray pulses dropped"] if dropped else [])
                         + ([f"{flt.lost} lost"] if flt.lost else []))

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        """Loop until a stop is requested; returns the exit code."""
        try:
            while not self.stop_requested:
                now = time.monotonic()
                self.requests(now)
                self.step(now)
                self._wait()
        finally:
            self.shutdown(time.monotonic())
        return 0

    def requests(self, now: float) -> None:
        """Do what the signal handlers asked for since the last turn: reload (SIGHUP),
        forget the session memory (SIGUSR1)."""
        if self.reload_requested:
            self.reload_requested = False
            self.reload(now)
        if self.forget_requested:
            self.forget_requested = False
            self.forget()

    def step(self, now: float) -> None:
        """One turn of the driver loop (`jazzd.play.driver`, the one offline rendering
        takes) at the real time `now`: what is due goes out first (so a beat's own notes
        never wait for the model's planning of the next beat), then input, clock and
        wake-ups; then what fell due while the model planned.  Clock pulses go out with
        the notes."""
        self._send_clock(now)
        if self.link is not None:
            self._follow_link(now)
        self.driver.turn(now, lambda: self._take_input(now), self._ticks(now))
        later = self.monotonic()
        self._send_clock(later)
        self.driver.send_due(later)
        self._alive(now)
        if self.control is not None and self.control.subscribers:
            self._publish_changes(now)

    def _take_input(self, now: float) -> None:
        for data, arrived in self.ports.poll(now):
            self.counters.received += 1
            self._last_input = now
            self.handle(data, now, arrived)

    def _ticks(self, now: float):
        """The internal clock's beats due by `now` (read when the driver asks: after input)."""
        if self.clock is not None:
            ticks = self.clock.poll(now)
            if ticks and self.link is not None:
                self._planned_on = self.clock.view  # the engine plans on the latest snapshot
            yield from ticks

    def _follow_link(self, now: float) -> None:
        """A new snapshot of the Link session: its transport changes, and what was planned
        on a timeline that has since moved (a tempo change, a peer's nudge) moves with it."""
        clock = self.clock
        for ev in clock.update(self.link.snapshot(now)):
            self._transport(ev, now)
        old = self._planned_on
        if clock.moved(old):
            self.schedule.retime(lambda t: clock.retime(old, t), now)
            if self.driver.wake is not None and self.driver.wake > now:
                self.driver.wake = clock.retime(old, self.driver.wake)
            self._planned_on = clock.view
        peers = clock.view.peers
        if peers != self._link_peers:
            if clock.joined_after is not None and not self._link_peers and peers:
                log.info("Link: joined a session of %d other peer%s at %.1f bpm, %.2f s after start",
                         peers, "" if peers == 1 else "s", clock.tempo, clock.joined_after)
            else:
                log.info("Link: %d other peer%s in the session", peers, "" if peers == 1 else "s")
            self._link_peers = peers
            self.notifier.status(self.status_text())

    def _send_clock(self, now: float) -> None:
        if self.out_clock is not None:
            for message in self.out_clock.clock_messages(now):
                self._send(message)

    def _alive(self, now: float) -> None:
        """Ping the watchdog from the loop itself, and only while the beat clock is on
        time: a stalled loop or a clock that stopped ticking ends the pings (a stopped
        external transport does not: then there is no beat to keep)."""
        if not (self.cfg.system.watchdog and self.notifier.watchdog_due(now)):
            return
        if self.clock is not None and now - self.clock.next_tick_time() > 60.0 / self.clock.tempo:
            return
        self.notifier.watchdog(now)

    def _wait(self) -> None:
        """Sleep until the next input poll (`_poll_interval`), or until just before an
        output deadline and spin the last stretch to it, as long as sleeps overran lately
        (`Oversleep`: a sleep alone wakes up to ~1.4 ms late here).  Port checks,
        reports and the control socket use the slack when a deadline is not close; while
        the socket has clients, the sleep is a select(2) on its sockets, so a request
        wakes the loop at once and a silent client costs no extra wake-up."""
        now = time.monotonic()
        deadlines = [self.schedule.next_time(), self.driver.wake,
                     self.clock.next_tick_time() if self.clock is not None else None,
                     self.out_clock.next_pulse_time() if self.out_clock is not None else None]
        due = min((d for d in deadlines if d is not None), default=math.inf)
        spin = self._oversleep.spin
        served = False
        if due - now > 4 * SPIN_S:
            if self.control is not None:
                self.serve_control(now)
                served = bool(self.control.clients)
            if now >= self._next_check:
                self._next_check = now + CHECK_S
                self._check_ports(now)
            elif now >= self._next_report:
                self._next_report = now + REPORT_S
                self._report()
            now = time.monotonic()
        if due - now > spin:
            wake = min(self._poll_interval(now), due - now - spin)
            # (Only right after serving: a request left for a turn with no slack must
            # not wake the loop again and again before the deadline.)
            if served:
                woken = self.control.wait(wake)
            else:
                time.sleep(wake)
                woken = False
            if not woken:  # (a sleep cut short says nothing of how late sleeps wake)
                self._oversleep.add(time.monotonic() - now - wake)
            return
        while time.monotonic() < due:
            pass

    def _poll_interval(self, now: float) -> float:
        """How long the loop may sleep before it polls its input again (issue 19: a daemon
        that waits in the background costs next to nothing).  The input's times come from
        the MIDI system (`jazzd.live.stamps`), so a later poll changes only when jazzd
        acts on a message, not when it was heard.  Every millisecond while that matters:
        thru (the player's notes go out again at once) and a running MIDI clock (a beat
        begins when its pulse is read, and the engine plans that beat's notes then);
        every 5 ms while the player plays (what jazzd plays changes that much later, a
        few milliseconds into a note) and while it waits for a MIDI clock; every 20 ms
        when nothing came in for `ACTIVE_S`.  (Waiting for a MIDI clock, not 20: the first
        messages after a silence are timed by the poll that reads them, until a prompt
        read places the MIDI system's clock (`jazzd.live.stamps`), and a DAW's first
        pulses timed up to 20 ms late were numbered a pulse apart from the next ones, every
        beat a pulse late for good, 2 JACK test runs in 8.)  Deadlines (notes, beats,
        clock pulses) are met as before whatever this says."""
        if self.cfg.midi.thru or (self.follower is not None and self.follower.running
                                  and now - self._last_input < ACTIVE_S):
            return POLL_S
        if self.follower is not None or now - self._last_input < ACTIVE_S:
            return POLL_ACTIVE_S
        return POLL_IDLE_S

    # --- the control socket (`jazzd.live.control`) ---------------------------------------------
    def open_control(self) -> None:
        """Open the control socket ([system] control_socket); a socket that cannot be
        opened (another jazzd serves it, a folder not this user's) is one warning, and
        jazzd plays without it."""
        try:
            self.control = open_server(self.cfg.system.control_socket, self.control_request)
        except JazzdError as err:
            log.warning("no control socket: %s", err)
            return
        if self.control is not None:
            log.info("control socket %s", self.control.path)

    def serve_control(self, now: float) -> None:
        """Answer the control socket's clients (in the loop's slack); never raises."""
        try:
            self.control.serve(now)
        except Exception:  # the control socket must not stop the music
            log.exception("serving the control socket failed")

    def control_request(self, request: dict, now: float) -> dict:
        """Carry out one request of the control socket (parsed and checked by
        `jazzd.live.control.parse_request`); returns the reply's fields, or raises a
        JazzdError whose first line is the reply's error."""
        cmd = request["cmd"]
        if cmd == "status":
            return {"status": self.status(now)}
        if cmd == "set":
            key, value = self.set_setting(request["key"], request["value"], now)
            return {"key": key, "value": value}
        if cmd == "mode":
            key, value = self.set_setting("engine.mode", request["mode"], now)
            return {"key": key, "value": value}
        if cmd == "panic":
            self.silence(now)  # as the panic CC
            return {}
        if cmd == "forget":
            self.forget()
            return {"memory_values": len(self.memory)}
        if cmd == "memory":
            return {"memory": self._memtrace.report(now, request.get("top", 10))}
        if cmd == "reload":
            if not self.reload(now):
                raise JazzdError(f"reload rejected, still playing the old setup: {self._reload_error}")
            return {"status": self.status(now)}
        raise JazzdError(f"unknown command {cmd}")

    def set_setting(self, key: str, value, now: float) -> tuple[str, object]:
        """`jazzd ctl set KEY VALUE`: one setting, checked exactly as the config checks
        it (its rule, the checks across keys), applied to the running engine as its CC
        would apply it.  A key jazzd cannot change while it plays, an unknown key or a
        bad value: a one-line ConfigError, and nothing changes."""
        key = resolve_key(key)
        cfg = with_setting(self.cfg, key, value, "set")
        if key == "clock.tempo" and self.follower is not None:
            raise ConfigError("set: clock.tempo: jazzd follows MIDI clock, whose sender sets the tempo")
        new = cfg.get(key)
        if key == "engine.mode":
            if new != self.engine.settings.mode:
                self._apply(self.engine.set_mode(new, now))
                log.info("mode %s", new)
        elif key == "clock.tempo":
            self._set_tempo(new, now)
        elif key in FIELDS and key not in NOT_LIVE:
            f = FIELDS[key]
            setattr(self.engine.settings, f.name, engine_value(f, new))
        else:
            raise ConfigError(f"set: {key} cannot change while jazzd plays; set it in the config "
                              "file and `jazzd ctl reload`, or restart jazzd")
        self.cfg = cfg
        self._settings_changed = True
        log.info("set %s = %r (jazzd ctl)", key, new)
        self.notifier.status(self.status_text())
        return key, new

    def _publish_changes(self, now: float) -> None:
        """Tell the subscribers what changed this turn: a beat, the chord, an answer
        (or a call ignored or withdrawn), the settings.  (Heard and played notes are
        told as they come and go.)"""
        e, c = self.engine, self.control
        tick, chord, answers = self._published
        if e.last_tick is not tick and e.last_tick is not None:
            t = e.last_tick
            bpb = e.settings.beats_per_bar
            c.publish("beat", {"t": round(t.t, 4), "beat": t.beat, "bar": t.beat // bpb + 1,
                               "beat_in_bar": t.beat % bpb + 1, "tempo": round(t.tempo, 2)})
            tick = t
        now_chord = e.chord_at(now)
        text = "" if now_chord is None else str(now_chord)
        if text != chord:
            c.publish("chord", {"t": round(now, 4), "chord": text or None})
            chord = text
        counts = (e.stats.answers, e.stats.ignored_calls, e.stats.withdrawn)
        if counts != answers:
            c.publish("answer", {"t": round(now, 4), "answers": counts[0], "ignored_calls": counts[1],
                                 "withdrawn": counts[2], "state": e.state})
            answers = counts
        self._published = (tick, chord, answers)
        if self._settings_changed:
            self._settings_changed = False
            c.publish("settings", {"t": round(now, 4), "mode": e.settings.mode, "settings": self.settings_now()})

    # --- ports that come and go ---------------------------------------------------------------
    def _check_ports(self, now: float) -> None:
        try:
            changes = self.ports.check()
        except Exception:  # port bookkeeping must not stop the music: try again next time
            log.exception("checking the MIDI ports failed")
            return
        for change in changes:
            self._port_change(change, now)

    def _port_change(self, change: str, now: float) -> None:
        ports = self.ports
        if change == "server lost":
            log.error("the JACK server stopped: jazzd keeps its beat and reopens its ports "
                      "when the server is back")
            self._release_player(now)
            self.sounding.clear()  # every connection went with the server
            self.port_state = "JACK server lost"
        elif change == "server back":
            log.warning("the JACK server is back: %s", ports.description())
            self.port_state = "ok"
        elif change == "input lost":
            log.warning("MIDI input %s disappeared: the player's keys are released; "
                        "reconnecting when it returns", ports.input_name)
            self._release_player(now)
            self.port_state = f"input {ports.input_name} lost"
        elif change == "output lost":
            log.warning("MIDI output %s disappeared: reconnecting when it returns",
                        ports.output_name)
            self.port_state = f"output {ports.output_name} lost"
        else:  # "input back", "output back"
            log.warning("MIDI %s %s is back: reconnected", change.split()[0],
                        ports.input_name if change.startswith("input") else ports.output_name)
            self.port_state = "ok" if all(ports.connected) else self.port_state
        self.notifier.status(self.status_text())

    def _release_player(self, now: float) -> None:
        """The keys the player held (and the pedal) are up: their port went away."""
        for ch, note in sorted(self.input_held):
            self._apply(self.engine.feed(NoteOff(now, note, ch)))
        for ch in sorted(self.input_pedal):
            self._apply(self.engine.feed(Control(now, SUSTAIN, 0, ch)))
        self.input_held.clear()
        self.input_pedal.clear()

    def _report(self) -> None:
        """New drops since the last report go to STATUS and, once, to the log."""
        c = self.counters
        flt = self.follower.filter if self.follower is not None else None
        clock = sum(flt.dropped.values()) + flt.lost if flt is not None else 0
        counts = (c.dropped, c.unsent, self.schedule.dropped, clock)
        if counts == self._reported:
            return
        new = [a - b for a, b in zip(counts, self._reported, strict=True)]
        self._reported = counts
        if new[0]:
            log.warning("dropped %d input messages (%s in all so far)", new[0], c.drops_text())
        if new[1]:
            log.warning("%d messages could not be sent: the MIDI system is gone", new[1])
        if new[2]:
            log.warning("the output queue is full (%d events): dropped %d notes",
                        self.schedule.limit, new[2])
        if new[3] > 0:  # (a tempo change can take back strays that were its first pulses)
            log.warning("the MIDI clock input looks broken: %s so far", self._clock_faults())
        self.notifier.status(self.status_text())

    def _apply(self, plan: Plan) -> None:
        self.driver.apply(plan)

    # --- input ---------------------------------------------------------------------------------
    def handle(self, data: bytes, now: float, arrived: float | None = None) -> None:
        """One raw MIDI message from the input port, read at `now`; it `arrived` earlier
        (the MIDI system's time: `jazzd.live.stamps`; None: at `now`).  The clock follower
        numbers pulses by their arrival, and the engine hears notes where they were
        played, so a late poll makes neither late; but it acts on them at `now`, when
        they can still change what it plays (what went out before `now` is not taken
        back).  Never raises."""
        try:
            self._handle(data, now, now if arrived is None else arrived)
        except Exception as err:  # a bug must not stop the music: drop, count, log
            self.counters.drop("error")
            log.exception("dropped a message after an error (%s): %s", err, data.hex())

    def _handle(self, data: bytes, now: float, arrived: float) -> None:
        channel = self.cfg.midi.input_channel - 1 if self.cfg.midi.input_channel else None
        event = midi.parse(data, now, channel)
        if isinstance(event, str):
            return self.counters.drop(event)
        if isinstance(event, midi.System):
            return self._system(event.data, now, arrived)
        if isinstance(event, NoteOn | NoteOff):
            on, key = isinstance(event, NoteOn), (event.channel, event.note)
            if self.cfg.midi.thru:
                self._thru(on, event.note, event.velocity if on else 0)
            (self.input_held.add if on else self.input_held.discard)(key)
            if self.control is not None and self.control.subscribers:
                self.control.publish("heard", {"t": round(arrived, 4), "kind": "on" if on else "off",
                                               "note": event.note, "velocity": event.velocity if on else 0,
                                               "channel": event.channel,
                                               "hand": "chord" if self.engine.is_chord_hand(event.note, event.channel)
                                               else "melody"})
            if arrived != now:  # heard where it was played, acted on now
                event = replace(event, played=arrived)
            self._apply(self.engine.feed(event))
        elif isinstance(event, Control):
            self._control(event.channel, event.control, event.value, now)
        elif isinstance(event, midi.Program):
            self._program(event.program, now)

    def _system(self, data: bytes, now: float, arrived: float) -> None:
        if self.follower is None:
            return  # clock and transport from the port matter only when following
        for ev in self.follower.feed(arrived, data):
            if isinstance(ev, Tick):
                self._apply(self.engine.tick(ev))
            else:
                self._transport(ev, now)

    def _transport(self, ev, now: float) -> None:
        """A transport change of the clock followed (MIDI or Link): a stop silences."""
        if isinstance(ev, TransportStop):
            self.silence(now)
        # A line for each transport change, but not for a storm of them: after one,
        # the others of the next second are only counted in the next line.
        self._transport_changes += 1
        if now >= self._transport_logged + TRANSPORT_LOG_S:
            more = self._transport_changes - 1
            log.info("transport %s at beat %g%s", type(ev).__name__[9:].lower(), ev.beat,
                     f" ({more} more transport changes since the last line)" if more else "")
            self._transport_logged, self._transport_changes = now, 0

    def _control(self, channel: int, number: int, value: int, now: float) -> None:
        c = self.cfg.control
        s = self.engine.settings
        if number == SUSTAIN:
            (self.input_pedal.add if value >= 64 else self.input_pedal.discard)(channel)
            self._apply(self.engine.feed(Control(now, number, value, channel)))
        elif number == c.temperature_cc:
            s.temperature = round(value / 127 * 3.0, 3)
        elif number == c.density_cc:
            s.density = round(value / 127, 3)
        elif number == c.answer_length_cc:
            s.answer_beats = 0 if value == 0 else round(1 + (value - 1) * 63 / 126)
        elif number == c.mode_cc:
            mode = MODES[0 if value <= 42 else 1 if value <= 85 else 2]
            if mode != s.mode:
                self._apply(self.engine.set_mode(mode, now))
                log.info("mode %s", mode)
        elif number == c.panic_cc and value > 63:
            self.silence(now)
        elif number == c.imitation_cc:
            s.imitation = round(value / 127, 3)
        elif number == c.forget_cc and value > 63:
            self.forget()
        elif number == c.feel_cc:
            s.feel_amount = round(value / 127, 3)
        elif number == c.articulation_cc:
            s.articulation_amount = round(value / 127, 3)
        else:
            return
        self._settings_changed = True
        self.notifier.status(self.status_text())

    def _program(self, program: int, now: float) -> None:
        """Switch to a bundle loaded at start or reload: no file is read on the beat path."""
        folder = self.cfg.model.folder
        if not (self.cfg.control.program_change and folder):
            return
        if program >= len(self.programs):
            log.warning("program change %d: only %d bundles in %s", program, len(self.programs), folder)
            return
        self._switch_model(*self.programs[program], self.cfg, now)

    def _thru(self, on: bool, note: int, velocity: int) -> None:
        ch = self.cfg.midi.output_channel - 1
        self._send_note(Out(0.0, "on" if on else "off", note, velocity if on else 0, ch))

    # --- output ----------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        try:
            if self.ports.send(data):
                self.counters.sent += 1
            else:
                self.counters.unsent += 1
        except JazzdError as err:
            log.error("cannot send: %s", err)

    def _send_out(self, ev: Out) -> None:
        """What the engine plays (the driver's sender); subscribers hear of its notes."""
        self._send_note(ev)
        if ev.kind != "cc" and self.control is not None and self.control.subscribers:
            self.control.publish("played", {"t": round(self.monotonic(), 4), "kind": ev.kind, "note": ev.number,
                                            "velocity": ev.value, "channel": ev.channel & 0x0F})

    def _send_note(self, ev: Out) -> None:
        ch = ev.channel & 0x0F
        if ev.kind == "on":
            if (ch, ev.number) in self.sounding:  # re-strike: end the old one first
                self._send(midi.note_off(ch, ev.number))
            self.sounding.add((ch, ev.number))
        elif ev.kind == "off":
            self.sounding.discard((ch, ev.number))
        self._send(midi.encode(ev))
        self.channels_used.add(ch)

    def silence(self, now: float) -> None:
        """Stop playing: cancel what is scheduled, release every sounding note at once."""
        self.driver.stop(now)
        for ch, note in sorted(self.sounding):
            self._send(midi.note_off(ch, note))
        if self.control is not None and self.control.subscribers:
            self.control.publish("silence", {"t": round(now, 4), "released": sorted(n for _, n in self.sounding)})
        self.sounding.clear()

    def forget(self) -> None:
        """Clear the session memory (the forget CC, SIGUSR1); the file keeps what it
        held until the next save, on stop."""
        self.memory.clear()
        log.info("session memory cleared")
        self.notifier.status(self.status_text())

    def save_memory(self) -> bool:
        """Write the session memory to its file ([model] memory), if it has one; a
        failure is one warning line, never an exception (it runs while stopping)."""
        if self.memory_file is None:
            return False
        try:
            self.memory.save(self.memory_file)
        except OSError as err:
            log.warning("%s: cannot save the session memory (%s); check that its folder exists "
                        "and is writable", self.memory_file, err.strerror or err)
            return False
        log.info("session memory saved to %s: %d values", self.memory_file, len(self.memory))
        return True

    def panic(self) -> None:
        """Note offs for what sounds, then CC64=0, CC123 and CC120 on every channel used."""
        for message in midi.panic_messages(sorted(self.channels_used), notes=sorted(self.sounding)):
            self._send(message)
        self.sounding.clear()

    # --- reload and stop ---------------------------------------------------------------------
    def reload(self, now: float) -> bool:
        """Re-read config and model; on any error keep the old, working state.  A bundle
        whose file is unchanged (`file_key`) is not read again: its loaded runtime plays
        on in the new engine (a reload for a setting no longer stalls the loop ~250 ms
        loading the shipped model, nor churns tens of MB; issue 16).  Then the heap the
        old model (or the rejected new one) held goes back to the system (`trim_heap`)."""
        try:
            return self._reload(now)
        finally:
            trim_heap()

    def _reload(self, now: float) -> bool:
        self.notifier.reloading()
        config_file, overrides = self._config_args
        used: dict = {}
        try:
            cfg = load_config(config_file, overrides)
            path = model_path(cfg)
            runtime = load_runtime(path, self._loaded, used)
            programs = load_programs(cfg, self._loaded, used)
        except JazzdError as err:
            self.counters.rejected_reloads += 1
            self._reload_error = str(err).splitlines()[0] if str(err) else type(err).__name__
            for line in str(err).splitlines():
                log.error("reload rejected, still playing the old setup: %s", line)
            self.notifier.ready(self.status_text())
            return False
        self._switch_model(path, runtime, cfg, now)
        self.programs, self._loaded = programs, used
        if cfg.midi != self.cfg.midi:
            log.warning("[midi] changed: restart jazzd to use other ports")
        if cfg.model.memory != self.cfg.model.memory:
            log.warning("[model] memory changed: restart jazzd to use another memory file")
        if cfg.clock.tempo != self.cfg.clock.tempo:
            self._set_tempo(cfg.clock.tempo, now)
        if self.link is not None and replace(cfg.clock, tempo=self.cfg.clock.tempo) != self.cfg.clock:
            log.warning("[clock] changed: restart jazzd to change its Link settings (tempo aside)")
        changed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in self.cfg.diff(cfg).items())
        self.cfg = cfg
        self._settings_changed = True
        self.counters.reloads += 1
        log.info("reloaded (%s): %s", changed or "no setting changed", self.status_text())
        self.notifier.ready(self.status_text())
        return True

    def _set_tempo(self, tempo: float, now: float) -> None:
        """A new clock.tempo (a reload, `jazzd ctl set`): jazzd's own clock takes it; a
        Link session, while jazzd is alone in it; MIDI clock sets its own."""
        if isinstance(self.clock, InternalClock):
            self.clock.set_tempo(tempo, now)
        elif self.link is not None and not self.link.propose_tempo(tempo, now):
            log.warning("clock.tempo: the Link session's peers set the tempo; jazzd proposes "
                        "its own only while alone in the session")
        elif self.follower is not None:
            log.warning("clock.tempo: jazzd follows MIDI clock; its sender sets the tempo")

    def _switch_model(self, path: Path, runtime: Runtime, cfg: Config, now: float) -> None:
        """Play `runtime` (loaded from `path`) from now on, on the running beat grid."""
        # Silence first: the old engine's cut restores its runtime's state, and that
        # runtime may be the one restarting here (the same program again).
        self.silence(now)  # nothing hangs across the switch
        last_tick = self.engine.last_tick
        engine = self._new_engine(cfg, runtime, memory=self.memory)
        engine.adopt_chords(self.engine)  # the chord in the player's hand stays known
        self.engine, self.model_name = engine, path.name
        if last_tick is not None:  # the new engine joins the running beat grid
            self._apply(self.engine.tick(last_tick))
        log.info("model %s", self.model_name)
        self.notifier.status(self.status_text())

    def shutdown(self, now: float) -> None:
        self.notifier.stopping()
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.ports is None:
            return
        try:
            self.silence(now)
            if self.out_clock is not None:
                self._send(self.out_clock.stop_bytes())
            self.panic()
        finally:
            self.ports.close()
            self.ports = None
            if self.link is not None:
                self.link.close()
            self.save_memory()


_libc = None
M_MMAP_THRESHOLD = -3           # glibc's mallopt parameter
MMAP_THRESHOLD = 128 * 1024     # allocations this big or bigger are mapped apart, and unmapped when freed


def _glibc():
    """The C library's malloc_trim and mallopt, or None without glibc."""
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(None)
            _libc = (lib.malloc_trim, lib.mallopt)
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def tune_heap() -> bool:
    """Keep the large allocations out of the C heap, for the life of the process (glibc:
    a fixed mmap threshold of `MMAP_THRESHOLD`); False where there is no glibc.  glibc
    raises its threshold each time a large mapped block is freed (up to 32 MB), so after
    the first reload freed the old model's arrays, every large temporary (a model loaded,
    the session memory's re-index) came from the heap and left its pages resident:
    between two reloads the private memory once rose by 6.5 MB and stayed (issue 16).
    Nothing on the beat path allocates that much (the engine's arrays are a few kB)."""
    libc = _glibc()
    return bool(libc and libc[1](M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim_heap() -> bool:
    """Give the C heap's free memory back to the system (glibc's malloc_trim); False
    where there is no glibc.  After a reload: loading a model allocates tens of MB for a
    moment (the bundle's arrays, their float64 copies) while the old model still plays,
    and glibc keeps what was freed inside its heap, so each reload could leave the
    private memory higher (measured with the shipped model, 4 reloads: 68 -> 95 -> 89 ->
    89 -> 102 MB; trimmed after each: 68 -> 66.6 -> 66.7 -> 66.8 -> 66.8 MB; issue 16).
    Called where jazzd may pause (a reload, after start-up), never on the beat path
    (7-14 ms here)."""
    libc = _glibc()
    if libc is None:
        return False
    libc[0](0)
    return True


def file_key(path) -> tuple | None:
    """What tells a file's content changed without reading it: its device, inode, size,
    modification and change times (the change time moves at every write, and nothing
    sets it back); None if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load_runtime(path: Path, kept: dict | None, used: dict) -> Runtime:
    """`path`'s bundle, ready to play: the runtime `kept` holds for it ({path: (file_key,
    runtime)}: what the daemon loaded before) when the file has not changed since, else
    loaded (BundleError for a bad one); recorded in `used`."""
    path = Path(path)
    key = file_key(path)
    held = (kept or {}).get(path)
    runtime = held[1] if held is not None and key is not None and held[0] == key else Runtime(load_bundle(path))
    used[path] = (key, runtime)
    return runtime


def load_programs(cfg: Config, kept: dict | None = None, used: dict | None = None) -> list[tuple[Path, Runtime]]:
    """The bundles of [model] folder for program change, sorted by file name (program k
    plays the kth), each loaded and its runtime built (or kept: `load_runtime`): a program
    change then reads no file.  Empty when program change is off or there is no folder.  A missing folder or
    a bad bundle is an error (BundleError, exit 2 at start-up; a reload keeps the old
    setup), one line per bad bundle, as for a bad [model] path: a folder of bundles to
    switch between on stage is checked before the first note, not at the switch."""
    folder = cfg.model.folder
    if not (cfg.control.program_change and folder):
        return []
    if not Path(folder).is_dir():
        raise BundleError(f"{folder}: no such folder of model bundles ([model] folder); check the path")
    programs, errors = [], []
    for path in sorted(Path(folder).glob("*.npz")):
        if path.name.endswith(".trigram.npz"):  # a bundle's baseline, not a bundle
            continue
        try:
            programs.append((path, load_runtime(path, kept, {} if used is None else used)))
        except JazzdError as err:
            errors.append(str(err))
    if errors:
        raise BundleError("\n".join(errors))
    return programs


def _request_stop(daemon: Daemon):
    def handler(signum, frame):
        daemon.stop_requested = True
    return handler


def _request_reload(daemon: Daemon):
    def handler(signum, frame):
        daemon.reload_requested = True
    return handler


def _request_forget(daemon: Daemon):
    def handler(signum, frame):
        daemon.forget_requested = True
    return handler


class Oversleep:
    """How long before a deadline the loop stops sleeping and spins: as long as its sleeps
    overran lately (the 98th percentile of the last `SAMPLES`, and `MARGIN_S` more), within
    [`MIN_S`, SPIN_S].  A sleep here overruns by about 0.15 ms when the machine is quiet
    and by milliseconds when it is busy (../shared/notes/realtime.md); a fixed 1.5 ms spin
    before every note and clock pulse cost about 10% of a core at 160 bpm with clock out,
    while a spin that follows the overruns costs what the machine makes it cost."""

    SAMPLES = 64
    MARGIN_S = 0.0001
    MIN_S = 0.0002

    def __init__(self) -> None:
        self._late: deque[float] = deque(maxlen=self.SAMPLES)
        self._count = 0
        self.spin = SPIN_S  # until it has measured

    def add(self, late: float) -> None:
        self._late.append(late)
        self._count += 1
        if self._count % 16 == 0:
            ordered = sorted(self._late)
            self.spin = min(SPIN_S, max(self.MIN_S, ordered[int(0.98 * (len(ordered) - 1))] + self.MARGIN_S))

    def figures(self) -> dict:
        """How late the last `SAMPLES` sleeps woke, in ms: median, 98th percentile, max."""
        ordered = sorted(self._late)
        if not ordered:
            return {}
        at = lambda q: round(ordered[int(q * (len(ordered) - 1))] * 1000, 3)  # noqa: E731
        return {"median": at(0.5), "p98": at(0.98), "max": at(1.0)}


def set_realtime(log_warning=log.warning) -> bool:
    """Ask for SCHED_FIFO for this (the only Python) thread; carry on where not allowed."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
        return True
    except (PermissionError, OSError, AttributeError) as err:
        log_warning("--realtime: SCHED_FIFO not granted (%s); running with normal scheduling", err)
        return False


def main(config_file=None, overrides=None, realtime: bool = False, clock_out: bool | None = None,
         print_ready=print) -> int:
    """`jazzd run`: exit 0 on a clean stop, 1 on a runtime failure, 2 for bad settings."""
    import faulthandler

    faulthandler.enable()  # a watchdog abort leaves the stuck loop's stack in the journal
    tune_heap()  # before the model loads: its arrays, and every reload's, are mapped apart
    cfg = load_config(config_file, overrides)
    logging.basicConfig(level=cfg.system.log_level.upper(), format="jazzd: %(levelname)s: %(message)s")
    daemon = Daemon(cfg, config_file, overrides, clock_out=clock_out)
    signal.signal(signal.SIGTERM, _request_stop(daemon))
    signal.signal(signal.SIGINT, _request_stop(daemon))
    signal.signal(signal.SIGHUP, _request_reload(daemon))
    signal.signal(signal.SIGUSR1, _request_forget(daemon))
    if realtime or cfg.system.realtime:
        set_realtime()
    try:
        try:
            ready = daemon.start()
            if daemon.jack is not None:
                print_ready(daemon.jack_line())
            print_ready(ready)
            daemon.open_control()
            gc.collect()
            gc.freeze()  # start-up objects leave the collector's view: its pauses stay short
            trim_heap()  # what loading the model used for a moment goes back to the system
        except JazzdError:
            daemon.notifier.stopping()
            if daemon.ports is not None:
                daemon.ports.close()
            raise
        try:
            return daemon.run()
        except Exception:
            log.exception("runtime failure")
            return 1
    finally:
        daemon.stop_jack()
