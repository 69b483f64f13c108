"""The register that follows the player: the range it derives, and answers inside it."""

from __future__ import annotations

import numpy as np
import pytest

from jazzd.model.bundle import load_bundle
from jazzd.model.runtime import Runtime
from jazzd.play.engine import Engine, Settings
from jazzd.play.events import NoteOff, NoteOn
from jazzd.play.offline import ManualClock
from jazzd.play.register import MIN_HALF, WARM_UP, Register

from .tinymodel import make_bundle


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("tiny") / "tiny.npz"))


def test_the_range_follows_the_players_notes_within_the_hard_bounds():
    bounds = (55, 84)
    reg = Register()
    assert reg.range(bounds) == bounds  # nothing heard: the configured range
    line = [74, 77, 79, 76, 72, 74, 78, 81] * 6
    for k, p in enumerate(line):
        assert k >= WARM_UP or reg.range(bounds) == bounds
        reg.hear(p)
    lo, hi = reg.range(bounds)
    mean, sd = np.mean(line), np.std(line)
    assert lo == pytest.approx(mean - 2.5 * sd, abs=1.5) and hi == pytest.approx(mean + 2.5 * sd, abs=1.5)
    assert bounds[0] <= lo and hi <= bounds[1] and hi - lo >= 2 * MIN_HALF
    for _ in range(200):  # far above the bounds: the range moves to the top, whole
        reg.hear(100)
    lo, hi = reg.range(bounds)
    assert hi == 84 and 2 * MIN_HALF <= hi - lo < 84 - 55
    wide = Register()
    for p in [40, 100] * 20:
        wide.hear(p)
    assert wide.range(bounds) == bounds


def answer_pitches(bundle, follow: bool, call: list[int]) -> tuple[list[int], tuple[int, int]]:
    # (imitation 0: the range alone; the session memory would take up the call's pitches too)
    engine = Engine(Runtime(bundle), np.random.default_rng(2), Settings(follow_register=follow, imitation=0.0))
    clock = ManualClock(engine, tempo=120)
    for n in (48, 52, 55):
        clock.feed(NoteOn(0.0, n, 70))
    for i, p in enumerate(call):
        clock.feed(NoteOn(i * 0.25 + 0.01, p, 100))
        clock.feed(NoteOff(i * 0.25 + 0.2, p))
    end = len(call) * 0.25
    sent = clock.run_until(end + 12.0)
    return [e.number for e in sent if e.kind == "on" and e.t > end], engine.soloist.pitch_range


def test_answers_follow_a_high_player_and_stay_in_range(tiny):
    call = [79, 81, 83, 84, 86, 84, 83, 81] * 3  # 24 eighths, high above the range's middle
    followed, played_range = answer_pitches(tiny, True, call)
    fixed, fixed_range = answer_pitches(tiny, False, call)
    assert fixed_range == (55, 84) and played_range[1] == 84 and played_range[0] >= 84 - 2 * 10
    assert followed and all(played_range[0] <= p <= played_range[1] for p in followed)
    assert all(55 <= p <= 84 for p in fixed) and min(fixed) < played_range[0]
    assert np.mean(followed) > np.mean(fixed)


def test_a_short_call_already_sets_the_register():
    """A call is often all there is (a fresh session): from `WARM_UP` notes on, its
    register moves the range; a note fewer leaves the configured one."""
    reg = Register()
    for p in [81, 84, 83, 86, 84, 81][:WARM_UP - 1]:
        reg.hear(p)
    assert reg.range((55, 84)) == (55, 84)
    reg.hear(84)
    lo, hi = reg.range((55, 84))
    assert hi == 84 and lo > 55 + 6


def test_a_new_phrase_re_enters_toward_the_players_centre():
    reg = Register()
    for p in [60, 62, 64][:WARM_UP - 1]:
        reg.hear(p)
    assert reg.re_entry(76, 1.0) == 76  # too few notes: no centre yet
    for p in [60, 62, 64, 62, 60, 62]:
        reg.hear(p)
    centre = reg.mean
    assert reg.re_entry(76, 0.0) == 76
    assert reg.re_entry(76, 1.0) == round(centre)
    assert reg.re_entry(76, 0.5) == round(76 + 0.5 * (centre - 76))
    assert reg.re_entry(50, 0.5) == round(50 + 0.5 * (centre - 50))  # from below too


def first_answer_note(bundle, imitation: float, seed: int) -> int:
    engine = Engine(Runtime(bundle), np.random.default_rng(seed), Settings(imitation=imitation))
    clock = ManualClock(engine, tempo=120)
    for n in (48, 52, 55):
        clock.feed(NoteOn(0.0, n, 70))
    call = [62, 64, 62, 60, 62, 64, 62, 60, 72, 76, 79, 84]  # around D4, ending two octaves up
    for i, p in enumerate(call):
        clock.feed(NoteOn(i * 0.5 + 0.01, p, 100))
        clock.feed(NoteOff(i * 0.5 + 0.45, p))
    end = len(call) * 0.5
    return next(e.number for e in clock.run_until(end + 12.0) if e.kind == "on" and e.t > end)


def test_with_imitation_the_answer_starts_nearer_the_calls_centre_than_its_last_note(tiny):
    """Real next phrases re-enter toward the soloist's centre: the answer's first note is
    placed from the call's last note moved toward the call's mean pitch by `imitation`
    (at 0, from the last note as before)."""
    seeds = range(12)
    before = [first_answer_note(tiny, 0.0, s) for s in seeds]
    after = [first_answer_note(tiny, 1.0, s) for s in seeds]
    centre = np.mean([62, 64, 62, 60, 62, 64, 62, 60, 72, 76, 79, 84])
    assert np.mean(np.abs(np.array(after) - centre)) < np.mean(np.abs(np.array(before) - centre)) - 3
