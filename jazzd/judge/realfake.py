"""Real or generated?  Can a plain classifier tell an 8-bar stretch of a set from an
8-bar stretch of a real solo?  numpy only (no scikit-learn); offline (`jazzd report`).

- Windows: every solo is cut into consecutive 8-bar windows (`WINDOW_BARS`; a shorter
  tail is dropped, and so is a window with fewer than `MIN_NOTES` notes).
- Features (`window_features`), none carrying an absolute key or tempo: histograms of
  the intervals (-12..+12 semitones), of the note lengths and of the inter-onset
  intervals in beats (`LENGTH_EDGES`), and of the onset positions in the beat (twelfths);
  contour (shares of steps up, down and repeated, direction changes, mean and spread of
  the steps), density (notes per beat), rest share (time with no note sounding), range
  (semitones, and the pitches' spread), articulation (share of notes held to the next
  onset, mean held share of the gap).
- Classifier: L2-regularised logistic regression (Newton's method on standardised
  features, the classes weighted to count equally), cross-validated in `FOLDS` folds
  GROUPED BY SOLO: all windows of a solo are in the same fold, so the classifier never
  scores a window of a solo it was trained on (`grouped_folds` asserts it).
- Numbers: balanced accuracy (threshold 0.5) and AUC of the out-of-fold scores, per set
  against the real solos, and for one half of the real solos against the other (the
  floor: about 0.5, within the chance band `chance_sd`); also per feature family
  (pitch, rhythm), and the features that separate each set from the real solos most, by
  effect size (Cohen's d over windows).

Under the null (two halves of one distribution) the out-of-fold predictions are coin
flips, correlated within a solo; counting each solo once (the worst case), each class's
accuracy has a standard deviation of 0.5 / sqrt(solos), so balanced accuracy has
`chance_sd` = 0.25 * sqrt(1/n1 + 1/n2).  Grouped cross-validation on null data also
tends to score a little below 0.5 (a fold's held-out solos are, by construction, the
ones missing from its training set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from jazzd.judge.metrics import Solo

WINDOW_BARS = 8
MIN_NOTES = 4
FOLDS = 5
L2 = 10.0  # the ridge penalty on standardised features (sample weights average 1)
MAX_INTERVAL = 12
# Note-length and inter-onset bins in beats: 16ths, triplet 8ths, played-short and legato
# 8ths, quarter-ish, long; edges between them.
LENGTH_EDGES = (0.0, 0.2, 0.29, 0.37, 0.43, 0.55, 0.7, 0.85, 1.15, 1.6, 2.5, math.inf)
HELD = 0.95  # a note sounding this share of the gap to the next onset or more is held to it
TOP = 6      # features listed per set
_EPS = 1e-9


def _bin_names(prefix: str) -> list[str]:
    return [f"{prefix} {a:g}-{b:g}" if b != math.inf else f"{prefix} >= {a:g}"
            for a, b in pairwise(LENGTH_EDGES)]


FEATURE_NAMES: tuple[str, ...] = tuple(
    [f"interval {k:+d}" for k in range(-MAX_INTERVAL, MAX_INTERVAL + 1)]
    + _bin_names("length") + _bin_names("inter-onset")
    + [f"onset at {k}/12 beat" for k in range(12)]
    + ["steps up", "steps down", "repeated notes", "direction changes", "mean |interval|", "step sd",
       "notes per beat", "rest share", "range", "pitch sd", "held to next onset", "mean held share"])
PITCH = tuple(i for i, n in enumerate(FEATURE_NAMES)
              if n.startswith("interval") or n in ("steps up", "steps down", "repeated notes", "direction changes",
                                                   "mean |interval|", "step sd", "range", "pitch sd"))
RHYTHM = tuple(i for i, n in enumerate(FEATURE_NAMES)
               if n.startswith(("length", "inter-onset", "onset at"))
               or n in ("notes per beat", "rest share", "held to next onset", "mean held share"))
FAMILIES = {"pitch": PITCH, "rhythm": RHYTHM}


# --- windows and their features ---------------------------------------------------------

def windows(solo: Solo, bars: int = WINDOW_BARS) -> list[tuple[list, float]]:
    """(notes, length in beats) of every full `bars`-bar window of the solo that holds at
    least `MIN_NOTES` notes."""
    out = []
    for start in range(0, len(solo.bar_lengths) - bars + 1, bars):
        notes = [n for n in solo.notes if start <= n.bar < start + bars]
        if len(notes) >= MIN_NOTES:
            out.append((notes, float(sum(solo.bar_lengths[start:start + bars]))))
    return out


def _hist(values, edges) -> np.ndarray:
    counts = np.histogram(np.asarray(values, dtype=float), bins=np.asarray((*edges[:-1], 1e9)))[0]
    return counts / max(counts.sum(), 1)


def window_features(notes: Sequence, beats: float) -> np.ndarray:
    """The features of one window (`FEATURE_NAMES`, in order)."""
    onsets = np.array([n.onset for n in notes])
    durs = np.array([n.dur for n in notes])
    pitches = np.array([n.midi for n in notes], dtype=float)
    steps = np.diff(pitches)
    iois = np.diff(onsets)
    folded = np.clip(steps, -MAX_INTERVAL, MAX_INTERVAL).astype(int) + MAX_INTERVAL
    intervals = np.bincount(folded, minlength=2 * MAX_INTERVAL + 1) / max(len(steps), 1)
    in_beat = np.array([n.pos - math.floor(n.pos + _EPS) for n in notes])
    twelfths = np.round(np.clip(in_beat, 0, 1) * 12).astype(int) % 12
    positions = np.bincount(twelfths, minlength=12) / len(notes)
    moving = steps[steps != 0]
    changes = np.sum(np.sign(moving[1:]) != np.sign(moving[:-1])) / max(len(moving) - 1, 1)
    gaps = iois > _EPS
    held = np.minimum(durs[:-1][gaps] / iois[gaps], 1.0) if gaps.any() else np.ones(1)
    sounding = np.minimum(durs[:-1], np.maximum(iois, 0)).sum() + durs[-1]
    contour = [np.mean(steps > 0), np.mean(steps < 0), np.mean(steps == 0), changes,
               np.mean(np.abs(steps)), np.std(steps)] if len(steps) else [0.0] * 6
    return np.concatenate([
        intervals, _hist(durs, LENGTH_EDGES), _hist(iois, LENGTH_EDGES), positions, contour,
        [len(notes) / beats, max(1 - sounding / beats, 0.0), np.ptp(pitches), np.std(pitches),
         np.mean(held >= HELD), np.mean(held)]]).astype(float)


def feature_matrix(solos: Sequence[Solo]) -> tuple[np.ndarray, np.ndarray]:
    """(windows x features, the index of the solo each window comes from)."""
    rows, groups = [], []
    for g, solo in enumerate(solos):
        for notes, beats in windows(solo):
            rows.append(window_features(notes, beats))
            groups.append(g)
    return np.array(rows).reshape(len(rows), len(FEATURE_NAMES)), np.array(groups, dtype=int)


# --- the classifier ---------------------------------------------------------------------

def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = L2, iters: int = 50) -> np.ndarray:
    """Weights (intercept first) of an L2-regularised logistic regression (intercept not
    penalised), by Newton's method."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    beta = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (w * (p - y)) + penalty * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


