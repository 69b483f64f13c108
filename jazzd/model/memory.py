"""Session memory: what the player played this session, as a model over the value vocabulary.

numpy and the standard library; one thread at a time (the engine's); deterministic: no
clock, no random state (nothing is drawn here).  Saved memory is JSON data, never code.

Why.  The LSTM knows jazz in general; it knows nothing of the player in front of it.
Continuator (Pachet) learns the player's phrases as they are played and continues them;
the neural cache (Grave et al. 2017) mixes a model with a cache of the running text,
p = (1 - lam) p_model + lam p_cache, without retraining.  This memory does both, over
jazzd's chord-relative values, so a figure the player used over one chord is offered
again over any other.

What it holds.  The player's values in the order heard (`learn`), broken where the
player's line was interrupted (`cut`: jazzd played, the timeline restarted), each with
the exact interval in semitones from the player's previous note.  At most `CAPACITY`
values and breaks: when full, the oldest quarter goes, so a memory kept for weeks holds
the player's latest 12,288-16,384 values (an hour of non-stop eighth notes at 120 bpm,
several hours of real playing with its rests; about 0.3 MB as JSON).  In memory
(tracemalloc, the shipped model's vocabulary): 2.1 MB made at bind, written at once (the
index's arrays, 1.4 MB of them the occurrences' arena, the runs' bitmap), and 30 bytes a
value learned (the two lists), 2.6 MB when full.  Made at once, not as it fills: a
service that learns for hours then neither allocates nor faults a page in on the beat
path, and its private memory does not creep while the memory fills (issue 16: 213 bytes
a value at first, a set of run hashes and a string per value; then 69, occurrence
arrays that grew by doubling and fragmented the C heap).

How it predicts (`mix`).  For the context (the timeline's last values, the player's and
jazzd's own), it looks up the earlier moments of the player's where the same values
were played and what followed (in each view the latest `RECENT` (32) moments of the
context's last value: recent habits count, and the cost stays flat however full the
memory is; 128 or 64 gave the same NLL, 3.880, 16 a little worse, 3.882),
through five views of a value, from exact to coarse:

    value    the value itself: TYPE, DUR and interval window
    line     TYPE and the interval the window is centred on (no duration)
    figure   note or rest, DUR and interval (no TYPE: the same shape over any harmony)
    cell     TYPE and DUR (no window)
    rhythm   note or rest and DUR

Exact values rarely recur within a solo; what recurs is coarser (measured on the WJD
validation solos, ../shared/notes/listening-and-feel.md).  For each view the match
length m of a moment is how many of the context's last values (up to `ORDER`) agree with
the values before it; the view's prediction interpolates the continuations of matches of
length 1, 2, ... m (Witten-Bell, each order trusted by N / (N + distinct continuations)),
and its mixing weight is gated by the longest match:

    lam_view = 2 * imitation * weight_view * m^2 / (m^2 + (eager * half_view)^2)

so one matched value barely counts and a long matched figure counts a lot (all the
lam_view together are capped at `MAX_LAMBDA`).  `eager` is 1 up to imitation 0.5 and
falls to 1 - `EAGER` (0.2) at imitation 1: a strong imitation trusts short matches too.
When jazzd's own last value is part of the match (m >= `FIGURE`, 2, and the context ends
in values jazzd played), it has taken up a figure of the player's, and the gate counts
the match as sqrt(1 / `FOLLOW`) (3.2) times as long: a figure once begun goes on (it
raised the motifs shared with the call from 0.037 to 0.046 at imitation 0.9).  Scoring
the player's own line (`jazzd eval`) never meets it.  A coarse view predicts a class
of values (say "a chord tone a step up"); it is spread over the values of that class in
proportion to the model's own probabilities, so the LSTM still chooses the exact value
within it.

Weights and half-lengths (`VIEWS`) were fitted for the lowest NLL of the shipped model
(`models/jazzd-wjd.npz`) on its 41 validation solos, the memory learning each solo as it
is scored (`jazzd eval`): at imitation 0.5 (the likelihood-optimal mixing) NLL goes from
3.938 to 3.879 nats per value (-1.5%; top-1 accuracy 0.170 -> 0.183); fitted on half of
the solos and scored on the other half, -1.4% and -1.5%; exact values alone gave -0.7%).
Imitation 0.25 gives 3.889.  Above 0.5 the memory is trusted beyond what predicts the
player best, on purpose: 0.75 gives 3.940 (as the model alone), 0.9 (the engine's
default) 4.191, 1 gives 4.484.  What that buys: `jazzd report`'s listening measure
(jazzd.judge.listening: 480 phrases of the validation solos played in as calls, each to
a fresh engine, so the memory holds the call alone; seed 0), relatedness of the answer to
its call (register: the correlation of mean pitches), real next phrase / jazzd at
imitation 0 / 0.5 / 0.75 / 0.9 / 1:

    rhythm       0.069 / 0.060  0.070  0.078  0.082  0.082
    intervals    0.050 / 0.024  0.040  0.070  0.109  0.150
    motifs       0.050 / 0.001  0.008  0.024  0.060  0.079
    register     0.674 / 0.641  0.733  0.735  0.730  0.703
    contour      0.033 / -0.057 -0.030 -0.010 0.005  0.051
    pitch class  0.077 / 0.036  0.049  0.058  0.058  0.076
    density      0.067 / 0.067  0.073  0.084  0.082  0.088
    longest verbatim run: real 8; jazzd 2, 3, 5, 5, 8

From 0.9 on the answers take up rhythm, intervals, motifs and register at least as much
as the real next phrases (over seeds 0-3 at 0.9: motifs 0.054-0.060, register
0.730-0.765); motifs climb steeply between 0.75 and 0.9 (0.030 at 0.8, 0.044 at 0.85,
means of seeds 0-3), as the gate opens for short matches.  (`eager` matters: without it
imitation 1 shared a third as many motifs.)  The register at imitation above 0 is also
the engine's doing: an answer starts from the call's last note moved toward the
player's centre (`jazzd.play.register.Register.re_entry`).

Verbatim cap.  jazzd never plays more than `VERBATIM_CAP` (8) consecutive values of the
player's: when its own last 8 values are a run of the player's (anywhere in the memory,
not only in the latest moments), every value that would continue that run is masked
(MaxOrder, Papadopoulos, Roy and Pachet 2014).  A set of hashes of every run of 8 the
player played makes the usual answer, "no such run", one lookup.

Cost.  An index of where each class was played (`_Occurrences`, at flat positions of
the memory's array) finds the moments to match without scanning the memory.  Matching
them, the Witten-Bell table, the mixing and the hint are compiled
(`jazzd/model/_memory.c`: `predict`, `blend`, `hint`, one pass each over at most 5 x
`RECENT` moments and the 1,648 classes, into buffers made at bind); the five gates stay
in Python.  In numpy they were ~40 calls on arrays of a few hundred numbers: at these
sizes a call costs more than its arithmetic, and the model's steps between two mixes
evict the arrays from the cache, so `mix` took 90-150 us a value played, the largest
part of a beat's cost with the memory on (issue 12, item 6: replaying recorded mixes at
no cost brought the bench's p99 beat down to its figure without the memory).  Compiled,
it gives the numpy code's floats bit for bit (every sum in numpy's order, no fused
multiply-add: tests/memory_reference.py keeps the numpy formulation and
tests/test_memory_compiled.py holds the C to it), so no draw, golden log or figure of
the report moved.  Measured on the project's shared 2-core machine (one BLAS thread):
`mix` and `interval_for` 22 us median against 91 for the numpy code, on 1,192 cases the
engine asked, replayed in one process with four model steps before each; in the bench's
duet (bench/engine.py: 240 bpm, the player's 16ths, a full memory at imitation 1) `mix`
35-44 us median, 54-118 us p99 over five sets of 3 runs (was 154 / 255); `learn` about
4 us median, 9-11 us p99, and once per 4,096 values, when the memory is full and its
oldest quarter goes, 3-9 ms (its index moved back, the occurrences and runs rebuilt:
issue 16).  Per beat of that duet, p99 with the memory / without: 0.66-0.77 / 0.60-0.69
ms taking each beat's least time over 3 identical runs, 0.72-0.91 / 0.65-0.83 ms as the
median run's p99 (before the compiled steps: 0.80-0.93 ms and 0.9-1.6 ms with the
memory); a single run passes 1 ms in one of the shared machine's slow spells, with the
memory or without (3 of 15 runs each, bench/RESULTS.md).  Where such a beat's time goes
now: a value heard is a model step without its output layer (`Runtime.advance`:
the shipped 2 x 192 model streams 1.8 MB of weights a step, more than the 1 MB of L2 a
core has here, so ~45 us), `learn` and the engine's hearing; a value played is a full
step, the memory (~40 us), the draw (top-p over the 1,000 values), the pitch choice and
the engine's planning, whose Python is the largest single part left (~250 us in the
heaviest beats, memory or not).

Interface for the pitch decoder.  After `mix` and the draw, `interval_for(token)` gives
the player's exact interval (semitones from their previous note) where the drawn value
continued the longest matching figure (in a view that knows intervals), with the match
length, as a `Hint`; so a motif can come back transposed (the same intervals from
jazzd's own last note, over any chord) or varied (bent to the chord).  `hinted_pitch`
is the one use (`Soloist.play`, only at imitation above 0): the player's interval is
kept where it lands on a chord or scale tone (or the value's TYPE), and through passing
tones once the figure is under way, else bent to the value's TYPE.  Bending to the TYPE
alone kept 40% of the hints at imitation 1 (1,663 of 4,154; 1,897 bent by the TYPE)
and shared 0.040 of the call's motifs; this way 0.079.  The soloist then hears the value
of the pitch it played (the model, the context, the verbatim cap), and takes no pitch
whose value the cap masked (`masked`): without that an answer copied 9 values in a row.

Persistence (`save`, `load_memory`): JSON `{"format": "jazzd-session-memory",
"version": 1, "values": [...], "intervals": [...]}`, a break being a null value.  Value
strings, not ids, so a memory outlives a change of model.  Anything else in the file is
one warning line naming the file and what to do, and an empty memory.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jazzd.errors import VocabularyError

try:
    from jazzd.model import _memory as _compiled
except ImportError as err:  # a checkout run without installing it: say what to do
    raise ImportError(f"jazzd's compiled part is not built ({err}): install jazzd with `pip install -e .` "
                      "(or `make venv`), which builds it; that needs a C compiler and Python's headers "
                      "(apt install gcc python3-dev)") from err
from jazzd.music.chords import Chord
from jazzd.music.grammar import Value, candidates_of_type, classify, parse_value

CAPACITY = 16384        # values and breaks kept; when full the oldest quarter goes
ORDER = 8               # longest context matched (values)
RECENT = 32            # a view looks at the latest this many moments of a class only
VERBATIM_CAP = 8        # never more than this many consecutive values of the player's
MAX_LAMBDA = 0.95       # the memory's share of the mixture at most
EAGER = 0.8             # at imitation 1 the gate is half open at a fifth of the fitted length
HINT_MIN_MATCH = 2      # an interval is offered only for a figure matched this long (above imitation 0.5: 1)
KEEP_TYPES = ("C", "S")  # a hinted interval landing on these is played as the player played it
FIGURE = 2              # a match this long (values) that includes jazzd's own: a figure taken up, in progress
FOLLOW = 0.1            # ... which the gate trusts as if it were sqrt(1 / FOLLOW) (3.2) times as long
FORMAT = "jazzd-session-memory"
VERSION = 1
MAX_FILE_BYTES = 8 << 20  # a memory file of CAPACITY values is about 0.3 MB
RUN_BITS = 20           # the verbatim cap's filter of runs: a bitmap of 2^20 bits (128 kB), made once
assert ORDER >= VERBATIM_CAP


@dataclass(frozen=True)
class View:
    """One way of seeing a value, and how far the memory trusts a match in it."""

    name: str
    key: Callable[[Value], Hashable] | None  # None: the value itself
    weight: float  # its share of the mixture at imitation 0.5, for a long match
    half: float    # the match length (values) at which the gate is half open
    interval: bool  # its classes know the interval from the previous note


VIEWS: tuple[View, ...] = (
    View("value", None, 0.46, 5.4, True),
    View("line", lambda v: (v.type, v.step_semis), 0.37, 4.2, True),
    View("figure", lambda v: (v.type == "R", v.dur, v.step_semis), 0.14, 3.7, True),
    View("cell", lambda v: (v.type, v.dur), 0.065, 2.4, False),
    View("rhythm", lambda v: (v.type == "R", v.dur), 0.065, 1.5, False),
)
_WEIGHTS = [v.weight for v in VIEWS]
_HALVES2 = [v.half * v.half for v in VIEWS]
_BACK = np.arange(ORDER)
_KNOWS_INTERVAL = tuple(int(v.interval) for v in VIEWS)
_sum = np.add.reduce  # (the ufunc's reduce: no method wrapper)
if (len(VIEWS), ORDER, RECENT) != (_compiled.NVIEWS, _compiled.ORDER, _compiled.RECENT):
    raise ImportError("jazzd.model._memory was built for other sizes than jazzd/model/memory.py's "
                      "(a stale build): rebuild it with `pip install -e .` (make venv)")
_PAD = ORDER  # breaks before the first slot, so looking ORDER - 1 values back never leaves the array


class Hint(NamedTuple):
    """The player's exact interval (semitones from the previous note) where the drawn
    value continued a figure of theirs that matched the context for `match` values."""

    interval: int
    match: int


class _Classes:
    """Per vocabulary: the class of every value id in each view (the value view's class
    is the id), and the classes of all views numbered together (`offsets`)."""

    def __init__(self, values: tuple[str, ...]):
        parsed = [parse_value(v) for v in values]
        self.size = len(values)
        self.table = np.empty((len(VIEWS), self.size), dtype=np.int32)
        sizes = []
        for i, view in enumerate(VIEWS):
            if view.key is None:
                self.table[i] = np.arange(self.size)
                sizes.append(self.size)
                continue
            keys: dict[Hashable, int] = {}
            self.table[i] = [keys.setdefault(view.key(v), len(keys)) for v in parsed]
            sizes.append(len(keys))
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self.offset_list = tuple(int(o) for o in self.offsets)
        self.total = int(self.offsets[-1])
        numbered = self.table + self.offsets[:-1, None]  # (views, V): the classes numbered across the views
        self.globals = [tuple(int(g) for g in col) for col in numbered.T]  # (Python ints: the index's keys)
        self.view_of = np.repeat(np.arange(len(VIEWS)), sizes)
        # as the memory's array holds them: int16 (half the cache lines) while every
        # number fits, as for a vocabulary of up to ~20,000 values (the shipped 1,000
        # have 1,648 classes); int32 beyond, never wrapped
        self.dtype = np.int16 if self.total <= np.iinfo(np.int16).max else np.int32
        self.global_table = numbered.astype(self.dtype)
        self.global_columns = np.ascontiguousarray(self.global_table.T)
        # for `blend` (int32: half the cache lines of intp): each value's coarse classes
        # (views - 1, V; numbered from 0), each coarse class's view, and the value ids of
        # the coarse classes, class after class, with where each class starts
        coarse = numbered[1:] - self.size
        self.coarse = coarse.astype(np.int32)
        self.coarse_view = self.view_of[self.size:].astype(np.int32)
        order = np.argsort(coarse.ravel(), kind="stable")
        self.members = (order % self.size).astype(np.int32)
        self.starts = np.flatnonzero(np.diff(coarse.ravel()[order], prepend=-1)).astype(np.int32)


class _Occurrences:
    """Per class (of all views, numbered together): where in the memory a value of that
    class was played, in order.  So the moments to match are found without scanning the
    memory.  A place is a position in the memory's (views, columns) array read flat
    (column + view x its width): `predict` gathers the moments of all views in one array
    without offsetting each view's.

    The places live in slices of one array made, and written, at once (`arena`): a class
    whose slice is full moves to one twice as long, further on.  A memory filling for
    hours so allocates nothing and faults no page in as it learns (issue 16: arrays
    that grew by doubling, each a new allocation, left the C heap fragmented, and the
    private memory crept while the memory filled).  Slices left behind are reclaimed
    when the index is made anew (`of`: at bind, and when the oldest quarter goes); until
    then a class's slices add up to less than 4 x its places + `_FIRST` x 2, so the
    arena holds 4 x the places of a full memory, and 2 x `_FIRST` per class (int32:
    1.4 MB for `CAPACITY` values and 1,648 classes)."""

    def __init__(self, total: int, places: int):
        # written now (np.full), so every page is faulted in at bind, not while learning
        self.arena = np.full(4 * places + 2 * _FIRST * total, 0, dtype=np.int32)
        self._free = 0                   # the arena's first place no slice has taken
        self.cols = [_NONE] * total      # each class's slice (a view of the arena)
        self.start = [0] * total         # ... where it starts in the arena (what `_memory.predict` reads)
        self.count = [0] * total

    def _slice(self, g: int, size: int) -> np.ndarray:
        """A new slice of `size` places for class `g`."""
        start = self._free
        self._free += size
        if self._free > self.arena.size:  # (cannot happen within the bound above)
            raise RuntimeError("session memory index: arena full")
        self.start[g] = start
        cols = self.cols[g] = self.arena[start:self._free]
        return cols

    def add(self, classes, col: int, width: int) -> None:
        """A value of `classes` (one per view) played at column `col`."""
        for g in classes:
            n, cols = self.count[g], self.cols[g]
            if n == cols.size:
                grown = self._slice(g, max(_FIRST, 2 * n))
                grown[:n] = cols
                cols = grown
            cols[n] = col
            self.count[g] = n + 1
            col += width

    def latest(self, g: int, limit: int) -> np.ndarray:
        n = self.count[g]
        return self.cols[g][max(0, n - limit):n]

    @classmethod
    def of(cls, classes: np.ndarray, cols: np.ndarray, total: int, width: int, places: int) -> _Occurrences:
        """From scratch: `classes` (views, m) played at `cols` (m, in order), in an arena
        for `places` places at most."""
        occ = cls(total, places)
        flat = classes.ravel()
        order = np.argsort(flat, kind="stable")  # a class's columns stay in order
        where = (cols + width * np.arange(classes.shape[0])[:, None]).ravel()[order]
        ends = np.cumsum(np.bincount(flat, minlength=total))
        for g in np.flatnonzero(np.diff(ends, prepend=0)).tolist():
            start = ends[g - 1] if g else 0
            n = int(ends[g] - start)
            occ._slice(g, max(_FIRST, n))[:n] = where[start:ends[g]]
            occ.count[g] = n
        return occ


_FIRST = 8  # places in a class's first slice
_NONE = np.empty(0, dtype=np.intp)
_HASH = 0x100000001B3  # FNV's 64-bit prime: runs of value ids hashed for the verbatim cap
_RUN_SHIFT = 64 - RUN_BITS  # a run's bit in the filter: its hash's top bits (a product mixes upward)
_INTERVALS = tuple(range(-127, 128))  # every interval as one int object: a value learned makes none


def _run_hashes(seq: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The hash of the `VERBATIM_CAP` values of `seq` ending at each of `ends` (uint64,
    wrapping), as `_run_hash` gives for one run."""
    h = np.zeros(ends.size, dtype=np.uint64)
    for j in range(VERBATIM_CAP - 1, -1, -1):
        h = h * np.uint64(_HASH) + (seq.take(ends - j) + 1).astype(np.uint64)
    return h


