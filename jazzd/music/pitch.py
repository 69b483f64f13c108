"""Pitch spelling and spelled (diatonic) intervals, as the seed's music21 named them.

Pure Python, any thread; imports nothing beyond the standard library.

MIDI has no spelling, so the seed's music21 spelled every MIDI number with the default
names C C# D E- E F F# G G# A B- B.  Interval names follow from those spellings: an
interval is a number of diatonic steps plus a number of semitones, both directed.
"""

from __future__ import annotations

from functools import lru_cache

from jazzd.errors import VocabularyError

LETTERS = "CDEFGAB"
LETTER_PC = (0, 2, 4, 5, 7, 9, 11)
# Default spelling of each pitch class: (letter index, alteration in semitones).
DEFAULT_SPELLING = ((0, 0), (0, 1), (1, 0), (2, -1), (2, 0), (3, 0),
                    (3, 1), (4, 0), (4, 1), (5, 0), (6, -1), (6, 0))
ACCIDENTALS = {-2: "--", -1: "-", 0: "", 1: "#", 2: "##"}
DEFAULT_NAMES = tuple(LETTERS[s] + ACCIDENTALS[a] for s, a in DEFAULT_SPELLING)

# Interval qualities, indexed by (semitones - the reference of the class).
_PERFECT_QUALITIES = {-4: "dddd", -3: "ddd", -2: "dd", -1: "d", 0: "P",
                      1: "A", 2: "AA", 3: "AAA", 4: "AAAA"}
_MAJOR_QUALITIES = {-5: "dddd", -4: "ddd", -3: "dd", -2: "d", -1: "m", 0: "M",
                    1: "A", 2: "AA", 3: "AAA", 4: "AAAA"}
_PERFECT_BY_NAME = {v: k for k, v in _PERFECT_QUALITIES.items()}
_MAJOR_BY_NAME = {v: k for k, v in _MAJOR_QUALITIES.items()}
# Semitones of the perfect or major interval of each simple generic class (index = steps % 7).
_REFERENCE_SEMIS = (0, 2, 4, 5, 7, 9, 11)
_PERFECTABLE = (True, False, False, True, True, False, False)


def name_of(midi: int) -> str:
    """The default spelled name of a MIDI pitch, without octave (61 -> 'C#')."""
    return DEFAULT_NAMES[midi % 12]


def diatonic_number(midi: int) -> int:
    """Letter steps from C-1 under the default spelling (C4 = 60 -> 35)."""
    letter, _ = DEFAULT_SPELLING[midi % 12]
    return 7 * (midi // 12) + letter


@lru_cache(maxsize=4096)
def interval_name(steps: int, semis: int) -> str:
    """Name a directed spelled interval the way music21's `directedName` does.

    `steps` are diatonic steps (0 = unison, 2 = third), `semis` semitones, both signed.
    >>> interval_name(1, 2), interval_name(-3, -5), interval_name(0, -1)
    ('M2', 'P-4', 'd1')
    """
    undirected = abs(steps)
    simple = undirected % 7
    octaves = undirected // 7
    reference = _REFERENCE_SEMIS[simple] + 12 * octaves
    gdir = (steps > 0) - (steps < 0)
    cdir = (semis > 0) - (semis < 0)
    if gdir and cdir and gdir != cdir:
        size = -abs(semis)  # e.g. a second that goes down in pitch: doubly diminished
    elif steps == 0:
        size = semis  # a unison is named by its signed size: d1 is a semitone down
    else:
        size = abs(semis)
    table = _PERFECT_QUALITIES if _PERFECTABLE[simple] else _MAJOR_QUALITIES
    quality = table.get(size - reference)
    if quality is None:
        raise VocabularyError(f"interval of {steps} steps and {semis} semitones has no name")
    sign = "-" if steps < 0 else ""
    return f"{quality}{sign}{undirected + 1}"


@lru_cache(maxsize=4096)
def parse_interval_name(name: str) -> tuple[int, int]:
    """Invert `interval_name`: 'P-4' -> (-3, -5), 'd1' -> (0, -1), 'M3' -> (2, 4)."""
    i = 0
    while i < len(name) and name[i] in "PMmAd":
        i += 1
    quality, rest = name[:i], name[i:]
    descending = rest.startswith("-")
    digits = rest[1:] if descending else rest
    if not quality or not digits.isdigit() or int(digits) < 1:
        raise VocabularyError(f"bad interval name {name!r}: expected e.g. 'M3', 'P-4' or 'd1'")
    undirected = int(digits) - 1
    simple, octaves = undirected % 7, undirected // 7
    reference = _REFERENCE_SEMIS[simple] + 12 * octaves
    table = _PERFECT_BY_NAME if _PERFECTABLE[simple] else _MAJOR_BY_NAME
    if quality not in table:
        raise VocabularyError(f"bad interval name {name!r}: quality {quality!r} does not fit a {digits}")
    size = reference + table[quality]
    if undirected == 0:
        return 0, size
    if descending:
        # A descending interval of positive size goes down; of negative size (rare), up.
        return -undirected, -size
    return undirected, size


def interval_between(prev_midi: int, midi: int) -> tuple[int, int]:
    """(steps, semitones) from one default-spelled MIDI pitch to another."""
    return diatonic_number(midi) - diatonic_number(prev_midi), midi - prev_midi


def window_names(prev_midi: int, midi: int) -> tuple[str, str]:
    """The seed's interval window: the step plus and minus a minor third, as names."""
    steps, semis = interval_between(prev_midi, midi)
    return interval_name(steps + 2, semis + 3), interval_name(steps - 2, semis - 3)