def grouped_folds(groups: np.ndarray, y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """The fold of every window: each solo's windows all in one fold, the solos of each
    class dealt round the folds in a shuffled order (so every fold holds both classes)."""
    fold_of = {}
    for cls in (0, 1):
        solos = np.unique(groups[y == cls])
        for k, g in enumerate(rng.permutation(solos)):
            fold_of[(cls, int(g))] = k % folds
    fold = np.array([fold_of[(int(c), int(g))] for c, g in zip(y, groups, strict=True)])
    check_grouped(fold, y, groups)
    return fold


def check_grouped(fold: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
    """Assert that no solo (a set and a solo index) has windows on both sides of any split."""
    for f in np.unique(fold):
        test = set(zip(y[fold == f], groups[fold == f], strict=True))
        train = set(zip(y[fold != f], groups[fold != f], strict=True))
        assert not test & train, "a solo's windows in both the training and the test fold"


def balanced_accuracy(y: np.ndarray, score: np.ndarray) -> float:
    pred = score >= 0.5
    return float(np.mean([np.mean(pred[y == 1]), np.mean(~pred[y == 0])]))


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pos, neg = score[y == 1], score[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0, folds: int = FOLDS,
                   l2: float = L2) -> dict:
    """Out-of-fold balanced accuracy and AUC of the classifier, folds grouped by solo
    (`groups` must name solos uniquely across both classes' sets, or be paired with y)."""
    n_groups = [len(np.unique(groups[y == c])) for c in (0, 1)]
    folds = max(2, min(folds, *n_groups))
    fold = grouped_folds(groups, y, folds, np.random.default_rng(seed))
    score = np.zeros(len(y))
    for f in range(folds):
        train, test = fold != f, fold == f
        mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
        sd[sd < 1e-9] = 1.0
        w = np.where(y[train] == 1, 0.5 / max(y[train].mean(), 1e-9), 0.5 / max(1 - y[train].mean(), 1e-9))
        beta = fit_logistic((x[train] - mu) / sd, y[train].astype(float), w, l2)
        z = beta[0] + ((x[test] - mu) / sd) @ beta[1:]
        score[test] = 1 / (1 + np.exp(-np.clip(z, -30, 30)))
    return {"balanced_accuracy": balanced_accuracy(y, score), "auc": auc(y, score),
            "windows": [int((y == 0).sum()), int((y == 1).sum())], "solos": n_groups, "folds": folds,
            "chance_sd": chance_sd(*n_groups)}


def chance_sd(solos_a: int, solos_b: int) -> float:
    """The standard deviation of balanced accuracy by chance, each solo counted once."""
    return 0.25 * math.sqrt(1 / max(solos_a, 1) + 1 / max(solos_b, 1))


def effect_sizes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cohen's d per feature, (mean b - mean a) / pooled sd (0 where both are constant)."""
    va, vb = a.var(axis=0, ddof=1), b.var(axis=0, ddof=1)
    pooled = np.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / max(len(a) + len(b) - 2, 1))
    diff = b.mean(axis=0) - a.mean(axis=0)
    return np.where(pooled > 1e-12, diff / np.where(pooled > 1e-12, pooled, 1.0), 0.0)


def compare(real_x, real_g, other_x, other_g, seed: int = 0, top: int = TOP) -> dict:
    """The test of one set (label 1) against the real windows (label 0)."""
    x = np.vstack([real_x, other_x])
    y = np.concatenate([np.zeros(len(real_x), int), np.ones(len(other_x), int)])
    groups = np.concatenate([real_g, other_g])
    out = cross_validate(x, y, groups, seed)
    out["families"] = {name: {k: v for k, v in cross_validate(x[:, list(cols)], y, groups, seed).items()
                              if k in ("balanced_accuracy", "auc")}
                       for name, cols in FAMILIES.items()}
    d = effect_sizes(real_x, other_x)
    order = np.argsort(-np.abs(d))[:top]
    out["top_features"] = [{"feature": FEATURE_NAMES[i], "d": float(d[i]), "real": float(real_x[:, i].mean()),
                            "other": float(other_x[:, i].mean())} for i in order]
    return out


def measure(sets: dict[str, Sequence[Solo]], seed: int = 0) -> dict:
    """Every set of `sets` (name -> solos; one named 'real') against the real solos, and
    one half of the real solos (even-numbered) against the other (odd): the floor."""
    real_x, real_g = feature_matrix(sets["real"])
    result = {"window_bars": WINDOW_BARS, "folds": FOLDS, "l2": L2, "sets": {}}
    for name, solos in sets.items():
        if name == "real":
            continue
        x, g = feature_matrix(solos)
        if len(np.unique(g)) < 2 or len(np.unique(real_g)) < 2:
            result["sets"][name] = None  # too few solos with a full window
            continue
        result["sets"][name] = compare(real_x, real_g, x, g, seed)
    even = real_g % 2 == 0
    if len(np.unique(real_g[even])) >= 2 and len(np.unique(real_g[~even])) >= 2:
        result["sets"]["real (half vs half)"] = compare(real_x[even], real_g[even], real_x[~even], real_g[~even], seed)
    return result


def markdown(r: dict) -> list[str]:
    """The report's section."""
    sets = {k: v for k, v in r["sets"].items() if v}
    lines = ["## Real or generated?", "",
             f"Can a plain classifier tell a {r['window_bars']}-bar window of a set from one of a real solo? "
             "Features with no absolute key or tempo (intervals, note lengths, inter-onset intervals and "
             "onset positions in the beat, contour, density, rests, range, how long notes are held); "
             f"L2 logistic regression, {r['folds']}-fold cross-validation grouped by solo (no solo in both "
             "the training and the test folds). 0.5 = cannot tell; `real (half vs half)` is the floor, "
             "± its chance standard deviation (each solo counted once).", "",
             "| set | windows (real / set) | balanced accuracy | AUC | pitch features only | rhythm features only |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, s in sets.items():
        fam = s["families"]
        lines.append(f"| {name} | {s['windows'][0]} / {s['windows'][1]} | **{s['balanced_accuracy']:.3f}** "
                     f"(± {s['chance_sd']:.3f}) | {s['auc']:.3f} | {fam['pitch']['balanced_accuracy']:.3f} | "
                     f"{fam['rhythm']['balanced_accuracy']:.3f} |")
    lines += ["", "What separates each set from the real solos most (Cohen's d over windows; mean in real / "
              "in the set):", ""]
    for name, s in sets.items():
        feats = "; ".join(f"{f['feature']} d={f['d']:+.2f} ({f['real']:.3f} / {f['other']:.3f})"
                          for f in s["top_features"])
        lines.append(f"- **{name}**: {feats}")
    return [*lines, ""]
