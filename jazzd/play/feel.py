"""The feel stage: where jazzd's planned notes are played.  numpy (the injected rng);
the engine's thread.

The engine plans its line on the beat grid, as it always did; this maps the grid
positions of the notes it plans (beats) to the positions they are played at:

- `feel = "straight"` (or amount 0): on the grid, exactly as before;
- `feel = "wjd"`: as the WJD soloists played at the current tempo (`jazzd.model.feel`:
  the BUR and downbeat delay of the median solo at that tempo), each performance (each
  Feel: an engine, a seed) with a feel of its own, as each real solo has: its BUR and
  delay lie off the median by `personal`, drawn once from the spread of the real solos
  around it (Normal, clipped at 2 sd);
- `feel = "player"`: as the player plays: the BUR, downbeat delay and its spread the feel meter
  (`jazzd.music.feel`) reads from the player's raw onsets (`Listener.raw_onsets`) of the
  `PLAYER_WINDOW_BEATS` beats up to the player's latest note (kept while jazzd plays), once at least `PLAYER_MIN_BEATS` of them were
  measurable; until then as "wjd".
`feel_amount` (0-1) scales the swing (BUR - 1), the delay and the spread.

How a beat k is played, with d_k its downbeat's delay (the delay plus a seeded spread,
Normal(0, sigma) clipped at 2 sigma and 0.05 beat, one draw per beat, kept, so a note's
note off and the next note's note on, computed apart, agree):
- its downbeat at k + d_k;
- a beat of eighths (every note boundary inside it on the off-beat): the off-beat
  moves to BUR/(1+BUR) of the way from the played downbeat to the next, so the meter
  reads the BUR back exactly; points between move piecewise linearly;
- any other beat (triplets, sixteenths, quintuplets, mixed): played even between its
  played downbeats, k + d_k + p (1 + d_{k+1} - d_k): jazz players swing eighths, not
  the notes of a triplet or a double-time run, so these keep their evenness and only
  lay back with the beat.  (A beat's kind is fixed the first time it is planned.)
- the short eighth is never shorter than `MIN_SHORT_S` (100 ms, Friberg & Sundström
  2002): at fast tempos the BUR is capped, and at 300 bpm and above eighths are even.
The map is monotone within and across beats, so notes keep their order, a note's off
follows its on, and notes that tiled on the grid still tile (no overlap, no gap); an
onset is never earlier than the time it is planned at, nor than its grid point: a
downbeat is laid back or on the beat, never ahead of it (d_k >= 0, so every point maps
at or after itself).  The engine judges what has started by the grid (`Engine._cut`):
a note played ahead of its grid point was sounding when a cut at that point took it for
not yet started, replanned it, and the same value sounded twice at once (found by the
articulation stage's property test, duet at 280 bpm).  A player who plays ahead of the
beat is followed as one on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median

import numpy as np

from jazzd.model.feel import FeelModel
from jazzd.music.feel import beat_feels
from jazzd.play.settings import FEELS

MIN_SHORT_S = 0.100        # the short eighth never shorter (seconds)
SPREAD_SHARE = 0.5         # the spread: this share of a WJD solo's downbeat spread...
MAX_SPREAD_S = 0.010       # ...at most this (seconds)
MAX_JITTER_BEATS = 0.05
PLAYER_WINDOW_BEATS = 16   # the player's feel: over about the last four bars
PLAYER_MIN_BEATS = 4       # measured beats before it is taken over
_EPS = 1e-6
_KEEP_BEATS = 32           # beats of kinds and delays kept behind the latest


class Feel:
    def __init__(self, model: FeelModel, rng: np.random.Generator):
        self.model = model
        self.rng = rng
        self._delay: dict[int, float] = {}   # beat -> its downbeat's delay (beats)
        self._oldest = 0                      # the oldest beat in `_delay` at the last trim (`place`)
        self._swung: dict[int, bool] = {}    # beat -> played as swung eighths
        self._params: tuple = ()             # (bur, delay beats, sigma beats) in use
        self._set_key: tuple | None = None   # what `set` made them from
        self._player_key: tuple | None = None
        # The player's feel: measured beats, BUR, downbeat delay and its spread (ms).
        self.player: tuple[int, float, float, float] | None = None
        z = np.clip(rng.normal(size=2), -2.0, 2.0)
        self.personal = (float(z[0]) * model.bur_spread, float(z[1]) * model.delay_spread)  # BUR, ms

    # --- what to play -------------------------------------------------------------------
    def hear_player(self, onsets: Sequence[float], spb: float) -> None:
        """The player's feel from raw onsets (beats, recent ones), at `spb` s a beat."""
        key = (len(onsets), onsets[-1] if onsets else None, spb)
        if key == self._player_key:
            return
        self._player_key = key
        if not onsets:
            self.player = None
            return
        first = math.floor(min(onsets)) - 1
        beats = [float(b) for b in range(first, math.ceil(max(onsets)) + 2)]
        measured = beat_feels([x * spb for x in onsets], [b * spb for b in beats])
        if not measured:
            self.player = None
            return
        delays = [1000 * m.delay for m in measured]
        delay = median(delays)
        spread = 1.4826 * median(abs(d - delay) for d in delays)  # sd, robustly
        self.player = (len(measured), median(m.bur for m in measured), delay, spread)

    def target(self, feel: str, tempo: float) -> tuple[float, float]:
        """(BUR, downbeat delay ms) asked for at `tempo` under `feel` (amount 1)."""
        if feel not in FEELS or feel == "straight":
            return 1.0, 0.0
        if feel == "player" and self.player is not None and self.player[0] >= PLAYER_MIN_BEATS:
            return max(self.player[1], 1.0), self.player[2]
        return max(self.model.bur(tempo) + self.personal[0], 1.0), self.model.delay_ms(tempo) + self.personal[1]

    def set(self, feel: str, amount: float, tempo: float) -> None:
        """The feel for the notes planned next."""
        key = (feel, amount, tempo, self.player)
        if key == self._set_key:  # (as for the last notes: the usual case, at a steady tempo)
            return
        self._set_key = key
        bur, delay_ms = self.target(feel, tempo)
        spb = 60.0 / tempo
        spread_ms = self.model.beat_spread_ms
        if feel == "player" and self.player is not None and self.player[0] >= PLAYER_MIN_BEATS:
            spread_ms = self.player[3]  # as tight (or loose) as the player
        spread = 0.0 if feel == "straight" else min(SPREAD_SHARE * spread_ms / 1000, MAX_SPREAD_S)
        self._params = (1 + amount * (bur - 1), amount * delay_ms / 1000 / spb, amount * spread / spb,
                        MIN_SHORT_S / spb)

    @property
    def straight(self) -> bool:
        return not self._params or (self._params[0] == 1 and self._params[1] == 0 and self._params[2] == 0)

    # --- the map --------------------------------------------------------------------------
    def place(self, notes: Sequence[tuple[float, float]], now: float) -> list[tuple[float, float]]:
        """Played (onset, end) beats of notes planned on the grid as (onset, end) beats,
        planned at beat `now`."""
        if self.straight:
            return list(notes)
        low = math.floor(now) - _KEEP_BEATS
        if self._oldest < low - _KEEP_BEATS:  # (now and then: a dict made anew for every plan cost more than its notes)
            self._delay = {k: v for k, v in self._delay.items() if k >= low}
            self._swung = {k: v for k, v in self._swung.items() if k >= low}
            self._oldest = min(self._delay, default=low)
        inside: dict[int, set[bool]] = {}
        for onset, end in notes:
            for x in (onset, end):
                k = math.floor(x + _EPS)
                p = x - k
                if p > _EPS:
                    inside.setdefault(k, set()).add(abs(p - 0.5) < _EPS)
        for k, offbeat in inside.items():
            if k not in self._swung:
                self._swung[k] = offbeat == {True}
        out = []
        for onset, end in notes:
            on = max(self._point(onset, now), now)
            out.append((on, max(self._point(end, now), on + _EPS)))
        return out

    def _downbeat(self, k: int, now: float) -> float:
        d = self._delay.get(k)
        if d is None:
            _, delay, sigma, _ = self._params
            jitter = 0.0
            if sigma > 0:
                bound = min(2 * sigma, MAX_JITTER_BEATS)  # (min/max: np.clip's result, at a tenth of its cost)
                jitter = min(max(float(self.rng.normal(0.0, sigma)), -bound), bound)
            d = self._delay[k] = max(delay + jitter, now - k, 0.0)  # never ahead of the grid: see above
        return d

    def _point(self, x: float, now: float) -> float:
        k = math.floor(x + _EPS)
        p = x - k
        d0 = self._downbeat(k, now)
        if p <= _EPS:
            return k + d0
        span = 1 + self._downbeat(k + 1, now) - d0  # between the played downbeats
        if not self._swung.get(k, False):
            return k + d0 + p * span
        bur, _, _, short = self._params
        long = max(min(span * bur / (1 + bur), span - short), span / 2)
        if p <= 0.5:
            return k + d0 + p / 0.5 * long
        return k + d0 + long + (p - 0.5) / 0.5 * (span - long)
