"""The session memory's per-step arithmetic in numpy: the formulation jazzd ran until it
was compiled (jazzd/model/_memory.c), kept as the oracle the compiled steps are held to,
bit for bit (tests/test_memory_compiled.py).  It reads a bound `SessionMemory`'s index
and arrays and changes nothing in it.

    predict(memory, context)            -> (longest per view, q, found) or None
    mix(memory, probs, context, own, imitation)  -> the mixed distribution (a new array)
    interval_for(memory, found, token, min_match) -> Hint or None
"""

from __future__ import annotations

import numpy as np

from jazzd.model.memory import (
    EAGER,
    FIGURE,
    FOLLOW,
    HINT_MIN_MATCH,
    MAX_LAMBDA,
    ORDER,
    RECENT,
    VERBATIM_CAP,
    VIEWS,
    Hint,
    SessionMemory,
)

_AROUND = np.arange(-1, ORDER)  # a moment's successor, itself, then the values before it
_STRIDE = ORDER + 1
_TINY = np.finfo(np.float32).smallest_subnormal
_KNOWS_INTERVAL = np.array([v.interval for v in VIEWS])


def predict(memory: SessionMemory, context):
    """(longest match per view, q over every class, found = (view, place, match, cont))."""
    context = tuple(context)[-ORDER:]
    if memory._n < 2 or not context:
        return None
    cls, flat = memory._cls, memory._flat
    nviews, k = len(VIEWS), len(context)
    counts, cols = memory._occ.count, memory._occ.cols
    at = np.concatenate([cols[g][max(0, counts[g] - RECENT):counts[g]] for g in cls.globals[context[-1]]])
    if at.size == 0:
        return None
    view = at // memory._seq.shape[1]  # (a place is column + view x width)
    # around[:, 0] what followed, around[:, 2:] the values before, latest first
    around = flat.take(at[:, None] - _AROUND[:k + 1])
    cont = around[:, 0].astype(np.intp)
    # match: the first False of [followed by a value, agrees 1 back, 2 back, ..., False]
    agree = np.zeros((at.size, k + 1), dtype=bool)
    np.greater_equal(cont, 0, out=agree[:, 0])
    np.maximum(cont, cls.offsets.take(view), out=cont)
    if k > 1:
        before = cls.global_table[:, context[-2::-1]]  # before[v, j]: the value j + 1 back, in view v
        np.equal(around[:, 2:], before.take(view, axis=0), out=agree[:, 1:k])
    match = agree.argmin(axis=1)
    slot = view * _STRIDE + match
    best = np.zeros(cls.total, dtype=np.intp)
    np.maximum.at(best, cont, slot)
    classes = best.nonzero()[0]
    at_least = np.bincount(slot, minlength=nviews * _STRIDE).tolist()
    distinct = np.bincount(best.take(classes), minlength=nviews * _STRIDE).tolist()
    weight = [0.0] * (nviews * _STRIDE)
    longest = [0] * nviews
    for v in range(nviews):
        base, n, d, left = v * _STRIDE, 0, 0, 1.0
        coef = [0.0] * _STRIDE
        for j in range(ORDER, 0, -1):
            n += at_least[base + j]
            if n == 0:
                continue
            d += distinct[base + j]
            if not longest[v]:
                longest[v] = j
            trust = 1.0 if j == 1 else n / (n + d)
            coef[j] = trust * left / n
            left *= 1.0 - trust
        acc = 0.0
        for j in range(1, longest[v] + 1):
            acc += coef[j]
            weight[base + j] = acc
    if not any(longest):
        return None
    q = np.bincount(cont, weights=np.array(weight).take(slot), minlength=cls.total)
    return longest, q, (view, at, match, cont)


def mix(memory: SessionMemory, probs: np.ndarray, context, own: int, imitation: float) -> np.ndarray:
    out = np.array(probs, dtype=np.float64)
    if imitation <= 0:
        return out
    found = predict(memory, context)
    if found is not None:
        longest, q, _ = found
        cls = memory._cls
        imitation = min(float(imitation), 1.0)
        eager = (1.0 - EAGER * max(0.0, 2.0 * imitation - 1.0)) ** 2
        inside = eager * FOLLOW if own else eager
        lam = [2.0 * imitation * w * (m * m) / (m * m + (inside if m >= FIGURE else eager) * (h * h))
               for w, h, m in zip((v.weight for v in VIEWS), (v.half for v in VIEWS), map(float, longest),
                                  strict=True)]
        total = sum(lam)
        if total > MAX_LAMBDA:
            lam = [x * (MAX_LAMBDA / total) for x in lam]
            total = MAX_LAMBDA
        np.multiply(probs, 1.0 - total, out=out, dtype=np.float64)
        exact = q[:cls.size]
        exact *= lam[0]
        out += exact
        mass = np.add.reduceat(probs.take(cls.members), cls.starts)
        share = q[cls.size:]
        share *= np.array(lam).take(cls.coarse_view)
        share /= np.maximum(mass, _TINY, out=mass)
        spread = np.add.reduce(share.take(cls.coarse), axis=0)
        spread *= probs
        out += spread
    copies = memory._copies(context) if own >= VERBATIM_CAP else np.empty(0, dtype=np.intp)
    if found is None and copies.size == 0:
        return out
    out[copies] = 0.0
    s = np.add.reduce(out)
    if s > 0:
        out /= s
    else:
        out = np.array(probs, dtype=np.float64)
    return out


def interval_for(memory: SessionMemory, found, token: int, min_match: int = HINT_MIN_MATCH) -> Hint | None:
    if found is None:
        return None
    view, at, match, cont = found
    fits = (_KNOWS_INTERVAL.take(view) & (match >= min_match)
            & (cont == memory._cls.global_columns[token].take(view)))
    hits = np.flatnonzero(fits)
    if hits.size == 0:
        return None
    col = at.take(hits) - view.take(hits) * memory._seq.shape[1] + 1  # the continuation's column
    known = memory._has_ivl.take(col)
    if not known.any():
        return None
    hits, col = hits[known], col[known]
    best = np.lexsort((col, -view.take(hits), match.take(hits)))[-1]
    return Hint(int(memory._ivl[col[best]]), int(match[hits[best]]))
