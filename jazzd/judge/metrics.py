"""Musical metrics of solos: pure functions over one simple per-piece representation.

numpy only; offline (`jazzd report`) and tests.  Never imports music21 or tensorflow.

Every set the report compares (real solos, generated solos, the seed's deepjazz MIDI)
becomes a list of `Solo`s the same way, from an ingest `Piece` (`solo_of_piece`): notes
with their onset and length in beats, MIDI pitch, the chord under the onset and the
position in the bar, plus the grammar's values (notes and rests) read against those
chords by `jazzd.music.grammar`.  So every metric sees every set through one path.

Each metric takes one `Solo` and returns a number or a vector; the families follow
conventions.md section 5 (MGEval, MusDr, MusPy):
- harmony: value-type shares (the seed's C/S/A/X/R), chord-tone ratio (all notes and
  strong beats), scale-tone ratio, pitch-class histograms (absolute and above the chord
  root), pitch-class entropy over 1 and 4 bars (MusDr H1/H4);
- rhythm: note-length and inter-onset histograms (MGEval's 12 classes), groove
  consistency (MusPy), notes per bar, rest ratio;
- line: mean absolute interval, interval histogram, pitch range, repeated-note rate,
  distinct n-grams of values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from jazzd.music.chords import Chord
from jazzd.music.grammar import TYPES, classify, iter_bar

_EPS = 1e-6
# MGEval's 12 note-length classes, in beats (quarter notes), shortest first: 16th, 8th
# triplet, dotted 16th, 8th, quarter triplet, dotted 8th, quarter, half triplet, dotted
# quarter, half, dotted half, whole.
LENGTH_CLASSES = (0.25, 1 / 3, 0.375, 0.5, 2 / 3, 0.75, 1.0, 4 / 3, 1.5, 2.0, 3.0, 4.0)
LENGTH_LABELS = ("1/16", "1/8t", "1/16.", "1/8", "1/4t", "1/8.", "1/4", "1/2t", "1/4.", "1/2",
                 "1/2.", "1")
MAX_INTERVAL = 12  # the interval histogram folds larger leaps into +-12
GROOVE_GRID = 12   # onset positions per beat for groove consistency (16ths and triplets)


@dataclass(frozen=True, slots=True)
class Note:
    """A note of a solo: onset and length in beats, pitch, and where it falls."""

    onset: float  # beats from the start of the solo
    dur: float    # beats
    midi: int
    chord: Chord  # the chord sounding at the onset
    bar: int      # index of the bar it starts in
    pos: float    # beats after that bar's line


@dataclass(frozen=True)
class Solo:
    """One piece: its notes in time order, its bars' lengths (beats) and its values."""

    name: str
    notes: tuple[Note, ...]
    bar_lengths: tuple[float, ...]
    values: tuple[str, ...] = ()  # grammar values of its notes and rests, in order


def solo_of_piece(piece) -> Solo:
    """A `Solo` from an ingest `Piece` (`jazzd.data.ingest.common`): the grammar's encoder
    reads every element against the chord under it."""
    notes, values = [], []
    for b, bar in enumerate(piece.bars):
        for el, chord, value in iter_bar(bar.elements, bar.chords):
            values.append(value)
            if el.midi is not None:
                notes.append(Note(el.offset, el.dur, el.midi, chord, b, el.offset - bar.start))
    return Solo(piece.name, tuple(notes), tuple(bar.length for bar in piece.bars), tuple(values))


# --- helpers ----------------------------------------------------------------------------

def normalized(counts: np.ndarray) -> np.ndarray:
    """Counts as shares (all zeros stay zeros)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else counts


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram of counts (0 for an empty one)."""
    p = normalized(counts)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) if len(p) else 0.0


