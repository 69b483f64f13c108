"""Live and offline take the same turns (jazzd.play.driver): the daemon stepped at the
times it would wait for, and a ManualClock fed the same script, send the same notes at
the same times; and input at a note's own start time is heard before that note goes out.
In memory, fast: the real-port version of the daemon's loop is tests/test_daemon.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.midi import encode, parse
from jazzd.live.notify import Notifier
from jazzd.model.bundle import load_bundle
from jazzd.model.runtime import Runtime
from jazzd.play.engine import Engine
from jazzd.play.events import Control, NoteOff, NoteOn, Out
from jazzd.play.offline import ManualClock
from jazzd.play.schedule import time_key
from jazzd.play.settings import Settings

from .test_fuzz import Wire, sounding_at_end
from .tinymodel import make_bundle

START = 0.25  # the daemon's first beat after start (START_DELAY_S)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("driver") / "tiny.npz")


def script(rng, mode: str, tempo: float) -> list:
    """A random performance: a chord below the split, then phrases of the melody hand
    (some on the beat exactly), with the pedal now and then."""
    spb = 60.0 / tempo
    events = [NoteOn(START + 0.1, n, 70) for n in (48, 52, 55)]
    t = START + 0.3
    for _ in range(int(rng.integers(2, 6))):
        for _ in range(int(rng.integers(2, 10))):
            note = int(rng.integers(60, 84))
            step = spb * float(rng.choice([0.5, 1 / 3, 1.0]))
            on = START + round((t - START) / spb) * spb if rng.random() < 0.3 else t  # on a beat
            events += [NoteOn(on, note, int(rng.integers(40, 127))), NoteOff(on + step * 0.8, note)]
            t = on + step
        if rng.random() < 0.3:
            events += [Control(t, 64, 127), Control(t + spb, 64, 0)]
        t += spb * float(rng.choice([1.0, 3.0, 6.0]))
    return sorted(events, key=lambda e: e.t)


def as_bytes(ev) -> bytes:
    if isinstance(ev, NoteOn):
        return encode(Out(ev.t, "on", ev.note, ev.velocity, ev.channel))
    if isinstance(ev, NoteOff):
        return encode(Out(ev.t, "off", ev.note, 0, ev.channel))
    return encode(Out(ev.t, "cc", ev.control, ev.value, ev.channel))


def live(model, mode: str, tempo: float, seed: int, events: list, end: float):
    """The daemon in memory, stepped at exactly the times its loop waits for (the next
    beat, wake-up, scheduled note or input), on a fake monotonic clock.  Input within
    the microsecond of a step (times compare in microseconds) arrives in that step's
    poll: two real polls are never that close."""
    cfg = load_config(overrides={"model.path": str(model), "engine.mode": mode, "clock.tempo": tempo},
                      system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    wire = Wire()
    daemon.start(now=0.0, ports=wire)
    daemon.engine = Engine(Runtime(load_bundle(model)), np.random.default_rng(seed), Settings.from_config(cfg.flat()))
    now = [0.0]
    daemon.monotonic = lambda: now[0]
    sent: list[tuple[float, bytes]] = []
    send = wire.send
    wire.send = lambda m: sent.append((now[0], bytes(m))) or send(m)
    pending = list(events)
    while True:
        deadlines = [daemon.schedule.next_time(), daemon.driver.wake, daemon.clock.next_tick_time(),
                     pending[0].t if pending else None]
        now[0] = min((d for d in deadlines if d is not None), default=math.inf)
        if time_key(now[0]) > time_key(end):
            return sent
        while pending and time_key(pending[0].t) == time_key(now[0]):  # a poll spans a microsecond
            wire.inbox.append(as_bytes(pending.pop(0)))
        daemon.step(now[0])


def offline(model, mode: str, tempo: float, seed: int, events: list, end: float):
    cfg = load_config(overrides={"engine.mode": mode, "clock.tempo": tempo}, system_paths=[])
    engine = Engine(Runtime(load_bundle(model)), np.random.default_rng(seed), Settings.from_config(cfg.flat()))
    clock = ManualClock(engine, tempo=tempo, start=START)
    for ev in events:
        clock.feed(ev)
    return [(ev.t, encode(ev)) for ev in clock.run_until(end)]


def key(sent):
    return sorted((round(t, 6), m) for t, m in sent)


@pytest.mark.parametrize("seed", range(12))
def test_live_and_offline_send_the_same_notes_at_the_same_times(model, seed):
    rng = np.random.default_rng(seed)
    mode = ("call", "duet", "solo")[seed % 3]
    tempo = float(rng.choice([90.0, 120.0, 200.0]))
    events = script(rng, mode, tempo)
    end = events[-1].t + 8 * 60.0 / tempo
    got_live = live(model, mode, tempo, seed, events, end)
    got_offline = offline(model, mode, tempo, seed, events, end)
    if mode != "call":  # (a call may go unanswered)
        assert any(isinstance(parse(m, 0.0), NoteOn) for _, m in got_live)
    assert key(got_live) == key(got_offline)


def test_input_at_a_notes_start_is_heard_before_the_note_goes_out(model):
    """A panic CC polled exactly when a note is due: the note is cancelled, not sent and
    released at once (the engine's cut and the schedule count a note starting at the cut
    as not started)."""
    # articulation = legato: the note before still sounds when the next is due (the panic
    # has something to release there)
    cfg = load_config(overrides={"model.path": str(model), "engine.mode": "solo", "engine.articulation": "legato"},
                      system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    wire = Wire()
    daemon.start(now=0.0, ports=wire)
    now = [0.0]
    daemon.monotonic = lambda: now[0]
    starts: list[float] = []  # when the engine's planned notes start
    apply = daemon.driver.apply
    daemon.driver.apply = lambda plan: (starts.extend(e.t for e in plan.events if e.kind == "on"),
                                        apply(plan))[1]
    while True:
        now[0] = min(daemon.schedule.next_time() or math.inf, daemon.clock.next_tick_time())
        if now[0] > START + 2.0 and now[0] in starts:
            break
        daemon.step(now[0])
    sent = len(wire.out)
    wire.inbox.append(bytes([0xB0, cfg.control.panic_cc, 127]))
    daemon.step(now[0])
    after = wire.out[sent:]
    assert after, "the panic released what was sounding"
    assert not any(isinstance(parse(m, 0.0), NoteOn) for m in after), [m.hex() for m in after]
    assert sounding_at_end(wire.out) == set() and daemon.sounding == set()
