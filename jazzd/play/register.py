"""The player's register: where jazzd's range sits, learned from the notes it hears.

Pure Python; the engine's thread.  Deterministic: it changes only with the notes heard.

A fixed range (G3-C6 by default) keeps jazzd's lines in one place whoever plays with
it: a player high on a trumpet part hears answers a fifth below, one in the tenor
register answers above.  So the range follows the player: its centre is the mean and its
half-width 2.5 standard deviations of the player's notes heard this session, both
exponential averages over about the last `WINDOW` notes (32: four bars of eighths), so
a register moves over phrases, not with every note.  Measured on the 369 training solos
of the shipped model, each note against the range derived from the notes before it:
98.9% of the players' notes fall inside it (95% lie within 2.0 standard deviations),
and it is 26.2 semitones wide on average (the default range is 29), so it holds what
the player plays and not much more.  The half-width is at least `MIN_HALF` (6
semitones: an octave for the line at the least) so that a player who repeats one note
still leaves room for a line.  The configured range
(range_low, range_high) stays the hard bound: the followed range is moved, not cut,
to fit inside it, and is the configured range whenever that is narrower.

Until `WARM_UP` notes are heard (4) the configured range holds.  Four, not more: a
call is often all there is (a fresh session, or the listening measure, which gives each
real phrase to a fresh engine), and most calls are shorter than two bars of eighths.
From 4 notes the spread is rough (relative standard error about 1 / sqrt(2(n - 1)):
41% at 4 notes, 18% at 16), which `MIN_HALF` absorbs.  Measured with `jazzd report`'s
listening section (480 real calls, validation solos): the correlation of a call's mean
pitch with the answer's went from 0.525 (16 notes, 7 semitones) to 0.641 at seed 0 and
0.703 at seed 100, against 0.675 / 0.668 for the real next phrases; wider (the spread
inflated by its standard error) followed less (0.574).  Without any player notes (solo
mode, before the first call) nothing changes.

Where a new phrase starts (`re_entry`, used by the engine at `imitation` above 0 when
jazzd starts an answer or a duet turn).  A soloist's next phrase re-enters toward the
middle of their register rather than where the last one ended: over the 480 call and
answer pairs of the listening measure, (next phrase's mean - call's mean) = 0.26 x
(call's last note - call's mean); jazzd's answers, placed from the call's last note,
0.40 (0.56 at imitation 1, the memory's figures carrying the line on).  So the answer's
first note is placed from the call's last note moved `imitation` of the way to the mean
of the player's notes (a virtual previous note: what was heard is unchanged; at
imitation 1 with pulls of 0.75 and 1 the answers' dependence on the last note was 0.30
and 0.29).  The correlation of call and answer mean pitches went from
0.613 to 0.725 at imitation 1 (means over seeds 0-3; real 0.676), 0.730 at the default
0.9 (seed 0).
"""

from __future__ import annotations

import math

WINDOW = 32     # notes: the averages' time constant
WARM_UP = 4     # notes heard before the range moves
SPREAD = 2.5    # half-width of the range in standard deviations of the player's notes
MIN_HALF = 6    # semitones: the narrowest half-width


class Register:
    """The running mean and spread of the player's pitches."""

    def __init__(self):
        self.heard = 0
        self.mean = 0.0
        self.var = 0.0

    def hear(self, midi: int) -> None:
        """One note of the player's.  The first `WINDOW` notes are averaged equally (so
        the first note does not weigh as much as the 32 before it), later ones
        exponentially with weight 1 / WINDOW."""
        self.heard += 1
        weight = 1.0 / min(self.heard, WINDOW)
        delta = midi - self.mean
        self.mean += weight * delta
        self.var = (1.0 - weight) * (self.var + weight * delta * delta)

    def re_entry(self, last: int, pull: float) -> int:
        """Where a new phrase after the player's starts from: the player's `last` note
        moved `pull` (0-1) of the way to the centre of their register (unmoved before
        `WARM_UP` notes).  See the module docstring."""
        if self.heard < WARM_UP:
            return last
        return round(last + min(max(pull, 0.0), 1.0) * (self.mean - last))

    def range(self, bounds: tuple[int, int]) -> tuple[int, int]:
        """The range to play in, inside `bounds` (the configured range_low, range_high)."""
        lo, hi = bounds
        if self.heard < WARM_UP:
            return bounds
        half = max(SPREAD * math.sqrt(self.var), MIN_HALF)
        if 2 * half >= hi - lo:
            return bounds
        a = round(self.mean - half)
        b = a + round(2 * half)
        shift = max(lo - a, 0) - max(b - hi, 0)  # move it inside the bounds, whole
        return a + shift, b + shift
