"""Settings from default.toml, /etc, the user's file, --config and the command line.  Main thread; stdlib only.

Runs in the main thread, at start-up and again on each SIGHUP reload; it only reads files
and returns a new frozen `Config`, so a failed reload leaves the running one untouched.
Imports only the standard library (`tomllib`), `jazzd.errors` and `jazzd.music.progression`:
never numpy, tensorflow or music21, so a bad setting is reported before anything heavy
loads.

The packaged `default.toml` is the schema.  Its sections and keys are the only ones
allowed, and the type of each default is the key's type (a whole number is accepted for a
decimal key; true/false is never a number).  `RULES`, one table kept in the same order as
the file, says what else each value must be (choices, ranges); `CHECKS` holds the few
rules that span several keys.  Every error is a `ConfigError` of one line naming the file,
the key and what is allowed, e.g.

    /etc/jazzd/jazzd.toml: engine.mode = "jam": must be one of call, duet, solo
"""

from __future__ import annotations

import difflib
import json
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jazzd.errors import ConfigError
from jazzd.music.progression import parse_progression

SYSTEM_CONFIG = Path("/etc/jazzd/jazzd.toml")
DEFAULT_LABEL = "default"  # origin of a value nobody overrode
COMMAND_LINE = "command line"  # origin of a value given as section.key=value


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


@dataclass(frozen=True)
class FilePath(Text):
    """"" or a path; ~ is expanded and a relative path is taken from the setting file's folder."""

    what: str = '"" or a path in quotes'


@dataclass(frozen=True)
class Chords(Text):
    """"" or a chord progression; parsed by the `_progression` check (it needs beats_per_bar)."""

    what: str = '"" or chords in quotes, e.g. "Dm7 G7 | Cmaj7 %"'


CC_NUMBER = Between(0, 119, zero="off", exclude=((64, "sustain pedal"),))
PORT = Text('"" (a virtual port) or a port number or name in quotes, e.g. "1"')

# One entry per key of default.toml, in its order: what each value may be besides its type.
RULES: dict[str, OneOf | Between | Flag | Text] = {
    "midi.backend": OneOf(("auto", "alsa", "jack", "coremidi", "winmm")),
    "midi.client_name": Text("non-empty text in quotes", nonempty=True),
    "midi.input": PORT,
    "midi.output": PORT,
    "midi.input_channel": Between(0, 16, zero="omni"),
    "midi.output_channel": Between(1, 16),
    "midi.thru": Flag(),
    "clock.source": OneOf(("internal", "midi")),
    "clock.tempo": Between(20, 300),
    "clock.send": Flag(),
    "clock.beats_per_bar": Between(1, 12),
    "engine.mode": OneOf(("call", "duet", "solo")),
    "engine.split": Between(0, 127),
    "engine.chord_channel": Between(0, 16, zero="use split"),
    "engine.melody_channel": Between(0, 16, zero="use split"),
    "engine.progression": Chords(),
    "engine.temperature": Between(0, 3),
    "engine.top_p": Between(0, 1, lo_open=True),
    "engine.density": Between(0, 1),
    "engine.range_low": Between(0, 127),
    "engine.range_high": Between(0, 127),
    "engine.lookahead_beats": Between(1, 4),
    "engine.velocity_humanize": Between(0, 30),
    "call.silence_beats": Between(0.25, 8),
    "call.max_bars": Between(1, 16),
    "call.min_beats": Between(0, 16),
    "call.answer_start": OneOf(("beat", "bar")),
    "call.answer_beats": Between(0, 64, zero="as long as the call"),
    "call.interrupt": Flag(),
    "model.path": FilePath('"" (the bundled model) or a bundle file path in quotes'),
    "model.folder": FilePath('"" (none) or a folder path in quotes'),
    "control.temperature_cc": CC_NUMBER,
    "control.density_cc": CC_NUMBER,
    "control.mode_cc": CC_NUMBER,
    "control.answer_length_cc": CC_NUMBER,
    "control.panic_cc": CC_NUMBER,
    "control.program_change": Flag(),
    "system.realtime": Flag(),
    "system.watchdog": Flag(),
    "system.log_level": OneOf(("debug", "info", "warning", "error")),
}


# --- the typed result ----------------------------------------------------------------


@dataclass(frozen=True)
class MidiConfig:
    """[midi]: the MIDI system, ports and channels."""

    backend: str
    client_name: str
    input: str
    output: str
    input_channel: int
    output_channel: int
    thru: bool


@dataclass(frozen=True)
class ClockConfig:
    """[clock]: where time comes from."""

    source: str
    tempo: float
    send: bool
    beats_per_bar: int


