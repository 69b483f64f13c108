"""Chord recognition: name the chord that a set of sounding pitches makes.

Pure Python, any thread (offline ingest and the live daemon's chord tracker); it must
never import music21 or tensorflow.

`recognize` matches the sounding pitch classes against one table of chord templates
(`TEMPLATES`) on all 12 roots: 12 x 16 bit-mask comparisons, cached per input.  Each
template has core intervals and the tensions it accepts (9ths, 11ths, 13ths and their
alterations), which are named by the base quality: C E G Bb D is 'C7', C E Bb Db is
'C7' (a b9 with the fifth left out).  The cost of a reading is

    2 for a sounding pitch class the template does not explain (a passing tone)
  + 2 for a missing core tone, or 1 when it is the perfect fifth (voicings omit it)
  + 1 per tension

and the root must sound.  The cheapest reading wins; ties go to the reading whose root
is the bass, then to the template listed first in `TEMPLATES`, then to the lower root
pitch class.  A reading may have one flaw at most: one foreign pitch class, or one
omitted tone (any one of a four-note chord; only the fifth of a major or minor triad),
and a cost of at most `MAX_COST`; with no such reading the pitches are not a chord.

Symbols use the roots C Db D Eb E F F# G Ab A Bb B and the qualities in `TEMPLATES`
('C', 'Cm', 'C7', 'Cj7', 'Cm7', 'Cm7b5', 'Cdim7', 'Caug', 'Csus4', 'Csus7', ...): the
maj7, mMaj7 and 7sus4 names follow the Weimar Jazz Database ('j7', 'mj7', 'sus7')
because `parse_chord` reads those back exactly; every symbol here parses back to the
same root and the same pitch classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from jazzd.music.chords import Chord, chord_from_pcs

ROOT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAX_COST = 4

# quality -> (symbol suffix, core intervals, accepted tensions).  The order is the
# priority between equally good readings (e.g. Am7 before C6 for A C E G with no bass).
TEMPLATES: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "7": ("7", (0, 4, 7, 10), (1, 2, 3, 6, 8, 9)),  # b9 9 #9 #11 b13 13
    "m7": ("m7", (0, 3, 7, 10), (2, 5, 9)),  # 9 11 13
    "maj7": ("j7", (0, 4, 7, 11), (2, 6, 9)),  # 9 #11 13
    "maj": ("", (0, 4, 7), (2,)),  # add9
    "min": ("m", (0, 3, 7), (2, 5)),  # add9, add11
    "m7b5": ("m7b5", (0, 3, 6, 10), (2, 5, 8)),  # 9 11 b13
    "dim7": ("dim7", (0, 3, 6, 9), (2, 5, 8, 11)),  # tones a whole step above
    "6": ("6", (0, 4, 7, 9), (2,)),  # 6/9
    "m6": ("m6", (0, 3, 7, 9), (2, 5)),
    "mMaj7": ("mj7", (0, 3, 7, 11), (2, 5, 9)),
    "7sus4": ("sus7", (0, 5, 7, 10), (1, 2, 9)),
    "sus4": ("sus4", (0, 5, 7), (2,)),
    "sus2": ("sus2", (0, 2, 7), ()),
    "dim": ("dim", (0, 3, 6), ()),
    "aug": ("aug", (0, 4, 8), (11,)),  # maj7#5
    "5": ("5", (0, 7), ()),  # power chord: root and fifth only
}


def _mask(intervals: Iterable[int]) -> int:
    return sum(1 << pc for pc in {i % 12 for i in intervals})


_FIFTH = 1 << 7


def _rotate(mask: int, root: int) -> int:
    """The mask re-read with `root` as interval 0."""
    return ((mask >> root) | (mask << (12 - root))) & 0xFFF


def symbol_for(root: int, quality: str) -> str:
    """The lead-sheet symbol of a root pitch class and a quality of `TEMPLATES`."""
    return ROOT_NAMES[root % 12] + TEMPLATES[quality][0]


def _omittable(core: int) -> int:
    """Core tones a voicing may leave out: any one of a four-note chord; of a triad only
    the fifth, and only when a third defines it; nothing of a dyad."""
    if core.bit_count() >= 4:
        return core
    return _FIFTH if core & 0b11000 and core.bit_count() == 3 else 0


# (quality, core mask, tension mask, omittable mask, priority), as bit masks over intervals.
_TABLE = tuple((q, _mask(core), _mask(tens), _omittable(_mask(core)), prio)
               for prio, (q, (_, core, tens)) in enumerate(TEMPLATES.items()))


def _cost(rel: int, core: int, tens: int, omit: int) -> int | None:
    if not rel & 1:
        return None  # the root must sound
    missing, extra = core & ~rel, rel & ~core
    n_foreign = (extra & ~tens).bit_count()
    if missing & ~omit or missing.bit_count() + n_foreign > 1:
        return None  # one flaw at most: one omitted tone or one foreign pitch class
    cost = 2 * n_foreign + (extra & tens).bit_count()
    if missing:
        cost += 1 if missing == _FIFTH else 2
    return cost if cost <= MAX_COST else None


@lru_cache(maxsize=8192)
def _best(mask: int, bass: int | None) -> tuple[int, str] | None:
    best_key, best = None, None
    for root in range(12):
        if not mask >> root & 1:
            continue
        rel = _rotate(mask, root)
        for quality, core, tens, omit, prio in _TABLE:
            cost = _cost(rel, core, tens, omit)
            if cost is None:
                continue
            key = (cost, root != bass, prio, root)
            if best_key is None or key < best_key:
                best_key, best = key, (root, quality)
    return best


@lru_cache(maxsize=512)
def _chord(root: int, quality: str) -> Chord:
    return chord_from_pcs(root, TEMPLATES[quality][1], symbol=symbol_for(root, quality))


def recognize(pitches: Iterable[int], bass: int | None = None) -> Chord | None:
    """The chord the pitches make, named by its base quality; None when there is none.

    `pitches` are MIDI numbers or pitch classes.  If any is 12 or more they are read as
    MIDI numbers and the lowest is the bass; if all are below 12 they are read as pitch
    classes and there is no bass.  An explicit `bass` (MIDI number or pitch class) wins
    and counts as a sounding note too, so a single note over a bass a fifth below is a
    power chord ('C5'), and a third above it a triad with the fifth left out.
    Fewer than two distinct pitch classes (with the bass) give None: one note is not a
    chord.  The returned `Chord` holds the template's tones only (tensions dropped) and
    no bass, so every inversion and voicing of a chord gives the same, equal, object.
    """
    pitches = list(pitches)
    if bass is None and any(p >= 12 for p in pitches):
        bass = min(pitches)
    bass_pc = None if bass is None else bass % 12
    mask = _mask(pitches) | (0 if bass_pc is None else 1 << bass_pc)
    if mask.bit_count() < 2:
        return None
    found = _best(mask, bass_pc)
    return None if found is None else _chord(*found)


__all__ = ["MAX_COST", "ROOT_NAMES", "TEMPLATES", "recognize", "symbol_for"]
