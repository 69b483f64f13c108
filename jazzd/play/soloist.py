"""The soloist: model predictions -> values -> notes over chords.  Deterministic core.

numpy only; runs in whichever thread owns it (the engine's, or `jazzd generate`'s);
never reads a clock or a global random state: time comes in as beat positions and all
randomness from the injected `numpy.random.Generator`.  This is the one decoding path
shared by `jazzd generate` and the live engine.

With a bundle that has pitch tables (`jazzd.model.pitchtable`), the value's TYPE is
sampled only among those the chord has (corrected for the model seeing just the chord's
family) and its pitch is drawn as real players chose it; without, pitches are drawn
uniformly inside the value's window, as before the tables existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from jazzd.model.runtime import Runtime
from jazzd.music.chords import NO_CHORD, Chord
from jazzd.music.features import chord_class, position_class
from jazzd.music.grammar import decode_value, encode_value, parse_value

DEFAULT_RANGE = (55, 84)  # G3..C6: a tenor/alto's comfortable solo range


@dataclass
class Sampling:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.95


class Soloist:
    """Advances the LSTM one value at a time, either listening or playing.

    The model is asked for the value that starts at a given place in the bar over a given
    chord; `hear` teacher-forces a value someone else played there instead.
    """

    def __init__(self, runtime: Runtime, rng: np.random.Generator, sampling: Sampling | None = None,
                 pitch_range: tuple[int, int] = DEFAULT_RANGE):
        self.runtime = runtime
        self.vocab = runtime.vocab
        self.rng = rng
        self.sampling = sampling or Sampling()
        self.pitch_range = pitch_range
        self.prev_token = runtime.bos
        self.prev_midi: int | None = None
        self._names = tuple(runtime.cfg.get("features", ()))
        self.chooser = runtime.bundle.pitch_chooser()  # None: the bundle has no pitch tables

    def reset(self) -> None:
        self.runtime.reset()
        self.prev_token = self.runtime.bos
        self.prev_midi = None

    def snapshot(self) -> tuple:
        """Everything `play` and `hear` carry from one value to the next, copied: the
        model's state, the value it will be fed next, the last pitch.  Opaque; for
        `restore` (the engine takes one before each value it plans, to roll back a cut)."""
        return (self.runtime.get_state(), self.prev_token, self.prev_midi)

    def restore(self, snapshot: tuple) -> None:
        """Back to a `snapshot` (which stays intact: it can be restored again)."""
        state, self.prev_token, self.prev_midi = snapshot
        self.runtime.set_state(state)

    def _features(self, bar_pos: float, first_in_bar: bool, chord: Chord | None) -> tuple[int, ...]:
        values = {"position": position_class(bar_pos, first_in_bar), "chord": chord_class(chord)}
        return tuple(values[n] for n in self._names)

    def hear(self, value: str, bar_pos: float, first_in_bar: bool, chord: Chord | None,
             midi: int | None = None) -> None:
        """Teacher-force a value that was played (by the player, or replayed)."""
        self.runtime.step(self.prev_token, self._features(bar_pos, first_in_bar, chord))
        self.prev_token = self.vocab.index(value)
        if midi is not None:
            self.prev_midi = midi

    def next_value(self, bar_pos: float, first_in_bar: bool, chord: Chord | None) -> str:
        """Sample the value that starts at `bar_pos` over `chord`, and commit to it."""
        probs = self.runtime.step(self.prev_token, self._features(bar_pos, first_in_bar, chord))
        if self.chooser is not None and chord is not None:
            probs = self.chooser.reweight(probs, chord)
        s = self.sampling
        token = self.runtime.sample(probs, self.rng, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
        self.prev_token = token
        return self.vocab.value(token)

    def amend(self, value: str) -> None:
        """The value just sampled was played as `value` (shortened to keep the beat or
        at the end of an answer): the model hears that one next, not the one it chose."""
        self.prev_token = self.vocab.index(value)

    def play(self, bar_pos: float, first_in_bar: bool, chord: Chord) -> tuple[str, int | None, float]:
        """Sample a value and decode it: (value, MIDI pitch or None for a rest, beats)."""
        value = self.next_value(bar_pos, first_in_bar, chord)
        midi, dur = decode_value(parse_value(value), chord, self.prev_midi, self.pitch_range, self.rng,
                                 self.chooser)
        if midi is not None:
            self.prev_midi = midi
        return value, midi, dur

    @cached_property
    def _rest_table(self) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary's rests: their ids and lengths (beats)."""
        rests = [(i, parse_value(v).dur) for i, v in enumerate(self.vocab.values) if v.startswith("R,")]
        return (np.array([i for i, _ in rests], dtype=np.intp), np.array([d for _, d in rests], dtype=np.float64))

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