def _run_hash(ids) -> int:
    h = 0
    for i in ids:
        h = (h * _HASH + i + 1) & 0xFFFFFFFFFFFFFFFF
    return h
_CLASSES: dict[tuple[str, ...], _Classes] = {}


def _classes(values: tuple[str, ...]) -> _Classes:
    found = _CLASSES.get(values)
    if found is None:
        found = _CLASSES[values] = _Classes(values)
        while len(_CLASSES) > 8:  # a program folder's few vocabularies
            del _CLASSES[next(iter(_CLASSES))]
    return found


class SessionMemory:
    """The player's values this session; a next-value distribution to mix with the model's.

    `bind(vocab)` before `mix` (a `Soloist` binds it to its model's vocabulary); `learn`
    and `cut` work bound or not.  `texts` and `intervals` are what it remembers; the
    arrays are an index of them for the bound vocabulary, rebuilt by `bind`.
    """

    def __init__(self, capacity: int = CAPACITY):
        if capacity < 16:
            raise ValueError(f"capacity must be at least 16, got {capacity}")
        self.capacity = capacity
        self.texts: list[str | None] = []         # None: a break in the player's line
        self.intervals: list[int | None] = []     # semitones from the player's previous note
        self._break = False                       # the next value starts a new line
        self._last_midi: int | None = None
        self._count = 0                           # values in `texts` (breaks not counted)
        self._vocab = None
        self._values: tuple[str, ...] = ()
        self._n = 0
        size = _PAD + capacity + 1  # (+1: the last value's successor, always a break)
        self._seq = np.full((len(VIEWS), size), -1, dtype=np.int16)  # classes; -1 a break
        self._flat = self._seq.reshape(-1)  # (a view: the array is only ever written in place)
        self._ivl = np.zeros(size, dtype=np.int16)
        self._has_ivl = np.zeros(size, dtype=bool)
        self._mixed = np.zeros(0)
        self._runs = np.zeros(1 << (RUN_BITS - 3), dtype=np.uint8)  # a bit per run hash (`_rebuild_runs`)
        self._found = 0  # after `predict`: how many moments it matched (its `_found_buffers`), 0 none
        self._hint_min = HINT_MIN_MATCH
        self.masked = _NONE  # after `mix`: the values the verbatim cap masked

    def __len__(self) -> int:
        """Values remembered (breaks not counted)."""
        return self._count

    # --- learning --------------------------------------------------------------------

    def bind(self, vocab) -> None:
        """Index the memory for `vocab` (a model's `Vocabulary`); values outside it
        count as their nearest, as the model hears them.  A no-op for the same one."""
        if self._vocab is not None and vocab.values == self._values:
            self._vocab = vocab
            return
        self._vocab, self._values = vocab, vocab.values
        self._cls = _classes(vocab.values)
        if self._seq.dtype != self._cls.dtype:  # (a vocabulary with more classes than int16 holds)
            self._seq = np.full(self._seq.shape, -1, dtype=self._cls.dtype)
            self._flat = self._seq.reshape(-1)
        cls = self._cls
        self._mixed = np.zeros(len(vocab.values))
        # the compiled steps' buffers, made once: `predict`'s distribution over every
        # class, its scratch (kept zero) and its moments (view, place, match,
        # continuation); `blend`'s coarse classes' members' probabilities, mass, share
        self._q = np.zeros(cls.total)
        self._best = np.zeros(cls.total, dtype=np.intp)
        self._found_buffers = tuple(np.zeros(len(VIEWS) * RECENT, dtype=np.intp) for _ in range(4))
        coarse = cls.total - cls.size
        self._blend_buffers = (np.zeros(cls.members.size, dtype=np.float32), np.zeros(coarse, dtype=np.float32),
                               np.zeros(coarse))
        self._reindex()

    def _reindex(self) -> None:
        """Index `texts` and `intervals` for the bound vocabulary from scratch (at `bind`,
        and when the oldest quarter went): each view's classes, where each class was
        played, the runs of the player's for the verbatim cap."""
        cls = self._cls
        ids = np.array([-1 if t is None else self._vocab.index(t) for t in self.texts], dtype=np.intp)
        cols = _PAD + np.flatnonzero(ids >= 0)
        classes = cls.global_table[:, ids[ids >= 0]]
        self._seq.fill(-1)
        self._seq[:, cols] = classes
        self._has_ivl.fill(False)
        known = [(k, i) for k, i in enumerate(self.intervals) if i is not None]
        if known:
            at, ivl = np.array(known).T
            self._has_ivl[_PAD + at] = True
            self._ivl[_PAD + at] = ivl
        self._occ = _Occurrences.of(classes, cols, cls.total, self._seq.shape[1], self._seq.size)
        self._n, self._found = len(self.texts), 0
        self._rebuild_runs()

    def _index(self, text: str | None, interval: int | None) -> None:
        col = _PAD + self._n
        if text is None:
            self._seq[:, col] = -1
        else:
            value = self._vocab.index(text)
            self._seq[:, col] = self._cls.global_columns[value]
            self._occ.add(self._cls.globals[value], col, self._seq.shape[1])
            run = self._seq[0, col + 1 - VERBATIM_CAP:col + 1].tolist()
            if min(run) >= 0:
                bit = _run_hash(run) >> _RUN_SHIFT
                self._runs[bit >> 3] |= 1 << (bit & 7)
        self._has_ivl[col] = interval is not None
        self._ivl[col] = interval or 0
        self._n += 1

    def learn(self, value: str, midi: int | None = None) -> None:
        """The player played `value` (a note at MIDI `midi`, or a rest with None)."""
        parse_value(value)  # a bad value is the caller's bug: fail here, not in `mix`
        value = sys.intern(value)  # one string per distinct value, however often it is played
        if self._break and self.texts and self.texts[-1] is not None:
            self._append(None, None)
        self._break = False
        interval = None
        if midi is not None:
            if self._last_midi is not None:
                interval = _INTERVALS[int(midi) - self._last_midi + 127]
            self._last_midi = int(midi)
        self._append(value, interval)

    def cut(self) -> None:
        """The player's line is interrupted (jazzd plays, or time restarts): the next
        value learned continues nothing before it."""
        self._break = True
        self._last_midi = None

    def clear(self) -> None:
        """Forget everything (a CC, SIGUSR1)."""
        self.texts.clear()
        self.intervals.clear()
        self._break, self._last_midi, self._count = False, None, 0
        if self._vocab is not None:
            self._reindex()

    def _append(self, text: str | None, interval: int | None) -> None:
        if len(self.texts) >= self.capacity:
            drop = self.capacity // 4
            self._count -= drop - self.texts[:drop].count(None)
            del self.texts[:drop], self.intervals[:drop]
            if self._vocab is not None:
                self._shift(drop)
        self.texts.append(text)
        self.intervals.append(interval)
        self._count += text is not None
        if self._vocab is not None:
            self._index(text, interval)

    def _shift(self, drop: int) -> None:
        """After the oldest `drop` values went: the index as `_reindex` makes it from the
        texts left, by moving its arrays back `drop` columns instead of looking every
        value up again (the same arrays; the look-ups and the intervals' list were half
        of the 9-16 ms stall once per 4,096 values, issue 16), then the occurrences and
        runs from them."""
        n, end = self._n - drop, _PAD + self._n
        for a in (self._seq, self._ivl[None], self._has_ivl[None]):
            a[:, _PAD:_PAD + n] = a[:, _PAD + drop:end]
        self._seq[:, _PAD + n:end] = -1
        self._has_ivl[_PAD + n:end] = False
        self._n, self._found = n, 0
        cols = _PAD + np.flatnonzero(self._seq[0, _PAD:_PAD + n] >= 0)
        self._occ = _Occurrences.of(self._seq[:, cols], cols, self._cls.total, self._seq.shape[1],
                                    self._seq.size)
        self._rebuild_runs()

    def _rebuild_runs(self) -> None:
        """The filter of every run of `VERBATIM_CAP` values the player played (no break
        inside), for the verbatim cap's quick test; after the oldest values went.  A
        bitmap, a bit per run's hash, not a set of the hashes: it is made once, so a
        memory that fills for hours does not grow by it (a set took ~130 bytes a value,
        the larger part of a value's cost: issue 16).  A bit set by another run (with a
        full memory ~1.6% of the bits are set) only costs `_copies` its exact look,
        which finds nothing: the same values are masked as with the set."""
        seq = self._seq[0]
        ends = np.arange(_PAD + VERBATIM_CAP - 1, _PAD + self._n, dtype=np.intp)
        if ends.size:
            whole = np.ones(ends.size, dtype=bool)
            for j in range(VERBATIM_CAP):
                whole &= seq.take(ends - j) >= 0
            ends = ends[whole]
        self._runs.fill(0)
        bits = _run_hashes(seq, ends) >> np.uint64(_RUN_SHIFT)
        np.bitwise_or.at(self._runs, (bits >> np.uint64(3)).astype(np.intp),
                         np.left_shift(1, bits & np.uint64(7)).astype(np.uint8))

    # --- predicting ------------------------------------------------------------------

    def predict(self, context) -> tuple[np.ndarray, np.ndarray] | None:
        """For the timeline's last value ids `context` (oldest first): per view the
        longest match m (values), and the memory's next-class distribution of every
        view, over the classes of all views numbered together (`_Classes.offsets`;
        the value view's classes are the value ids).  None when nothing the player
        played matches the context's last value."""
        longest = self._predict(context)
        return None if longest is None else (np.array(longest, dtype=np.intp), self._q.copy())

    def _predict(self, context) -> tuple[int, ...] | None:
        """`predict` into this memory's buffers (`_q`, `_found`), the longest matches
        as a tuple (what `mix` wants).

        The latest `RECENT` moments of the context's last value in each view, each
        one's match (how many of the context's last values agree with the values up to
        it; 0 when a break followed it: it continued nothing) and what followed it; per
        view a Witten-Bell mixture over the orders 1..its longest match.  Order j: the
        moments matched for at least j values; N their number, D the distinct classes
        that followed them; trust N / (N + D), the lowest order taking what the others
        leave; a moment matched for L values counts in the orders 1..L.  Compiled
        (`jazzd.model._memory.predict`; tests/memory_reference.py is this in numpy, and
        the two give the same floats)."""
        if self._vocab is None:
            raise RuntimeError("SessionMemory used before bind(vocab)")
        self._found = 0
        context = tuple(context)[-ORDER:]
        if self._n < 2 or not context:
            return None
        cls, occ, found = self._cls, self._occ, self._found_buffers
        got = _compiled.predict(self._flat, cls.global_table, context, occ.arena, occ.start, occ.count,
                                cls.globals[context[-1]], cls.offset_list, self._best, self._q, *found)
        if got is None:
            return None
        self._found, longest = got  # (its moments: the first `_found` of each of `found`)
        return longest

    def mix(self, probs: np.ndarray, context, own: int, imitation: float) -> np.ndarray:
        """The model's next-value distribution `probs` mixed with the memory's.

        `probs`: float32, as the runtime gives it (another type is a TypeError: the
        compiled `blend` reads it as float32), `context`: the timeline's last value ids
        (oldest first; the one fed to the model last at the end), `own`: how many of
        the last of them jazzd played itself (for the verbatim cap), `imitation` 0-1.
        Returns a buffer of this memory (float64) that the next call overwrites;
        `probs` is left as it is.
        """
        out = self._mixed
        self.masked = _NONE
        if imitation <= 0:
            np.copyto(out, probs)
            return out
        self._hint_min = 1 if imitation > 0.5 else HINT_MIN_MATCH
        longest = self._predict(context)
        if longest is not None:
            cls = self._cls
            imitation = min(float(imitation), 1.0)
            eager = (1.0 - EAGER * max(0.0, 2.0 * imitation - 1.0)) ** 2  # above 0.5: short matches count
            # five numbers: in plain Python (as numpy did them, the same floats)
            inside = eager * FOLLOW if own else eager  # jazzd's own values matched: a figure taken up goes on
            lam = [2.0 * imitation * w * (m * m) / (m * m + (inside if m >= FIGURE else eager) * h2)
                   for w, h2, m in zip(_WEIGHTS, _HALVES2, map(float, longest), strict=True)]
            total = sum(lam)
            if total > MAX_LAMBDA:
                lam = [x * (MAX_LAMBDA / total) for x in lam]
                total = MAX_LAMBDA
            # out = (1 - total) probs + lam[0] q (the exact values) + each coarse class's
            # share lam[view] q spread over its values as the model shares it among them
            # (a class nothing followed has q 0: its share is 0 whatever its mass; one the
            # model gave no mass has no value to take a share, so any divisor will do)
            _compiled.blend(probs, self._q, lam, 1.0 - total, cls.members, cls.starts, cls.coarse,
                            cls.coarse_view, *self._blend_buffers, out)
        else:
            np.copyto(out, probs)
        copies = self.masked = self._copies(context) if own >= VERBATIM_CAP else _NONE
        if longest is None and copies.size == 0:
            return out
        out[copies] = 0.0
        s = _sum(out)
        if s > 0:
            out /= s
        else:  # everything masked (a one-value vocabulary): the model alone
            np.copyto(out, probs)
        return out

    def _copies(self, context) -> np.ndarray:
        """The values that would continue a run of the player's as long as the verbatim
        cap, matching the context's last `VERBATIM_CAP` values: all moments, not only
        the latest."""
        context = tuple(context)[-VERBATIM_CAP:]
        if len(context) < VERBATIM_CAP:
            return _NONE
        bit = _run_hash(context) >> _RUN_SHIFT
        if not self._runs[bit >> 3] >> (bit & 7) & 1:
            return _NONE  # (a bit another run set only costs the full look below)
        seq = self._seq[0]
        cols = self._occ.latest(context[-1], self._occ.count[context[-1]])
        agree = seq.take(cols[:, None] - _BACK[:VERBATIM_CAP]) == np.array(context[::-1])
        following = seq.take(cols[agree.all(axis=1)] + 1)
        return following[following >= 0]

    def interval_for(self, token: int) -> Hint | None:
        """After `mix`: the player's interval (semitones from their previous note) at the
        moment `token` continued in a view that knows intervals (value, line, figure:
        the continuation there is of `token`'s class), the longest matching such moment
        first, then the finer view, then the latest; None if there is none matched for
        `HINT_MIN_MATCH` values (above imitation 0.5, for one)."""
        if not self._found:
            return None
        found = _compiled.hint(*self._found_buffers, self._found, self._cls.globals[token], _KNOWS_INTERVAL,
                               self._hint_min, self._seq.shape[1], self._has_ivl, self._ivl)
        return None if found is None else Hint(*found)

    # --- saving ----------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, "values": self.texts,
                           "intervals": self.intervals}, separators=(",", ":"))

    def save(self, path) -> None:
        """Write the memory to `path` atomically (a temporary file, then a rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def from_json(cls, text: str, capacity: int = CAPACITY) -> SessionMemory:
        """A memory from `to_json` text; ValueError (one line: what is wrong) otherwise."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"not JSON ({err})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a jazzd session memory (no \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, this jazzd reads version {VERSION}")
        values, intervals = data.get("values"), data.get("intervals")
        if not isinstance(values, list) or not isinstance(intervals, list) or len(values) != len(intervals):
            raise ValueError("\"values\" and \"intervals\" must be lists of the same length")
        memory = cls(capacity)
        for k, (value, interval) in enumerate(zip(values, intervals, strict=True)):
            if value is None:
                if interval is not None:
                    raise ValueError(f"entry {k}: a break with an interval")
            elif not isinstance(value, str):
                raise ValueError(f"entry {k}: value {value!r} is not a string")
            else:
                try:
                    parse_value(value)
                except VocabularyError as err:
                    raise ValueError(f"entry {k}: {err}") from None
            if interval is not None and (type(interval) is not int or not -127 <= interval <= 127):
                raise ValueError(f"entry {k}: interval {interval!r} is not a whole number of semitones")
        keep = slice(max(0, len(values) - capacity), None)
        memory.texts, memory.intervals = values[keep], intervals[keep]
        memory._count = len(memory.texts) - memory.texts.count(None)
        memory._break = True
        return memory


def hinted_pitch(hint: Hint | None, value: str, chord: Chord, prev_midi: int | None,
                 pitch_range: tuple[int, int]) -> int | None:
    """The pitch a `Hint` asks for: `prev_midi` + the player's interval, inside the range,
    when that pitch is of the value's TYPE over `chord` or a chord or scale tone
    (`KEEP_TYPES`), or anything but an outside tone once the figure is under way (the
    hint's match `FIGURE` values or more): the figure comes back transposed, with the
    player's exact intervals, entering on the harmony and running through its passing
    tones.  Else (an approach or outside tone the model did not ask for) of the
    value's TYPE, inside its window (without one: within a tone of the player's
    interval) and the range, the nearest to the player's pitch (then to `prev_midi`):
    the figure bent by a semitone or two to the chord.  None when no such pitch exists
    (the decoder chooses)."""
    if hint is None or prev_midi is None:
        return None
    v = parse_value(value)
    if v.type == "R":
        return None
    target = prev_midi + hint.interval
    if pitch_range[0] <= target <= pitch_range[1]:
        kind = classify(target, chord)
        if kind in (v.type, *KEEP_TYPES) or (hint.match >= FIGURE and kind != "X"):
            return target
    window = v.window_semis
    lo, hi = (prev_midi + window[0], prev_midi + window[1]) if window else (target - 2, target + 2)
    pool = candidates_of_type(v.type, chord, max(lo, pitch_range[0]), min(hi, pitch_range[1]))
    if not pool:
        return None
    return min(pool, key=lambda p: (abs(p - target), abs(p - prev_midi), p))


def memory_path(setting: str, environ=os.environ) -> Path | None:
    """Where the session memory is kept: `setting` ([model] memory / --memory) when a
    path, none for "off", and for "" memory.json in $STATE_DIRECTORY when systemd sets
    it (the first of its list), else none."""
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / "memory.json" if state else None


def load_memory(path, warn: Callable[[str], None], capacity: int = CAPACITY) -> SessionMemory:
    """The memory saved at `path`; an empty one if there is none yet.  A file that is
    not a memory (corrupt, another format or version, too big, unreadable) is one line
    to `warn` naming it and the fix, and an empty memory."""
    path = Path(path)
    fix = "jazzd starts with an empty memory and replaces the file on stop; move it away to keep it"
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(f"{size} bytes, more than a memory can be ({MAX_FILE_BYTES})")
        text = path.read_bytes().decode("utf-8")
        return SessionMemory.from_json(text, capacity)
    except FileNotFoundError:
        return SessionMemory(capacity)
    except UnicodeDecodeError:
        warn(f"{path}: not a jazzd session memory (not UTF-8 text): {fix}")
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        warn(f"{path}: not a jazzd session memory ({reason}): {fix}")
    return SessionMemory(capacity)


__all__ = ["CAPACITY", "ORDER", "VERBATIM_CAP", "VIEWS", "Hint", "SessionMemory", "hinted_pitch",
           "load_memory", "memory_path"]