@dataclass(frozen=True)
class EngineConfig:
    """[engine]: how jazzd plays."""

    mode: str
    split: int
    chord_channel: int
    melody_channel: int
    progression: str
    temperature: float
    top_p: float
    density: float
    range_low: int
    range_high: int
    lookahead_beats: int
    velocity_humanize: int


@dataclass(frozen=True)
class CallConfig:
    """[call]: call-and-response timing."""

    silence_beats: float
    max_bars: int
    min_beats: float
    answer_start: str
    answer_beats: int
    interrupt: bool


@dataclass(frozen=True)
class ModelConfig:
    """[model]: which weights bundle(s)."""

    path: str
    folder: str


@dataclass(frozen=True)
class ControlConfig:
    """[control]: MIDI CC numbers and program change that steer jazzd."""

    temperature_cc: int
    density_cc: int
    mode_cc: int
    answer_length_cc: int
    panic_cc: int
    program_change: bool


@dataclass(frozen=True)
class SystemConfig:
    """[system]: scheduling, watchdog, logging."""

    realtime: bool
    watchdog: bool
    log_level: str


SECTIONS: dict[str, type] = {
    "midi": MidiConfig,
    "clock": ClockConfig,
    "engine": EngineConfig,
    "call": CallConfig,
    "model": ModelConfig,
    "control": ControlConfig,
    "system": SystemConfig,
}


@dataclass(frozen=True)
class Config:
    """Every setting, by section: `cfg.engine.mode`.  Equality compares values only.

    `sources` lists the config files read, in order (the packaged default is not listed);
    `origins` maps each "section.key" to where its value came from: "default", a file
    path, or "command line".
    """

    midi: MidiConfig
    clock: ClockConfig
    engine: EngineConfig
    call: CallConfig
    model: ModelConfig
    control: ControlConfig
    system: SystemConfig
    sources: tuple[str, ...] = field(default=(), compare=False)
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    layers: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def get(self, key: str) -> Any:
        """The value of a dotted key, e.g. cfg.get("engine.mode")."""
        section, _, name = key.partition(".")
        if key not in RULES:
            raise ConfigError(f"unknown key {key}{_suggest(section, name)}")
        return getattr(getattr(self, section), name)

    def origin(self, key: str) -> str:
        """Where the value of a dotted key came from ("default", a file, "command line")."""
        return self.origins.get(key, DEFAULT_LABEL)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """{section: {key: value}}, in default.toml's order (writable back as TOML)."""
        return {s: {f.name: getattr(getattr(self, s), f.name) for f in fields(cls)}
                for s, cls in SECTIONS.items()}

    def flat(self) -> dict[str, Any]:
        """{"section.key": value} in default.toml's order."""
        return {f"{s}.{k}": v for s, keys in self.to_dict().items() for k, v in keys.items()}

    def with_overrides(self, overrides: Mapping[str, Any], source: str = COMMAND_LINE) -> Config:
        """A new Config with dotted-key settings applied on top and everything checked again."""
        values, origins = self.flat(), {**{k: DEFAULT_LABEL for k in RULES}, **self.origins}
        _overlay_dotted(values, origins, overrides, source, Path.cwd())
        layers = (*(self.layers or (DEFAULT_LABEL, *self.sources)), source)
        return _build(values, origins, self.sources, layers)

    def diff(self, other: Config) -> dict[str, tuple[Any, Any]]:
        """{"section.key": (mine, other's)} for every value that differs (e.g. after a reload)."""
        mine, theirs = self.flat(), other.flat()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


# --- the schema, from the packaged file -----------------------------------------------


def default_config_text() -> str:
    """The shipped default.toml, comments and all (for `jazzd config --default`)."""
    return resources.files("jazzd.live").joinpath("default.toml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _defaults() -> Mapping[str, Any]:
    """{"section.key": default value} from default.toml; checked against RULES and SECTIONS."""
    data = tomllib.loads(default_config_text())
    flat = {f"{s}.{k}": v for s, table in data.items() for k, v in table.items()}
    declared = [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls)]
    if list(flat) != list(RULES) or list(flat) != declared:
        drift = sorted(set(flat) ^ set(RULES) | set(flat) ^ set(declared)) or "key order"
        raise RuntimeError(f"jazzd/default.toml, config.RULES and config.SECTIONS differ: {drift}")
    return MappingProxyType(flat)


def _kind(key: str) -> type:
    return type(_defaults()[key])


def user_config_path() -> Path:
    """$XDG_CONFIG_HOME/jazzd/jazzd.toml, else ~/.config/jazzd/jazzd.toml."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "jazzd" / "jazzd.toml"


def config_paths() -> tuple[Path, ...]:
    """The optional files read before --config: /etc, then the user's."""
    return (SYSTEM_CONFIG, user_config_path())


# --- checking one value --------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as TOML would write it, on one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + " }"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    else:  # dates and times
        text = value.isoformat() if hasattr(value, "isoformat") else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_WRONG_TYPE = object()


