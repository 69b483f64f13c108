"""Articulation: how long real players hold a note, as a share of its span, drawn for a
rendering stage.  numpy + stdlib json; any thread (a lookup and one draw; no allocation
beyond a few floats).

The value grammar keeps a note's length on the transcription's grid (ingest rounds the
sounding length to the note's tatum step, so 77% of WJD notes reach the next onset as
values, while 20% did as played: see models/README.md, "Note lengths, rests and
articulation").  The held share puts back what the grid took away:

    held share = sounding duration / span, capped at 1

where the span is the time from the note's onset to the next note's onset, or, for the
last note before a rest of a beat or more (`phrase_final`), the note's own value length
(what the grid gave it).  It is counted from the WJD's sounding durations
(`jazzd.training.articulation`, `jazzd articulation`) per cell of:
- length class of the span in beats (`CLASSES`: 16th, 8th triplet, 8th, quarter, long);
- position of the onset in the beat: on the beat or off it;
- tempo band (`TEMPO_BANDS`, bpm of the local beat);
- phrase-final or not;
and stored as quantiles (`QUANTILES`) of the share, so a draw follows the players' spread.
A cell with too few notes backs off to a coarser one (`BACKOFF`: tempo, then position,
then phrase position merged), down to the class alone and to all notes.

A renderer plays a note for `held_share(...) * span` beats (never past its value's end).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from jazzd.errors import InputError
from jazzd.model.shipped import read_json

FORMAT = "jazzd-articulation"
VERSION = 1
# (name, upper bound of the span in beats, exclusive): by the midpoints between 1/4, 1/3,
# 1/2, 1 and 2 beats on a log scale, roughly.
CLASSES = (("16th", 0.29), ("8th triplet", 0.42), ("8th", 0.75), ("quarter", 1.5), ("long", math.inf))
TEMPO_BANDS = (("slow", 120.0), ("medium", 200.0), ("fast", math.inf))  # bpm, upper bound exclusive
POSITIONS = ("on", "off")
ON_BEAT = 1 / 24  # an onset within this many beats of a beat is on it
PHRASE_REST = 1.0  # beats of silence after a note that make it a phrase's last
QUANTILES = tuple(k / 20 for k in range(21))
ANY = "*"
# The lookup order: the full cell, then with tempo merged, then position too, then phrase
# position too; (True = the part is kept) for (class, position, tempo, phrase_final).
BACKOFF = ((True, True, True, True), (True, True, False, True), (True, False, False, True),
           (True, False, False, False), (False, False, False, False))


def length_class(span_beats: float) -> str:
    return next(name for name, upper in CLASSES if span_beats < upper)


def tempo_band(bpm: float) -> str:
    return next(name for name, upper in TEMPO_BANDS if bpm < upper)


def position(position_in_beat: float) -> str:
    frac = position_in_beat - math.floor(position_in_beat)
    return "on" if frac < ON_BEAT or frac > 1 - ON_BEAT else "off"


def cell_key(cls: str, pos: str, band: str, final: bool | str) -> str:
    final_s = final if isinstance(final, str) else ("final" if final else "inside")
    return f"{cls}|{pos}|{band}|{final_s}"


def backoff_keys(cls: str, pos: str, band: str, final: bool) -> list[str]:
    """The keys to try for one note, most specific first."""
    parts = (cls, pos, band, "final" if final else "inside")
    return [cell_key(*(p if keep else ANY for p, keep in zip(parts, kept, strict=True))) for kept in BACKOFF]


@dataclass(frozen=True)
class Articulation:
    """Quantiles of the held share per cell (`cells`: key -> (n, quantiles))."""

    cells: dict[str, tuple[int, tuple[float, ...]]]
    info: dict
    # the cell found for each (length class, position, tempo band, final): `cell` runs
    # for every note jazzd plays, its backed-off keys are strings made anew each time
    _found: dict = field(default_factory=dict, compare=False, repr=False)

    def cell(self, span_beats: float, position_in_beat: float, tempo_bpm: float,
             phrase_final: bool) -> tuple[str, int, tuple[float, ...]]:
        """(key, notes counted, quantiles) of the most specific cell the table holds."""
        kind = (length_class(span_beats), position(position_in_beat), tempo_band(tempo_bpm), bool(phrase_final))
        found = self._found.get(kind)
        if found is not None:
            return found
        for key in backoff_keys(*kind):
            if key in self.cells:
                n, q = self.cells[key]
                found = self._found[kind] = (key, n, q)
                return found
        raise InputError("the articulation table has no cell for all notes ('*|*|*|*'); write it again "
                         "with `jazzd articulation`")

    def held_share(self, ioi_beats: float, position_in_beat: float, tempo_bpm: float,
                   phrase_final: bool, rng: np.random.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
        """A held share (0-1] drawn from the players' distribution for this kind of note:
        the inverse of the cell's quantile function at one uniform draw of `rng` (so the
        same rng state gives the same share); with `lo`/`hi`, from that distribution
        within [lo, hi] (the draw spread over the cumulative shares between them)."""
        _key, _n, q = self.cell(ioi_beats, position_in_beat, tempo_bpm, phrase_final)
        u = float(rng.random())
        if lo > 0.0 or hi < 1.0:
            a, b = cumulative(q, lo), cumulative(q, hi)
            if b > a:
                return min(max(draw(q, a + u * (b - a)), lo), hi)
            return min(max(draw(q, u), lo), hi)
        return draw(q, u)

    def median(self, ioi_beats: float, position_in_beat: float, tempo_bpm: float, phrase_final: bool) -> float:
        return draw(self.cell(ioi_beats, position_in_beat, tempo_bpm, phrase_final)[2], 0.5)


def draw(quantiles, u: float) -> float:
    """The value at cumulative share `u` (0-1) of a distribution given by its values at
    `QUANTILES` (linear in between)."""
    u = min(max(u, 0.0), 1.0)
    i = min(bisect_right(QUANTILES, u) - 1, len(QUANTILES) - 2)
    lo, hi = QUANTILES[i], QUANTILES[i + 1]
    return float(quantiles[i] + (quantiles[i + 1] - quantiles[i]) * (u - lo) / (hi - lo))


def cumulative(quantiles, x: float) -> float:
    """The cumulative share (0-1) at value `x` of a distribution given by its values at
    `QUANTILES` (the inverse of `draw`; within a run of equal values, its middle)."""
    if x <= quantiles[0]:
        return 0.0
    if x >= quantiles[-1]:
        return 1.0
    i = bisect_right(quantiles, x) - 1
    lo, hi = quantiles[i], quantiles[i + 1]
    return QUANTILES[i] + (QUANTILES[i + 1] - QUANTILES[i]) * (x - lo) / (hi - lo)


def to_json(cells: dict[str, tuple[int, tuple[float, ...]]], info: dict) -> dict:
    return {"format": FORMAT, "version": VERSION, "quantiles": list(QUANTILES), "info": info,
            "cells": {k: {"n": n, "q": [round(float(x), 4) for x in q]} for k, (n, q) in sorted(cells.items())}}


def from_json(data, where: str = "articulation table") -> Articulation:
    """An `Articulation` from the parsed JSON, checked (one-line InputError naming the problem)."""
    fix = "write it again with `jazzd articulation`"
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{where}: not a jazzd articulation table; {fix}")
    if data.get("version") != VERSION:
        raise InputError(f"{where}: articulation table version {data.get('version')!r}, this jazzd reads "
                         f"{VERSION}; {fix}")
    if [round(x, 6) for x in data.get("quantiles", [])] != [round(x, 6) for x in QUANTILES]:
        raise InputError(f"{where}: the table's quantiles are not the ones this jazzd draws from; {fix}")
    cells = {}
    for key, cell in (data.get("cells") or {}).items():
        try:
            n, q = int(cell["n"]), tuple(float(x) for x in cell["q"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: cell {key!r} is malformed; {fix}") from None
        if len(q) != len(QUANTILES) or not all(0 <= x <= 1 for x in q) or list(q) != sorted(q) or n < 1:
            raise InputError(f"{where}: cell {key!r} does not hold {len(QUANTILES)} rising shares in [0, 1]; {fix}")
        cells[key] = (n, q)
    if cell_key(ANY, ANY, ANY, ANY) not in cells:
        raise InputError(f"{where}: no cell for all notes ('*|*|*|*'); {fix}")
    return Articulation(cells, dict(data.get("info") or {}))


def shipped_articulation() -> Articulation | None:
    """The shipped articulation table, or None when it is missing (then notes are held
    for their whole value, as `articulation = legato`)."""
    from jazzd.model.shipped import default_articulation

    path = default_articulation()
    return load_articulation(path) if path.is_file() else None


def load_articulation(path) -> Articulation:
    data = read_json(path, "articulation table", "jazzd articulation")
    return from_json(data, str(path))
