"""Hostile MIDI input at the daemon's door, seeded: random byte strings and random valid
messages of every kind (SysEx of all sizes, running status, stray data bytes, note offs
without note ons, velocity-0 note ons, every channel, pitch bend, aftertouch, clock
bursts, Start/Stop storms, out-of-range values).  Nothing may raise, nothing may reach a
bug (the "error" drop reason), invalid input is dropped and counted, everything that goes
out is well-formed MIDI and no note is left hanging.  The real-port version is in
tests/test_hostile.py."""

from __future__ import annotations

import logging

import numpy as np
import pytest

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

    def poll(self, max_messages: int = 1024):
        taken, self.inbox = self.inbox[:max_messages], self.inbox[max_messages:]
        return [(m, 0.0) for m in taken]

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
    cfg = load_config(overrides={"model.path": str(model), "clock.source": clock,
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
    if clock == "internal" and cfg.engine.mode != "call":
        assert sent_valid > 0  # it kept playing through it all


def test_drops_are_reported_in_status_and_the_log_once_per_period(model, caplog):
    cfg = load_config(overrides={"model.path": str(model)}, system_paths=[])
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

    cfg = load_config(overrides={"model.path": str(model), **overrides}, system_paths=[])
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
