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

The previous pitch and the line (`fits`, `Line`).  The model knows the previous value's
TYPE, never its pitch, so about half the windowed values it samples name a TYPE the
window's centre is not (a "chord tone a whole step up" from E over Cmaj7): in 41 solos
rendered over the validation changes (seed 0), 56% of the windowed notes had to be
played off their centre, 3.3 semitones from the previous note on average against 2.2 on
it, which is where the fourths and tritones came from (mean |interval| 2.91 against 2.70
real; whole steps 0.23 against 0.28).  No real note is ever encoded so, so once the
previous pitch is known such a value is impossible: `agrees` gives it probability 0, and
a value whose centre is of its TYPE the factor 1 / (the share of the pitch classes of the
previous pitch's TYPE from which it would be), which is Bayes' rule for a model that
spread its probability over those pitch classes (a hard mask alone favours the values
that fit from anywhere, repeated notes above all: 0.15 of the intervals against 0.047
real).  Off-centre notes fall to 8%.  Three more tables, counted like the others, are
read as factors on the same values and on a bar's first note (whose interval the model
never sees, so nothing held the register: jazzd's lines wandered over the whole range,
7.9 semitones of pitch spread within a solo against 5.6 real):

- `pitch_open_register` (4, 7, 25): a bar's first notes per TYPE, class of the previous
  pitch against the line's register (`Line.register_class`: a running mean over about
  `REGISTER_NOTES` notes, `REGISTER_EDGES` away) and interval; the register pulls
  (correlation of that distance with the next interval over the training solos: -0.38
  for a bar's first note, -0.25 for the others);
- `pitch_step_register` (7, 25): windowed notes per register class and window centre;
- `pitch_turn` (3, 5, 25): per kind of note (`TURNS`: a bar's first, the one after it,
  any other windowed note) and class of the interval into the previous note
  (`TURN_EDGES`: leaps and steps each way, a repeat): the interval or window centre
  (after a leap of 5 or more, real lines turn back 70% of the time; jazzd's 55%);
- `pitch_players` (solos, 25): each training solo's windowed notes by window centre.

A bar's first note is drawn from P(interval | TYPE, register class) times P(interval |
turn class) / P(interval); a windowed value's probability is multiplied by P(step |
register class) / P(step) and, except right after a repeated note (where it would
compound runs of repeats), P(step | turn class) / P(step).  The model sees the
interval into the previous note inside a bar, so the last factor counts some of
that twice; measured, jazzd still changed direction more often than players (0.50
against 0.42 of the notes whose previous interval the model saw) and the factor brings
it to the players' rate.

