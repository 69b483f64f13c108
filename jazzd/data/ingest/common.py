"""What every ingest format produces: a `Piece` of bars, and its encoding into values.

Pure Python; offline and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jazzd.music.chords import Chord
from jazzd.music.features import position_class
from jazzd.music.grammar import Element, iter_bar


@dataclass
class Bar:
    """One bar: its melody elements (notes and rests, in reading order) and the chords
    that sound in it, as (offset, Chord) sorted by offset.  Offsets are absolute, in
    quarter notes from the start of the piece."""

    start: float
    elements: list[Element]
    chords: list[tuple[float, Chord]]
    length: float = 4.0


@dataclass
class Piece:
    """A solo: its name (usually the file stem), its bars, and free-form metadata."""

    name: str
    bars: list[Bar]
    meta: dict = field(default_factory=dict)

    def encode(self) -> tuple[list[str], list[float], list[Chord]]:
        """The piece as values, with each value's onset and the chord it was read against."""
        values, onsets, chords, _ = self.encode_full()
        return values, onsets, chords

    def encode_full(self) -> tuple[list[str], list[float], list[Chord], list[int]]:
        """As `encode`, plus each value's position class (see `jazzd.music.features`)."""
        values, onsets, chords, positions = [], [], [], []
        for bar in self.bars:
            for k, (el, chord, value) in enumerate(iter_bar(bar.elements, bar.chords)):
                values.append(value)
                onsets.append(el.offset)
                chords.append(chord)
                positions.append(position_class(el.offset - bar.start, k == 0))
        return values, onsets, chords, positions
