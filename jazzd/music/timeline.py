"""Time in beats: the grid a line keeps, where a value may end so that it keeps it, and
how a silence becomes rests.

Pure Python, any thread (the engine plans and hears with it live; the listener snaps to
it; ingest and the report turn gaps into rests with it).

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
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import pairwise

from jazzd.music.grammar import MIN_DUR

GRID_TWELFTHS = (0, 3, 4, 6, 8, 9)  # ascending, from 0 (`snap` relies on it)
_SNAP_POINTS = (*GRID_TWELFTHS[1:], 12)  # after 0, which `snap` starts from
_EPS = 1e-6
# Within this of a grid point a value's end is on it (`keep_the_beat`): values are
# written to three decimals, so each carries up to 0.0005 beat of rounding, and a tuplet
# group drifts by a few thousandths (three 0.111s from a beat: 1/3000 short of the
# triplet).  No single value of the shipped vocabulary (its 68 lengths) ends this near
# a grid point without being on it, from any grid point; a mix of
# tuplets can (a ninth, then a seventh: 0.004 past a sixteenth), and then ends on the
# grid point, up to DRIFT shorter or longer than written.
DRIFT = 0.005


def on_grid(beat: float) -> bool:
    """Whether `beat` is a sixteenth or an eighth-note triplet position."""
    frac = (beat - math.floor(beat + _EPS)) * 12
    return abs(frac - round(frac)) < 12 * _EPS and round(frac) % 12 in GRID_TWELFTHS


def snap(beat: float) -> float:
    """The nearest grid point to `beat` (the earlier one of two as near)."""
    whole = math.floor(beat)
    frac = (beat - whole) * 12
    best, gap = 0, abs(frac)
    for g in _SNAP_POINTS:  # ascending: a tie keeps the earlier (a loop: no key function per point)
        d = abs(g - frac)
        if d < gap:
            best, gap = g, d
    return whole + best / 12


def keep_the_beat(onset: float, dur: float) -> float:
    """Where a value of `dur` beats that starts at `onset` ends, so the line keeps the beat.

    - From off the grid, a value never carries the line across a beat: it ends on that
      beat, so a tuplet group the value belongs to resolves there (a 0.333 after four
      quintuplet fifths is played as the fifth fifth);
    - a value that would end off the grid less than `MIN_DUR` (the shortest value) before
      a beat ends on that beat instead, so no gap is left that no value can fill;
    - a value that would end within `DRIFT` of a grid point ends on it: values are
      written to three decimals (1/3 as 0.333, 1/9 as 0.111), so three 0.111s from the
      beat end 1/3000 of a beat short of the triplet they make.  That sliver is no
      rest anyone played, and no value can be written that short (0.000).
    Otherwise the value ends where its length says.  The beat and a grid point snapped
    to are returned exactly, so float error never adds up across a solo.
    """
    end = onset + dur
    beat = math.floor(onset + _EPS) + 1
    if end > beat + _EPS and not on_grid(onset):
        return float(beat)
    if not on_grid(end):
        point = snap(end)
        if abs(point - end) < DRIFT:
            return point
        beat = math.ceil(end - _EPS)
        if beat - end < MIN_DUR - _EPS:
            return float(beat)
    return end


def rests(start, end, bar_lines: Sequence | float) -> list[tuple]:
    """The silence from `start` to `end` as rests: (onset, end) pairs, split at every bar
    line inside it, however short the pieces (training hears rests shorter than any
    note: 447 of the WJD corpus's 46,787 are below 1/12 beat).

    `bar_lines` is the sorted positions of the bar lines, or one number: the length of
    every bar, counted from 0.  Positions may be floats (beats) or integers (ticks, kept
    exact).  This is the one rule for gaps: the WJD and MIDI readers (the training data),
    the report's rendered solos and the engine's live silences all use it, so the model
    hears live exactly what it learnt from.
    """
    if isinstance(bar_lines, int | float):
        lines = [k * bar_lines for k in range(math.floor(start / bar_lines + _EPS) + 1,
                                              math.ceil(end / bar_lines - _EPS))]
    else:
        lines = bar_lines[bisect_right(bar_lines, start + _EPS):bisect_left(bar_lines, end - _EPS)]
    return [(a, b) for a, b in pairwise([start, *lines, end]) if b - a > _EPS]
