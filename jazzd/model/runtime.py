"""The model at play time: an LSTM step and a sampler in plain numpy, from a bundle.

numpy only (never imports tensorflow/keras); any single thread at a time -- in the
daemon, the engine thread that looks ahead.  This is the hot path.

Real-time contract of `step` (and `advance`, the same step without the output layer,
for a value heard: its prediction is never read) and `sample`:
- no allocation of arrays: every intermediate lives in a buffer made at load, written
  with `out=` arguments; `step` returns the same probability array every time (copy it
  to keep it).  What numpy still allocates: a few scalars and view objects per call, and
  in `sample` the index arrays of top-k / top-p filtering;
- no blocking: no locks, no I/O, no logging;
- never raises on a valid token (0..V-1 or `bos`) with valid feature classes.  An
  out-of-range id is a programming error and raises ValueError before touching state.
What Python cannot guarantee: the garbage collector and the GIL may still pause this
thread (for milliseconds when another Python thread is busy).  Run it with one BLAS
thread (OPENBLAS_NUM_THREADS=1 set before numpy is imported): OpenBLAS's own threads
fight for the cores: on a busy 2-core machine a 2 x 256 model's step + sample took
8 ms median (p99 of a step alone: 60 ms) with them, 0.19 ms (p99 0.4 ms) without.

The maths is Keras's LSTM (gates i, f, c, o; sigmoid and tanh), folded for speed: the
input side of layer 0 is precomputed per id at load, so one step of layer 0 is
`gates = table[token] + sum(feature tables) + h0 @ U0`, and each later layer does one
matrix-vector product of [h_below, h_own] with its stacked kernel.  Gate columns are
reordered to i, f, o, c and the sigmoid gates' weights halved, so one tanh over all
the gates serves both activations (sigmoid(x) = 0.5 * tanh(x / 2) + 0.5).
"""

from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

import numpy as np

from jazzd.model.bundle import Bundle
from jazzd.model.pitchtable import PitchChooser

_max, _sum = np.maximum.reduce, np.add.reduce


class RuntimeState(NamedTuple):
    """A copy of the recurrent state: every layer's h, then every layer's c, flattened."""

    h: np.ndarray
    c: np.ndarray


def _ifoc(w: np.ndarray) -> np.ndarray:
    """Gate columns from Keras order i, f, c, o to i, f, o, c (float32, contiguous), with
    the sigmoid gates' columns halved: then one tanh over all the gates gives tanh(x) for
    c and tanh(x / 2) for i, f, o, and sigmoid(x) = 0.5 * tanh(x / 2) + 0.5."""
    n = w.shape[-1] // 4
    i_f, c, o = w[..., : 2 * n], w[..., 2 * n: 3 * n], w[..., 3 * n:]
    return np.ascontiguousarray(np.concatenate([0.5 * i_f, 0.5 * o, c], axis=-1), dtype=np.float32)


