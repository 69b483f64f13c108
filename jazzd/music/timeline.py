"""Time in beats: the grid a line keeps, and where a value may end so that it keeps it.

Pure Python, any thread (the engine plans with it live; the listener snaps to it).

The grid is the union of sixteenths and eighth-note triplets: positions that are a
multiple of 1/4 or of 1/3 of a beat (twelfths 0, 3, 4, 6, 8, 9 of each beat).  It is the
grid of the listener (what a player's notes are heard on) and of swing phrasing.
Sixteenth-note triplets (1/6: twelfths 2 and 10) are not on it: like a quintuplet or a
septuplet, a sextuplet is a subdivision of its own beat.  Counted as grid points, they
would let a line run on a sixth of a beat off the swung eighths (eighths at .333 and
.833 of every beat), which is what losing the beat sounds like.  Off the grid, a note is
fine inside a tuplet group that resolves by the next beat.
"""

from __future__ import annotations

import math

from jazzd.music.grammar import MIN_DUR

GRID_TWELFTHS = (0, 3, 4, 6, 8, 9)
_EPS = 1e-6


def on_grid(beat: float) -> bool:
    """Whether `beat` is a sixteenth or an eighth-note triplet position."""
    frac = (beat - math.floor(beat + _EPS)) * 12
    return abs(frac - round(frac)) < 12 * _EPS and round(frac) % 12 in GRID_TWELFTHS


def snap(beat: float) -> float:
    """The nearest grid point to `beat` (the earlier one of two as near)."""
    whole = math.floor(beat)
    frac = (beat - whole) * 12
    best = min((*GRID_TWELFTHS, 12), key=lambda g: (abs(g - frac), g))
    return whole + best / 12


def keep_the_beat(onset: float, dur: float) -> float:
    """Where a value of `dur` beats that starts at `onset` ends, so the line keeps the beat.

    - From off the grid, a value never carries the line across a beat: it ends on that
      beat, so a tuplet group the value belongs to resolves there (a 0.333 after four
      quintuplet fifths is played as the fifth fifth);
    - a value that would end off the grid less than `MIN_DUR` (the shortest value) before
      a beat ends on that beat instead, so no gap is left that no value can fill.
    Otherwise the value ends where its length says.  The beat is returned exactly, so
    float error never adds up across a solo.
    """
    end = onset + dur
    beat = math.floor(onset + _EPS) + 1
    if end > beat + _EPS and not on_grid(onset):
        return float(beat)
    if not on_grid(end):
        beat = math.ceil(end - _EPS)
        if beat - end < MIN_DUR - _EPS:
            return float(beat)
    return end
