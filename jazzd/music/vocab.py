"""The value vocabulary: sorted values <-> indices, with a nearest-value fallback.

Pure Python + numpy; any thread (the live encoder maps played values through it).

The order is a sort of the values themselves (type, then duration, then window), never
a hash order, and it travels with every corpus and model.  A value outside the
vocabulary maps to the nearest one inside: same type, nearest duration (by ratio), then
nearest window (by the interval it is centred on), so no note is ever dropped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from jazzd.errors import VocabularyError
from jazzd.music.grammar import TYPES, Value, parse_value

_TYPE_ORDER = {t: i for i, t in enumerate(TYPES)}
# Where a type is missing from the vocabulary altogether, the next best type.
_TYPE_FALLBACK = {"X": "ASC", "A": "SCX", "S": "CAX", "C": "SAX", "R": ""}
assert set(_TYPE_FALLBACK) == set(TYPES)
# Values outside the vocabulary whose nearest value is remembered, per vocabulary (when
# full it starts again empty): a corpus's rare values while it is encoded, and in the
# daemon the player's values the model does not know, about 100 bytes each (6 MB at
# most; a session of real playing meets a few thousand).
NEAREST_CACHE = 65536


def sort_key(text: str):
    v = parse_value(text)
    return (_TYPE_ORDER[v.type], v.dur, v.window is not None, v.step_semis or 0, text)


class Vocabulary:
    """An ordered, immutable set of values.  `index(v)` maps any valid value to an index."""

    def __init__(self, values: Iterable[str]):
        unique = set(values)
        for v in unique:
            parse_value(v)  # every value must be valid grammar
        self.values: tuple[str, ...] = tuple(sorted(unique, key=sort_key))
        self._index = {v: i for i, v in enumerate(self.values)}
        # per type: (index, log duration, has window, step) for the nearest search
        self._by_type: dict[str, list[tuple[int, float, bool, int]]] = {}
        for i, text in enumerate(self.values):
            v = parse_value(text)
            self._by_type.setdefault(v.type, []).append(
                (i, math.log(v.dur), v.window is not None, v.step_semis or 0))
        # (A dict, not functools.lru_cache on a bound method: that made a reference cycle,
        # vocabulary -> cache -> method -> vocabulary, so a vocabulary the daemon let go
        # at a reload lived on until a full collection of the cyclic garbage collector,
        # which the daemon's gc.freeze makes rare: hours.  Issue 16.)
        self._near: dict[str, int] = {}  # at most NEAREST_CACHE

    @classmethod
    def from_counts(cls, counts: Counter, max_size: int | None = None) -> Vocabulary:
        """The `max_size` most frequent values (ties broken by sort order), or all.

        The most frequent value of every type is always kept, so a rest maps to a rest
        and a note to a note however small the vocabulary.
        """
        ranked = sorted(counts, key=lambda v: (-counts[v], sort_key(v)))
        if not max_size:
            return cls(ranked)
        keep = list(dict.fromkeys(next(v for v in ranked if v[0] == t) for t in TYPES
                                  if any(v[0] == t for v in ranked)))
        for v in ranked:
            if len(keep) >= max_size:
                break
            if v not in keep:
                keep.append(v)
        return cls(keep)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, value: str) -> bool:
        return value in self._index

    def __iter__(self):
        return iter(self.values)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.values == other.values

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} values)"

    def value(self, index: int) -> str:
        return self.values[index]

    def index(self, value: str) -> int:
        """Index of `value`, or of its nearest value when it is not in the vocabulary."""
        i = self._index.get(value)
        if i is None:
            i = self._near.get(value)
            if i is None:
                i = self._nearest_uncached(value)
                if len(self._near) >= NEAREST_CACHE:
                    self._near.clear()  # (cheaper than evicting one by one, and as bounded)
                self._near[value] = i
        return i

    def encode(self, values: Sequence[str]) -> list[int]:
        return [self.index(v) for v in values]

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.values[int(i)] for i in indices]

    def _nearest_uncached(self, text: str) -> int:
        if not self.values:
            raise VocabularyError("the vocabulary is empty: ingest a corpus first")
        v: Value = parse_value(text)
        for t in v.type + _TYPE_FALLBACK[v.type]:
            pool = self._by_type.get(t)
            if pool:
                break
        else:
            raise VocabularyError(f"no value of type {v.type!r} (or a substitute) in the vocabulary for {text!r}")
        logd, has_w, step = math.log(v.dur), v.window is not None, v.step_semis or 0
        best = min(pool, key=lambda e: (round(abs(e[1] - logd), 9), e[2] != has_w, abs(e[3] - step), e[0]))
        return best[0]

    def coverage(self, counts: Counter) -> dict:
        """How much of a token count the vocabulary covers exactly, and by the top N."""
        total = sum(counts.values())
        covered = sum(c for v, c in counts.items() if v in self._index)
        ranked = sorted(counts.values(), reverse=True)
        top = {n: sum(ranked[:n]) / total for n in (100, 250, 500, 1000, 2000) if total}
        return {"tokens": total, "distinct": len(counts), "covered": covered,
                "coverage": covered / total if total else 0.0,
                "top_n": {str(n): round(f, 6) for n, f in top.items()}}