def _share(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else float("nan")


def is_strong(pos: float) -> bool:
    """On beat 1 or 3 of the bar, exactly on the beat."""
    return abs(pos - round(pos)) < _EPS and round(pos) in (0, 2)


# --- harmony ----------------------------------------------------------------------------

def type_shares(solo: Solo) -> dict[str, float]:
    """Share of each value type (C, S, A, X, R) among the solo's values."""
    n = len(solo.values)
    return {t: (sum(v[0] == t for v in solo.values) / n if n else float("nan")) for t in TYPES}


def chord_tone_ratio(solo: Solo, strong_only: bool = False) -> float:
    """Share of notes that are chord tones (the grammar's C), optionally only on beats 1
    and 3."""
    return _share(classify(n.midi, n.chord) == "C" for n in solo.notes if not strong_only or is_strong(n.pos))


def scale_tone_ratio(solo: Solo) -> float:
    """Share of notes inside the chord or its scale (the grammar's C or S): harmonic
    coherence in BebopNet's sense, with the seed's scale for each chord."""
    return _share(classify(n.midi, n.chord) in ("C", "S") for n in solo.notes)


def pitch_class_counts(solo: Solo) -> np.ndarray:
    """How many notes of each pitch class (C = 0)."""
    return np.bincount([n.midi % 12 for n in solo.notes], minlength=12).astype(float)


def chord_relative_counts(solo: Solo) -> np.ndarray:
    """How many notes at each interval above the root of the chord under them."""
    return np.bincount([(n.midi - n.chord.root) % 12 for n in solo.notes], minlength=12).astype(float)


def pitch_class_entropy(solo: Solo, bars: int = 1) -> float:
    """MusDr's H1 / H4: pitch-class entropy (bits) of windows of `bars` bars, one starting
    at every bar, averaged over the windows that hold notes (NaN when none do)."""
    per_bar = [np.zeros(12) for _ in solo.bar_lengths]
    for n in solo.notes:
        per_bar[n.bar][n.midi % 12] += 1
    starts = range(max(len(per_bar) - bars + 1, 1))
    values = [entropy_bits(sum(per_bar[i:i + bars], np.zeros(12))) for i in starts
              if any(h.sum() for h in per_bar[i:i + bars])]
    return float(np.mean(values)) if values else float("nan")


# --- rhythm -----------------------------------------------------------------------------

def length_class(beats: float) -> int:
    """Index of the nearest of `LENGTH_CLASSES` (by ratio) for a length in beats."""
    logs = np.log(np.asarray(LENGTH_CLASSES))
    return int(np.argmin(np.abs(logs - math.log(max(beats, 1e-3)))))


def duration_counts(solo: Solo) -> np.ndarray:
    """MGEval's note-length histogram: notes per length class."""
    return np.bincount([length_class(n.dur) for n in solo.notes], minlength=len(LENGTH_CLASSES)).astype(float)


def ioi_counts(solo: Solo) -> np.ndarray:
    """Inter-onset intervals of consecutive notes, per length class."""
    onsets = [n.onset for n in solo.notes]
    iois = [b - a for a, b in pairwise(onsets)]
    return np.bincount([length_class(d) for d in iois], minlength=len(LENGTH_CLASSES)).astype(float)


def groove_consistency(solo: Solo, grid: int = GROOVE_GRID) -> float:
    """MusPy's groove consistency: 1 - the mean share of onset positions (on a grid of
    `grid` per beat) where consecutive bars differ.  Identical bars give 1; one bar, NaN."""
    size = max(round(max(solo.bar_lengths, default=0) * grid), 1)
    patterns = np.zeros((len(solo.bar_lengths), size), dtype=bool)
    for n in solo.notes:
        patterns[n.bar, min(round(n.pos * grid), size - 1)] = True
    if len(patterns) < 2:
        return float("nan")
    return float(1 - np.mean(patterns[1:] ^ patterns[:-1]))


def notes_per_bar(solo: Solo) -> float:
    return len(solo.notes) / len(solo.bar_lengths) if solo.bar_lengths else float("nan")


def rest_ratio(solo: Solo) -> float:
    """Share of the solo's time (its bars) with no note sounding."""
    total = sum(solo.bar_lengths)
    return 1 - min(sum(n.dur for n in solo.notes) / total, 1.0) if total else float("nan")


# --- line -------------------------------------------------------------------------------

def intervals(solo: Solo) -> np.ndarray:
    """Semitones from each note to the next."""
    pitches = np.array([n.midi for n in solo.notes], dtype=int)
    return np.diff(pitches)


def mean_abs_interval(solo: Solo) -> float:
    steps = intervals(solo)
    return float(np.abs(steps).mean()) if len(steps) else float("nan")


def interval_counts(solo: Solo) -> np.ndarray:
    """How many steps of each interval from -12 to +12 semitones (larger leaps folded in)."""
    steps = np.clip(intervals(solo), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    return np.bincount(steps, minlength=2 * MAX_INTERVAL + 1).astype(float)


def pitch_range(solo: Solo) -> float:
    """Highest minus lowest pitch, in semitones."""
    pitches = [n.midi for n in solo.notes]
    return float(max(pitches) - min(pitches)) if pitches else float("nan")


def repeated_note_rate(solo: Solo) -> float:
    """Share of consecutive note pairs on the same pitch."""
    return _share(s == 0 for s in intervals(solo))


def distinct_ngrams(seq: Sequence, n: int = 4) -> float:
    """Distinct n-grams over all n-grams of a sequence (1 = nothing repeats)."""
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


# --- the features the report compares, per piece -----------------------------------------

Feature = Callable[[Solo], "float | np.ndarray"]

FEATURES: dict[str, tuple[str, Feature]] = {
    # name: (family, function of a solo -> number or vector)
    "type_shares": ("harmony", lambda s: np.array(list(type_shares(s).values()))),
    "chord_tone_ratio": ("harmony", chord_tone_ratio),
    "strong_beat_chord_tone_ratio": ("harmony", lambda s: chord_tone_ratio(s, strong_only=True)),
    "scale_tone_ratio": ("harmony", scale_tone_ratio),
    "pitch_class_histogram": ("harmony", lambda s: normalized(pitch_class_counts(s))),
    "chord_relative_histogram": ("harmony", lambda s: normalized(chord_relative_counts(s))),
    "pc_entropy_1bar": ("harmony", lambda s: pitch_class_entropy(s, 1)),
    "pc_entropy_4bar": ("harmony", lambda s: pitch_class_entropy(s, 4)),
    "duration_histogram": ("rhythm", lambda s: normalized(duration_counts(s))),
    "ioi_histogram": ("rhythm", lambda s: normalized(ioi_counts(s))),
    "groove_consistency": ("rhythm", groove_consistency),
    "notes_per_bar": ("rhythm", notes_per_bar),
    "rest_ratio": ("rhythm", rest_ratio),
    "mean_abs_interval": ("line", mean_abs_interval),
    "interval_histogram": ("line", lambda s: normalized(interval_counts(s))),
    "pitch_range": ("line", pitch_range),
    "repeated_note_rate": ("line", repeated_note_rate),
    "distinct_4grams": ("line", lambda s: distinct_ngrams(s.values, 4)),
}
FAMILIES = ("harmony", "rhythm", "line")


def features(solo: Solo) -> dict[str, np.ndarray]:
    """Every feature of `FEATURES` for one solo, each as a 1-D float array."""
    return {name: np.atleast_1d(np.asarray(fn(solo), dtype=float)) for name, (_, fn) in FEATURES.items()}
