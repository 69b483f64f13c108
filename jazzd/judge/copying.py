"""Does a generated solo copy its training data?  The longest run of values it shares
with any one training solo (BebopNet's plagiarism check, conventions.md section 5.3).

numpy only; offline (`jazzd report`) and tests.

`CopyIndex` holds the training solos as integer sequences.  For a query, the longest
shared run is found by searching on its length L (doubling, then bisecting): a run of length L is shared iff
some L-gram of the query equals some L-gram of a training solo (never across two
solos), and if one of length L is shared so is one of every shorter length.  Each test
compares 64-bit polynomial hashes of all L-grams (vectorised; the training hashes of
each L are computed once and kept sorted), so 200k training values answer a query in
milliseconds.  Two different L-grams share a hash with probability about 2^-64 per
pair: negligible at these sizes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np

_BASE = 0x9E3779B97F4A7C15  # odd, large: the golden-ratio constant
_MASK = (1 << 64) - 1


def _prefix_hashes(ids: Sequence[int]) -> np.ndarray:
    """H[i] = hash of ids[:i] (mod 2^64), so the hash of ids[i:i+L] is
    H[i+L] - H[i] * BASE^L."""
    out = [0] * (len(ids) + 1)
    h = 0
    for i, x in enumerate(ids):
        h = (h * _BASE + x) & _MASK
        out[i + 1] = h
    return np.array(out, dtype=np.uint64)


def _window_hashes(prefix: np.ndarray, length: int) -> np.ndarray:
    power = np.array([pow(_BASE, length, 1 << 64)], dtype=np.uint64)
    return prefix[length:] - prefix[:-length] * power  # uint64 arithmetic wraps mod 2^64


class CopyIndex:
    """The training solos, ready to answer "the longest run shared with any of them"."""

    def __init__(self, sequences: Iterable[Sequence[Hashable]]):
        self.symbols: dict[Hashable, int] = {}
        ids, piece = [], []
        for k, seq in enumerate(sequences):
            for s in seq:
                ids.append(self.symbols.setdefault(s, len(self.symbols) + 1))
            piece += [k] * len(seq)
        self.tokens = len(ids)
        self._prefix = _prefix_hashes(ids)
        self._piece = np.array(piece, dtype=np.int64)
        self._cache: dict[int, np.ndarray] = {}

    def _training(self, length: int) -> np.ndarray:
        """Sorted hashes of every L-gram inside one training solo."""
        if length not in self._cache:
            if length > self.tokens:
                self._cache[length] = np.zeros(0, dtype=np.uint64)
            else:
                hashes = _window_hashes(self._prefix, length)
                inside = self._piece[:len(hashes)] == self._piece[length - 1:]
                self._cache[length] = np.unique(hashes[inside])
        return self._cache[length]

    def _shared(self, prefix: np.ndarray, valid: np.ndarray, length: int) -> int | None:
        """Start of an L-gram of the query that occurs in training, or None."""
        train = self._training(length)
        if not len(train):
            return None
        hashes = _window_hashes(prefix, length)
        pos = np.minimum(np.searchsorted(train, hashes), len(train) - 1)
        hit = (train[pos] == hashes) & valid[:len(hashes)]
        return int(np.argmax(hit)) if hit.any() else None

    def longest(self, seq: Sequence[Hashable]) -> tuple[int, int]:
        """(length, start) of the longest run of `seq` found in one training solo."""
        ids = [self.symbols.get(s, 0) for s in seq]  # 0: never seen in training
        prefix = _prefix_hashes(ids)
        unknown = np.cumsum([0] + [x == 0 for x in ids])
        def test(length: int) -> int | None:
            valid = unknown[length:] - unknown[:-length] == 0  # windows without unseen symbols
            return self._shared(prefix, valid, length)

        # Gallop up (copies are short, and short lengths' training hashes are shared by
        # every query), then bisect between the last length found and the first missed.
        lo, start, hi = 0, 0, 1
        while hi <= len(ids) and (found := test(hi)) is not None:
            lo, start, hi = hi, found, hi * 2
        hi = min(hi - 1, len(ids))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            found = test(mid)
            if found is None:
                hi = mid - 1
            else:
                lo, start = mid, found
        return lo, start