class Runtime:
    """Step an LSTM bundle token by token, and sample from its distributions."""

    def __init__(self, bundle: Bundle):
        cfg, a = bundle.cfg, bundle.arrays
        self._bundle = bundle
        self._vocab_size = cfg["vocab_size"]
        sizes = list(cfg["layers"])
        self._features = tuple(cfg.get("features") or ())
        f64 = {n: np.asarray(w, dtype=np.float64) for n, w in a.items()}  # fold in float64

        # layer 0's input side, one row per id: table[token] already includes the bias
        kernel0, bias0 = f64["lstm0_kernel"], f64["lstm0_bias"]
        if cfg["input"] == "onehot":  # one_hot(token) @ K = row `token` of K; BOS is zeros
            token_table = np.vstack([kernel0, np.zeros((1, kernel0.shape[1]))])
        else:
            token_table = f64["embed_token"] @ kernel0
        self._token_table = _ifoc(token_table + bias0)
        self._feature_tables = tuple(_ifoc(f64[f"embed_{f}"] @ kernel0) for f in self._features)

        # state: all h in one flat buffer, so [h_below, h_own] is one contiguous slice
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._h = np.zeros(starts[-1], dtype=np.float32)
        self._c = np.zeros(starts[-1], dtype=np.float32)
        self._plan = []  # per layer, views made once: (x, w, bias, gates, sig, g, i, f, o, c, h, tmp)
        for layer, n in enumerate(sizes):
            lo, hi = starts[layer], starts[layer + 1]
            if layer == 0:
                x, w, bias = self._h[lo:hi], _ifoc(a["lstm0_recurrent"]), None
            else:
                x = self._h[starts[layer - 1]:hi]
                w = _ifoc(np.vstack([a[f"lstm{layer}_kernel"], a[f"lstm{layer}_recurrent"]]))
                bias = _ifoc(a[f"lstm{layer}_bias"])
            gates = np.zeros(4 * n, dtype=np.float32)
            self._plan.append((x, w, bias, gates, gates[: 3 * n], gates[3 * n:], gates[:n],
                               gates[n: 2 * n], gates[2 * n: 3 * n], self._c[lo:hi],
                               self._h[lo:hi], np.zeros(n, dtype=np.float32)))
        self._h_last = self._h[starts[-2]:]
        self._dense_kernel = np.ascontiguousarray(a["dense_kernel"], dtype=np.float32)
        self._dense_bias = np.ascontiguousarray(a["dense_bias"], dtype=np.float32)
        self._logits = np.zeros(self._vocab_size, dtype=np.float32)
        self._probs = np.zeros(self._vocab_size, dtype=np.float32)
        self._weights = np.zeros(self._vocab_size, dtype=np.float64)  # sampling scratch
        self._cumsum = np.zeros(self._vocab_size, dtype=np.float64)

    # --- properties ---------------------------------------------------------------------

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    @property
    def vocab(self):
        return self._bundle.vocab

    @cached_property
    def chooser(self) -> PitchChooser | None:
        """The decoder's pitch chooser from the bundle's tables (None without them): one
        per runtime, so the engines that play it (a reload that keeps the model makes a
        new engine) share its bounded caches instead of filling new ones.  Like the
        runtime's state and buffers, it serves one engine at a time."""
        return self._bundle.pitch_chooser()

    @property
    def bos(self) -> int:
        """The begin-of-sequence id (= V): feed it first after `reset`."""
        return self._vocab_size

    @property
    def cfg(self) -> dict:
        return self._bundle.cfg

    @property
    def features(self) -> tuple[str, ...]:
        """The feature names `step` expects, in order."""
        return self._features

    # --- state --------------------------------------------------------------------------

    def reset(self) -> None:
        """Zero the recurrent state (the start of a sequence)."""
        self._h.fill(0.0)
        self._c.fill(0.0)

    def get_state(self) -> RuntimeState:
        """A copy of the state (allocates; for look-ahead snapshots, not every step)."""
        return RuntimeState(self._h.copy(), self._c.copy())

    def set_state(self, state: RuntimeState) -> None:
        """Restore a state from `get_state` (copies into the buffers; keeps `state` intact)."""
        h, c = state
        if np.shape(h) != self._h.shape or np.shape(c) != self._c.shape:
            raise ValueError(f"state shapes {np.shape(h)}, {np.shape(c)} do not fit this model "
                             f"({self._h.shape})")
        np.copyto(self._h, h)
        np.copyto(self._c, c)

    # --- the step -----------------------------------------------------------------------

    def step(self, token: int, features=()) -> np.ndarray:
        """Feed `token` (the previous value's id, or `bos`) with the features of the value
        to predict, in `self.features` order; return the distribution over the next value.

        The returned array is a buffer that the next call overwrites.
        """
        self.advance(token, features)
        logits, probs = self._logits, self._probs
        np.dot(self._h_last, self._dense_kernel, out=logits)
        logits += self._dense_bias
        # softmax, shifted so exp cannot overflow (the ufuncs' own reduce: the same
        # maths as .max() and .sum(), without their Python wrappers)
        np.subtract(logits, _max(logits), out=probs)
        np.exp(probs, out=probs)
        probs /= _sum(probs)
        return probs

    def advance(self, token: int, features=()) -> None:
        """`step` without the distribution: the same new state, for a value whose
        prediction nobody reads (one heard, teacher-forced).  The output layer and its
        softmax are about a third of a step of the shipped model."""
        if not 0 <= token <= self._vocab_size:
            raise ValueError(f"token {token} outside 0..{self._vocab_size} (bos)")
        if len(features) != len(self._feature_tables):
            raise ValueError(f"expected features {self._features}, got {features!r}")
        plan = self._plan
        x, w, bias, gates, sig, g, i, f, o, c, h, tmp = plan[0]
        np.dot(x, w, out=gates)  # gates are scratch: the state changes only in _cell
        gates += self._token_table[token]
        for table, value in zip(self._feature_tables, features, strict=True):
            if not 0 <= value < table.shape[0]:
                raise ValueError(f"feature class {value} outside 0..{table.shape[0] - 1}")
            gates += table[value]
        self._cell(gates, sig, g, i, f, o, c, h, tmp)
        for x, w, bias, gates, sig, g, i, f, o, c, h, tmp in plan[1:]:
            np.dot(x, w, out=gates)
            gates += bias
            self._cell(gates, sig, g, i, f, o, c, h, tmp)

    @staticmethod
    def _cell(gates, sig, g, i, f, o, c, h, tmp) -> None:
        # the i, f, o pre-activations arrive halved (see _ifoc): sigmoid(x) = 0.5 *
        # tanh(x / 2) + 0.5, in place and with no overflow warning from exp
        np.tanh(gates, out=gates)
        sig *= 0.5
        sig += 0.5
        np.multiply(f, c, out=c)  # c = f * c + i * g
        np.multiply(i, g, out=tmp)
        c += tmp
        np.tanh(c, out=tmp)  # h = o * tanh(c)
        np.multiply(o, tmp, out=h)

    def prime(self, tokens, features_seq=None) -> np.ndarray:
        """Teacher-force `tokens` (from the current state: start with `bos` after `reset`
        for a fresh sequence), with one features tuple per token; the last distribution."""
        if len(tokens) == 0:
            raise ValueError("prime needs at least one token")
        if features_seq is None:
            features_seq = [()] * len(tokens)
        if len(features_seq) != len(tokens):
            raise ValueError(f"{len(tokens)} tokens, {len(features_seq)} feature tuples")
        for token, features in zip(tokens[:-1], features_seq[:-1], strict=True):
            self.advance(token, features)
        return self.step(tokens[-1], features_seq[-1])

    # --- sampling -----------------------------------------------------------------------

    def sample(self, probs: np.ndarray, rng: np.random.Generator, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0) -> int:
        """Draw an id from `probs`: temperature, then top-k, then nucleus (top-p) filtering.

        temperature 0 is argmax (and draws nothing from `rng`); top_k 0 keeps all; top_p
        keeps the smallest set of most likely ids whose mass reaches top_p.  All randomness
        comes from `rng` (one `rng.random()` per call).
        """
        if temperature < 0 or top_k < 0 or not 0 < top_p <= 1:
            raise ValueError(f"bad sampling settings: temperature={temperature} (>= 0), "
                             f"top_k={top_k} (>= 0), top_p={top_p} (in (0, 1])")
        if temperature == 0:
            return int(np.argmax(probs))
        w, cum = self._weights, self._cumsum
        n = w.shape[0]
        np.copyto(w, probs)  # (a float32 -> float64 divide would allocate a cast buffer)
        if temperature != 1:
            w /= w.max()  # peak at 1, so a low temperature cannot round every weight to 0
            np.power(w, 1.0 / temperature, out=w)
        if 0 < top_k < n:
            w[np.argpartition(w, n - top_k)[: n - top_k]] = 0.0
        if top_p < 1:
            # Drop the least likely ids while their mass stays within 1 - top_p: sort the
            # values (not the ids: twice as fast), add them up from the smallest, and keep
            # every weight at or above the first one that must stay.  Only the values of
            # at least a 1/n share of that mass are sorted (~150 of the shipped 1,000):
            # all below it weigh less than the mass together, so they go whatever the
            # cut, and their sum is where the sorted ones' running sum starts.
            total = _sum(w)
            target = (1.0 - top_p) * total
            ranked = w[w >= target / n]
            ranked.sort()
            run = ranked.cumsum()
            run += total - run[-1]
            cut = int(run.searchsorted(target, side="right"))
            keep = np.flatnonzero(w >= ranked[min(cut, ranked.size - 1)])
            # the draw among the kept ids, in id order: the running sum of the kept
            # weights alone is the one over all ids with the dropped ones zeroed
            kept = w.take(keep)
            np.cumsum(kept, out=kept)
            u = rng.random() * kept[-1]
            return int(keep[min(int(kept.searchsorted(u, side="right")), keep.size - 1)])
        w.cumsum(out=cum)
        u = rng.random() * cum[-1]
        return min(int(cum.searchsorted(u, side="right")), n - 1)
