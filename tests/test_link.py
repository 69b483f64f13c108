"""Ableton Link as a clock source: the follower's arithmetic on made-up snapshots, the
binding's side with a fake binding, the missing extra, and (marked jack) jazzd on a real
JACK server in a Link session with a second peer in this process."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from jazzd.errors import ConfigError
from jazzd.live.abletonlink import LinkSession, load_link
from jazzd.live.clock import (
    LINK_JOIN_S,
    LinkFollower,
    LinkTimeline,
    TransportStart,
    TransportStop,
)
from jazzd.play.events import Out
from jazzd.play.schedule import Schedule


def view(t, beat, tempo=120.0, **kw):
    return LinkTimeline(t, beat, tempo, **kw)


def test_beats_sit_on_the_session_timeline_with_the_sessions_bar_lines():
    f = LinkFollower(start=0.0, beats_per_bar=4)
    # A session at beat 5.5 (mid bar 2) at t = 10, 120 bpm: beat 6 is at 10.25.
    assert f.update(view(10.0, 5.5, peers=1)) == []
    assert f.next_tick_time() == pytest.approx(10.25)
    ticks = f.poll(11.0)
    assert [round(k.t, 9) for k in ticks] == [10.25, 10.75]
    # Link beat 6 is beat 2 of its bar: jazzd counts from that bar's line, so its bar
    # lines (beat % 4 == 0) are the session's.
    assert [k.beat for k in ticks] == [2, 3]
    assert all(k.tempo == 120.0 for k in ticks)
    assert f.poll(11.0) == []  # each beat once


def test_latency_plays_each_beat_that_much_ahead():
    f = LinkFollower(start=0.0, latency=0.020)
    f.update(view(10.0, 5.5, peers=1))
    assert f.next_tick_time() == pytest.approx(10.25 - 0.020)
    late = LinkFollower(start=0.0, latency=-0.010)
    late.update(view(10.0, 5.5, peers=1))
    assert late.next_tick_time() == pytest.approx(10.26)


def test_a_tempo_change_moves_the_next_beat_and_what_was_planned_on_the_old_timeline():
    f = LinkFollower(start=0.0)
    old = view(0.0, 0.0, 120.0, peers=1)
    f.update(old)
    assert [k.beat for k in f.poll(0.5)] == [0, 1]       # beats 0 and 1 at 0.0 and 0.5
    # 0.1 s later the peer changes to 150 bpm from beat 1.2 on.
    f.update(view(0.6, 1.2, 150.0, peers=1))
    assert f.moved(old)
    assert f.next_tick_time() == pytest.approx(0.6 + 0.8 * 0.4)  # beat 2 at the new tempo
    assert f.retime(old, 0.75) == pytest.approx(0.6 + 0.3 * 0.4)  # beat 1.5 stays beat 1.5
    (tick,) = f.poll(1.0)
    assert (tick.beat, tick.tempo) == (2, 150.0)
    assert not f.moved(f.view)


def test_a_timeline_jump_never_repeats_a_beat_or_goes_back_in_time():
    f = LinkFollower(start=0.0)
    f.update(view(0.0, 0.0, peers=1))
    assert [k.beat for k in f.poll(0.5)] == [0, 1]
    f.update(view(0.6, 0.7, peers=1))   # the phase jumped back half a beat
    (tick,) = f.poll(1.3)
    assert tick.beat == 2 and tick.t == pytest.approx(1.25)   # beat 1.5 again: beat 2 is a beat on
    f.update(view(1.4, 4.4, peers=1))   # and forward, past beats 3 and 4
    (later,) = f.poll(1.8)
    assert later.beat == 5 and later.t == pytest.approx(1.7)


def test_alone_it_waits_for_a_session_before_playing_at_its_own_tempo():
    f = LinkFollower(start=0.0)
    f.update(view(0.1, 0.2))
    assert f.poll(0.5) == [] and f.next_tick_time() == math.inf
    f.update(view(LINK_JOIN_S + 0.01, 2.0))       # nobody came: it plays alone
    assert f.poll(LINK_JOIN_S + 1.0)
    g = LinkFollower(start=0.0)
    g.update(view(0.3, 0.6, peers=1))            # a peer: at once
    assert g.joined_after == pytest.approx(0.3)
    assert g.poll(0.6)


def test_start_stop_sync_follows_the_sessions_transport():
    f = LinkFollower(start=0.0, start_stop=True)
    assert f.update(view(0.0, 0.0, peers=1)) == []
    assert f.poll(3.0) == []                    # stopped: no beats
    # The peer starts at t = 3.1 at beat 7 (Live starts on a bar: phase 3 here).
    events = f.update(view(3.0, 6.8, playing=True, since=3.1, peers=1))
    assert events == [TransportStart(3.1)]
    ticks = f.poll(3.7)
    assert [round(k.t, 9) for k in ticks] == [3.1, 3.6] and [k.beat for k in ticks] == [3, 4]
    # A stop announced for 4.2: beats before it still come, none at or after it.
    assert f.update(view(3.9, 8.6, playing=False, since=4.2, peers=1)) == []
    assert [k.beat for k in f.poll(4.19)] == [5]
    events = f.update(view(4.2, 9.2, playing=False, since=4.2, peers=1))
    assert len(events) == 1 and isinstance(events[0], TransportStop)
    assert f.poll(10.0) == []
    # A session that has played for a while when jazzd hears it: from the next beat on.
    g = LinkFollower(start=0.0, start_stop=True)
    assert g.update(view(50.0, 100.25, playing=True, since=1.0, peers=1)) == [TransportStart(1.0)]
    assert g.poll(50.0) == [] and g.next_tick_time() == pytest.approx(50.375)


def test_schedule_retime_moves_only_what_is_still_to_come():
    s = Schedule()
    from jazzd.play.events import Plan

    s.add(Plan([Out(1.0, "on", 60, 90), Out(2.0, "off", 60, 0), Out(3.0, "on", 62, 90)]))
    s.retime(lambda t: t * 2, after=1.5)
    assert [(e.t, e.number) for e in s.due(10.0)] == [(1.0, 60), (4.0, 60), (6.0, 62)]


# --- the binding's side, with a fake binding -----------------------------------------

class FakeState:
    def __init__(self, link):
        self.link = link

    def beatAtTime(self, micros, quantum):
        return (micros - self.link.origin) / 1e6 * self.link.bpm / 60.0

    def tempo(self):
        return self.link.bpm

    def setTempo(self, bpm, micros):
        self.link.proposed = (bpm, micros)

    def isPlaying(self):
        return self.link.playing

    def timeForIsPlaying(self):
        return self.link.since


class FakeLink:
    """The binding's Link: its clock runs `skew` seconds ahead of the loop's."""

    def __init__(self, bpm, now, skew):
        self.bpm, self.now, self.skew = bpm, now, skew
        self.origin, self.peers, self.playing, self.since = 0, 0, False, 0
        self.enabled = self.startStopSyncEnabled = False
        self.proposed = None

    def clock(self):
        link = self

        class Clock:
            def micros(self):
                return round((link.now() + link.skew) * 1e6)
        return Clock()

    def numPeers(self):
        return self.peers

    def captureAppSessionState(self):
        return FakeState(self)

    def commitAppSessionState(self, state):
        self.bpm = self.proposed[0]


def fake_module(now, skew, made):
    class Module:
        @staticmethod
        def Link(bpm):
            made.append(FakeLink(bpm, now, skew))
            return made[-1]
    return Module


def test_link_time_is_converted_to_the_loops_clock():
    clock = [100.0]
    made = []
    session = LinkSession(140.0, 4, start_stop=True, module=fake_module(lambda: clock[0], 7.25, made),
                          monotonic=lambda: clock[0])
    link = made[0]
    assert link.enabled and link.startStopSyncEnabled and link.bpm == 140.0
    # Link's host time 107.25 s is the loop's 100.0; the session's beat 0 is at Link time 107.0.
    link.origin, link.playing, link.since = 107_000_000, True, 108_000_000
    snap = session.snapshot(100.0)
    assert snap.beat == pytest.approx(0.25 * 140 / 60) and snap.tempo == pytest.approx(140.0)
    assert snap.time_at(0.0) == pytest.approx(99.75)
    assert snap.playing and snap.since == pytest.approx(100.75)
    # Alone, jazzd proposes its tempo; with a peer it does not.
    assert session.propose_tempo(100.0, 100.0) and link.bpm == 100.0
    assert link.proposed == (100.0, 107_250_000)
    link.peers = 1
    assert not session.propose_tempo(90.0, 100.0) and link.bpm == 100.0
    session.close()
    assert not link.enabled


def test_the_clocks_offset_is_measured_again_as_they_drift():
    clock = [0.0]
    made = []
    session = LinkSession(120.0, 4, module=fake_module(lambda: clock[0], 1.0, made), monotonic=lambda: clock[0])
    made[0].skew = 1.0005   # CLOCK_MONOTONIC_RAW and CLOCK_MONOTONIC drift apart
    clock[0] = 0.5
    assert session.link_micros(0.5) == 1_500_000       # not measured again yet
    clock[0] = 2.0
    session.snapshot(2.0)
    assert session.link_micros(2.0) == 3_000_500


def test_without_the_extra_run_is_one_line_naming_the_install_command(tmp_path):
    # The binding made unimportable (as where the extra is not installed): jazzd still
    # imports, and `jazzd run --clock link` says what to install, on one line, exit 2.
    shim = ("import sys; sys.modules['link'] = None; import jazzd.cli, jazzd.live.daemon; "
            "from jazzd.cli import main; sys.exit(main(['run', '--clock', 'link']))")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", shim], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "pip install 'jazzd[link]'" in out.stderr and "clock.source" in out.stderr


def test_load_link_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "link", None)
    with pytest.raises(ConfigError, match=r"pip install 'jazzd\[link\]'"):
        load_link()


# --- end to end: jazzd on JACK, a second Link peer in this process ----------------------

def _offset(peer) -> float:
    """Link's clock (µs, CLOCK_MONOTONIC_RAW on Linux) minus this process's
    time.monotonic(), in seconds: the tightest of a few back-to-back reads."""
    from jazzd.live.abletonlink import clock_offset

    return clock_offset(peer.clock(), reads=20)[0]


def _errors_ms(onsets, state, offset, lo=-math.inf, hi=math.inf):
    """Each onset's distance (ms, signed: late > 0) from the nearest twelfth of a beat of
    the peer's timeline `state` (the tiny model's rhythms are all on twelfths)."""
    out = []
    spb = 60.0 / state.tempo()
    for t in onsets:
        if lo <= t < hi:
            beat = state.beatAtTime(round((t + offset) * 1e6), 4.0)
            out.append((beat * 12 - round(beat * 12)) / 12 * spb * 1000)
    return out


@pytest.mark.jack
def test_jazzd_joins_a_link_session_and_plays_on_its_timeline_tempo_and_transport(session):
    import re
    import time

    import numpy as np

    from .daemonsession import hanging

    link = pytest.importorskip("link", reason="needs the link extra: pip install 'jazzd[link]'")
    peer = link.Link(100.0)
    peer.startStopSyncEnabled = True
    peer.enabled = True
    # A session 0.5 s older than jazzd's is the one both keep (Link's rule); 0.6 s before
    # jazzd started, jazzd's 120 bpm won now and then (1 run in 3): the margin is 1.5 s.
    time.sleep(1.5)
    # (a fixed seed: the tiny model's rests are its choice, and the counts below need notes)
    s = session("--mode", "solo", "--clock", "link", "--set", "clock.link_start_stop=true",
                "--set", "engine.seed=5")
    offset = _offset(peer)
    try:
        # Joined: jazzd says after how long; the session keeps the peer's tempo, not
        # jazzd's 120; stopped, jazzd waits.
        # (Waited for up to 5 s, so that a slow join shows its time in the failure; one CI
        # run had no line after 1.5 s, not reproduced in 6 runs since.)
        for _ in range(10):
            s.play([], 0.5)
            joined = re.search(r"joined a session of (\d+) other peers? at ([\d.]+) bpm, ([\d.]+) s after start",
                               s.stderr())
            if joined:
                break
        assert joined, s.stderr()
        joined = (joined[0], joined[2], joined[3]) if joined[1] == "1" else pytest.fail(joined[0])
        assert float(joined[1]) == pytest.approx(100.0, abs=0.1) and float(joined[2]) < 1.5, joined[0]
        assert peer.numPeers() == 1 and peer.captureAppSessionState().tempo() == pytest.approx(100.0)
        assert not [on for _, on, _ in s.notes() if on]

        # The peer starts on a bar: jazzd plays from that beat, on the session's timeline.
        a = peer.captureAppSessionState()
        started = time.monotonic()
        a.setIsPlayingAndRequestBeatAtTime(True, round((started + offset) * 1e6), 0.0, 4.0)
        peer.commitAppSessionState(a)
        a = peer.captureAppSessionState()
        seen = len(s.received)
        s.play([], 3.0)
        ons_a = [s.started + t for t, m in s.received[seen:] if m[0] & 0xF0 == 0x90 and m[2]]
        assert ons_a and min(ons_a) >= started, s.story(set(range(128)))
        err_a = _errors_ms(ons_a, a, offset)
        assert len(err_a) >= 8, s.story(set(range(128)))

        # The peer changes the tempo: jazzd's notes move onto the new timeline within a beat.
        b = peer.captureAppSessionState()
        changed = time.monotonic()
        b.setTempo(140.0, round((changed + offset) * 1e6))
        peer.commitAppSessionState(b)
        b = peer.captureAppSessionState()
        seen = len(s.received)
        s.play([], 3.0)
        ons_b = [s.started + t for t, m in s.received[seen:] if m[0] & 0xF0 == 0x90 and m[2]]
        err_b = _errors_ms(ons_b, b, offset, lo=changed + 60.0 / 100.0)
        assert len(err_b) >= 8
        for name, err in (("100 bpm", err_a), ("after the change to 140", err_b)):
            e = np.abs(err)
            assert np.median(e) < 2.5 and np.percentile(e, 90) < 5.0, (name, np.round(err, 2))

        # The peer stops: jazzd stops, every note released.
        c = peer.captureAppSessionState()
        stopped = time.monotonic()
        c.setIsPlaying(False, round((stopped + offset) * 1e6))
        peer.commitAppSessionState(c)
        seen = len(s.received)
        s.play([], 1.5)
        after = [s.started + t for t, m in s.received[seen:] if m[0] & 0xF0 == 0x90 and m[2]]
        assert not [t for t in after if t > stopped + 0.03], np.round(np.array(after) - stopped, 3)
        assert hanging(s.notes()) == set()
        assert s.stop() == 0
        assert hanging(s.notes()) == set()
    finally:
        peer.enabled = False