def _coerce(kind: type, value: Any) -> Any:
    """`value` as `kind`, or _WRONG_TYPE: int is fine for float, bool is never a number."""
    if kind is bool:
        return value if isinstance(value, bool) else _WRONG_TYPE
    if isinstance(value, bool):
        return _WRONG_TYPE
    if kind is int:
        return value if isinstance(value, int) else _WRONG_TYPE
    if kind is float:
        return float(value) if isinstance(value, int | float) else _WRONG_TYPE
    return value if isinstance(value, kind) else _WRONG_TYPE


def _checked(key: str, value: Any, label: str, base_dir: Path) -> Any:
    """The value to store for `key`, or a one-line ConfigError naming label, key and the allowed values."""
    kind, rule = _kind(key), RULES[key]
    v = _coerce(kind, value)
    if v is _WRONG_TYPE or not rule.ok(v):
        raise ConfigError(f"{label}: {key} = {_show(value)}: must be {rule.describe(kind)}")
    if isinstance(rule, FilePath) and v:
        v = os.path.normpath(base_dir / Path(v).expanduser())
    return v


def _suggest(section: str, name: str) -> str:
    """"; did you mean engine.temperature?" or a list of what there is."""
    keys = list(RULES)
    if section in SECTIONS:
        names = [f.name for f in fields(SECTIONS[section])]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if close:
            return f"; did you mean {section}.{close[0]}?"
    elsewhere = [k for k in keys if k.partition(".")[2] == name]
    if elsewhere:
        return f"; did you mean {elsewhere[0]}?"
    close = difflib.get_close_matches(name, [k.partition(".")[2] for k in keys], n=1, cutoff=0.75)
    if close:
        return f"; did you mean {next(k for k in keys if k.endswith('.' + close[0]))}?"
    if section in SECTIONS:
        return f" (keys in [{section}]: {', '.join(f.name for f in fields(SECTIONS[section]))})"
    return f" (sections: {', '.join(SECTIONS)})"


def _overlay_table(values: dict, origins: dict, data: Mapping[str, Any], label: str,
                   base_dir: Path) -> None:
    """Check a parsed TOML document and copy its settings into `values`."""
    for section, table in data.items():
        if section not in SECTIONS:
            if not isinstance(table, dict):
                raise ConfigError(f"{label}: {section} = {_show(table)} is outside any section"
                                  f"{_suggest('', section)}")
            close = difflib.get_close_matches(section, list(SECTIONS), n=1, cutoff=0.6)
            hint = f"; did you mean [{close[0]}]?" if close else f" (sections: {', '.join(SECTIONS)})"
            raise ConfigError(f"{label}: unknown section [{section}]{hint}")
        if not isinstance(table, dict):
            raise ConfigError(f"{label}: {section} = {_show(table)}: must be a section, "
                              f"written [{section}] on a line of its own")
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in RULES:
                raise ConfigError(f"{label}: unknown key {key}{_suggest(section, name)}")
            values[key] = _checked(key, value, label, base_dir)
            origins[key] = label


def _literal(text: str) -> Any:
    """A command-line value for a non-string key, read as TOML ("140", "true"); else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _overlay_dotted(values: dict, origins: dict, overrides: Mapping[str, Any], label: str,
                    base_dir: Path) -> None:
    """Apply {"section.key": value}; a string for a non-string key is read as a TOML value."""
    for key, value in overrides.items():
        section, dot, name = str(key).partition(".")
        if key not in RULES:
            what = f"unknown key {key}" if dot else f"{json.dumps(str(key))} is not section.key"
            raise ConfigError(f"{label}: {what}{_suggest(section if dot else '', name or section)}")
        if isinstance(value, str) and _kind(key) is not str:
            value = _literal(value)
        values[key] = _checked(key, value, label, base_dir)
        origins[key] = label


def parse_overrides(items: Iterable[str], label: str = COMMAND_LINE) -> dict[str, str]:
    """["engine.mode=duet", "clock.tempo=140"] -> {"engine.mode": "duet", "clock.tempo": "140"}."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{label}: {json.dumps(item)} is not section.key=value, "
                              "e.g. engine.mode=duet")
        out[key.strip()] = value
    return out


# --- checks across keys ---------------------------------------------------------------

# Each takes the values and `latest(*keys)` (the key set by the most recent layer) and
# returns None, or (key to blame, "must ..." text).
Check = Callable[[Mapping[str, Any], Callable[..., str]], tuple[str, str] | None]


def _octave_range(v: Mapping[str, Any], latest: Callable[..., str]) -> tuple[str, str] | None:
    lo, hi = v["engine.range_low"], v["engine.range_high"]
    if hi - lo >= 12:
        return None
    if latest("engine.range_low", "engine.range_high") == "engine.range_low":
        return "engine.range_low", f"must be at least an octave (12) below engine.range_high ({hi})"
    return "engine.range_high", f"must be at least an octave (12) above engine.range_low ({lo})"


