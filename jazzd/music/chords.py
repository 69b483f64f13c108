"""Chords: parse chord symbols, name pitch-class sets, and the seed's derived scales.

Pure Python, any thread (the live chord tracker uses it); never imports music21.

A `Chord` is a root pitch class plus the pitch classes that sound, with the spelled
names the seed's grammar compares notes against and the music21-style triad quality
that picks the seed's scale (major scale over a major triad, else Dorian).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from jazzd.errors import ChordSymbolError
from jazzd.music.pitch import ACCIDENTALS, DEFAULT_NAMES, LETTER_PC, LETTERS

# Tonics music21's `derive` tries, in its order; on a tie in matches the highest wins.
_DERIVE_TONICS = ("C", "C#", "D-", "D", "D#", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B", "C-")
MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
DORIAN_STEPS = (0, 2, 3, 5, 7, 9, 10)

_ROOT_RE = re.compile(r"^([A-Ga-g])(#|b)?")  # in symbols '-' means minor, never flat
_NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True)
class Chord:
    """A sounding chord.  `names` are spelled pitch names (no octave) for membership tests.

    `quality` is the triad quality as music21 reports it ('major', 'minor', 'diminished',
    'augmented' or 'other'); only 'major' changes anything (the seed's scale choice).
    `derive_pcs` are the pitch classes with their multiplicity, as the seed's scale
    derivation counted them.
    """

    root: int
    pcs: frozenset[int]
    quality: str
    symbol: str = ""
    bass: int | None = None
    names: frozenset[str] = field(default=frozenset())
    derive_pcs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.names:
            object.__setattr__(self, "names", frozenset(DEFAULT_NAMES[p] for p in self.pcs))
        if not self.derive_pcs:
            object.__setattr__(self, "derive_pcs", tuple(sorted(self.pcs)))

    @cached_property
    def mask(self) -> int:
        """The pitch-class set as a 12-bit mask (bit p set when pitch class p sounds);
        worked out once per chord (the model's chord feature reads it every step)."""
        return sum(1 << p for p in self.pcs)

    @property
    def scale_names(self) -> frozenset[str]:
        """Spelled names of the seed's scale for this chord (major or Dorian, derived)."""
        return derived_scale(self.derive_pcs, self.quality == "major")[1]

    def __str__(self) -> str:
        return self.symbol or f"{DEFAULT_NAMES[self.root]}{sorted(self.pcs)}"


def _spell(letter: int, pc: int) -> str:
    alter = (pc - LETTER_PC[letter] + 6) % 12 - 6
    return LETTERS[letter] + ACCIDENTALS.get(alter, "?")


def _tonic(name: str) -> tuple[int, int]:
    letter = LETTERS.index(name[0])
    alter = {"": 0, "#": 1, "-": -1}[name[1:]]
    return letter, (LETTER_PC[letter] + alter) % 12


@lru_cache(maxsize=4096)
def derived_scale(derive_pcs: tuple[int, ...], major: bool) -> tuple[str, frozenset[str]]:
    """The seed's `scaleType.derive(chord)`: (tonic name, spelled scale names).

    The scale transposition that holds the most of the chord's pitches (counted with
    repeats) wins; ties go to the highest tonic in octave 4, and between enharmonic
    tonics to the later one in music21's list (D- over C#, E- over D#); C- sits lowest.
    """
    steps = MAJOR_STEPS if major else DORIAN_STEPS
    if not derive_pcs:
        return "", frozenset()  # no chord, no scale: every note is an X
    best = None
    for order, tname in enumerate(_DERIVE_TONICS):
        letter, pc = _tonic(tname)
        scale_pcs = {(pc + s) % 12 for s in steps}
        count = sum(1 for p in set(derive_pcs) if p in scale_pcs)
        height = -1 if tname == "C-" else pc  # C-4 is B3: the lowest candidate
        key = (count, height, order)
        if best is None or key > best[0]:
            best = (key, tname, letter, pc)
    _, tname, letter, pc = best
    names = frozenset(_spell((letter + k) % 7, (pc + s) % 12) for k, s in enumerate(steps))
    return tname, names


# 'No chord' (WJD 'NC' throughout a free solo): nothing is a chord, scale or approach tone.
NO_CHORD = Chord(root=0, pcs=frozenset(), quality="other", symbol="NC")


def triad_quality(root: int, pcs: frozenset[int] | set[int]) -> str:
    """Triad quality from pitch classes over a known root, as music21 would name it."""
    rel = {(p - root) % 12 for p in pcs}
    third = 4 if 4 in rel else 3 if 3 in rel else None
    fifth = 7 if 7 in rel else 6 if 6 in rel else 8 if 8 in rel else None
    if third is None:
        return "other"
    if fifth is None or fifth == 7:
        return "major" if third == 4 else "minor"
    if third == 4 and fifth == 8:
        return "augmented"
    if third == 3 and fifth == 6:
        return "diminished"
    return "other"


def chord_from_pcs(root: int, intervals, symbol: str = "", bass: int | None = None) -> Chord:
    """A chord from a root and intervals above it (semitones)."""
    pcs = frozenset((root + i) % 12 for i in intervals)
    if bass is not None:
        pcs = pcs | {bass}
    quality = triad_quality(root, {(root + i) % 12 for i in intervals})
    return Chord(root=root, pcs=pcs, quality=quality, symbol=symbol, bass=bass)


# --- chord symbols ---------------------------------------------------------------------
# Each quality word is a base triad/seventh; tensions are added after.  Intervals in
# semitones above the root.  The table is the whole grammar of qualities we accept.
QUALITIES: dict[str, tuple[int, ...]] = {
    "": (0, 4, 7), "maj": (0, 4, 7), "M": (0, 4, 7),
    "-": (0, 3, 7), "m": (0, 3, 7), "min": (0, 3, 7), "mi": (0, 3, 7),
    "+": (0, 4, 8), "aug": (0, 4, 8),
    "o": (0, 3, 6), "dim": (0, 3, 6), "°": (0, 3, 6),
    "sus": (0, 5, 7), "sus4": (0, 5, 7), "sus2": (0, 2, 7),
    "5": (0, 7),
    "m7b5": (0, 3, 6, 10), "-7b5": (0, 3, 6, 10), "ø": (0, 3, 6, 10), "ø7": (0, 3, 6, 10),
    "min7b5": (0, 3, 6, 10), "mi7b5": (0, 3, 6, 10),
}
# Sevenths and sixths, appended to the quality: 'j7' and 'maj7' are major sevenths.
SEVENTHS: dict[str, tuple[int, ...]] = {
    "7": (10,), "j7": (11,), "maj7": (11,), "M7": (11,), "Δ": (11,), "Δ7": (11,), "^7": (11,),
    "Maj7": (11,), "(maj7)": (11,),
    "6": (9,), "69": (9, 14), "6/9": (9, 14),
    "9": (10, 14), "11": (10, 14, 17), "13": (10, 14, 21),
    "maj9": (11, 14), "j9": (11, 14), "maj13": (11, 14, 21), "add9": (14,), "add2": (14,),
}
TENSIONS = {"9": 14, "b9": 13, "#9": 15, "9b": 13, "9#": 15, "11": 17, "#11": 18, "11#": 18,
            "13": 21, "b13": 20, "13b": 20, "b5": 6, "#5": 8}
ALT = (0, 4, 10, 13, 15, 18, 20)  # 7alt: root, 3, b7, b9, #9, #11, b13

_TENSION_RE = re.compile(r"\(?(b9|#9|9b|9#|#11|11#|b13|13b|b5|#5|9|11|13)\)?,?")
_NO_CHORD = {"NC", "N.C.", "N.C", "N/C", "X", ""}


def _parse_root(text: str, symbol: str) -> tuple[int, str]:
    m = _ROOT_RE.match(text)
    if not m:
        raise ChordSymbolError(f"chord symbol {symbol!r}: no root; expected a note name A-G first")
    pc = _NOTE_PC[m.group(1).upper()] + {"#": 1, "b": -1, "": 0}[m.group(2) or ""]
    return pc % 12, text[m.end():]


@lru_cache(maxsize=8192)
def parse_chord(symbol: str) -> Chord | None:
    """Parse a chord symbol into a `Chord`; 'NC' (no chord) gives None.

    Accepts the Weimar Jazz Database syntax (`Bb7`, `C-7`, `Ebj7`, `F-7b5`, `Bbo`,
    `C7alt`, `A79b13`, `Ebj79#11#`, `Bb-7/Eb`) and common lead-sheet spellings
    (`Cmaj7`, `Dm7`, `G7b9`, `Am7b5`, `Bdim7`, `Csus4`, `C7(#11)`, `F/A`).
    """
    text = symbol.strip()
    if text.upper() in _NO_CHORD:
        return None
    body, _, bass_text = text.partition("/")
    if bass_text and bass_text in ("9",):  # '6/9' is a chord, not a slash chord
        body, bass_text = text, ""
    root, rest = _parse_root(body, symbol)
    bass = None
    if bass_text:
        bass, tail = _parse_root(bass_text, symbol)
        if tail:
            raise ChordSymbolError(f"chord symbol {symbol!r}: bass {bass_text!r} is not a note name")
    intervals = _parse_quality(rest, symbol)
    return chord_from_pcs(root, intervals, symbol=text, bass=bass)


def _parse_quality(rest: str, symbol: str) -> tuple[int, ...]:
    if rest in ("alt", "7alt"):
        return ALT
    # Longest quality word first, then a seventh/sixth word, then tensions.
    base = None
    for word in sorted(QUALITIES, key=len, reverse=True):
        if not rest.startswith(word):
            continue
        candidate = rest[len(word):]
        if word in ("maj", "M") and candidate[:1] in ("7", "9", "1"):
            break  # 'maj7', 'M7', 'maj9', 'maj13': a major seventh, read below
        if word == "m" and candidate.startswith("aj"):
            continue  # 'maj...' is not minor
        base, rest = QUALITIES[word], candidate
        break
    intervals = list(base if base is not None else QUALITIES[""])
    if base in (QUALITIES["o"],) and rest.startswith("7"):
        intervals.append(9)  # diminished seventh
        rest = rest[1:]
    elif base == QUALITIES["sus"] and rest.startswith("7"):
        intervals.append(10)
        rest = rest[1:]
    else:
        for word in sorted(SEVENTHS, key=len, reverse=True):
            if rest.startswith(word):
                intervals.extend(SEVENTHS[word])
                rest = rest[len(word):]
                break
    for word, added in (("sus4", 5), ("sus2", 2), ("sus", 5)):  # '7sus4': the 3rd goes
        if rest.startswith(word):
            intervals = [i for i in intervals if i not in (3, 4)] + [added]
            rest = rest[len(word):]
            break
    if rest.startswith("alt"):
        intervals = [i for i in intervals if i != 7] + list(ALT[3:])
        rest = rest[3:]
    while rest:
        m = _TENSION_RE.match(rest)
        if not m or not m.group(0):
            raise ChordSymbolError(
                f"unknown chord symbol {symbol!r}: cannot read {rest!r}; "
                "write e.g. C7, C-7, Cmaj7, Cm7b5, Cdim7, C7b9, C7alt, Csus4 or C/E")
        t = TENSIONS[m.group(1)]
        if t in (6, 8):  # altered fifth replaces the fifth
            intervals = [i for i in intervals if i != 7]
        intervals.append(t)
        rest = rest[m.end():]
    return tuple(dict.fromkeys(intervals))


def spelled_chord(pitch_names, quality: str, symbol: str = "") -> Chord:
    """A chord given as spelled pitch names with octaves ('E-4', 'G#2') and a quality.

    Used for chords read from the seed's golden files and its MIDI, where music21 spelled
    each pitch and computed the quality itself.  The root is taken as the lowest pitch.
    """
    names, pcs = [], []
    for text in pitch_names:
        name = text.rstrip("0123456789")
        letter = LETTERS.index(name[0])
        alter = {"": 0, "#": 1, "-": -1, "##": 2, "--": -2}[name[1:]]
        names.append(name)
        pcs.append((LETTER_PC[letter] + alter) % 12)
    return Chord(root=pcs[-1] if pcs else 0, pcs=frozenset(pcs), quality=quality,
                 symbol=symbol, names=frozenset(names), derive_pcs=tuple(pcs))
