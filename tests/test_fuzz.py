"""Hostile MIDI input at the daemon's door, seeded: random byte strings and random valid
messages of every kind (SysEx of all sizes, running status, stray data bytes, note offs
without note ons, velocity-0 note ons, every channel, pitch bend, aftertouch, clock
bursts, Start/Stop storms, out-of-range values).  Nothing may raise, nothing may reach a
bug (the "error" drop reason), invalid input is dropped and counted, everything that goes
out is well-formed MIDI and no note is left hanging.  The real-port version is in
tests/test_hostile.py."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from jazzd.live.clock import PPQN
from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.midi import LENGTH, parse
from jazzd.live.notify import Notifier
from jazzd.play.events import NoteOff, NoteOn

from .tinymodel import make_bundle

REASONS = {"empty", "malformed", "other channel"}  # every reason a valid daemon may give


class Wire:
    """The daemon's ports in memory: a queue of input, a record of output."""

    def __init__(self):
        self.inbox: list[bytes] = []
        self.out: list[bytes] = []
        self.connected = [True, True]

    def poll(self, now: float = 0.0, max_messages: int = 1024):
        """What is in the inbox, as arrived at the poll (`now`)."""
        taken, self.inbox = self.inbox[:max_messages], self.inbox[max_messages:]
        return [(m, now) for m in taken]

    def send(self, message: bytes) -> bool:
        self.out.append(bytes(message))
        return True

    def check(self) -> list[str]:
        return []

    def close(self) -> None:
        pass

    def description(self) -> str:
        return "MIDI in memory"


def hostile(rng: np.random.Generator):
    """One random message: garbage or a valid message of a random kind."""
    ch = int(rng.integers(16))
    kind = int(rng.integers(16))
    data = lambda n, top=128: [int(x) for x in rng.integers(0, top, n)]  # noqa: E731
    if kind == 0:
        return bytes(data(int(rng.integers(0, 40)), 256))  # any bytes at all (may be empty)
    if kind == 1:  # SysEx of any size, sometimes unterminated or with a status byte inside
        body = data(int(rng.choice([0, 1, 10, 300, 5000])))
        if body and rng.random() < 0.2:
            body[int(rng.integers(len(body)))] = int(rng.integers(128, 256))
        return bytes([0xF0, *body, *([0xF7] if rng.random() < 0.8 else [])])
    if kind == 2:
        return bytes(data(int(rng.integers(1, 3))))  # running status / stray data bytes
    if kind in (3, 4):  # notes: offs without ons, velocity-0 ons, any channel
        status = (0x80, 0x90)[kind - 3] | ch
        return bytes([status, *data(1), int(rng.choice([0, 1, 64, 127]))])
    if kind == 5:
        return bytes([0xE0 | ch, *data(2)])  # pitch bend
    if kind == 6:
        return bytes([0xA0 | ch, *data(2)]) if rng.random() < 0.5 else bytes([0xD0 | ch, *data(1)])
    if kind == 7:  # controllers, values sometimes out of range
        return bytes([0xB0 | ch, int(rng.integers(0, 128)), int(rng.integers(0, 256))])
    if kind == 8:
        return bytes([0xC0 | ch, int(rng.integers(0, 256))])  # program change, maybe > 127
    if kind == 9:
        return bytes([0xF8])  # clock (bursts come from repetition, see `stream`)
    if kind == 10:
        return bytes([int(rng.choice([0xFA, 0xFB, 0xFC]))])  # transport storm
    if kind == 11:  # song position, sometimes short or too long
        return bytes([0xF2, *data(int(rng.integers(0, 4)))])
    if kind == 12:  # the other system messages, defined or not
        return bytes([int(rng.choice([0xF1, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF9, 0xFD, 0xFE, 0xFF])),
                      *data(int(rng.integers(0, 3)))])
    if kind == 13:  # a channel message of the wrong length
        status = int(rng.choice(list(LENGTH))) | ch
        return bytes([status, *data(int(rng.integers(0, 6)))])
    return bytes([0x90 | ch, int(rng.integers(36, 96)), int(rng.integers(1, 128))])  # plain notes