def _distinct_ccs(v: Mapping[str, Any], latest: Callable[..., str]) -> tuple[str, str] | None:
    seen: dict[int, str] = {}
    for key in (k for k, rule in RULES.items() if rule is CC_NUMBER):
        cc = v[key]
        if cc and cc in seen:
            blamed = latest(seen[cc], key)
            other = key if blamed == seen[cc] else seen[cc]
            return blamed, f"same CC number as {other}; control CCs must all differ (0 = off)"
        seen.setdefault(cc, key)
    return None


def _hand_channels(v: Mapping[str, Any], latest: Callable[..., str]) -> tuple[str, str] | None:
    chord, melody = v["engine.chord_channel"], v["engine.melody_channel"]
    if chord and chord == melody:
        blamed = latest("engine.chord_channel", "engine.melody_channel")
        other = "engine.melody_channel" if blamed == "engine.chord_channel" else "engine.chord_channel"
        return blamed, f"must differ from {other} ({chord}); 0 = split the hands by note"
    heard = v["midi.input_channel"]
    for key in ("engine.chord_channel", "engine.melody_channel"):
        if heard and v[key] and v[key] != heard:
            if latest("midi.input_channel", key) == key:
                return key, f"must be 0 or {heard}: jazzd only listens to midi.input_channel {heard}"
            return "midi.input_channel", f"must be 0 (omni) or {v[key]}, else {key} ({v[key]}) is never heard"
    return None


def _progression(v: Mapping[str, Any], latest: Callable[..., str]) -> tuple[str, str] | None:
    text = v["engine.progression"]
    if text == "":
        return None
    try:
        parse_progression(text, v["clock.beats_per_bar"])
    except ConfigError as err:
        return "engine.progression", f"{err}"
    return None


CHECKS: tuple[Check, ...] = (_octave_range, _distinct_ccs, _hand_channels, _progression)


def _build(values: dict, origins: dict, sources: tuple[str, ...], layers: tuple[str, ...]) -> Config:
    """Run the checks across keys and freeze the values into a Config."""
    rank = {label: i for i, label in enumerate(layers)}

    def latest(*keys: str) -> str:
        # The key whose value came last; on a tie, the last one named.
        return max(reversed(keys), key=lambda k: rank.get(origins.get(k, DEFAULT_LABEL), 0))

    for check in CHECKS:
        found = check(values, latest)
        if found:
            key, must = found
            raise ConfigError(f"{origins.get(key, DEFAULT_LABEL)}: {key} = {_show(values[key])}: {must}")
    parts = {s: cls(**{f.name: values[f"{s}.{f.name}"] for f in fields(cls)})
             for s, cls in SECTIONS.items()}
    return Config(**parts, sources=sources, origins=MappingProxyType(dict(origins)), layers=layers)


# --- loading --------------------------------------------------------------------------


def _read(path: Path, required: bool) -> dict[str, Any] | None:
    """The parsed TOML file; None if it is absent and optional; ConfigError for anything else."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        if not required:
            return None
        raise ConfigError(f"{path}: no such config file (given with --config)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: cannot read: it is a folder, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read: permission denied (check the file's owner and mode)") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (line {line}); TOML files must be UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def load_config(config_file: str | os.PathLike | None = None,
                overrides: Mapping[str, Any] | None = None,
                system_paths: Iterable[str | os.PathLike] | None = None) -> Config:
    """The defaults, then each of `system_paths` that exists (by default /etc/jazzd/jazzd.toml,
    then the user's), then `config_file` (which must exist), then `overrides`
    ({"section.key": value}; strings are read as TOML values for non-string keys).

    Raises ConfigError (one line: file, key, what is allowed) for anything wrong.
    """
    values, origins = dict(_defaults()), dict.fromkeys(RULES, DEFAULT_LABEL)
    _overlay_table(values, origins, tomllib.loads(default_config_text()), DEFAULT_LABEL, Path.cwd())
    sources: list[str] = []
    paths = [(Path(p), False) for p in (config_paths() if system_paths is None else system_paths)]
    if config_file is not None:
        paths.append((Path(config_file), True))
    for path, required in paths:
        data = _read(path, required)
        if data is None:
            continue
        _overlay_table(values, origins, data, str(path), Path(os.path.abspath(path)).parent)
        sources.append(str(path))
    layers = [DEFAULT_LABEL, *sources]
    if overrides:
        _overlay_dotted(values, origins, overrides, COMMAND_LINE, Path.cwd())
        layers.append(COMMAND_LINE)
    return _build(values, origins, tuple(sources), tuple(layers))
