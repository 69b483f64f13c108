"""The clocks: jazzd's own beats and pulses at absolute deadlines, and following a MIDI
clock.  No real time: every test hands the clock the times it would have read."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jazzd.live.clock import (
    PPQN,
    InternalClock,
    MidiClockFollower,
    TempoFilter,
    TransportContinue,
    TransportStart,
    TransportStop,
    decode_song_position,
    encode_song_position,
)
from jazzd.play.events import Tick

F8, FA, FB, FC, FE = b"\xf8", b"\xfa", b"\xfb", b"\xfc", b"\xfe"

# ---------------------------------------------------------------------------------------
# InternalClock: beats


def test_internal_beats_golden_log():
    clock = InternalClock(120, start=10.0)
    assert clock.running and clock.tempo == 120
    assert clock.next_tick_time() == 10.0
    assert clock.poll(9.999) == []
    assert clock.poll(10.0) == [Tick(10.0, 0, 120.0)]
    assert clock.poll(10.2) == []
    assert clock.next_tick_time() == 10.5
    # a poll 1.3 s late gets every due beat, each at its own deadline
    assert clock.poll(11.8) == [Tick(10.5, 1, 120.0), Tick(11.0, 2, 120.0), Tick(11.5, 3, 120.0)]
    assert clock.next_tick_time() == 12.0
    assert clock.beat_position(11.75) == 3.5


@settings(max_examples=200, deadline=None)
@given(tempo=st.floats(20, 300), start=st.floats(-1e3, 1e5),
       lates=st.lists(st.floats(0, 3), min_size=1, max_size=40))
def test_internal_late_polls_return_every_due_beat_at_its_absolute_time(tempo, start, lates):
    clock = InternalClock(tempo, start)
    spb = 60.0 / tempo
    now = start - 0.1
    got: list[Tick] = []
    for late in lates:
        prev, now = now, now + late
        ticks = clock.poll(now)
        assert all(prev < tk.t <= now for tk in ticks)
        got += ticks
        assert clock.next_tick_time() > now
    assert [tk.beat for tk in got] == list(range(len(got)))
    assert [tk.t for tk in got] == [start + k * spb for k in range(len(got))]   # no drift
    assert all(tk.tempo == tempo for tk in got)
    assert start + len(got) * spb > now


def test_set_tempo_takes_effect_from_the_next_beat_and_keeps_the_count():
    clock = InternalClock(120, start=0.0)
    assert [tk.beat for tk in clock.poll(1.2)] == [0, 1, 2]
    clock.set_tempo(60, 1.2)          # beat 3 keeps its time (1.5); then 1 s a beat
    assert clock.tempo == 60
    assert clock.next_tick_time() == 1.5
    assert clock.poll(3.6) == [Tick(1.5, 3, 60.0), Tick(2.5, 4, 60.0), Tick(3.5, 5, 60.0)]
    # a change exactly at a beat's time: that beat (already due) keeps the old spacing
    clock.set_tempo(240, 4.5)
    assert clock.poll(6.0) == [Tick(4.5, 6, 60.0), Tick(5.5, 7, 240.0), Tick(5.75, 8, 240.0),
                               Tick(6.0, 9, 240.0)]


def test_set_tempo_twice_before_the_beat_the_last_wins_and_position_is_continuous():
    clock = InternalClock(100, start=0.0)
    clock.poll(0.1)
    clock.set_tempo(200, 0.2)
    clock.set_tempo(50, 0.3)
    ticks = clock.poll(3.0 + 1e-9)
    assert [(tk.beat, tk.tempo) for tk in ticks] == [(1, 50.0), (2, 50.0), (3, 50.0)]
    assert [tk.t for tk in ticks] == pytest.approx([0.6, 1.8, 3.0])
    # the position is continuous across the change
    assert clock.beat_position(0.6 - 1e-9) == pytest.approx(1.0)
    assert clock.beat_position(0.6 + 1e-9) == pytest.approx(1.0)
    assert clock.beat_position(1.2) == pytest.approx(1.5)


def test_set_tempo_before_the_start_applies_from_beat_zero():
    clock = InternalClock(120, start=5.0)
    clock.set_tempo(60, 1.0)
    assert clock.poll(7.0) == [Tick(5.0, 0, 60.0), Tick(6.0, 1, 60.0), Tick(7.0, 2, 60.0)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 2.0), st.floats(30, 300) | st.none()),
                min_size=1, max_size=30))
def test_tempo_changes_keep_beats_consecutive_and_spaced_by_their_tempo(steps):
    clock = InternalClock(120, start=0.0)
    now, got = 0.0, clock.poll(0.0)
    for dt, tempo in steps:
        now += dt
        if tempo is None:
            got += clock.poll(now)
        else:
            got += clock.poll(now)
            before = clock.beat_position(now)
            clock.set_tempo(tempo, now)
            assert clock.beat_position(now) == pytest.approx(before, abs=1e-9)
    got += clock.poll(now + 5.0)
    assert [tk.beat for tk in got] == list(range(len(got)))
    for a, b in itertools.pairwise(got):
        assert b.t - a.t == pytest.approx(60.0 / a.tempo, rel=1e-9)


def test_stop_and_restart():
    clock = InternalClock(120, start=0.0)
    assert len(clock.poll(1.2)) == 3
    clock.stop(1.2)
    assert not clock.running
    assert clock.next_tick_time() == math.inf
    assert clock.poll(5.0) == []
    assert clock.beat_position(5.0) == pytest.approx(2.4)
    clock.start(6.0)
    assert clock.running
    assert clock.poll(7.0) == [Tick(6.0, 0, 120.0), Tick(6.5, 1, 120.0), Tick(7.0, 2, 120.0)]


def test_bad_times_and_tempos_are_refused():
    with pytest.raises(ValueError, match="tempo"):
        InternalClock(0, 0.0)
    clock = InternalClock(120, 0.0)
    with pytest.raises(ValueError, match="time"):
        clock.poll(math.nan)
    with pytest.raises(ValueError, match="time"):
        clock.poll(math.inf)
    with pytest.raises(ValueError, match="tempo"):
        clock.set_tempo(-3, 1.0)
    with pytest.raises(ValueError, match="beats_per_bar"):
        InternalClock(120, 0.0, beats_per_bar=0)


def test_bar_of():
    clock = InternalClock(120, 0.0, beats_per_bar=3)
    assert clock.bar_of(0) == (0, 0)
    assert clock.bar_of(7.5) == (2, 1.5)
    assert clock.bar_of(-1) == (-1, 2)


# ---------------------------------------------------------------------------------------
# InternalClock: clock out


@settings(max_examples=100, deadline=None)
@given(tempo=st.floats(20, 300), lates=st.lists(st.floats(0, 0.2), min_size=1, max_size=60))
def test_pulses_come_24_a_beat_at_absolute_deadlines(tempo, lates):
    clock = InternalClock(tempo, 3.0)
    now, total = 3.0, 0
    for late in lates:
        now += late
        total += clock.poll_pulses(now)
        assert clock.next_pulse_time() > now
    ppb = 60.0 / tempo / PPQN
    assert total == math.floor((now - 3.0) / ppb + 1e-9) + 1
    # beats and pulses share the grid: pulse 24k is exactly beat k
    ticks = clock.poll(now)
    assert all(tk.t == 3.0 + tk.beat * (60.0 / tempo) for tk in ticks)
    assert len(ticks) == (total - 1) // PPQN + 1


def test_pulses_per_beat_and_their_times():
    clock = InternalClock(125, 0.0)           # 20 ms a pulse
    times = []
    while clock.next_pulse_time() <= 0.96 + 1e-12:
        t = clock.next_pulse_time()
        assert clock.poll_pulses(t) == 1
        times.append(t)
    assert len(times) == 2 * PPQN + 1
    assert times[::PPQN] == [0.0, 0.48, 0.96]
    assert all(b - a == pytest.approx(0.02) for a, b in itertools.pairwise(times))


def test_clock_messages_golden_log_start_and_stop():
    clock = InternalClock(150, 0.0)           # 1/60 s a pulse, 0.4 s a beat
    assert clock.clock_messages(0.0) == [F8]
    assert clock.clock_messages(0.051) == [F8, F8, F8]     # pulses at 1/60, 2/60, 3/60
    clock.stop(0.051)
    # the pulse grid goes on while stopped (hardware wants a continuous clock)
    assert clock.clock_messages(0.07) == [FC, F8]
    t0 = clock.next_pulse_time()
    clock.start(t0)
    assert clock.clock_messages(t0 - 1e-6) == []
    assert clock.clock_messages(t0) == [FA, F8]
    assert clock.poll(t0) == [Tick(t0, 0, 150.0)]


def test_start_goes_out_just_before_the_beat_zero_pulse_even_if_polled_late():
    clock = InternalClock(150, 0.0)
    clock.clock_messages(0.0)
    clock.stop(0.0)
    clock.start(0.05)                         # (pulse 3 of the old grid is 1 ulp later)
    assert clock.clock_messages(0.06) == [FC, F8, F8, FA, F8]


def test_no_pulses_while_stopped_if_asked():
    clock = InternalClock(150, 0.0, pulses_while_stopped=False)
    assert clock.poll_pulses(0.051) == 4
    clock.stop(0.051)
    assert clock.poll_pulses(1.0) == 0
    assert clock.next_pulse_time() == math.inf
    clock.start(2.0)
    assert clock.next_pulse_time() == 2.0
    assert clock.clock_messages(2.0) == [FA, F8]


def test_stop_and_start_at_the_same_instant():
    clock = InternalClock(150, 0.0)
    clock.clock_messages(0.051)
    t = clock.next_pulse_time()
    clock.stop(t)
    clock.start(t)
    assert clock.clock_messages(t) == [FC, FA, F8]
    assert clock.poll(t) == [Tick(t, 0, 150.0)]       # (beat 0 at 0.0 was never polled)


def test_an_earlier_start_supersedes_one_still_to_come():
    clock = InternalClock(120, 0.0)
    clock.poll(0.0)
    clock.clock_messages(0.0)
    clock.start(0.5)
    clock.start(0.25)
    msgs = clock.clock_messages(0.6)
    assert msgs.count(FA) == 1 and msgs.index(FA) == 11      # 11 pulses, FA, pulse at 0.25
    assert clock.poll(0.6) == [Tick(0.25, 0, 120.0)]


def test_stop_cancels_a_start_still_to_come():
    clock = InternalClock(150, 0.0)
    clock.clock_messages(0.0)
    clock.start(1.0)
    clock.stop(0.5)
    msgs = clock.clock_messages(2.0)
    assert FA not in msgs and msgs.count(FC) == 1
    assert clock.poll(2.0) == [Tick(0.0, 0, 150.0), Tick(0.4, 1, 150.0)]


ops = st.one_of(
    st.tuples(st.just("wait"), st.floats(0, 1.5)),
    st.tuples(st.just("tempo"), st.floats(0, 1.0), st.floats(30, 300)),
    st.tuples(st.just("stop"), st.floats(0, 1.0)),
    st.tuples(st.just("start"), st.floats(0, 1.0), st.floats(1e-6, 1.0)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=25), st.booleans())
def test_any_transport_and_tempo_story_keeps_beats_and_pulses_consistent(story, continuous):
    """Driven event to event, as the daemon's loop would: ticks count up by one within a
    run and from 0 after each Start; every tick has its pulse; 24 pulses a beat; every
    beat-0 pulse is just after its Start byte."""
    clock = InternalClock(120, 0.0, pulses_while_stopped=continuous)
    now = 0.0
    log: list[tuple[float, str]] = []      # (time, "tick k" | "F8" | "FA" | "FC")

    def run_to(target: float) -> float:
        t = now
        while True:
            nxt = min(clock.next_tick_time(), clock.next_pulse_time())
            if nxt > target:
                break
            t = nxt
            for msg in clock.clock_messages(t):
                log.append((t, {F8: "F8", FA: "FA", FC: "FC"}[msg]))
            log.extend((tk.t, f"tick {tk.beat}") for tk in clock.poll(t))
        for msg in clock.clock_messages(target):
            log.append((target, {F8: "F8", FA: "FA", FC: "FC"}[msg]))
        log.extend((tk.t, f"tick {tk.beat}") for tk in clock.poll(target))
        return target

    for op in [*story, ("wait", 3.0)]:
        now = run_to(now + op[1])
        if op[0] == "tempo":
            clock.set_tempo(op[2], now)
        elif op[0] == "stop":
            clock.stop(now)
        elif op[0] == "start":
            clock.start(now + op[2])

    assert [t for t, _ in log] == sorted(t for t, _ in log)
    pulses = [t for t, kind in log if kind == "F8"]
    assert pulses == sorted(set(pulses))                  # never two at once
    ticks = [(t, int(kind.split()[1])) for t, kind in log if kind.startswith("tick")]
    assert ticks and ticks[0] == (0.0, 0)
    for (t0, b0), (t1, b1) in itertools.pairwise(ticks):
        assert b1 in (b0 + 1, 0)
        assert t1 >= t0
        if b1 == b0 + 1:
            assert sum(t0 <= p < t1 for p in pulses) == PPQN
    assert all(t in pulses for t, _ in ticks)             # beats fall on pulses
    for i, (t, kind) in enumerate(log):
        if kind == "FA":
            assert ("F8" in [k for tt, k in log[i + 1:i + 4] if tt == t])


def test_song_position_codec():
    assert encode_song_position(0) == b"\xf2\x00\x00"
    assert encode_song_position(200) == b"\xf2\x48\x01"
    assert decode_song_position(b"\xf2\x48\x01") == 200
    assert decode_song_position(b"\xf2\x80\x01") is None
    assert decode_song_position(b"\xf2\x01") is None
    assert all(decode_song_position(encode_song_position(n)) == n for n in (0, 1, 127, 128, 16383))
    with pytest.raises(ValueError, match=r"0\.\.16383"):
        encode_song_position(16384)


# ---------------------------------------------------------------------------------------
# MidiClockFollower


def clock_times(bpm: float, pulses: int, seed: int, t0: float = 100.0, jitter: float = 1e-3):
    """Arrival times of a 24-ppqn clock with ±jitter s (uniform) on every pulse."""
    rng = random.Random(seed)
    ppb = 60.0 / bpm / PPQN
    return [t0 + i * ppb + rng.uniform(-jitter, jitter) for i in range(pulses)]


def play(follower: MidiClockFollower, times, msg=F8) -> list:
    out = []
    for t in times:
        out += follower.feed(t, msg)
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bpm", [100, 120, 173])
def test_follower_ticks_every_24_pulses_with_a_smoothed_tempo(bpm, seed):
    times = clock_times(bpm, 12 * PPQN, seed)
    f = MidiClockFollower()
    assert f.feed(times[0] - 0.001, FA) == [TransportStart(times[0] - 0.001, 0.0)]
    ticks = play(f, times)
    assert [tk.beat for tk in ticks] == list(range(12))
    assert [tk.t for tk in ticks] == times[::PPQN]          # the beat pulse's arrival
    # The least-squares bound: after 25 pulses sigma is 0.19 bpm at 173 bpm (about 1% of
    # seeds exceed 0.5), after 48 pulses sigma is 0.07 bpm.
    assert abs(ticks[1].tempo - bpm) <= 1.0
    assert all(abs(tk.tempo - bpm) <= 0.5 for tk in ticks[2:]), [tk.tempo for tk in ticks]
    assert abs(f.tempo - bpm) <= 0.5
    assert f.filter.resets == 0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("before", "after", "offset"),
                         [(120, 140, 0), (140, 120, 0), (120, 140, 7), (120, 128, 0),
                          (100, 173, 13), (173, 100, 0)])
def test_follower_follows_a_tempo_step_within_two_beats(before, after, offset, seed):
    rng = random.Random(seed)
    step = 6 * PPQN + offset                 # the first pulse interval at the new tempo
    ideal, t = [], 50.0
    for i in range(14 * PPQN):
        ideal.append(t)
        t += 60.0 / (before if i < step else after) / PPQN
    times = [x + rng.uniform(-1e-3, 1e-3) for x in ideal]
    f = MidiClockFollower(tempo=before)
    f.feed(49.0, FA)
    ticks = play(f, times)
    assert [tk.beat for tk in ticks] == list(range(14))
    assert all(abs(tk.tempo - before) <= 0.5 for tk in ticks[2:6])
    first_after = -(-step // PPQN)           # the first beat pulse at or after the step
    settled = [tk for tk in ticks if tk.beat >= first_after + 2]
    assert settled
    assert all(abs(tk.tempo - after) <= 0.5 for tk in settled), [tk.tempo for tk in ticks]


def test_tempo_filter_ignores_one_late_pulse():
    times = clock_times(120, 10 * PPQN, seed=1)
    times[5 * PPQN + 3] += 0.008             # one pulse 8 ms late (a scheduling hiccup)
    flt = TempoFilter()
    tempos = [flt.observe(t) for t in times]
    assert flt.resets == 0
    assert all(abs(x - 120) <= 0.5 for x in tempos[2 * PPQN:])


def test_tempo_filter_restarts_after_a_stalled_clock():
    flt = TempoFilter()
    for t in clock_times(120, 48, seed=2, t0=0.0):
        flt.observe(t)
    for t in clock_times(90, 48, seed=3, t0=10.0):      # 9 s of silence, then 90 bpm
        flt.observe(t)
    assert flt.tempo == pytest.approx(90, abs=0.5)


def test_start_resets_to_beat_zero():
    f = MidiClockFollower()
    f.feed(0.0, FA)
    times = clock_times(120, 3 * PPQN + 5, seed=4, t0=0.01)
    assert [tk.beat for tk in play(f, times)] == [0, 1, 2, 3]
    assert f.feed(2.0, FA) == [TransportStart(2.0, 0.0)]
    assert f.beat_position(2.0) == 0.0
    ticks = play(f, clock_times(120, 30, seed=5, t0=2.01))
    assert [tk.beat for tk in ticks] == [0, 1]


def test_stop_emits_stop_and_then_no_ticks_but_tempo_follows():
    f = MidiClockFollower()
    f.feed(0.0, FA)
    times = clock_times(120, 2 * PPQN + 6, seed=6, t0=0.01, jitter=0)
    play(f, times)
    stop_t = times[-1] + 0.005
    assert f.feed(stop_t, FC) == [TransportStop(stop_t, (2 * PPQN + 6) / PPQN)]
    assert not f.running
    assert f.feed(stop_t + 0.001, FC) == []                # a repeated Stop: nothing
    later = clock_times(150, 4 * PPQN, seed=7, t0=stop_t + 0.01)
    assert play(f, later) == []                             # clock while stopped: no ticks
    assert f.tempo == pytest.approx(150, abs=0.5)
    assert f.beat_position(later[-1] + 1.0) == 2.25         # frozen where it stopped


def test_clock_while_stopped_emits_nothing_but_gives_the_tempo():
    f = MidiClockFollower()
    assert play(f, clock_times(97, 3 * PPQN, seed=8)) == []
    assert not f.running
    assert f.tempo == pytest.approx(97, abs=0.5)


def test_song_position_and_continue_resume_at_the_right_beat():
    f = MidiClockFollower()
    f.feed(0.0, FA)
    play(f, clock_times(120, 40, seed=9, t0=0.01))
    f.feed(1.0, FC)
    # 18 sixteenths = beat 4.5: the first pulse is mid-beat; beat 5 comes 12 pulses on
    assert f.feed(1.1, encode_song_position(18)) == []
    assert f.beat_position(1.1) == 4.5
    assert f.feed(1.2, FB) == [TransportContinue(1.2, 4.5)]
    times = clock_times(120, 40, seed=10, t0=1.3)
    ticks = play(f, times)
    assert [(tk.beat, tk.t) for tk in ticks] == [(5, times[12]), (6, times[36])]
    # SPP on a whole beat: that beat ticks at the first pulse
    f.feed(3.0, FC)
    f.feed(3.1, (0xF2, 16, 0))                          # 16 sixteenths = beat 4
    f.feed(3.2, FB)
    times = clock_times(120, 25, seed=11, t0=3.3)
    assert [(tk.beat, tk.t) for tk in play(f, times)] == [(4, times[0]), (5, times[24])]


def test_continue_without_song_position_resumes_where_it_stopped():
    f = MidiClockFollower()
    f.feed(0.0, FA)
    play(f, clock_times(120, 30, seed=12, t0=0.01))     # position 30 pulses = 1.25 beats
    assert f.feed(1.0, FC) == [TransportStop(1.0, 1.25)]
    assert f.feed(2.0, FB) == [TransportContinue(2.0, 1.25)]
    assert f.feed(2.5, FB) == []                        # Continue while running: nothing
    times = clock_times(120, 20, seed=13, t0=2.1)
    assert [(tk.beat, tk.t) for tk in play(f, times)] == [(2, times[18])]


def test_beat_position_extrapolates_but_stops_at_a_stalled_clock():
    f = MidiClockFollower(tempo=125)                    # 20 ms a pulse
    f.feed(0.0, FA)
    assert f.beat_position(0.5) == 0.0                  # no pulse yet: at the start position
    times = [0.1 + 0.02 * i for i in range(49)]
    play(f, times)
    last = times[-1]                                    # pulse 48 = beat 2
    assert f.beat_position(last) == pytest.approx(2.0)
    assert f.beat_position(last + 0.01) == pytest.approx(2.0 + 0.5 / PPQN, abs=1e-6)
    assert f.beat_position(last + 0.5) == pytest.approx(2.0 + 1 / PPQN)   # stalled: stops
    assert f.beat_position(last - 1.0) == pytest.approx(2.0)


@pytest.mark.parametrize("data", [b"", b"\x90\x3c\x40", b"\xf2\x80\x00", b"\xf2\x01",
                                  b"\xf8\x00", (0xF9,), (300,), (-1,), [0xF8, "x"], "xyz",
                                  None, 3.5, b"\xff", b"\xf3\x01"])
def test_garbage_is_ignored_and_counted(data):
    f = MidiClockFollower()
    f.feed(0.0, FA)
    assert f.feed(0.1, data) == []
    assert f.ignored == 1
    assert f.running


def test_active_sensing_and_bad_times_are_ignored():
    f = MidiClockFollower()
    assert f.feed(0.0, FE) == []
    assert f.ignored == 0
    assert f.feed(math.nan, FA) == []
    assert f.feed(math.inf, F8) == []
    assert f.ignored == 2
    assert not f.running


def test_tuples_and_lists_are_messages_too():
    f = MidiClockFollower()
    assert f.feed(0.0, (0xFA,)) == [TransportStart(0.0)]
    assert f.feed(0.01, [0xF8]) == [Tick(0.01, 0, 120.0)]
    assert f.feed(0.02, bytearray(b"\xfc")) == [TransportStop(0.02, 1 / PPQN)]


message_bytes = st.sampled_from([0xF8, 0xF8, 0xF8, 0xFA, 0xFB, 0xFC, 0xF2, 0xFE, 0xFF, 0x90,
                                 0x00, 0x7F, 0x80])
messages = (st.lists(message_bytes, max_size=4).map(bytes)
            | st.binary(max_size=4)
            | st.lists(st.integers(-5, 300), max_size=4).map(tuple))
stamps = st.floats(-1.0, 1.0) | st.just(0.0) | st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(stamps, messages), max_size=200))
def test_any_interleaving_of_bytes_never_raises(stream):
    f = MidiClockFollower()
    t = 0.0
    for dt, data in stream:
        t = t + dt if math.isfinite(dt) else dt
        was_running = f.running
        for ev in f.feed(t, data):
            assert isinstance(ev, Tick | TransportStart | TransportStop | TransportContinue)
            if isinstance(ev, Tick):
                assert was_running and ev.beat >= 0 and 10 <= ev.tempo <= 1000
        assert math.isfinite(f.tempo)
        assert math.isfinite(f.beat_position(0.0))
        if not math.isfinite(t):
            t = 0.0


def test_following_our_own_clock_out_gives_our_beats():
    """Loopback: jazzd as master, another jazzd following it, with no jitter."""
    master = InternalClock(137, start=0.0)
    follower = MidiClockFollower(tempo=100)
    master.stop(0.0)      # stopped at first: pulses run, then Start on the grid, at beat 2
    master.start(2 * 60 / 137)
    sent, followed, now = [], [], 0.0
    while now < 6.0:
        now = min(master.next_pulse_time(), master.next_tick_time())
        sent += master.poll(now)
        for msg in master.clock_messages(now):
            followed += follower.feed(now, msg)
    ticks = [ev for ev in followed if isinstance(ev, Tick)]
    assert followed[0] == TransportStart(2 * 60 / 137)
    assert [(tk.beat, tk.t) for tk in ticks] == [(tk.beat, tk.t) for tk in sent]
    assert all(tk.tempo == pytest.approx(137, abs=1e-6) for tk in ticks)
