"""The feel meter: swing (beat-upbeat ratio) and downbeat delay from onset times.  Pure
Python (no numpy: the listener uses it on the engine's thread).

Benadon-style, as in Corcoran & Frieler 2021 ("Playing it straight", 456 WJD solos; see
../shared/notes/listening-and-feel.md).  A beat k (from beat time b_k to b_{k+1}, beat
length I) is measured when it holds exactly two eighth-ish onsets:
- t1 within 1/8 beat of b_k (the downbeat),
- t2 at 0.45-0.85 of the beat after b_k (the off-beat; straight eighths, at 0.5, are in
  the window, or the median BUR is biased upward; 0.45 lets a straight eighth played a
  little early count),
- no other onset from 1/8 beat before b_k to 1/8 beat before b_{k+1}, and an onset t3
  within 1/8 beat of b_{k+1} (the next downbeat).
Then BUR = (t2 - t1) / (t3 - t2), the downbeat delay = t1 - b_k (positive: laid back),
also as a fraction of the beat, and the off-beat asynchrony = t2 - (b_k + I/2): the
off-beat against the straight eighth of the beat grid (the delay of the downbeat and the
swing together put it there; BUR = (I/2 + off - delay) / (I/2 + delay' - off)).
Triplets (three onsets), sixteenths (four) and beats with a rest on the downbeat or the
off-beat are not measured.

Times are in any one unit (seconds for `summarize`'s milliseconds; the listener passes
beats with `beats = 0, 1, 2, ...` and converts by its tempo).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

DOWNBEAT_WINDOW = 1 / 8        # beats either side of a beat for t1 and t3
OFFBEAT_WINDOW = (0.45, 0.85)  # where t2 may fall, as a fraction of the beat after b_k


@dataclass(frozen=True)
class BeatFeel:
    """One measured beat; times in the unit of the input."""

    beat: int            # index into the beat times
    bur: float
    delay: float         # t1 - b_k
    delay_frac: float    # the same, in beats
    offbeat: float       # t2 - (b_k + I/2)
    offbeat_frac: float


@dataclass(frozen=True)
class FeelSummary:
    """A solo's (or a phrase's) feel: medians over its measured beats; None where no
    beat qualified (`beats` == 0).  Milliseconds assume the input was in seconds."""

    beats: int
    bur: float | None
    delay_ms: float | None
    delay_frac: float | None
    offbeat_ms: float | None
    offbeat_frac: float | None
    tempo: float | None    # bpm: from the median beat length

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def beat_feels(onsets: Sequence[float], beats: Sequence[float]) -> list[BeatFeel]:
    """Every qualifying beat of `onsets` (any order) over the beat times `beats`
    (ascending), in beat order."""
    ts = sorted(onsets)
    out = []
    for k in range(len(beats) - 1):
        b0, b1 = beats[k], beats[k + 1]
        ibi = b1 - b0
        if ibi <= 0:
            continue
        w = DOWNBEAT_WINDOW * ibi
        lo, hi = bisect_left(ts, b0 - w), bisect_left(ts, b1 - w)
        inside = ts[lo:hi]
        if len(inside) != 2:
            continue
        t1, t2 = inside
        if abs(t1 - b0) > w:
            continue
        phase = (t2 - b0) / ibi
        if not OFFBEAT_WINDOW[0] <= phase <= OFFBEAT_WINDOW[1]:
            continue
        if hi >= len(ts) or ts[hi] > b1 + w:
            continue
        t3 = ts[hi]
        if t3 - t2 <= 0 or t2 - t1 <= 0:
            continue
        off = t2 - (b0 + ibi / 2)
        out.append(BeatFeel(k, (t2 - t1) / (t3 - t2), t1 - b0, (t1 - b0) / ibi, off, off / ibi))
    return out


def summarize(onsets: Sequence[float], beats: Sequence[float]) -> FeelSummary:
    """The medians of `beat_feels` (times in seconds), with the tempo of `beats`."""
    measured = beat_feels(onsets, beats)
    ibis = [b - a for a, b in itertools.pairwise(beats) if b > a]
    tempo = 60.0 / median(ibis) if ibis else None
    if not measured:
        return FeelSummary(0, None, None, None, None, None, tempo)
    return FeelSummary(len(measured), median(m.bur for m in measured),
                       1000 * median(m.delay for m in measured), median(m.delay_frac for m in measured),
                       1000 * median(m.offbeat for m in measured), median(m.offbeat_frac for m in measured),
                       tempo)


def swing_position(bur: float) -> float:
    """Where the off-beat eighth falls in the beat, for eighths at `bur` (1 = 0.5)."""
    return bur / (1.0 + bur)