def stream(rng, n: int):
    out = []
    while len(out) < n:
        m = hostile(rng)
        out += [m] * (int(rng.integers(1, 200)) if m == b"\xf8" or rng.random() < 0.02 else 1)
    return out[:n]


def well_formed(message: bytes) -> bool:
    status = message[0]
    if status < 0x80 or any(b > 0x7F for b in message[1:]):
        return False
    if status >= 0xF0:
        return len(message) == 1 and status in (0xF8, 0xFA, 0xFB, 0xFC)
    return len(message) == LENGTH[status & 0xF0]


def is_note_on(message: bytes) -> bool:
    return isinstance(parse(message, 0.0), NoteOn)


def sounding_at_end(out: list[bytes]) -> set[tuple[int, int]]:
    """The (channel, note) pairs a stream of messages leaves sounding."""
    sounding: set[tuple[int, int]] = set()
    for m in out:
        event = parse(m, 0.0)
        if isinstance(event, NoteOn):
            sounding.add((event.channel, event.note))
        elif isinstance(event, NoteOff):
            sounding.discard((event.channel, event.note))
    return sounding


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("fuzz") / "tiny.npz")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("clock", ["internal", "midi"])
def test_hostile_input_is_dropped_and_counted_never_raised(model, seed, clock, caplog):
    modes = ("call", "duet", "solo")
    cfg = load_config(overrides={"model.path": str(model), "engine.seed": seed + 1, "clock.source": clock,
                                 "engine.mode": modes[seed % 3], "midi.thru": seed % 2 == 0,
                                 "midi.input_channel": 0 if seed < 3 else 1,
                                 "model.folder": str(model.parent)},
                      system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    wire = Wire()
    daemon.start(now=0.0, ports=wire)
    clock_now = [0.0]
    daemon.monotonic = lambda: clock_now[0]
    rng = np.random.default_rng(seed)
    messages = stream(rng, 4000)
    # Fed in bursts between loop turns, on a clock running 5 ms a turn (6 s in all).
    now, sent_valid = 0.0, 0
    with caplog.at_level(logging.ERROR, logger="jazzd"):
        for i in range(0, len(messages), 5):
            wire.inbox += messages[i:i + 5]
            clock_now[0] = now
            daemon.step(now)
            now += 0.005
        daemon.shutdown(now)
    c = daemon.counters
    assert c.received == len(messages)
    assert "error" not in c.by_reason, caplog.text  # no input reached a bug
    assert set(c.by_reason) <= REASONS
    invalid = sum(1 for m in messages if not m or m[0] < 0x80
                  or (m[0] < 0xF0 and len(m) != LENGTH[m[0] & 0xF0])
                  or (m[0] != 0xF0 and any(b > 0x7F for b in m[1:])))
    assert c.by_reason.get("malformed", 0) + c.by_reason.get("empty", 0) == invalid
    assert f"dropped {c.dropped} (" in daemon.status_text()
    bad = [m.hex() for m in wire.out if not well_formed(m)]
    assert bad == []
    assert sounding_at_end(wire.out) == set()
    assert daemon.sounding == set() and len(daemon.schedule) == 0
    sent_valid = sum(1 for m in wire.out if m[0] & 0xF0 == 0x90)
    # Solo keeps playing through it all.  (Duet yields to the player, and the garbage's
    # notes are a player who never stops: it may rest throughout, by design.)
    if clock == "internal" and cfg.engine.mode == "solo":
        assert sent_valid > 0


def test_drops_are_reported_in_status_and_the_log_once_per_period(model, caplog):
    cfg = load_config(overrides={"model.path": str(model), "engine.seed": 1}, system_paths=[])
    sent = []
    notifier = Notifier(environ={})
    notifier.status = lambda text: sent.append(text) or True
    daemon = Daemon(cfg, notifier=notifier)
    wire = Wire()
    daemon.start(now=0.0, ports=wire)
    daemon.monotonic = lambda: 0.0
    wire.inbox += [b"\x3c\x40", b"", b"\x90\x3c", b"\x3c"]
    daemon.step(0.0)
    with caplog.at_level(logging.WARNING, logger="jazzd"):
        daemon._report()
        daemon._report()  # nothing new: nothing said
    assert caplog.text.count("dropped 4 input messages") == 1
    assert "malformed 3, empty 1" in caplog.text
    assert sent and sent[-1].endswith("dropped 4 (malformed 3, empty 1)")


def _pings_while_running(model, tmp_path, overrides, stall_at=None, stall_s=0.0, run_s=2.0):
    """Run the real loop (Daemon.run) for `run_s` with a real notify socket and
    WATCHDOG_USEC=200 ms; with `stall_at`, the engine's beat handling hangs once for
    `stall_s`.  Returns the monotonic times of the WATCHDOG=1 pings."""
    import socket
    import threading
    import time

    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    pings, done = [], threading.Event()

    def read():  # drain at once: a datagram socket queues only ~10 messages
        while not done.is_set():
            try:
                if b"WATCHDOG=1" in sock.recv(4096):
                    pings.append(time.monotonic())
            except TimeoutError:
                pass

    cfg = load_config(overrides={"model.path": str(model), "engine.seed": 1, **overrides}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}))
    daemon.start(ports=Wire())
    if stall_at is not None:
        tick, stalled = daemon.engine.tick, []

        def stalling_tick(t):
            if not stalled and time.monotonic() >= stall_at:
                stalled.append(time.monotonic())
                time.sleep(stall_s)  # the injected stall: the beat path hangs
            return tick(t)
        daemon.engine.tick = stalling_tick
    reader = threading.Thread(target=read)
    reader.start()
    threading.Timer(run_s, lambda: setattr(daemon, "stop_requested", True)).start()
    try:
        daemon.run()
    finally:
        done.set()
        reader.join()
        sock.close()
    return pings


