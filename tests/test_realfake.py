"""The real-or-generated test: the classifier separates sets that differ in a known
feature, cannot separate two halves of one distribution (within a bound from the number
of solos), and never scores a window of a solo it was trained on."""

import math

import numpy as np
import pytest

from jazzd.judge.metrics import Note, Solo
from jazzd.judge.realfake import (
    FEATURE_NAMES,
    auc,
    balanced_accuracy,
    chance_sd,
    check_grouped,
    cross_validate,
    feature_matrix,
    grouped_folds,
    measure,
    window_features,
    windows,
)
from jazzd.music.chords import parse_chord

C7 = parse_chord("C7")


def solo(rng, name, bars=16, step_sd=2.0, legato=1.0, ioi=0.5) -> Solo:
    """A line of notes `ioi` beats apart, random-walk pitches (steps of sd `step_sd`),
    each note sounding `legato` of the gap (with a little jitter)."""
    notes, pitch, t = [], 65.0, 0.0
    while t < bars * 4 - 1e-9:
        pitch = float(np.clip(pitch + rng.normal(0, step_sd), 50, 80))
        share = min(max(legato + rng.normal(0, 0.05), 0.1), 1.0)
        notes.append(Note(t, ioi * share, round(pitch), C7, int(t // 4), t % 4))
        t += ioi * rng.choice([1, 1, 1, 2])
    return Solo(name, tuple(notes), (4.0,) * bars)


def sets_of(rng, n, **kw):
    return [solo(rng, f"s{k}", **kw) for k in range(n)]


def test_windows_and_features():
    s = solo(np.random.default_rng(0), "a", bars=20)
    ws = windows(s)
    assert len(ws) == 2 and all(beats == 32.0 for _, beats in ws)  # the 4-bar tail is dropped
    f = window_features(*ws[0])
    assert f.shape == (len(FEATURE_NAMES),) and np.isfinite(f).all()
    named = dict(zip(FEATURE_NAMES, f, strict=True))
    assert sum(v for k, v in named.items() if k.startswith("interval ")) == pytest.approx(1.0)
    assert named["onset at 0/12 beat"] + named["onset at 6/12 beat"] == pytest.approx(1.0)
    x, groups = feature_matrix([s, solo(np.random.default_rng(1), "b", bars=8)])
    assert x.shape == (3, len(FEATURE_NAMES)) and groups.tolist() == [0, 0, 1]


def test_separates_sets_that_differ_in_one_known_feature():
    rng = np.random.default_rng(3)
    real, held = sets_of(rng, 20, legato=0.75), sets_of(rng, 20, legato=1.0)
    r = measure({"real": real, "legato": held})
    legato = r["sets"]["legato"]
    assert legato["balanced_accuracy"] > 0.9 and legato["auc"] > 0.95
    top = legato["top_features"][0]
    assert top["feature"] in ("held to next onset", "mean held share", "rest share", "length 0.37-0.43",
                              "length 0.43-0.55")  # what holding the notes longer changes
    assert legato["families"]["rhythm"]["balanced_accuracy"] > 0.9


def test_two_halves_of_one_distribution_are_not_separated():
    """Under the null the out-of-fold predictions are coin flips; counting each solo once,
    balanced accuracy has sd 0.25 * sqrt(1/20 + 1/20) = 0.079 for 20 solos a class, so
    0.5 +- 3 sd (0.26-0.74) holds by chance 99.7% of the time: a classifier that leaked
    a solo's windows across folds, or the real solos' half-vs-half split, would not."""
    rng = np.random.default_rng(5)
    both = sets_of(rng, 40)
    r = measure({"real": both[:20], "same": both[20:]})
    same = r["sets"]["same"]
    sd = chance_sd(20, 20)
    assert sd == pytest.approx(0.25 * math.sqrt(0.1)) and same["chance_sd"] == pytest.approx(sd)
    assert abs(same["balanced_accuracy"] - 0.5) < 3 * sd
    half = r["sets"]["real (half vs half)"]
    assert abs(half["balanced_accuracy"] - 0.5) < 3 * half["chance_sd"]


def test_folds_are_grouped_by_solo():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    groups = np.concatenate([np.repeat(np.arange(10), 6), np.repeat(np.arange(12), 5)])
    fold = grouped_folds(groups, y, 5, rng)
    for cls in (0, 1):
        for g in np.unique(groups[y == cls]):
            assert len(set(fold[(y == cls) & (groups == g)])) == 1  # a solo's windows in one fold
    assert all({0, 1} <= set(y[fold == f]) for f in range(5))  # both classes in every fold
    check_grouped(fold, y, groups)
    with pytest.raises(AssertionError, match="both the training and the test"):
        check_grouped(rng.permutation(len(y)) % 5, y, groups)  # windows dealt out one by one


def test_a_solo_memorised_across_folds_would_show():
    """Windows of a solo share a solo-specific feature: ungrouped folds would let the
    classifier learn it; grouped, it cannot (the point of the grouping)."""
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 6)
    y = (np.arange(40) % 2)[groups]
    x = rng.normal(size=(40, 5))[groups] + 0.05 * rng.normal(size=(240, 5))  # a fingerprint per solo
    grouped = cross_validate(x, y, groups, seed=0)
    assert abs(grouped["balanced_accuracy"] - 0.5) < 3 * grouped["chance_sd"]


def test_balanced_accuracy_and_auc():
    y = np.array([0, 0, 0, 1])
    assert balanced_accuracy(y, np.array([0.1, 0.2, 0.9, 0.8])) == pytest.approx((2 / 3 + 1) / 2)
    assert auc(y, np.array([0.1, 0.2, 0.3, 0.8])) == 1.0
    assert auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
