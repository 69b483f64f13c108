"""The seed's value grammar: one token per note or rest, relative to the chord under it.

Pure Python, any thread (the live encoder and decoder use it); never imports music21
or tensorflow.

A value is `TYPE,DUR[,<UPPER,LOWER>]`:
- TYPE is one of `TYPES` (first match wins): R rest, C chord tone, S tone of the seed's
  scale for the chord, A approach tone (a semitone from a chord tone), X anything else;
- DUR is the element's own length in quarter notes with three decimals;
- the window, for the second and later notes of a bar only, is the interval from the
  previous note plus and minus a minor third, spelled as music21 named it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np

from jazzd.errors import VocabularyError
from jazzd.music.chords import Chord
from jazzd.music.pitch import interval_name, name_of, parse_interval_name, window_names

# The whole grammar, as one table: type -> (meaning, may carry an interval window).
TYPES: dict[str, tuple[str, bool]] = {
    "C": ("chord tone", True),
    "S": ("scale tone of the chord's derived major/Dorian scale", True),
    "A": ("approach tone: a semitone above or below a chord tone", True),
    "X": ("any other pitch", True),
    "R": ("rest", False),
}
NOTE_TYPES = ("C", "S", "A", "X")
MIN_DUR = 1 / 12  # the shortest value the grammar writes (a 32nd-note triplet is 1/12)
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Value:
    """A parsed value.  `window` is (upper, lower) interval names, or None."""

    type: str
    dur: float
    window: tuple[str, str] | None = None

    def __str__(self) -> str:
        return format_value(self.type, self.dur, self.window)

    @property
    def window_semis(self) -> tuple[int, int] | None:
        """(low, high) semitones of the window relative to the previous note."""
        if self.window is None:
            return None
        a = parse_interval_name(self.window[0])[1]
        b = parse_interval_name(self.window[1])[1]
        return (min(a, b), max(a, b))

    @property
    def step_semis(self) -> int | None:
        """The interval from the previous note that the window is centred on."""
        lo_hi = self.window_semis
        return None if lo_hi is None else (lo_hi[0] + lo_hi[1]) // 2


def snap_dur(dur: float) -> float:
    """The exact length a three-decimal DUR stands for: 0.083 -> 1/12, 0.333 -> 1/3.

    Every length on a 1/48 grid (16ths, triplets, 32nd-note triplets, and their sums)
    round-trips through '%.3f'; other lengths are left as written.
    """
    k = round(dur * 48)
    return k / 48 if k and abs(dur * 48 - k) < 0.05 else dur


def format_dur(dur: float) -> str:
    return "%.3f" % dur


def format_value(vtype: str, dur: float, window: tuple[str, str] | None = None) -> str:
    text = f"{vtype},{format_dur(dur)}"
    if window is not None:
        text += f",<{window[0]},{window[1]}>"
    return text


@lru_cache(maxsize=65536)
def parse_value(text: str) -> Value:
    """Parse 'C,0.250,<m2,P-4>' into a `Value`; a clear error for anything else."""
    parts = text.split(",", 2)
    if len(parts) < 2 or parts[0] not in TYPES:
        raise VocabularyError(f"bad value {text!r}: expected TYPE,DUR[,<UPPER,LOWER>] with TYPE in CSAXR")
    vtype, dur_text = parts[0], parts[1]
    try:
        dur = float(dur_text)
    except ValueError:
        raise VocabularyError(f"bad value {text!r}: duration {dur_text!r} is not a number") from None
    if not dur > 0:
        raise VocabularyError(f"bad value {text!r}: duration must be positive")
    dur = snap_dur(dur)
    window = None
    if len(parts) == 3:
        inner = parts[2]
        if vtype == "R" or not (inner.startswith("<") and inner.endswith(">")) or inner.count(",") != 1:
            raise VocabularyError(f"bad value {text!r}: the window must look like <m2,P-4> and only notes carry one")
        upper, lower = inner[1:-1].split(",")
        parse_interval_name(upper)
        parse_interval_name(lower)
        window = (upper, lower)
    return Value(vtype, dur, window)


# --- encoding ---------------------------------------------------------------------------

def classify(midi: int | None, chord: Chord) -> str:
    """TYPE of a pitch (None = rest) over a chord, by the seed's rules (first match wins)."""
    if midi is None:
        return "R"
    name = name_of(midi)
    if name in chord.names:
        return "C"
    if name in chord.scale_names:
        return "S"
    pc = midi % 12
    if (pc + 1) % 12 in chord.pcs or (pc - 1) % 12 in chord.pcs:
        return "A"
    return "X"


