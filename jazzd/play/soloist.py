"""The soloist: model predictions -> values -> notes over chords.  Deterministic core.

numpy only; runs in whichever thread owns it (the engine's, or `jazzd generate`'s);
never reads a clock or a global random state: time comes in as beat positions and all
randomness from the injected `numpy.random.Generator`.  This is the one decoding path
shared by `jazzd generate` and the live engine.

With a bundle that has pitch tables (`jazzd.model.pitchtable`), the value's TYPE is
sampled only among those the chord has (corrected for the model seeing just the chord's
family), a windowed value only where its window's centre, from the previous pitch, is of
its TYPE (`PitchChooser.fits`: the model knows the previous TYPE, not the pitch), leaning
toward the line's register and the turns real lines take after the interval before
(`Line`, kept here: part of the snapshot), and its pitch is drawn as real players chose
it; without, pitches are drawn uniformly inside the value's window, as before the tables
existed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from jazzd.model.memory import ORDER, Hint, SessionMemory, hinted_pitch
from jazzd.model.pitchtable import Line
from jazzd.model.runtime import Runtime
from jazzd.music.chords import NO_CHORD, Chord
from jazzd.music.features import chord_class, position_class
from jazzd.music.grammar import decode_value, encode_value, parse_value
from jazzd.music.timeline import GRID_TWELFTHS, on_grid

_FEATURES = ("position", "chord")  # what `_features` can give, in this order
DROP_CACHE = 64  # `Soloist._dropped`'s cases kept (at most 8 kB each)
DEFAULT_RANGE = (55, 84)  # G3..C6: a tenor/alto's comfortable solo range


@dataclass
class Sampling:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.95


def _without(probs: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """`probs` with `ids` set to 0 (a copy), unless that leaves nothing to draw."""
    if ids.size == 0:
        return probs
    masked = probs.copy()
    masked[ids] = 0.0
    return masked if masked.sum() > 0 else probs


_NO_IDS = np.empty(0, dtype=np.intp)


def _by_length(durs: np.ndarray, which: np.ndarray) -> tuple[tuple[float, ...], list[np.ndarray]]:
    """For the values `which` selects: their lengths `durs`, distinct and sorted, and for
    each place k in them, the ids of the values at least the k-th length long (after
    the last, none): those longer than any length from the (k - 1)-th up to the k-th."""
    bounds = tuple(sorted({float(d) for d in durs[which]}))
    return bounds, [np.flatnonzero(which & (durs >= b)) for b in bounds] + [_NO_IDS]


class Soloist:
    """Advances the LSTM one value at a time, either listening or playing.

    The model is asked for the value that starts at a given place in the bar over a given
    chord; `hear` teacher-forces a value someone else played there instead.

    With a session `memory` and `imitation` above 0, the model's distribution is mixed
    with the memory's before the draw (`SessionMemory.mix`), the context being the
    timeline's last values, heard and played; after `play` draws a note, `hint` holds the
    player's interval for it, if it continued a figure of theirs, and `play` takes that
    pitch when it fits.  The memory learns nothing here (the engine teaches it the player's
    values); each value jazzd plays interrupts the player's line in it (`cut`), unless it
    is of a line under the player's (`cut=False`).  At imitation 0 the memory is never
    asked: decoding is exactly what it is without one.
    """

    def __init__(self, runtime: Runtime, rng: np.random.Generator, sampling: Sampling | None = None,
                 pitch_range: tuple[int, int] = DEFAULT_RANGE, memory: SessionMemory | None = None):
        self.runtime = runtime
        self.vocab = runtime.vocab
        self.rng = rng
        self.sampling = sampling or Sampling()
        self.pitch_range = pitch_range
        self.prev_token = runtime.bos
        self.prev_midi: int | None = None
        self.line = Line()  # the line so far, for the pitch chooser (register, last interval)
        self._names = tuple(runtime.cfg.get("features", ()))
        self.chooser = runtime.chooser  # None: the bundle has no pitch tables
        self.memory = memory
        if memory is not None:
            memory.bind(self.vocab)
        # A performance steps like one training solo, drawn here (`PitchChooser.player`).
        players = self.chooser.players if self.chooser is not None else 0
        self.player = int(rng.integers(players)) if players else None
        self.imitation = 0.0
        self.hint: Hint | None = None
        self._context: tuple[int, ...] = ()  # the timeline's last ORDER value ids
        self._own = 0                        # how many of them, at the end, jazzd played
        self._hint_token: int | None = None  # the value drawn last, if the memory was asked
        self._off_grid_from: dict[int, np.ndarray] = {}  # `_off_grid`'s answers
        self._drops: dict[tuple, np.ndarray] = {}  # `_dropped`'s answers

    def reset(self) -> None:
        self.runtime.reset()
        self.prev_token = self.runtime.bos
        self.prev_midi = None
        self.line = Line()
        self._context, self._own, self.hint, self._hint_token = (), 0, None, None
        if self.memory is not None:
            self.memory.cut()

    def snapshot(self) -> tuple:
        """Everything `play` and `hear` carry from one value to the next, copied: the
        model's state, the value it will be fed next, the last pitch and the line, the
        context of the session memory.  Opaque; for `restore` (the engine takes one before each value it
        plans, to roll back a cut)."""
        return (self.runtime.get_state(), self.prev_token, self.prev_midi, self.line, self._context, self._own)

    def restore(self, snapshot: tuple) -> None:
        """Back to a `snapshot` (which stays intact: it can be restored again)."""
        state, self.prev_token, self.prev_midi, self.line, self._context, self._own = snapshot
        self.runtime.set_state(state)

    def _features(self, bar_pos: float, first_in_bar: bool, chord: Chord | None) -> tuple[int, ...]:
        values = (position_class(bar_pos, first_in_bar), chord_class(chord))
        if self._names == _FEATURES:  # (every model trained today: no dict, no generator per step)
            return values
        return tuple(values[_FEATURES.index(n)] for n in self._names)

    def hear(self, value: str, bar_pos: float, first_in_bar: bool, chord: Chord | None,
             midi: int | None = None) -> None:
        """Teacher-force a value that was played (by the player, or replayed)."""
        self.runtime.advance(self.prev_token, self._features(bar_pos, first_in_bar, chord))
        self.prev_token = self.vocab.index(value)
        self._context = (*self._context[1 - ORDER:], self.prev_token)
        self._own = 0
        if midi is not None:
            self._note(midi, value)

    def _note(self, midi: int, value: str) -> None:
        self.line = self.line.then(self.prev_midi, midi, parse_value(value).window is not None)
        self.prev_midi = midi

    def next_value(self, bar_pos: float, first_in_bar: bool, chord: Chord | None,
                   max_rest: float = math.inf, min_dur: float = 0.0, max_note: float = math.inf,
                   cut: bool = True) -> str:
        """Sample the value that starts at `bar_pos` over `chord`, and commit to it; a
        rest only if it lasts at most `max_rest` beats (a turn that has to begin), a note
        only if at most `max_note` (what a budget holds); with `min_dur`, nothing shorter
        than that (a line that must not get busy) and, from a grid point, nothing that
        would end off the grid (`jazzd.music.timeline`: the beat would cut it short).
        `cut`: the value interrupts the player's line in the memory (not so for a line
        played under the player's, which goes on)."""
        probs = self.runtime.step(self.prev_token, self._features(bar_pos, first_in_bar, chord))
        memory = self.memory
        imitate = memory is not None and self.imitation > 0
        if memory is not None and cut:
            memory.cut()  # jazzd plays: the player's line is interrupted
        if imitate:
            probs = memory.mix(probs, self._context, self._own, self.imitation)
        # The chooser corrects the TYPE for the chord sounding, after the memory's mix
        # (whose values were learned over other chords), then the values for the pitch
        # they start from and the line so far.
        if self.chooser is not None and chord is not None:
            probs = self.chooser.reweight(probs, chord)
            if self.prev_midi is not None:
                probs = self.chooser.fits(probs, chord, self.prev_midi, self.line, self.player)
        if max_rest < math.inf:
            probs = _without(probs, self._longer(self._rest_lengths, max_rest))
        if min_dur > 0 or max_note < math.inf:
            twelfth = round((bar_pos - math.floor(bar_pos + 1e-6)) * 12) % 12 \
                if min_dur > 0 and on_grid(bar_pos) else None
            probs = _without(probs, self._dropped(min_dur, max_note, twelfth))
        s = self.sampling
        token = self.runtime.sample(probs, self.rng, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
        # the player's interval for it, if the memory has one, is looked up by `play`
        # when the value turns out to be a note (a rest needs none)
        self.hint, self._hint_token = None, token if imitate else None
        self.prev_token = token
        self._context = (*self._context[1 - ORDER:], token)
        self._own += 1
        return self.vocab.value(token)

    def amend(self, value: str) -> None:
        """The value just sampled was played as `value` (shortened to keep the beat or
        at the end of an answer): the model hears that one next, not the one it chose."""
        self.prev_token = self.vocab.index(value)
        self._context = (*self._context[:-1], self.prev_token)

    def play(self, bar_pos: float, first_in_bar: bool, chord: Chord, max_rest: float = math.inf,
             min_dur: float = 0.0, max_note: float = math.inf, cut: bool = True) -> tuple[str, int | None, float]:
        """Sample a value and decode it: (value, MIDI pitch or None for a rest, beats);
        a rest of at most `max_rest` beats, a note of at most `max_note`, nothing
        shorter than `min_dur` (`next_value`; and `cut`).
        Where the session memory offers the player's own interval for it (`hint`) and
        that pitch fits the value, the pitch is the player's interval from the last note."""
        value = self.next_value(bar_pos, first_in_bar, chord, max_rest, min_dur, max_note, cut)
        midi, dur = decode_value(parse_value(value), chord, self.prev_midi, self.pitch_range, self.rng,
                                 self.chooser, self.line)
        if midi is not None and self._hint_token is not None:
            self.hint = self.memory.interval_for(self._hint_token)
        if self.hint is not None and midi is not None:
            hinted = hinted_pitch(self.hint, value, chord, self.prev_midi, self.pitch_range)
            if hinted is not None and hinted != midi:
                v = parse_value(value)
                played = encode_value(hinted, v.dur, chord, self.prev_midi if v.window is not None else None)
                token = self.vocab.index(played)
                if token not in self.memory.masked:
                    if played != value:
                        value = played
                        self.amend(value)
                    midi = hinted
        if midi is not None:
            self._note(midi, value)
        return value, midi, dur

    def _longer(self, lengths: tuple[tuple[float, ...], list[np.ndarray]], beats: float) -> np.ndarray:
        """The ids of the values longer than `beats` in `lengths` (`_by_length`)."""
        bounds, longer = lengths
        return longer[bisect_right(bounds, beats + 1e-6)]

    def _dropped(self, min_dur: float, max_note: float, twelfth: int | None) -> np.ndarray:
        """The ids `next_value` leaves out for `min_dur` and `max_note`, and from the grid
        point `twelfth` twelfths into a beat (None: not on the grid) those that would end
        off the grid; made once for each case (the budget's cases are the notes' lengths
        it holds: a few dozen), not with a pass over the vocabulary for each value."""
        key = (min_dur, bisect_right(self._note_lengths[0], max_note + 1e-6), twelfth)
        found = self._drops.get(key)
        if found is None:
            durs, rest = self._durations
            drop = (durs < min_dur - 1e-6) | (~rest & (durs > max_note + 1e-6))
            if twelfth is not None:
                drop |= self._off_grid(twelfth)
            if len(self._drops) >= DROP_CACHE:
                del self._drops[next(iter(self._drops))]  # (the oldest: a long session meets many budgets)
            found = self._drops[key] = np.flatnonzero(drop)
        return found

    @cached_property
    def _rest_lengths(self) -> tuple[tuple[float, ...], list[np.ndarray]]:
        """`_longer`'s table of the rests."""
        durs, rest = self._durations
        return _by_length(durs, rest)

    @cached_property
    def _note_lengths(self) -> tuple[tuple[float, ...], list[np.ndarray]]:
        """`_longer`'s table of the notes (`_dropped` keys its cases by their place in it)."""
        durs, rest = self._durations
        return _by_length(durs, ~rest)

    def _off_grid(self, twelfth: int) -> np.ndarray:
        """Per value id: whether it would end off the grid from the grid point `twelfth`
        twelfths into a beat."""
        found = self._off_grid_from.get(twelfth)
        if found is None:
            ends = twelfth + self._durations[0] * 12
            whole = np.abs(ends - np.round(ends)) < 1e-4
            found = self._off_grid_from[twelfth] = ~(whole & np.isin(np.round(ends).astype(int) % 12, GRID_TWELFTHS))
        return found

    @cached_property
    def _durations(self) -> tuple[np.ndarray, np.ndarray]:
        """Every value's length (beats), and whether it is a rest, by id."""
        values = self.vocab.values
        return (np.array([parse_value(v).dur for v in values], dtype=np.float64),
                np.array([v.startswith("R,") for v in values], dtype=bool))

    @cached_property
    def _rest_table(self) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary's rests: their ids and lengths (beats)."""
        durs, rest = self._durations
        ids = np.flatnonzero(rest)
        return ids, durs[ids]

    def rest_probability(self, min_beats: float, bar_pos: float, first_in_bar: bool,
                         chord: Chord | None) -> float:
        """The model's probability that the value starting at `bar_pos` is a rest of at
        least `min_beats`: its next-value distribution summed over those rests.  Steps the
        model like `next_value` but samples nothing; `silence_probability` reads it
        without committing to it."""
        ids, durs = self._rest_table
        probs = self.runtime.step(self.prev_token, self._features(bar_pos, first_in_bar, chord))
        return float(probs[ids[durs >= min_beats - 1e-6]].sum())

    def silence_probability(self, pieces) -> float:
        """The model's probability that the line goes on with a silence made of `pieces`,
        (beats, bar_pos, first_in_bar, chord) each: a silence is split into rests at bar
        lines (`jazzd.music.timeline.rests`), so the chance of a silence across one is
        that of a rest to the bar line, times that of a rest after it.  Read without
        committing: the model's state is restored after (snapshot, step, restore)."""
        saved = self.snapshot()
        p = 1.0
        for beats, bar_pos, first_in_bar, chord in pieces:
            p *= self.rest_probability(beats, bar_pos, first_in_bar, chord)
            self.prev_token = self.vocab.index(encode_value(None, beats, chord or NO_CHORD, None))
        self.restore(saved)
        return p