Real solos differ from each other: one player steps, another leaps (a solo's mean
|interval| varies with a standard deviation of 0.42 semitones across the validation
solos, jazzd's 0.16: one model, one setting).  So each performance (a `Soloist`, its rng)
draws one training solo and steps like it (`player`: P(window centre | that solo) /
P(window centre | all), the solo smoothed with `PLAYER_SMOOTHING` notes of all of
them, 50: chosen on 80 training solos' changes, not the validation solos), as each
performance draws a feel of its own.  Without it the line matched the real solos' mean
interval (2.68 against 2.70) so uniformly that the report's MGEval line OA fell (0.858
-> 0.837: its inter-set distances came out narrower than the real solos' own).

Over the validation changes, seeds 0, 100, 200, 300 (`bench/pitchfake.py`), before ->
the consistency factor alone -> with the register and turn tables -> with the player
drawn: the real-or-generated test's balanced accuracy with pitch features alone 0.762 ->
0.68 (seeds 0, 100) -> 0.582 -> 0.551, overall 0.816 -> 0.78 -> 0.753 -> 0.732; mean
|interval| 2.89 -> 2.56 -> 2.68 -> 2.66 (real 2.70); pitch spread within a solo 8.0 ->
7.8 -> 5.7 -> 5.8 (real 5.6); MGEval OA harmony / rhythm / line .893 / .876 / .858 ->
.890 / .884 / .837 (with the tables) -> .902 / .878 / .905.  A bundle without the
context tables (made before them) loads and decodes with `agrees` alone.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from jazzd.music.chords import Chord
from jazzd.music.features import CHORD_CLASSES, chord_class
from jazzd.music.grammar import (
    NOTE_TYPES,
    TYPES,
    Value,
    parse_value,
    type_reach,
    types_by_pitch_class,
)

MAX_STEP = 12     # window centres counted: -12..12 semitones
MAX_OFFSET = 6    # real interval minus the window's centre: -6..6 (grammar.WIDE_REACH)
MAX_OPEN = 12     # intervals into a bar's first note: -12..12
REGISTER_NOTES = 32                   # the line's register: a running mean over about this many notes
REGISTER_EDGES = (-9, -6, -3, 3, 6, 9)  # semitones from it: 7 register classes
TURN_EDGES = (-4, 0, 1, 5)             # the interval into the previous note: <= -5, -4..-1, 0, 1..4, >= 5
TURNS = ("open", "after open", "inner")  # a bar's first note; the note after it; any other windowed note
BASE_SHAPES: dict[str, tuple[int, ...]] = {
    "pitch_window": (len(NOTE_TYPES), 2 * MAX_STEP + 1, 2 * MAX_OFFSET + 1),
    "pitch_open": (len(NOTE_TYPES), 2 * MAX_OPEN + 1),
    "pitch_reach": (len(NOTE_TYPES) + 1, len(CHORD_CLASSES)),
}
CONTEXT_SHAPES: dict[str, tuple[int, ...]] = {
    "pitch_open_register": (len(NOTE_TYPES), len(REGISTER_EDGES) + 1, 2 * MAX_OPEN + 1),
    "pitch_step_register": (len(REGISTER_EDGES) + 1, 2 * MAX_STEP + 1),
    "pitch_turn": (len(TURNS), len(TURN_EDGES) + 1, 2 * MAX_STEP + 1),
    "pitch_players": (-1, 2 * MAX_STEP + 1),  # one row per training solo (any number, at least 1)
}
TABLE_SHAPES: dict[str, tuple[int, ...]] = {**BASE_SHAPES, **CONTEXT_SHAPES}
SMOOTHING = 13.0  # pseudo-notes of the TYPE's pooled row added to every window's row
OPEN_SMOOTHING = 25.0  # pseudo-notes of the TYPE's open row added to each register class's
PLAYER_SMOOTHING = 50.0  # pseudo-notes of all solos' window centres added to the one drawn
MAX_BOOST = 20.0  # at most this factor for a TYPE's probability over a chord that has it
MIN_REACH = 20    # fewer training notes of a family over chords with a TYPE: no correction
# The chooser's caches, bounded (a service plays for weeks: issue 16); the least recently
# put entry goes first (`_bounded_put`).  A chooser belongs to a Runtime, so it outlives engines and reloads.
AGREE_CACHE = 2048  # `agrees` colours (0.75 kB each, key and factors): the TYPEs of the pitch
#                    classes from the previous pitch; a chord's scale depends on its root, so 22
#                    chord qualities over 12 roots make 1,308 of them (1.5 MB at most)
PLAYER_CACHE = 4   # `player` rows (8 kB each): a new engine draws a new training solo
_TYPE_ROW = {t: i for i, t in enumerate(NOTE_TYPES)}
_TYPE_ORDER = {t: i for i, t in enumerate(TYPES)}  # C S A X R
_CLASS_TYPE = np.repeat(np.arange(len(TYPES)), 12)  # `agrees`' classes: TYPE x step mod 12 ...
_CLASS_STEP = np.tile(np.arange(12), len(TYPES))
_AGREE_CLASSES = _CLASS_TYPE.size + 1               # ... and the values without a window


def _bounded_put(cache: dict, key, value, bound: int) -> None:
    """cache[key] = value, dropping the least recently put entries so that at most
    `bound` stay (a hit that `pop`s its entry and puts it back is the most recent)."""
    while len(cache) >= bound:
        del cache[next(iter(cache))]
    cache[key] = value


def check_tables(tables: Mapping[str, np.ndarray]) -> str | None:
    """What is wrong with a set of pitch tables (None: nothing): all or none of
    `BASE_SHAPES`, and with them all or none of `CONTEXT_SHAPES` (bundles made before
    the context tables have none), each float32 of its shape, finite counts >= 0."""
    if not tables:
        return None
    missing = sorted(set(BASE_SHAPES) - set(tables))
    if not missing and set(CONTEXT_SHAPES) & set(tables):
        missing = sorted(set(CONTEXT_SHAPES) - set(tables))
    if missing:
        return f"pitch tables incomplete (missing {', '.join(missing)})"
    for name, shape in TABLE_SHAPES.items():
        if name not in tables:
            continue
        a = tables[name]
        if shape[0] == -1 and a.ndim == len(shape) and a.shape[0] >= 1:
            shape = (a.shape[0], *shape[1:])
        if a.dtype != np.float32 or a.shape != shape:
            return f"pitch table {name!r} is {a.dtype} {list(a.shape)}, expected float32 {list(shape)}"
        if not np.isfinite(a).all() or (a < 0).any():
            return f"pitch table {name!r} holds negative, NaN or Inf counts"
    return None


@dataclass(frozen=True, slots=True)
class Line:
    """What the chooser knows of the line beyond its last pitch: its register (a running
    mean of its pitches, the first `REGISTER_NOTES` averaged equally, later ones with
    weight 1 / REGISTER_NOTES), the interval into its last note (None before two
    notes) and whether that note had no window (a bar's first).  Immutable: a
    snapshot is the object itself."""

    centre: float = 0.0
    notes: int = 0
    step: int | None = None
    opened: bool = False

    def then(self, prev_midi: int | None, midi: int, windowed: bool) -> Line:
        """The line after a note `midi` (after `prev_midi`, None for the first)."""
        notes = self.notes + 1
        return Line(self.centre + (midi - self.centre) / min(notes, REGISTER_NOTES), notes,
                    None if prev_midi is None else midi - prev_midi, not windowed)

    def register_class(self, prev_midi: int) -> int:
        """Where `prev_midi` lies against the line's register: 0 (9 semitones or more
        below) .. 6 (9 or more above); 3 within 3 of it, and before any note."""
        if not self.notes:
            return len(REGISTER_EDGES) // 2
        return bisect_right(REGISTER_EDGES, prev_midi - self.centre)

    def turn_class(self) -> int | None:
        """The interval into the last note as a class of `TURN_EDGES` (None: unknown)."""
        return None if self.step is None else bisect_right(TURN_EDGES, self.step)


class PitchCounts:
    """Counts the tables from real notes, one `add` per note in playing order."""

    def __init__(self):
        self.window = np.zeros(TABLE_SHAPES["pitch_window"])
        self.open = np.zeros(TABLE_SHAPES["pitch_open"])
        self.reach = np.zeros(TABLE_SHAPES["pitch_reach"])
        self.open_register = np.zeros(TABLE_SHAPES["pitch_open_register"])
        self.step_register = np.zeros(TABLE_SHAPES["pitch_step_register"])
        self.turn = np.zeros(TABLE_SHAPES["pitch_turn"])
        self.players: list[np.ndarray] = []  # per solo: its windowed notes by window centre
        self.line = Line()

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
        if prev_midi is None:  # a solo's first note: a new line
            self.line = Line().then(None, midi, v.window is not None)
            self.players.append(np.zeros(2 * MAX_STEP + 1))
            return
        line, interval = self.line, midi - prev_midi
        self.line = line.then(prev_midi, midi, v.window is not None)
        register, turn = line.register_class(prev_midi), line.turn_class()
        if v.window is not None:
            step, offset = v.step_semis, interval - v.step_semis
            if abs(step) <= MAX_STEP and abs(offset) <= MAX_OFFSET:
                self.window[t, step + MAX_STEP, offset + MAX_OFFSET] += 1
            if abs(step) <= MAX_STEP:
                self.step_register[register, step + MAX_STEP] += 1
                self.players[-1][step + MAX_STEP] += 1
                if turn is not None:
                    self.turn[1 if line.opened else 2, turn, step + MAX_STEP] += 1
        elif abs(interval) <= MAX_OPEN:
            self.open[t, interval + MAX_OPEN] += 1
            self.open_register[t, register, interval + MAX_OPEN] += 1
            if turn is not None:
                self.turn[0, turn, interval + MAX_OPEN] += 1

    def tables(self) -> dict[str, np.ndarray]:
        return {"pitch_window": self.window.astype(np.float32), "pitch_open": self.open.astype(np.float32),
                "pitch_reach": self.reach.astype(np.float32),
                "pitch_open_register": self.open_register.astype(np.float32),
                "pitch_step_register": self.step_register.astype(np.float32),
                "pitch_turn": self.turn.astype(np.float32),
                "pitch_players": np.array(self.players or [np.zeros(2 * MAX_STEP + 1)], dtype=np.float32)}


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
        values = [parse_value(v) for v in vocabulary]
        self._type_of = np.array([order[v.type] for v in values], dtype=np.intp)
        self._factors: dict[tuple[int, int], np.ndarray] = {}
        self._out = np.empty(len(vocabulary), dtype=np.float64)
        self._fit = np.empty(len(vocabulary), dtype=np.float64)
        # `fits`: each windowed value's centre (its step from the previous pitch)
        self._windowed = np.array([v.window is not None for v in values])
        self._step_of = np.array([v.step_semis if v.window is not None else 0 for v in values], dtype=np.intp)
        self._agrees: dict[tuple[str, ...], np.ndarray] = {}
        # `agrees`: each value's (TYPE, step mod 12) class; the values without a window the last
        self._agree_class = np.where(self._windowed, self._type_of * 12 + self._step_of % 12, _AGREE_CLASSES - 1)
        self._agree_row = np.empty(len(vocabulary), dtype=np.float64)
        self.context = all(n in tables for n in CONTEXT_SHAPES)
        if self.context:
            # P(interval | TYPE, register class) for a bar's first note, smoothed towards
            # the TYPE's row; P(step | register) / P(step) and P(step | turn) / P(step)
            # as factors on the windowed values (add-one).
            by_register = np.asarray(tables["pitch_open_register"], dtype=np.float64)
            rows = by_register + OPEN_SMOOTHING * self._open[:, None, :]
            self._open_register = (rows / rows.sum(axis=2, keepdims=True)).tolist()
            self._step_register = _ratio(np.asarray(tables["pitch_step_register"], dtype=np.float64))
            self._turn = np.stack([_ratio(t) for t in np.asarray(tables["pitch_turn"], dtype=np.float64)])
            self._open_turn = self._turn[0].tolist()
            steps = np.clip(self._step_of, -MAX_STEP, MAX_STEP) + MAX_STEP
            ones = np.ones(len(values))
            # the same factors as rows over the vocabulary (1 for rests and open values)
            self._register_rows = [np.where(self._windowed, row[steps], ones) for row in self._step_register]
            self._turn_rows = [[np.where(self._windowed, row[steps], ones) for row in table]
                               for table in self._turn]
            players = np.asarray(tables["pitch_players"], dtype=np.float64)
            self._players = players
            self._all_players = (players.sum(axis=0) + 1.0) / (players.sum() + players.shape[1])
            self._player_rows: dict[int, np.ndarray] = {}
            self._steps = steps
        self.players = len(self._players) if self.context else 0

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
             rng: np.random.Generator, line: Line | None = None) -> int:
        """One pitch of `pool` (pitches within `MAX_OFFSET` of prev_midi + step, or within
        `MAX_OPEN` of prev_midi without a step), by the tables; one `rng.random()`, two
        without a step when the previous pitch is in the pool.

        With a step, a pitch weighs P(its offset from the centre | TYPE, window) times
        P(its interval | TYPE): the centre, when it is in the pool, wins as the first
        says (96% of the counted notes sit on it); when it is not (the model does not
        know the absolute pitch, so its TYPE and interval disagreed for about half the
        windowed values it sampled; 8% since `fits`), the second prefers the smaller
        steps real players take (before `fits`, over the validation solos' changes,
        seeds 0 and 100: mean |interval| 2.96 and 3.02 with the first alone, 2.92 and
        2.91 with both; 2.69 real).  Without a step (a bar's first note) the
        previous pitch is repeated with exactly the table's probability of a repeat and
        otherwise left out: renormalised over a pool of one TYPE's pitches its weight
        came out too high (a bar opened on the previous pitch 13.6% of the time in 20
        rendered solos, against 7.6% in the training solos).  With the context tables
        and a `line`, that table is the register class's row, times the turn factor."""
        windows, opens, intervals = self._rows
        t = _TYPE_ROW[vtype]
        if step is None:
            row = opens[t]
            if line is not None and self.context:
                row = self._open_register[t][line.register_class(prev_midi)]
                turn = line.turn_class()
                if turn is not None:
                    row = [w * f for w, f in zip(row, self._open_turn[turn], strict=True)]
                    total = sum(row)
                    row = [w / total for w in row]
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

    def agrees(self, chord: Chord, prev_midi: int) -> np.ndarray:
        """Per value, how much more likely it is once the previous pitch is known, not
        only its TYPE: 0 for a windowed value whose centre, prev_midi + its step, is not
        a pitch of its TYPE over `chord` (no real note is ever encoded so); for one
        whose centre is, 1 / the share of the pitch classes of prev_midi's TYPE from
        which it would be (the model, which knows that TYPE but not the pitch, spread
        its probability over them); 1 for rests and values without a window.  Returns a
        buffer of this chooser's, overwritten by the next call.

        The factor depends on a value's TYPE and step (mod 12) only, and on the TYPEs of
        the twelve pitch classes counted from prev_midi's: the cache keeps, per such
        colour (G7 from G and Bb7 from Bb share one), the 61 factors of those classes
        (`_AGREE_CLASSES`: 0.5 kB, not a row of the vocabulary's 8 kB), the `AGREE_CACHE`
        colours used last, and spreads them over the values here (the same floats)."""
        types, pc = types_by_pitch_class(chord), prev_midi % 12
        key = types[pc:] + types[:pc]  # the TYPEs from prev_midi's pitch class up
        factors = self._agrees.pop(key, None)  # (put back below: the most recent)
        if factors is None:
            pc_type = np.array([_TYPE_ORDER[t] for t in key], dtype=np.intp)
            alike = np.flatnonzero(pc_type == pc_type[0])
            share = (pc_type[(alike[:, None] + _CLASS_STEP[None, :]) % 12] == _CLASS_TYPE).mean(axis=0)
            here = pc_type[_CLASS_STEP] == _CLASS_TYPE
            factors = np.append(np.where(here, 1.0 / np.maximum(share, 1e-9), 0.0), 1.0)  # last: no window
        _bounded_put(self._agrees, key, factors, AGREE_CACHE)
        return factors.take(self._agree_class, out=self._agree_row)

    def player(self, k: int) -> np.ndarray:
        """Per value: the factor that makes the line step like training solo `k` (of
        `players`): P(window centre | that solo) / P(window centre | all solos), the
        solo's counts smoothed with `PLAYER_SMOOTHING` notes of all solos'; 1 for rests
        and values without a window.  Cached; read-only."""
        row = self._player_rows.get(k)
        if row is None:
            counts, every = self._players[k], self._all_players
            factor = (counts + PLAYER_SMOOTHING * every) / (counts.sum() + PLAYER_SMOOTHING) / every
            row = np.where(self._windowed, factor[self._steps], 1.0)
            row.flags.writeable = False
            _bounded_put(self._player_rows, k, row, PLAYER_CACHE)
        return row

    def fits(self, probs: np.ndarray, chord: Chord, prev_midi: int, line: Line | None = None,
             player: int | None = None) -> np.ndarray:
        """The model's probabilities over values given the previous pitch and the line:
        times `agrees`, and with the context tables and a `line`, times P(step | the
        line's register class) / P(step) and, except right after a repeated note,
        P(step | the interval into the previous note) / P(step), and with a `player`,
        times `player(player)` (unnormalised).  Where
        that leaves no mass, `probs` as they are.  Returns a buffer of this chooser's,
        overwritten by the next call."""
        out = np.multiply(probs, self.agrees(chord, prev_midi), out=self._fit)
        if line is not None and self.context:
            out *= self._register_rows[line.register_class(prev_midi)]
            turn = line.turn_class()
            if turn is not None and line.step != 0:
                out *= self._turn_rows[1 if line.opened else 2][turn]
        if player is not None and self.context:
            out *= self.player(player)
        if not out.sum() > 0:
            np.copyto(out, probs)
        return out


def _ratio(counts: np.ndarray) -> np.ndarray:
    """Rows of P(x | row) / P(x), add-one, from counts (rows x values)."""
    counts = counts + 1.0
    return (counts / counts.sum(axis=1, keepdims=True)) / (counts.sum(axis=0) / counts.sum())