def test_a_stalled_beat_loop_stops_the_watchdog_pings(model, tmp_path):
    import time

    start = time.monotonic()
    pings = _pings_while_running(model, tmp_path, {"engine.mode": "solo"},
                                 stall_at=start + 0.8, stall_s=1.0, run_s=2.6)
    gaps = np.diff(pings)
    assert len(pings) >= 10
    assert np.sum(gaps > 0.9) == 1  # one silence, longer than WATCHDOG_USEC: systemd acts
    assert np.median(gaps) < 0.15   # otherwise a ping every half interval (0.1 s)
    assert pings[-1] > start + 2.0  # and they resume when the loop does


def test_a_stopped_external_clock_keeps_the_watchdog_fed(model, tmp_path):
    pings = _pings_while_running(model, tmp_path, {"clock.source": "midi"}, run_s=1.5)
    assert len(pings) >= 10 and np.diff(pings).max() < 0.3  # no beats, yet alive


# ---------------------------------------------------------------------------------------
# A storm of stray clock and transport bytes, then a call (issue 18)

STORM_BPM = 120.0
STORM_SPB = 60.0 / STORM_BPM
STORM_CALL = [60, 62, 64, 65, 67, 65, 64, 62]
COUNT_IN = [48, 52, 55]                   # C major, below the split: the left hand
REALTIME = (0xF8, 0xFA, 0xFB, 0xFC, 0xFF)  # Clock, Start, Continue, Stop, System Reset


def storm_messages(rng: np.random.Generator, n: int) -> list[bytes]:
    """The storm, as a client can put it on a wire (python-rtmidi sends at most 3 bytes
    unless it is SysEx): about 4% realtime bytes, the rest notes, CCs, pitch bend,
    aftertouch, SysEx and program changes on any channel."""
    realtime = rng.random(n) < 0.04
    which = rng.choice(REALTIME, n)
    kinds = rng.integers(0, 7, n)
    status = rng.integers(0, 16, n) | np.array([0x90, 0x80, 0xB0, 0xE0, 0xA0, 0xF0, 0xC0])[kinds]
    data = rng.integers(0, 128, (n, 2))
    sysex = rng.integers(0, 128, (n, 20))
    sysex_len = rng.integers(0, 20, n)
    out = []
    for i in range(n):
        if realtime[i]:
            out.append(bytes([int(which[i])]))
            continue
        kind, d0, d1 = kinds[i], int(data[i, 0]), int(data[i, 1])
        if kind == 0:
            out.append(bytes([int(status[i]), d0, 1 + d1 % 127]))
        elif kind in (1, 2, 3):
            out.append(bytes([int(status[i]), d0, d1]))
        elif kind == 4:
            out.append(bytes([int(status[i]), d0, d1]) if d0 % 2 else bytes([0xD0 | int(status[i]) & 0x0F, d1]))
        elif kind == 5:
            out.append(bytes([0xF0, *sysex[i, :sysex_len[i]].tolist(), 0xF7]))
        else:
            out.append(bytes([int(status[i]), d0]))
    return out


