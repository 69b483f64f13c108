"""The engine's settings: each declared once, here, with its configuration key and rule.  Stdlib only.

A `Settings` field names the key of default.toml that sets it, the rule a configured
value must follow, and, where the engine counts differently from the file, the
conversion (`load`): MIDI channels are 1-16 in the file and 0-15 in the engine.
`jazzd.live.config` takes the rules of these keys from here (and checks default.toml's
defaults against the fields'), and `Settings.from_config` builds the engine's settings
from the configured values mechanically.  So a new engine setting is one field here
plus its key, with a comment, in default.toml.

The rules (`OneOf`, `Between`, `Flag`, `Text`) live here too, so that this module and
the config share them: `jazzd.play` may not import `jazzd.live`, and the config must not
import numpy (the engine's module does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

MODES = ("call", "duet", "solo")
TURN_TAKING = ("model", "silence")
FEELS = ("wjd", "player", "straight")  # jazzd.play.feel
ARTICULATIONS = ("wjd", "player", "legato")  # jazzd.play.articulation


# --- what a value may be -------------------------------------------------------------


def _num(x: float) -> str:
    """A bound as written in the docs: 3, 0.25."""
    return str(int(x)) if float(x).is_integer() else repr(x)


def _kind_word(kind: type) -> str:
    return "an integer" if kind is int else "a number"


@dataclass(frozen=True)
class OneOf:
    """A string from a fixed list."""

    choices: tuple[str, ...]

    def ok(self, value: Any) -> bool:
        return value in self.choices

    def describe(self, kind: type) -> str:
        return "one of " + ", ".join(self.choices)


@dataclass(frozen=True)
class Between:
    """A number in [lo, hi] (or (lo, hi] with lo_open); `zero` names what 0 means; `exclude` lists holes."""

    lo: float
    hi: float
    lo_open: bool = False
    zero: str = ""
    exclude: tuple[tuple[int, str], ...] = ()

    def ok(self, value: Any) -> bool:
        low_ok = self.lo < value if self.lo_open else self.lo <= value
        # Written so that NaN fails both comparisons.
        return bool(low_ok and value <= self.hi) and value not in dict(self.exclude)

    def describe(self, kind: type) -> str:
        lo = self.lo
        prefix = ""
        if self.zero and lo == 0:
            prefix, lo = f"0 ({self.zero}) or ", 1
        if self.lo_open:
            text = f"{_kind_word(kind)} above {_num(lo)} and at most {_num(self.hi)}"
        else:
            text = f"{_kind_word(kind)} from {_num(lo)} to {_num(self.hi)}"
        if self.exclude:
            text += " except " + ", ".join(f"{n} ({why})" for n, why in self.exclude)
        return prefix + text


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def ok(self, value: Any) -> bool:
        return True

    def describe(self, kind: type) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text:
    """Any string (non-empty if asked); `what` is how the docs put it."""

    what: str = "text in quotes"
    nonempty: bool = False

    def ok(self, value: Any) -> bool:
        return bool(value.strip()) or not self.nonempty

    def describe(self, kind: type) -> str:
        return self.what


Rule = OneOf | Between | Flag | Text


# --- the settings ----------------------------------------------------------------------


def _channel_or_none(n: int) -> int | None:
    """A channel of the file (1-16, 0 = none) as the engine's 0-15, or None."""
    return n - 1 if n else None


def _zero_based(n: int) -> int:
    """A channel of the file (1-16) as the engine's 0-15."""
    return n - 1


def setting(key: str, rule: Rule, default: Any, load: Callable[[Any], Any] | None = None) -> Any:
    """A `Settings` field set by `key` of default.toml, whose value must pass `rule`;
    `load` converts the file's value to the engine's (default: taken as it is)."""
    return field(default=default, metadata={"key": key, "rule": rule, "load": load})


@dataclass
class Settings:
    """Everything that may change between beats, in the engine's units."""

    mode: str = setting("engine.mode", OneOf(MODES), "call")
    beats_per_bar: int = setting("clock.beats_per_bar", Between(1, 12), 4)
    split: int = setting("engine.split", Between(0, 127), 60)
    chord_channel: int | None = setting(   # None: the split decides
        "engine.chord_channel", Between(0, 16, zero="use split"), None, _channel_or_none)
    melody_channel: int | None = setting(  # None: the split decides
        "engine.melody_channel", Between(0, 16, zero="use split"), None, _channel_or_none)
    output_channel: int = setting("midi.output_channel", Between(1, 16), 0, _zero_based)
    temperature: float = setting("engine.temperature", Between(0, 3), 1.0)
    top_p: float = setting("engine.top_p", Between(0, 1, lo_open=True), 0.95)
    density: float = setting("engine.density", Between(0, 1), 1.0)
    imitation: float = setting("engine.imitation", Between(0, 1), 0.9)
    range_low: int = setting("engine.range_low", Between(0, 127), 55)
    range_high: int = setting("engine.range_high", Between(0, 127), 84)
    follow_register: bool = setting("engine.follow_register", Flag(), True)
    lookahead: int = setting("engine.lookahead_beats", Between(1, 4), 1)
    velocity_humanize: int = setting("engine.velocity_humanize", Between(0, 30), 6)
    feel: str = setting("engine.feel", OneOf(FEELS), "wjd")
    feel_amount: float = setting("engine.feel_amount", Between(0, 1), 1.0)
    articulation: str = setting("engine.articulation", OneOf(ARTICULATIONS), "wjd")
    articulation_amount: float = setting("engine.articulation_amount", Between(0, 1), 1.0)
    silence_beats: float = setting("call.silence_beats", Between(0.25, 8), 1.0)
    max_bars: int = setting("call.max_bars", Between(1, 16), 4)
    min_beats: float = setting("call.min_beats", Between(0, 16), 1.0)
    answer_start: str = setting("call.answer_start", OneOf(("beat", "bar")), "beat")
    answer_beats: int = setting(           # 0: as long as the call
        "call.answer_beats", Between(0, 64, zero="as long as the call"), 0)
    interrupt: bool = setting("call.interrupt", Flag(), True)
    turn_taking: str = setting("call.turn_taking", OneOf(TURN_TAKING), "model")
    end_probability: float = setting("call.end_probability", Between(0, 1), 0.2)
    end_silence_beats: float = setting("call.end_silence_beats", Between(0, 8), 0.5)
    continue_silence_beats: float = setting("call.continue_silence_beats", Between(0.25, 8), 1.25)
    overlap: float = setting("duet.overlap", Between(0, 1), 0.1)
    gap_beats: float = setting("duet.gap_beats", Between(0, 8), 0.5)

    @property
    def pitch_range(self) -> tuple[int, int]:
        return self.range_low, self.range_high

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> Settings:
        """The settings from configured values, {"section.key": value} (`Config.flat()`)."""
        return cls(**{f.name: engine_value(f, values[f.metadata["key"]]) for f in fields(cls)})


def engine_value(f, value: Any) -> Any:
    """The value of `Settings` field `f` for a value of its key in the file."""
    return f.metadata["load"](value) if f.metadata["load"] else value