def encode_value(midi: int | None, dur: float, chord: Chord, prev_midi: int | None) -> str:
    """One value: a note (MIDI number) or rest (None) of `dur` quarter notes over `chord`.

    `prev_midi` is the previous note of the same bar (None for the bar's first note);
    rests never carry a window and do not reset the previous note.
    """
    vtype = classify(midi, chord)
    window = None
    if midi is not None and prev_midi is not None:
        window = window_names(prev_midi, midi)
    return format_value(vtype, dur, window)


@dataclass(frozen=True, slots=True)
class Element:
    """A note (midi) or rest (midi None) at an offset, with its own length (quarter notes)."""

    offset: float
    dur: float
    midi: int | None = None


def chord_at(chords: Sequence[tuple[float, Chord]], offset: float) -> Chord:
    """The last chord starting at or before `offset`; before the first one, the first."""
    i = bisect_right(chords, offset + _EPS, key=lambda c: c[0])
    return chords[max(i - 1, 0)][1]


def iter_bar(elements: Iterable[Element], chords: Sequence[tuple[float, Chord]]):
    """Yield (element, chord, value) for one bar: the seed's `parse_melody`, step by step."""
    if not chords:
        raise VocabularyError("a bar needs at least one chord to encode against")
    prev = None
    for el in elements:
        chord = chord_at(chords, el.offset)
        yield el, chord, encode_value(el.midi, el.dur, chord, prev)
        if el.midi is not None:
            prev = el.midi


# --- decoding ---------------------------------------------------------------------------

def candidates_of_type(vtype: str, chord: Chord, lo: int, hi: int) -> list[int]:
    """Pitches in [lo, hi] whose TYPE over `chord` is `vtype`."""
    types = types_by_pitch_class(chord)
    return [p for p in range(lo, hi + 1) if types[p % 12] == vtype]


@lru_cache(maxsize=4096)
def types_by_pitch_class(chord: Chord) -> tuple[str, ...]:
    """`classify` over `chord` for pitch classes 0-11 (a pitch's TYPE depends on its
    pitch class only): the decoder asks for a dozen or two pitches a value, live."""
    return tuple(classify(60 + pc, chord) for pc in range(12))


@lru_cache(maxsize=4096)
def type_reach(chord: Chord) -> int:
    """Which note TYPEs have any pitch over `chord`: bit i set for `NOTE_TYPES[i]`.

    Not every TYPE exists over every chord: over a seventh chord the chord tones, their
    scale and the semitones around the chord tones cover all twelve pitch classes, so
    there is no X at all (over Cmaj7, Dm7 or C7); over a triad (C: B-flat is X) or a
    chord whose derived scale is spelled with sharps there is.  Over `NO_CHORD` only X.
    """
    found = {classify(60 + pc, chord) for pc in range(12)}
    return sum(1 << i for i, t in enumerate(NOTE_TYPES) if t in found)


def _choose(pool: list[int], prev: int | None, rng: np.random.Generator) -> int:
    if prev is not None and len(pool) > 1 and prev in pool:
        pool = [p for p in pool if p != prev]
    return pool[int(rng.integers(len(pool)))]


class PitchPicker(Protocol):
    """Chooses one pitch of a pool by what real players did (`jazzd.model.pitchtable`)."""

    def pick(self, pool: Sequence[int], vtype: str, prev_midi: int, step: int | None,
             rng: np.random.Generator, line: object = None) -> int: ...


