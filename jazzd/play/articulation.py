"""The articulation step of the rendition: how long jazzd's notes sound.  numpy (the
injected rng); the engine's thread.

The model's values hold a note on the transcription's grid, which absorbed the gaps
players leave (77% of WJD notes reach the next onset as encoded, 29% as played:
models/README.md, "Note lengths, rests and articulation").  This puts them back: each
note sounds for the held share of its span that real players give such a note, drawn
from the WJD table (`jazzd.model.articulation`), its note off before the next onset.

Why a sibling of the feel stage (`jazzd.play.feel`) and not part of it, called from the
same place (`Engine._emit`, after the feel): the feel is a time warp of the grid's
points (it must see where the grid's notes tile to tell swung beats from triplets, and
a note off and the next note on, placed apart, must agree), while articulation moves
note offs only, by a share of each note's played span, with its own table, its own
player measure and its own random stream.  Shortening the grid before the feel would
hide the eighths the feel swings; shortening after it measures the share in played
time, as the table was counted (in seconds).  One rendition path still: live play,
`jazzd generate` and `jazzd report` all go through `_emit`.

- `articulation = "legato"` (or no table): every note sounds for its whole value (what
  jazzd did before; no random draws).
- `"wjd"`: a share drawn per note from the table's cell for its span (length class),
  position in the beat, tempo and phrase position.
- `"player"`: as "wjd", with every share scaled by how the player holds their notes
  against what the table gives the same notes (`hear_player`: the player's raw notes of
  the last `PLAYER_WINDOW_BEATS` beats up to their latest onset, once at least
  `PLAYER_MIN_NOTES` were measurable); until then as "wjd".
`articulation_amount` (0-1) mixes between the whole value (0) and the drawn share (1).

A note's span is what the table's was: the time from its onset to the next onset, or,
before a silence of `PHRASE_REST` (1) beat or more (phrase-final), its value's length.
The engine plans a few beats at a time, so the last note of a plan may not know its next
onset yet; it counts the silence planned after it (up to the cursor) and, if that is
short, the cursor as the next onset (exact when a note comes next, as it mostly does).
The span is taken in played beats: the played value length, scaled by the grid's
span over the grid's value where a short rest follows.

The rules it keeps, whatever the table says: a note off is never later than the value's
played end (so never after the next note on, of any pitch, and notes never overlap), and
never earlier than `MIN_AUDIBLE_S` (30 ms) after its note on (a value shorter than that
keeps its length).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from jazzd.model.articulation import PHRASE_REST, Articulation
from jazzd.play.settings import ARTICULATIONS

MIN_AUDIBLE_S = 0.030       # a note sounds at least this long (seconds)
PLAYER_MIN_NOTES = 8        # the player's measured notes before their articulation is taken over
MAX_PLAYER_FACTOR = 2.0
_EPS = 1e-6


def tatum(onset: float, end: float) -> float:
    """The tatum step (beats) a transcription would measure a note from `onset` to `end`
    in (ingest: 1/division of its beat, at most 1/2): the coarsest of 1/2, 1/3, 1/4 on
    which both lie, else 1/12."""
    for step in (1 / 2, 1 / 3, 1 / 4, 1 / 6):
        if all(abs(x / step - round(x / step)) < 1e-4 for x in (onset, end)):
            return step
    return 1 / 12


class Articulate:
    def __init__(self, table: Articulation | None, rng: np.random.Generator):
        self.table = table
        self.rng = rng
        self._player_key: tuple | None = None
        # (notes measured, their mean held share, factor: that over the table's mean median)
        self.player: tuple[int, float, float] | None = None

    # --- the player ---------------------------------------------------------------------
    def hear_player(self, notes: Sequence[tuple[float, float | None]], tempo: float) -> None:
        """The player's articulation from their raw notes ((onset, end) beats as played,
        in order; end None while sounding): the held share of every note followed by
        another within a phrase, against the table's median for such a note."""
        key = (len(notes), notes[-1] if notes else None, tempo)
        if key == self._player_key or self.table is None:
            return
        self._player_key = key
        shares, medians = [], []
        for (on, end), (nxt, _) in itertools.pairwise(notes):
            ioi = nxt - on
            if end is None or ioi <= _EPS or nxt - end >= PHRASE_REST:
                continue
            shares.append(min(max(end - on, 0.0) / ioi, 1.0))
            medians.append(self.table.median(ioi, on, tempo, False))
        if not shares:
            self.player = None
            return
        mean = float(np.mean(shares))
        self.player = (len(shares), mean, min(mean / max(float(np.mean(medians)), _EPS), MAX_PLAYER_FACTOR))

    def factor(self, articulation: str) -> float:
        """What the drawn shares are scaled by: the player's factor under "player", once
        measured, else 1."""
        if articulation == "player" and self.player is not None and self.player[0] >= PLAYER_MIN_NOTES:
            return self.player[2]
        return 1.0

    # --- the note offs ------------------------------------------------------------------
    def offs(self, played: Sequence[tuple[float, float]], grid: Sequence[tuple[float, float]],
             until: float, closed: bool, articulation: str, amount: float, tempo: float) -> list[tuple[float, float]]:
        """Played (onset, end) beats of the notes of one plan with their ends articulated.
        `played`: as the feel places them; `grid`: as planned (same order); `until`: the
        grid beat up to which the line is planned (the cursor); `closed`: nothing comes
        after `until` (an answer's end), so the last note ends a phrase."""
        if self.table is None or articulation not in ARTICULATIONS or articulation == "legato":
            return list(played)
        spb = 60.0 / tempo
        floor = MIN_AUDIBLE_S / spb
        factor = self.factor(articulation)
        out = []
        for i, ((on, end), (g_on, g_end)) in enumerate(zip(played, grid, strict=True)):
            value = g_end - g_on
            if i + 1 < len(grid):
                nxt, known = grid[i + 1][0], True
            else:
                nxt, known = max(until, g_end), False
            final = nxt - g_end >= PHRASE_REST - _EPS or (not known and closed)
            length = end - on
            if final:
                class_span, span = value, length
            else:
                class_span = nxt - g_on
                span = length * class_span / value if value > _EPS else length
            # The value is the played length rounded to its tatum step: the share lies
            # where that rounding would give this value.
            half = tatum(g_on, g_end) / 2
            lo = max(value - half, 0.0) / class_span if class_span > _EPS else 0.0
            hi = min((value + half) / class_span, 1.0) if class_span > _EPS else 1.0
            share = self.table.held_share(class_span, g_on, tempo, final, self.rng, lo, hi)
            share = min(share * factor, 1.0)
            held = span * (1.0 - amount * (1.0 - share))
            off = on + min(held, length)
            off = max(off, on + floor) if length >= floor else end
            out.append((on, off if math.isfinite(off) else end))
        return out
