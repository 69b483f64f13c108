"""How close one set of solos is to another: the MGEval protocol (Yang and Lerch 2020).

numpy only (no scipy); offline (`jazzd report`) and tests.

For one feature (a number or a vector per piece), the protocol compares distributions
of distances rather than the features themselves, so vectors (histograms) and numbers
are treated alike and no set needs the same size as another:
- intra-set distances: Euclidean distances between every pair of pieces of the
  reference (real) set;
- inter-set distances: between every piece of the reference set and every piece of
  the other set;
- both are smoothed with a Gaussian kernel density estimate (Scott's bandwidth), and
  compared by the overlapping area OA (1 = the same distribution, 0 = disjoint) and
  the Kullback-Leibler divergence KL(intra || inter) (0 = the same; larger = further).
A set that plays like the reference has inter-set distances like the reference's own
spread, so OA near 1 and KL near 0.  Pieces where a feature is undefined (NaN) are left
out of that feature.
"""

from __future__ import annotations

import numpy as np

GRID_POINTS = 1000
_TINY = 1e-12


def _area(y: np.ndarray, x: np.ndarray) -> float:
    """The trapezoid rule (np.trapezoid is numpy 2 only; jazzd supports numpy 1.24)."""
    return float(((y[1:] + y[:-1]) * np.diff(x)).sum() / 2)


def _rows(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    x = x.reshape(len(x), -1)
    return x[~np.isnan(x).any(axis=1)]


def intra_distances(a) -> np.ndarray:
    """Distances between every pair (i < j) of the rows of `a` (pieces x feature)."""
    a = _rows(a)
    i, j = np.triu_indices(len(a), k=1)
    return np.linalg.norm(a[i] - a[j], axis=1)


def inter_distances(a, b) -> np.ndarray:
    """Distances between every row of `a` and every row of `b`."""
    a, b = _rows(a), _rows(b)
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2).ravel()


def bandwidth(samples: np.ndarray) -> float:
    """Scott's rule, as scipy's gaussian_kde uses by default; a small positive width
    for samples that are all equal."""
    samples = np.asarray(samples, dtype=float)
    sd = float(samples.std(ddof=1)) if len(samples) > 1 else 0.0
    if sd <= 0:
        return 1e-3 * max(1.0, float(np.abs(samples).max(initial=0.0)))
    return sd * len(samples) ** (-1 / 5)


def kde(samples, grid: np.ndarray) -> np.ndarray:
    """A Gaussian kernel density estimate of `samples`, evaluated on `grid`, normalised
    to integrate to 1 over the grid."""
    samples = np.asarray(samples, dtype=float)
    h = bandwidth(samples)
    z = (grid[:, None] - samples[None, :]) / h
    density = np.exp(-0.5 * z * z).sum(axis=1)
    area = _area(density, grid)
    return density / area if area > 0 else density


def _densities(x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    pad = 4 * max(bandwidth(x), bandwidth(y))
    lo, hi = min(x.min(), y.min()) - pad, max(x.max(), y.max()) + pad
    grid = np.linspace(lo, hi, GRID_POINTS)
    return grid, kde(x, grid), kde(y, grid)


def overlap_area(x, y) -> float:
    """Area under both smoothed densities of the samples x and y (0 to 1)."""
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    grid, p, q = _densities(x, y)
    return float(min(_area(np.minimum(p, q), grid), 1.0))


def kl_divergence(x, y) -> float:
    """KL(p || q) in nats between the smoothed densities of the samples x and y."""
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    grid, p, q = _densities(x, y)
    ratio = np.log(np.maximum(p, _TINY) / np.maximum(q, _TINY))
    return float(max(_area(p * ratio, grid), 0.0))


def compare(reference, other) -> dict[str, float]:
    """OA and KL between the reference set's intra-set distances and the inter-set
    distances from it to `other` (both pieces x feature arrays)."""
    intra, inter = intra_distances(reference), inter_distances(reference, other)
    if len(intra) < 2 or len(inter) < 1:
        return {"oa": float("nan"), "kl": float("nan")}
    return {"oa": overlap_area(intra, inter), "kl": kl_divergence(intra, inter)}