WIDE_REACH = 6  # with a chooser: how far (semitones from the window's centre) a TYPE is sought


def decode_value(value: Value | str, chord: Chord, prev_midi: int | None,
                 pitch_range: tuple[int, int], rng: np.random.Generator,
                 chooser: PitchPicker | None = None, line: object = None) -> tuple[int | None, float]:
    """A concrete (MIDI pitch or None for a rest, duration) for a value over a chord.

    With a window: a pitch of the value's TYPE inside the window around the previous note
    and inside the range, never the previous pitch again when another fits.  Where no
    pitch of that TYPE fits, any pitch of the window inside the range (so the line keeps
    its contour); where the window misses the range entirely, the nearest pitch of the
    TYPE inside the range.  Without a window (the first note of a bar, or no previous
    note): a pitch of the TYPE near the previous note (within a fifth, else an octave),
    else near the middle of the range.  Durations are never below `MIN_DUR`.

    Without a `chooser` every choice is uniform over its pool.  With one (a bundle's
    pitch tables) the pitch is drawn by how often real players played each interval for
    this value, so the interval the window is centred on, the one the value was encoded
    from, comes first; the previous pitch again only when that is the centre (real
    repeated notes are encoded so: with the previous pitch allowed anywhere, the
    repeated-note rate more than doubled, 0.106 against 0.048 real).  Where the
    window holds no pitch of the TYPE, the TYPE is sought up to `WIDE_REACH` semitones
    from the centre before the contour rule gives it up (a type the chord has is kept
    over a few semitones of contour).  Without a window the pool is the TYPE's pitches
    within an octave of the previous note, weighted by the intervals real players opened
    bars with (`line`, the chooser's `Line`, when given: from where the previous note
    lies in the line's register and the interval into it).
    """
    v = parse_value(value) if isinstance(value, str) else value
    dur = max(v.dur, MIN_DUR)
    if v.type == "R":
        return None, dur
    lo, hi = pitch_range
    if v.window is not None and prev_midi is not None:
        wlo, whi = v.window_semis
        a, b = max(lo, prev_midi + wlo), min(hi, prev_midi + whi)
        if a <= b:
            if chooser is not None:
                centre = prev_midi + v.step_semis
                # A repeated note only where the value says so (its window centred on it).
                again = v.step_semis == 0
                pool = ([p for p in candidates_of_type(v.type, chord, a, b) if again or p != prev_midi]
                        or [p for p in candidates_of_type(v.type, chord, max(lo, centre - WIDE_REACH),
                                                          min(hi, centre + WIDE_REACH))
                            if again or p != prev_midi]
                        or [p for p in range(a, b + 1) if again or p != prev_midi]
                        or [a])
                return chooser.pick(pool, v.type, prev_midi, v.step_semis, rng), dur
            pool = candidates_of_type(v.type, chord, a, b) or list(range(a, b + 1))
            return _choose(pool, prev_midi, rng), dur
    elif chooser is not None and prev_midi is not None:  # no window: a bar's first note
        pool = candidates_of_type(v.type, chord, max(lo, prev_midi - 12), min(hi, prev_midi + 12))
        if pool:
            return chooser.pick(pool, v.type, prev_midi, None, rng, line), dur
    centre = prev_midi if prev_midi is not None else (lo + hi) // 2
    centre = min(max(centre, lo), hi)
    for reach in (7, 12, hi - lo):
        pool = candidates_of_type(v.type, chord, max(lo, centre - reach), min(hi, centre + reach))
        if pool:
            return _choose(pool, prev_midi, rng), dur
    return centre, dur


__all__ = [
    "MIN_DUR",
    "NOTE_TYPES",
    "TYPES",
    "WIDE_REACH",
    "Element",
    "PitchPicker",
    "Value",
    "chord_at",
    "classify",
    "decode_value",
    "encode_value",
    "format_value",
    "interval_name",
    "iter_bar",
    "parse_value",
    "type_reach",
]
