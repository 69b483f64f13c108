"""Training windows over token sequences: the seed's recipe, exactly.  Pure numpy; offline.

The seed drew `m` random window starts with legacy `np.random.seed(0)` and
`np.random.choice(len(corpus) - Tx)`, one-hot encoded `corpus[start + t]` at steps
t = 1..Tx-1 (step 0 stays all zero, the "x<1> = 0" start symbol) and set Y to X shifted
left by one step (so Y's last step is all zero).  The seed stored Y as (Tx, m, n); we
return (m, Tx, n) for both and document the transpose (`np.swapaxes(Y, 0, 1)`).
"""

from __future__ import annotations

import numpy as np


def seed_window_starts(n_tokens: int, m: int = 60, tx: int = 30, seed: int = 0) -> list[int]:
    """The `m` window starts of the seed's recipe (legacy RandomState stream)."""
    if n_tokens <= tx:
        raise ValueError(f"a corpus of {n_tokens} tokens is too short for windows of {tx}")
    rs = np.random.RandomState(seed)
    return [int(rs.choice(n_tokens - tx)) for _ in range(m)]


def seed_windows(tokens, n_values: int, m: int = 60, tx: int = 30, seed: int = 0):
    """X, Y of shape (m, tx, n_values), dtype bool, exactly as the seed built them."""
    tokens = np.asarray(tokens)
    starts = seed_window_starts(len(tokens), m, tx, seed)
    x = np.zeros((m, tx, n_values), dtype=bool)
    y = np.zeros((m, tx, n_values), dtype=bool)
    for i, start in enumerate(starts):
        for j in range(1, tx):
            idx = tokens[start + j]
            x[i, j, idx] = True
            y[i, j - 1, idx] = True
    return x, y, starts
