"""Issue 19: how often the loop polls its input (the daemon in memory; what it costs in
CPU on a real JACK server is bench/cpu.py's)."""

from __future__ import annotations

import pytest

from jazzd.live import daemon as loop
from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.notify import Notifier

from .test_fuzz import Wire
from .tinymodel import make_bundle


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("idle") / "tiny.npz")


def started(model, **overrides) -> Daemon:
    cfg = load_config(overrides={"model.path": str(model), **overrides}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    daemon.monotonic = lambda: 0.0
    return daemon


def test_it_polls_rarely_when_nothing_comes_in_and_often_while_the_player_plays(model):
    d = started(model)
    assert d._poll_interval(1.0) == loop.POLL_IDLE_S
    d.ports.inbox.append(bytes([0x90, 60, 100]))
    d.step(10.0)
    assert d._poll_interval(10.5) == loop.POLL_ACTIVE_S
    assert d._poll_interval(10.0 + loop.ACTIVE_S + 0.1) == loop.POLL_IDLE_S
    assert loop.POLL_S < loop.POLL_ACTIVE_S < loop.POLL_IDLE_S <= 0.02


def test_thru_and_a_running_midi_clock_are_polled_every_millisecond(model):
    assert started(model, **{"midi.thru": True})._poll_interval(1.0) == loop.POLL_S
    d = started(model, **{"clock.source": "midi"})
    assert d._poll_interval(1.0) == loop.POLL_ACTIVE_S  # waiting for a clock: never the idle rate
    d.ports.inbox += [b"\xfa", b"\xf8"]
    d.step(1.0)
    assert d.follower.running and d._poll_interval(1.01) == loop.POLL_S
    d.ports.inbox.append(b"\xfc")  # Stop: pulses may go on, but no beat waits on them
    d.step(1.02)
    assert d._poll_interval(1.03) == loop.POLL_ACTIVE_S


def test_the_spin_before_a_deadline_follows_how_late_sleeps_wake():
    o = loop.Oversleep()
    assert o.spin == loop.SPIN_S  # nothing measured yet: the longest
    for _ in range(64):
        o.add(0.00012)
    assert o.spin == pytest.approx(0.00022)  # quiet: the overrun and a margin
    for k in range(64):
        o.add(0.004 if k % 10 == 0 else 0.0001)  # busy: some sleeps wake milliseconds late
    assert o.spin == loop.SPIN_S
    for _ in range(64):
        o.add(0.0)
    assert o.spin == loop.Oversleep.MIN_S