@dataclass
class ClockStorm:
    """What the sender plays, `sends` as (seconds from its start, message): a steady 120
    bpm clock (running from a Start at 0.1 s) up to beat `until_beat` after the second
    Start; `n` storm messages (`storm_messages`) spread over
    0.3 s from 1.0 s; then every note the storm left on is released, the live CCs are set
    back (temperature 71 = 42, density 74 = 127, mode 80 = 0 (call), answer length 81 =
    0), and a Start just before a pulse makes that pulse beat 0 (`beat0`, seconds); four
    beats of count-in with left-hand chords, and an 8-beat call on beats 4-11, each note
    0.8 beat.  The call ends on beat 11.75 on the listener's grid, a beat of silence ends
    it, so the answer is due on beat 13.  `pulses`: the send times of the clock pulses;
    `steady`: the indices in `sends` of those from beat 0 on."""

    sends: list[tuple[float, bytes]]
    pulses: list[float]
    beat0: float
    steady: list[int] = field(default_factory=list)

    def beat(self, b: float) -> float:
        return self.beat0 + b * STORM_SPB


def clock_storm(seed: int, n: int = 20_000, until_beat: int = 18) -> ClockStorm:
    rng = np.random.default_rng(seed)
    pulse = STORM_SPB / PPQN
    t0, storm_at, storm_s = 0.1, 1.0, 0.3
    start_pulse = math.ceil((storm_at + storm_s + 0.3 - t0) / pulse)
    beat0 = t0 + start_pulse * pulse
    pulses = [t0 + k * pulse for k in range(start_pulse + int(until_beat * PPQN) + 1)]
    sends = [(t0 - 0.002, b"\xfa")] + [(t, b"\xf8") for t in pulses]
    storm = storm_messages(rng, n)
    sends += zip(np.sort(rng.uniform(storm_at, storm_at + storm_s, n)).tolist(), storm, strict=True)
    after = storm_at + storm_s + 0.05
    sends += [(after, bytes([0x80 | ch, note, 0])) for ch, note in sorted(sounding_at_end(storm))]
    sends += [(after + 0.05, bytes([0xB0, cc, v])) for cc, v in ((71, 42), (74, 127), (80, 0), (81, 0))]
    sends.append((beat0 - 0.002, b"\xfa"))
    scenario = ClockStorm([], pulses, beat0)
    for b in range(4):
        sends += [(scenario.beat(b) + 0.003, bytes([0x90, note, 80])) for note in COUNT_IN]
        if b < 3:
            sends += [(scenario.beat(b + 0.9), bytes([0x80, note, 0])) for note in COUNT_IN]
    for i, p in enumerate(STORM_CALL):
        sends += [(scenario.beat(4 + i) + 0.003, bytes([0x90, p, 100])),
                  (scenario.beat(4 + i + 0.8), bytes([0x80, p, 0]))]
    scenario.sends = sorted(sends, key=lambda s: s[0])  # (stable: a Start stays before its pulse)
    on_grid = set(pulses[start_pulse:])
    scenario.steady = [i for i, (t, m) in enumerate(scenario.sends) if m == b"\xf8" and t in on_grid]
    return scenario


