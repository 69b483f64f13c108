"""The feel meter (`jazzd.music.feel`): BUR, downbeat delay and off-beat asynchrony read
back from synthetic solos with known feel, and the beats it must not measure."""

import itertools
import math
import random

import pytest

from jazzd.music.feel import beat_feels, summarize, swing_position


def beat_times(n, tempo, drift=0.0, seed=0):
    """n beat times at `tempo` bpm, each beat length varied by up to `drift` (share)."""
    rnd = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += 60 / tempo * (1 + rnd.uniform(-drift, drift))
    return out


def swung(beats, bur, delay, jitter=0.0, seed=1):
    """Eighths on every beat: the downbeat `delay` s late, the off-beat where `bur`
    puts it between this downbeat and the next (both delayed)."""
    rnd = random.Random(seed)
    out = []
    for b0, b1 in itertools.pairwise(beats):
        t1 = b0 + delay
        t3 = b1 + delay
        out += [t1 + rnd.gauss(0, jitter), t1 + (t3 - t1) * swing_position(bur) + rnd.gauss(0, jitter)]
    out.append(beats[-1] + delay)
    return out


@pytest.mark.parametrize("bur,delay,tempo", [(1.0, 0.0, 200), (1.3, 0.030, 150), (1.6, 0.025, 120),
                                             (2.0, 0.010, 100), (1.15, -0.010, 260)])
def test_known_bur_and_delay_read_back(bur, delay, tempo):
    beats = beat_times(129, tempo, drift=0.02)
    f = summarize(swung(beats, bur, delay, jitter=0.004), beats)
    assert f.beats >= 100
    assert abs(f.bur - bur) <= 0.05
    assert abs(f.delay_ms - 1000 * delay) <= 2
    assert abs(f.tempo - tempo) / tempo < 0.02
    assert f.delay_frac == pytest.approx(delay * tempo / 60, abs=0.01)
    # the off-beat against the straight eighth: delay + swing, in beats
    assert f.offbeat_frac == pytest.approx(delay * tempo / 60 + swing_position(bur) - 0.5, abs=0.015)


def test_exact_beats_give_exact_values():
    beats = [0.0, 0.5, 1.0, 1.5]
    onsets = [0.02, 0.02 + 0.5 * 0.6, 0.52, 0.52 + 0.3, 1.02]
    got = beat_feels(onsets, beats)
    assert [g.beat for g in got] == [0, 1]
    assert got[0].bur == pytest.approx(0.3 / 0.2)
    assert got[0].delay == pytest.approx(0.02)
    assert got[0].offbeat == pytest.approx(0.32 - 0.25)


def test_no_qualifying_beat_is_none():
    beats = beat_times(17, 120)
    spb = 0.5
    triplets = [b + spb * k / 3 for b in beats for k in range(3)]
    sixteenths = [b + spb * k / 4 for b in beats for k in range(4)]
    quarters = list(beats)
    for onsets in (triplets, sixteenths, quarters, []):
        f = summarize(onsets, beats)
        assert f.beats == 0 and f.bur is None and f.delay_ms is None and f.offbeat_ms is None
    assert summarize([], []).tempo is None


def test_rests_and_odd_beats_are_skipped():
    beats = [float(k) for k in range(6)]
    onsets = [0.0, 0.6,          # beat 0: next downbeat missing (a rest on beat 1): skipped
              2.0, 2.3,          # beat 2: off-beat too early (a sixteenth): skipped
              3.2, 3.6,          # beat 3: downbeat too late (1/8 beat window): skipped
              4.0, 4.6, 5.0]     # beat 4: measured
    got = beat_feels(onsets, beats)
    assert [g.beat for g in got] == [4]
    assert got[0].bur == pytest.approx(1.5)


def test_straight_eighths_are_measured_not_biased():
    """Straight eighths (and a hair early) count: the median stays at 1, not above."""
    beats = beat_times(65, 180)
    f = summarize(swung(beats, 1.0, 0.0, jitter=0.003), beats)
    assert f.beats >= 60 and abs(f.bur - 1.0) <= 0.03


def test_swing_position():
    assert swing_position(1.0) == 0.5
    assert swing_position(2.0) == pytest.approx(2 / 3)
    assert math.isclose(swing_position(1.3) / (1 - swing_position(1.3)), 1.3)
