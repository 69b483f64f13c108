"""Per-step conditioning features of the model: where in the bar, and over what chord.

Pure Python, any thread (the engine computes them live; the trainer from a corpus).

The grammar's values are chord-relative and carry no bar position, so the model is also
told, for the value it is about to predict:
- `position`: first-in-bar flag x beat in bar (0-3, later beats count as 3) x position
  inside the beat in twelfths: 2 * 4 * 12 = 96 classes;
- `chord`: the family of the chord under it: 8 classes (`CHORD_CLASSES`).
"""

from __future__ import annotations

from functools import lru_cache

from jazzd.music.chords import Chord

POSITION_CLASSES = 96
CHORD_CLASSES = ("major", "dominant", "minor", "half-diminished", "diminished", "augmented",
                 "suspended", "none")
FEATURE_SIZES = {"position": POSITION_CLASSES, "chord": len(CHORD_CLASSES)}


def position_class(bar_pos: float, first_in_bar: bool) -> int:
    """Class of an onset `bar_pos` quarter notes after its bar line."""
    twelfths = max(round(bar_pos * 12), 0)
    beat, phase = divmod(twelfths, 12)
    return (48 if first_in_bar else 0) + min(beat, 3) * 12 + phase


@lru_cache(maxsize=4096)
def chord_class_of(root: int, mask: int) -> int:
    """Class of a chord given as root and 12-bit pitch-class mask."""
    if not mask:
        return CHORD_CLASSES.index("none")
    rel = {(p - root) % 12 for p in range(12) if mask >> p & 1}
    if 4 in rel:
        if 8 in rel and 7 not in rel and 10 not in rel:
            return CHORD_CLASSES.index("augmented")
        return CHORD_CLASSES.index("dominant" if 10 in rel else "major")
    if 3 in rel:
        if 6 in rel and 7 not in rel:
            return CHORD_CLASSES.index("diminished" if 9 in rel or 10 not in rel else "half-diminished")
        return CHORD_CLASSES.index("minor")
    if 5 in rel or 2 in rel:
        return CHORD_CLASSES.index("suspended")
    return CHORD_CLASSES.index("none")


def chord_class(chord: Chord | None) -> int:
    return chord_class_of(chord.root, chord.mask) if chord is not None else CHORD_CLASSES.index("none")
