"""An interpolated trigram baseline (Witten-Bell), the yardstick for the LSTM.

Pure Python + numpy; offline (train, eval, report).  Saved as its own small npz (never
pickle): the trainer writes it beside the bundle, fitted on the same training pieces.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from jazzd.errors import BundleError


class Trigram:
    """P(w | u, v) by Witten-Bell interpolation of trigram, bigram, unigram and uniform.

    Sequences start from two BOS symbols (id = vocab size), like the model's BOS step.
    """

    def __init__(self, vocab_size: int):
        self.V = vocab_size
        self.bos = vocab_size
        self.c1: Counter = Counter()
        self.c2: dict = defaultdict(Counter)
        self.c3: dict = defaultdict(Counter)

    def fit(self, sequences) -> Trigram:
        for seq in sequences:
            u = v = self.bos
            for w in map(int, seq):
                self.c1[w] += 1
                self.c2[v][w] += 1
                self.c3[(u, v)][w] += 1
                u, v = v, w
        self._n1 = sum(self.c1.values())
        return self

    def prob(self, u: int, v: int, w: int) -> float:
        p = (self.c1[w] + 1) / (self._n1 + self.V)  # add-one unigram: never zero
        for counts in (self.c2.get(v), self.c3.get((u, v))):
            if counts:
                total, types = sum(counts.values()), len(counts)
                p = (counts[w] + types * p) / (total + types)
        return p

    def predict(self, u: int, v: int) -> int:
        """The most probable next id (trigram counts first, then bigram, then unigram)."""
        for counts in (self.c3.get((u, v)), self.c2.get(v), self.c1):
            if counts:
                return max(counts.items(), key=lambda kv: (kv[1], -kv[0]))[0]
        return 0

    def evaluate(self, sequences) -> dict:
        """NLL per token (nats) and top-1 accuracy over sequences of ids."""
        nll, correct, n = 0.0, 0, 0
        for seq in sequences:
            u = v = self.bos
            for w in map(int, seq):
                nll -= math.log(self.prob(u, v, w))
                correct += self.predict(u, v) == w
                n += 1
                u, v = v, w
        return {"tokens": n, "nll": nll / n if n else float("nan"), "accuracy": correct / n if n else 0.0}

    # --- file -----------------------------------------------------------------------
    def save(self, path) -> Path:
        tri = [(u, v, w, c) for (u, v), cs in self.c3.items() for w, c in cs.items()]
        bi = [(v, w, c) for v, cs in self.c2.items() for w, c in cs.items()]
        np.savez_compressed(path, vocab_size=np.array([self.V]),
                            unigram=np.array(sorted(self.c1.items()), dtype=np.int64).reshape(-1, 2),
                            bigram=np.array(bi, dtype=np.int64).reshape(-1, 3),
                            trigram=np.array(tri, dtype=np.int64).reshape(-1, 4))
        return Path(path)

    @classmethod
    def load(cls, path) -> Trigram:
        try:
            with np.load(path, allow_pickle=False) as z:
                model = cls(int(z["vocab_size"][0]))
                for w, c in z["unigram"]:
                    model.c1[int(w)] = int(c)
                for v, w, c in z["bigram"]:
                    model.c2[int(v)][int(w)] = int(c)
                for u, v, w, c in z["trigram"]:
                    model.c3[(int(u), int(v))][int(w)] = int(c)
        except FileNotFoundError:
            raise BundleError(f"{path}: no trigram baseline file; it is written by `jazzd train`") from None
        except (OSError, ValueError, KeyError) as err:
            raise BundleError(f"{path}: not a trigram baseline file ({err}); retrain to rewrite it") from None
        model._n1 = sum(model.c1.values())
        return model