def drive(daemon: Daemon, sends: list[tuple[float, bytes]], until: float, start: float = 0.0,
          turn_s: float = 0.05) -> list[tuple[float, bytes]]:
    """Run the daemon's loop on a fake clock from `start` to `until`: it turns at the
    schedule's deadlines, at least every `turn_s` (so a wake-up the engine asks for comes
    then, or with the next pulse), and when input has arrived, at most once a millisecond
    (its poll period): what arrived since the last poll is handled together, at the
    poll's time.  Returns (time, message) of what it sent."""
    wire, clock = daemon.ports, [start]
    daemon.monotonic = lambda: clock[0]
    sent, i, now, polled = [], 0, start, -math.inf
    while now < until:
        due = daemon.schedule.next_time()
        nxt = min(max(sends[i][0], polled + 0.001) if i < len(sends) else math.inf,
                  now + turn_s, due if due is not None else math.inf)
        now = max(now, nxt)
        while i < len(sends) and sends[i][0] <= now:
            wire.inbox.append(sends[i][1])
            i += 1
            polled = now
        clock[0] = now
        before = len(wire.out)
        daemon.step(now)
        sent += [(now, m) for m in wire.out[before:]]
    return sent


@pytest.mark.parametrize("seed", [*range(10), *(pytest.param(s, marks=pytest.mark.slow) for s in range(10, 200))])
def test_after_a_storm_of_stray_clock_and_transport_bytes_the_next_call_is_answered(model, seed):
    """Issue 18, in memory: the storm, then Start, count-in and an 8-beat call through
    the daemon's loop: the call is answered on beat 13 (a beat after the beat of silence
    that ends it), its notes on the sender's grid, and STATUS says the clock looked broken."""
    # The beat of silence that ends a call (turn_taking "silence"): these tests are of the
    # clock, and pin the answer's beat; the model's turn-taking is tested in test_engine.
    cfg = load_config(overrides={"model.path": str(model), "clock.source": "midi", "engine.seed": seed + 1,
                                 "call.turn_taking": "silence", "engine.feel": "straight",
                                 "engine.articulation": "legato"}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    storm = clock_storm(seed, until_beat=14)
    sent = drive(daemon, storm.sends, storm.beat(14))
    assert daemon.engine.answers[-1] == (13, 21)
    ons = [t for t, m in sent if is_note_on(m) and t > storm.beat(4)]
    assert ons and storm.beat(13) - 1e-6 <= ons[0] < storm.beat(14)
    twelfths = [(t - storm.beat0) / STORM_SPB * 12 for t in ons]
    assert all(abs(x - round(x)) < 1e-6 for x in twelfths)    # on the sender's grid
    assert "error" not in daemon.counters.by_reason
    assert "stray pulses dropped" in daemon.status_text()


def test_a_call_cut_short_by_a_transport_restart_does_not_swallow_the_next_call(model):
    """The player's phrase on beats 16-18 is still waiting for its beat of silence when
    the DAW starts again from 0: that phrase is gone with the old grid, and the call
    played after a 4-beat count-in is heard by the model and answered on beat 13."""
    # The beat of silence that ends a call (turn_taking "silence"): these tests are of the
    # clock, and pin the answer's beat; the model's turn-taking is tested in test_engine.
    cfg = load_config(overrides={"model.path": str(model), "clock.source": "midi", "engine.seed": 1,
                                 "call.turn_taking": "silence"}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    pulse, t0 = STORM_SPB / PPQN, 0.1
    restart = t0 + 19 * STORM_SPB                          # a Start just before beat 19's pulse
    sends = [(t0 - 0.002, b"\xfa"), (restart - 0.002, b"\xfa")]
    sends += [(t0 + k * pulse, b"\xf8") for k in range(40 * PPQN)]
    sends += [(t0 + 0.003, bytes([0x90, n, 80])) for n in COUNT_IN]   # the left hand, held
    for b, p in zip((16, 17, 18), STORM_CALL, strict=False):
        sends += [(t0 + b * STORM_SPB + 0.003, bytes([0x90, p, 100])),
                  (t0 + (b + 0.8) * STORM_SPB, bytes([0x80, p, 0]))]
    for i, p in enumerate(STORM_CALL):
        sends += [(restart + (4 + i) * STORM_SPB + 0.003, bytes([0x90, p, 100])),
                  (restart + (4 + i + 0.8) * STORM_SPB, bytes([0x80, p, 0]))]
    sends.sort(key=lambda s: s[0])
    drive(daemon, [s for s in sends if s[0] < restart + 4 * STORM_SPB], restart + 4 * STORM_SPB - 0.01)
    heard = daemon.engine.stats.heard_values
    sent = drive(daemon, [s for s in sends if s[0] >= restart + 4 * STORM_SPB], restart + 14 * STORM_SPB,
                 start=restart + 4 * STORM_SPB - 0.01)
    assert daemon.engine.answers[-1] == (13, 21)
    assert daemon.engine.stats.heard_values - heard >= len(STORM_CALL)   # the model heard the call
    ons = [t for t, m in sent if is_note_on(m)]
    assert ons and restart + 13 * STORM_SPB - 1e-6 <= ons[0] < restart + 14 * STORM_SPB


def test_a_broken_clock_input_is_reported_in_status_and_the_log(model, caplog):
    cfg = load_config(overrides={"model.path": str(model), "engine.seed": 1, "clock.source": "midi"}, system_paths=[])
    sent = []
    notifier = Notifier(environ={})
    notifier.status = lambda text: sent.append(text) or True
    daemon = Daemon(cfg, notifier=notifier)
    daemon.start(now=0.0, ports=Wire())
    pulse = STORM_SPB / PPQN
    sends = [(k * pulse, b"\xf8") for k in range(4 * PPQN) if k != 60]       # pulse 60 lost
    sends += [((k + 0.5) * pulse, b"\xf8") for k in (30, 70, 80)]            # three strays
    drive(daemon, sorted(sends), 4 * PPQN * pulse)
    with caplog.at_level(logging.WARNING, logger="jazzd"):
        daemon._report()
        daemon._report()  # nothing new: nothing said
    assert caplog.text.count("the MIDI clock input looks broken: 3 stray pulses dropped, 1 lost so far") == 1
    assert sent[-1].endswith("dropped 0, clock: 3 stray pulses dropped, 1 lost")


def test_a_storm_of_transport_bytes_is_a_few_log_lines(model, caplog):
    cfg = load_config(overrides={"model.path": str(model), "engine.seed": 1, "clock.source": "midi"}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    rng = np.random.default_rng(3)
    storm = [(0.1 + i * 0.002, bytes([int(rng.choice([0xFA, 0xFB, 0xFC]))])) for i in range(500)]
    with caplog.at_level(logging.INFO, logger="jazzd"):
        drive(daemon, storm, 1.2)           # 500 in 1 s: one line
        drive(daemon, [(1.3, b"\xfa"), (3.0, b"\xfc")], 3.1, start=1.2)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("transport")]
    assert len(lines) == 3 and lines[0].startswith("transport ") and "more" not in lines[0]
    assert lines[1].startswith("transport start at beat 0 (") and "more transport changes since the last line" in lines[1]
    assert lines[2] == "transport stop at beat 0"


def test_the_feel_cc_sets_the_feel_amount(model):
    """control.feel_cc (87): the CC value 0-127 maps to engine.feel_amount 0-1."""
    cfg = load_config(overrides={"model.path": str(model), "engine.seed": 1}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    assert daemon.engine.settings.feel == "wjd" and daemon.engine.settings.feel_amount == 1.0
    drive(daemon, [(0.1, bytes([0xB0, 87, 64]))], 0.3)
    assert daemon.engine.settings.feel_amount == round(64 / 127, 3)
    drive(daemon, [(0.4, bytes([0xB0, 87, 0]))], 0.6, start=0.3)
    assert daemon.engine.settings.feel_amount == 0.0


def test_the_articulation_cc_sets_the_articulation_amount(model):
    """control.articulation_cc (89): the CC value 0-127 maps to engine.articulation_amount 0-1."""
    cfg = load_config(overrides={"model.path": str(model), "engine.seed": 1}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    assert daemon.engine.settings.articulation == "wjd" and daemon.engine.settings.articulation_amount == 1.0
    drive(daemon, [(0.1, bytes([0xB0, 89, 32]))], 0.3)
    assert daemon.engine.settings.articulation_amount == round(32 / 127, 3)
    assert daemon.engine.settings.feel_amount == 1.0  # the feel's CC is another
    drive(daemon, [(0.4, bytes([0xB0, 89, 0]))], 0.6, start=0.3)
    assert daemon.engine.settings.articulation_amount == 0.0
