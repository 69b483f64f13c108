"""The feel model: the swing (BUR) and downbeat delay real soloists play at a tempo.
json + math only; loaded once with the engine.

Fitted from the WJD solos by `jazzd feel-model` (`jazzd.training.feel`): per quantity a
line in log tempo, BUR = bur_a + bur_b ln(bpm) and delay (ms) = delay_a + delay_b
ln(bpm), with the spread of the solos around it, and the typical spread of a solo's
downbeats around its own median (`beat_spread_ms`).  Outside the fitted tempos the
line is held at its ends; the BUR never goes below 1 (straight).  The file ships
beside the bundle: models/jazzd-wjd.feel.json (`shipped.default_feel`).  Without it (a
packaging mistake) the engine plays straight (`FeelModel.straight`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from jazzd.errors import InputError
from jazzd.model.shipped import read_json

FEEL_VERSION = 1
_KEYS = ("bur_a", "bur_b", "bur_spread", "delay_a", "delay_b", "delay_spread", "beat_spread_ms")


@dataclass(frozen=True)
class FeelModel:
    bur_a: float
    bur_b: float
    bur_spread: float
    delay_a: float          # ms
    delay_b: float
    delay_spread: float     # ms
    beat_spread_ms: float   # a solo's downbeats around its median delay
    tempo_range: tuple[float, float] = (60.0, 320.0)
    info: dict = field(default_factory=dict, compare=False)

    @classmethod
    def straight(cls) -> FeelModel:
        """No swing, no delay: what plays when there is no model file."""
        return cls(1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, info={"straight": True})

    def _lt(self, tempo: float) -> float:
        lo, hi = self.tempo_range
        return math.log(min(max(tempo, lo), hi))

    def bur(self, tempo: float) -> float:
        """The BUR real soloists play at `tempo` bpm (median solo)."""
        return max(1.0, self.bur_a + self.bur_b * self._lt(tempo))

    def delay_ms(self, tempo: float) -> float:
        """Their median downbeat delay (ms) at `tempo`, never below 0."""
        return max(0.0, self.delay_a + self.delay_b * self._lt(tempo))

    def to_json(self) -> dict:
        return {"format": "jazzd-feel", "version": FEEL_VERSION, **{k: getattr(self, k) for k in _KEYS},
                "tempo_range": list(self.tempo_range), "info": self.info}

    @classmethod
    def from_json(cls, data: dict, where: str = "feel model") -> FeelModel:
        if not isinstance(data, dict) or data.get("format") != "jazzd-feel":
            raise InputError(f"{where}: not a jazzd feel model; write one with `jazzd feel-model`")
        if data.get("version") != FEEL_VERSION:
            raise InputError(f"{where}: feel model version {data.get('version')!r}, this jazzd reads "
                             f"{FEEL_VERSION}; write it again with `jazzd feel-model`")
        try:
            values = {k: float(data[k]) for k in _KEYS}
            lo, hi = (float(x) for x in data["tempo_range"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{where}: missing or bad field ({err}); write it again with `jazzd feel-model`") from None
        if not all(math.isfinite(v) for v in [*values.values(), lo, hi]) or not 0 < lo < hi:
            raise InputError(f"{where}: a field is not a finite number; write it again with `jazzd feel-model`")
        return cls(**values, tempo_range=(lo, hi), info=dict(data.get("info") or {}))


def load_feel(path) -> FeelModel:
    data = read_json(path, "feel model", "jazzd feel-model")
    return FeelModel.from_json(data, str(path))


@lru_cache(maxsize=4)
def shipped_feel() -> FeelModel:
    """The shipped feel model, or `FeelModel.straight()` when it is missing."""
    from jazzd.model.shipped import default_feel

    path = default_feel()
    return load_feel(path) if path.is_file() else FeelModel.straight()
