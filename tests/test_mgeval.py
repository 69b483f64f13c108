"""MGEval distances (KDE, overlapping area, KL) and the copy check, on known answers."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from jazzd.judge.copying import CopyIndex
from jazzd.judge.mgeval import (
    compare,
    inter_distances,
    intra_distances,
    kde,
    kl_divergence,
    overlap_area,
)


def test_identical_distributions_overlap_fully_and_diverge_nothing():
    x = np.random.default_rng(0).normal(size=300)
    assert overlap_area(x, x) == pytest.approx(1.0, abs=1e-9)
    assert kl_divergence(x, x) == pytest.approx(0.0, abs=1e-12)


def test_far_apart_distributions_do_not_overlap():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 200), rng.normal(100, 1, 200)
    assert overlap_area(x, y) < 1e-6
    assert kl_divergence(x, y) > 10


def test_two_unit_gaussians_one_apart():
    """OA = 2 Phi(-1/2) = 0.617 and KL = 1/2 nat for N(0,1) against N(1,1)."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)
    assert overlap_area(x, y) == pytest.approx(1 + math.erf(-0.5 / math.sqrt(2)), abs=0.03)
    assert kl_divergence(x, y) == pytest.approx(0.5, abs=0.06)


def test_kde_integrates_to_one_and_survives_equal_samples():
    grid = np.linspace(-10, 10, 2001)
    for samples in (np.array([0.0, 1.0, 3.0]), np.array([2.0, 2.0, 2.0])):
        density = kde(samples, grid)
        assert ((density[1:] + density[:-1]) * np.diff(grid)).sum() / 2 == pytest.approx(1.0)
    assert overlap_area([2.0, 2.0], [2.0, 2.0]) == pytest.approx(1.0)


def test_intra_and_inter_set_distances():
    a = np.array([[0.0], [1.0], [3.0]])
    assert sorted(intra_distances(a)) == [1.0, 2.0, 3.0]
    assert sorted(inter_distances(a, np.array([[1.0]]))) == [0.0, 1.0, 2.0]
    hist = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert intra_distances(hist) == pytest.approx([math.sqrt(2)])
    assert len(intra_distances(np.array([[0.0], [np.nan], [2.0]]))) == 1  # NaN pieces left out


def test_a_set_like_the_reference_overlaps_more_than_one_unlike_it():
    rng = np.random.default_rng(3)
    real = rng.normal(0, 1, (60, 3))
    alike, unlike = rng.normal(0, 1, (60, 3)), rng.normal(0.5, 0.3, (60, 3))
    near, far = compare(real, alike), compare(real, unlike)
    assert near["oa"] > 0.85 and near["oa"] > far["oa"]
    assert near["kl"] < far["kl"]
    assert math.isnan(compare(real[:1], alike)["oa"])  # one piece has no pairs


# --- copying ----------------------------------------------------------------------------

def test_longest_copy_finds_a_known_seven_value_slice():
    rng = np.random.default_rng(4)
    training = [rng.integers(0, 1000, 500).tolist() for _ in range(400)]  # 200k values
    start = time.perf_counter()
    index = CopyIndex(training)
    query = rng.integers(1000, 2000, 300).tolist()  # values never seen in training
    query[100:107] = training[123][40:47]
    assert index.longest(query) == (7, 100)
    assert time.perf_counter() - start < 5  # milliseconds per query once built; generous


def test_longest_copy_never_spans_two_training_solos():
    index = CopyIndex([["a", "b", "c"], ["d", "e", "f"]])
    assert index.longest(["b", "c", "d", "e"])[0] == 2
    assert index.longest(["x", "y"]) == (0, 0)
    assert index.longest([]) == (0, 0)
    assert index.longest(["d", "e", "f"]) == (3, 0)
    assert index.longest(["q", "e", "f", "q"]) == (2, 1)
