"""The pitch tables: which exact pitch a value becomes, and which TYPE a chord allows,
learned from real solos and stored in the bundle.  numpy only; any thread.

A value (`jazzd.music.grammar`) names a TYPE and an interval window, the interval from
the previous note plus and minus a minor third.  The window is centred on the interval
actually played: of the 138,834 windowed notes of the shipped model's 369 training
solos, every one sits exactly on its window's centre, and 95.5% still do after the
model's 1,000-value vocabulary maps the rare values to their nearest (the rest land
mostly a semitone or two off, or on a value without a window).  Decoding uniformly
inside the window threw that away (mean |interval| 3.1 generated against 2.7 real).
The tables keep it:

- `pitch_window` (4, 25, 13): notes per TYPE (C, S, A, X), window centre (-12..12
  semitones, the vocabulary's span) and real interval minus that centre (-6..6), counted
  under the model's vocabulary (the value the model would have been taught);
- `pitch_open` (4, 25): notes per TYPE and interval from the previous note (-12..12),
  for values without a window (a bar's first note);
- `pitch_reach` (5, 8): per chord family (`jazzd.music.features.CHORD_CLASSES`), rows
  C, S, A, X: notes over a chord on which that TYPE has any pitch
  (`grammar.type_reach`); row 4: all notes.

`PitchChooser` turns the counts into probabilities (smoothed towards the TYPE's pooled
row, so a rare window borrows its shape; the same counts summed by real interval give
P(interval | TYPE)) and draws from them with the injected rng (`pick`).
It also corrects the model's TYPE probabilities for the chord actually sounding
(`reweight`): the model is told only the chord's family, so it spreads X over chords
that have no X pitch at all; 60 of the 70 X values it sampled in 20 rendered solos fell
on such chords and became other notes, which is why X tones were 0.3% of generated
values against 1.7% real.  Over a chord, a TYPE it lacks gets probability 0 and a TYPE
it has is scaled by 1 / (the share of training notes of that family whose chord had it),
so the X the model means for the family lands on the chords that allow it (over the
shipped model's training solos: X has a pitch under 40% of the notes over major chords,
20% over dominants, 10% over minor and half-diminished ones, hence factors 2.5 to 9.7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jazzd.music.chords import Chord
from jazzd.music.features import CHORD_CLASSES, chord_class
from jazzd.music.grammar import NOTE_TYPES, TYPES, Value, parse_value, type_reach

MAX_STEP = 12     # window centres counted: -12..12 semitones
MAX_OFFSET = 6    # real interval minus the window's centre: -6..6 (grammar.WIDE_REACH)
MAX_OPEN = 12     # intervals into a bar's first note: -12..12
TABLE_SHAPES: dict[str, tuple[int, ...]] = {
    "pitch_window": (len(NOTE_TYPES), 2 * MAX_STEP + 1, 2 * MAX_OFFSET + 1),
    "pitch_open": (len(NOTE_TYPES), 2 * MAX_OPEN + 1),
    "pitch_reach": (len(NOTE_TYPES) + 1, len(CHORD_CLASSES)),
}
SMOOTHING = 13.0  # pseudo-notes of the TYPE's pooled row added to every window's row
MAX_BOOST = 20.0  # at most this factor for a TYPE's probability over a chord that has it
MIN_REACH = 20    # fewer training notes of a family over chords with a TYPE: no correction
_TYPE_ROW = {t: i for i, t in enumerate(NOTE_TYPES)}


def check_tables(tables: Mapping[str, np.ndarray]) -> str | None:
    """What is wrong with a set of pitch tables (None: nothing): all or none of
    `TABLE_SHAPES`, each float32 of its shape, finite counts >= 0."""
    if not tables:
        return None
    missing = sorted(set(TABLE_SHAPES) - set(tables))
    if missing:
        return f"pitch tables incomplete (missing {', '.join(missing)})"
    for name, shape in TABLE_SHAPES.items():
        a = tables[name]
        if a.dtype != np.float32 or a.shape != shape:
            return f"pitch table {name!r} is {a.dtype} {list(a.shape)}, expected float32 {list(shape)}"
        if not np.isfinite(a).all() or (a < 0).any():
            return f"pitch table {name!r} holds negative, NaN or Inf counts"
    return None


class PitchCounts:
    """Counts the tables from real notes, one `add` per note in playing order."""

    def __init__(self):
        self.window = np.zeros(TABLE_SHAPES["pitch_window"])
        self.open = np.zeros(TABLE_SHAPES["pitch_open"])
        self.reach = np.zeros(TABLE_SHAPES["pitch_reach"])

    def add(self, value: Value | str, midi: int, prev_midi: int | None, chord_class: int,
            reach: int) -> None:
        """A note `midi` read as `value` (as the model's vocabulary has it), after the
        previous note of the solo `prev_midi` (any bar; None for the first), over a chord
        of family `chord_class` whose `grammar.type_reach` is `reach`."""
        v = parse_value(value) if isinstance(value, str) else value
        t = _TYPE_ROW[v.type]
        self.reach[-1, chord_class] += 1
        for i in range(len(NOTE_TYPES)):
            if reach >> i & 1:
                self.reach[i, chord_class] += 1
        if prev_midi is None:
            return
        interval = midi - prev_midi
        if v.window is not None:
            step, offset = v.step_semis, interval - v.step_semis
            if abs(step) <= MAX_STEP and abs(offset) <= MAX_OFFSET:
                self.window[t, step + MAX_STEP, offset + MAX_OFFSET] += 1
        elif abs(interval) <= MAX_OPEN:
            self.open[t, interval + MAX_OPEN] += 1

    def tables(self) -> dict[str, np.ndarray]:
        return {"pitch_window": self.window.astype(np.float32), "pitch_open": self.open.astype(np.float32),
                "pitch_reach": self.reach.astype(np.float32)}


class PitchChooser:
    """Draws pitches and corrects TYPE probabilities by a bundle's pitch tables.

    `vocabulary`: the model's values in index order (for `reweight`)."""

    def __init__(self, tables: Mapping[str, np.ndarray], vocabulary: Sequence[str]):
        problem = check_tables(tables)
        if problem or not tables:
            raise ValueError(problem or "no pitch tables")
        window = np.asarray(tables["pitch_window"], dtype=np.float64)
        pooled = window.sum(axis=1, keepdims=True) + 1.0          # per TYPE, add-one
        pooled /= pooled.sum(axis=2, keepdims=True)
        rows = window + SMOOTHING * pooled
        self._window = rows / rows.sum(axis=2, keepdims=True)
        # The real intervals themselves, per TYPE (centre + offset: -18..18), add-one.
        span = MAX_STEP + MAX_OFFSET
        intervals = np.ones((len(NOTE_TYPES), 2 * span + 1))
        for c in range(2 * MAX_STEP + 1):
            intervals[:, c:c + 2 * MAX_OFFSET + 1] += window[:, c]
        self._interval = intervals / intervals.sum(axis=1, keepdims=True)
        open_ = np.asarray(tables["pitch_open"], dtype=np.float64) + 1.0
        self._open = open_ / open_.sum(axis=1, keepdims=True)
        reach = np.asarray(tables["pitch_reach"], dtype=np.float64)
        share = (reach[:-1] + 1.0) / (reach[-1] + 2.0)             # (4, families), Laplace
        # A TYPE the family (almost) never had in training was learned as (almost) never
        # played there: nothing to correct (C over the 'none' family, all NO_CHORD).
        self._boost = np.where(reach[:-1] >= MIN_REACH, np.minimum(1.0 / share, MAX_BOOST), 1.0)
        # `pick` works on pools of a few pitches: plain lists beat numpy's per-call cost
        # there (3 against 12 microseconds a pick).
        self._rows = (self._window.tolist(), self._open.tolist(), self._interval.tolist())
        order = {t: i for i, t in enumerate(TYPES)}                # C S A X R
        self._type_of = np.array([order[parse_value(v).type] for v in vocabulary], dtype=np.intp)
        self._factors: dict[tuple[int, int], np.ndarray] = {}
        self._out = np.empty(len(vocabulary), dtype=np.float64)

    def probabilities(self, vtype: str, step: int | None) -> np.ndarray:
        """P(interval - step) over -6..6 for a windowed value (`step` its centre), or
        P(interval) over -12..12 without a window (`step` None)."""
        t = _TYPE_ROW[vtype]
        if step is None:
            return self._open[t]
        return self._window[t, min(max(step, -MAX_STEP), MAX_STEP) + MAX_STEP]

    def interval_probabilities(self, vtype: str) -> np.ndarray:
        """P(interval | TYPE) over -18..18 semitones, from the windowed notes."""
        return self._interval[_TYPE_ROW[vtype]]

    def pick(self, pool: Sequence[int], vtype: str, prev_midi: int, step: int | None,
             rng: np.random.Generator) -> int:
        """One pitch of `pool` (pitches within `MAX_OFFSET` of prev_midi + step, or within
        `MAX_OPEN` of prev_midi without a step), by the tables; one `rng.random()`, two
        without a step when the previous pitch is in the pool.

        With a step, a pitch weighs P(its offset from the centre | TYPE, window) times
        P(its interval | TYPE): the centre, when it is in the pool, wins as the first
        says (96% of the counted notes sit on it); when it is not (the model does not
        know the absolute pitch, so its TYPE and interval disagree for about half the
        windowed values it samples), the second prefers the smaller steps real players take (over the validation solos'
        changes, seeds 0 and 100: mean |interval| 2.96 and 3.02 with the first alone,
        2.92 and 2.91 with both; 2.69 real).  Without a step (a bar's first note) the
        previous pitch is repeated with exactly the table's probability of a repeat and
        otherwise left out: renormalised over a pool of one TYPE's pitches its weight
        came out too high (a bar opened on the previous pitch 13.6% of the time in 20
        rendered solos, against 7.6% in the training solos)."""
        windows, opens, intervals = self._rows
        t = _TYPE_ROW[vtype]
        if step is None:
            row = opens[t]
            if len(pool) > 1 and prev_midi in pool:
                if rng.random() < row[MAX_OPEN]:
                    return prev_midi
                pool = [p for p in pool if p != prev_midi]
            weights = [row[p - prev_midi + MAX_OPEN] for p in pool]
        else:
            row = windows[t][min(max(step, -MAX_STEP), MAX_STEP) + MAX_STEP]
            span = MAX_STEP + MAX_OFFSET
            base = prev_midi + step - MAX_OFFSET
            weights = [row[p - base] * intervals[t][min(max(p - prev_midi, -span), span) + span]
                       for p in pool]
        u = rng.random() * sum(weights)
        total = 0.0
        for p, w in zip(pool, weights, strict=True):
            total += w
            if total > u:
                return int(p)
        return int(pool[-1])

    def type_factors(self, chord: Chord) -> np.ndarray:
        """Per TYPE (C, S, A, X, R): what the model's probability of a value of that TYPE
        is multiplied by over `chord` (0 where the chord has no pitch of it; rests 1)."""
        reach, family = type_reach(chord), chord_class(chord)
        f = np.ones(len(TYPES))
        for i in range(len(NOTE_TYPES)):
            f[i] = self._boost[i, family] if reach >> i & 1 else 0.0
        return f

    def reweight(self, probs: np.ndarray, chord: Chord) -> np.ndarray:
        """The model's probabilities over values, corrected for the TYPEs `chord` has
        (unnormalised: the sampler normalises).  Returns a buffer of this chooser's,
        overwritten by the next call; `probs` is left as it is."""
        key = (type_reach(chord), chord_class(chord))
        factors = self._factors.get(key)
        if factors is None:
            factors = self._factors[key] = self.type_factors(chord)[self._type_of]
        return np.multiply(probs, factors, out=self._out)
