"""Settings from default.toml, /etc, the user's file, --config and the command line.  Main thread; stdlib only.

Runs in the main thread, at start-up and again on each SIGHUP reload; it only reads files
and returns a new frozen `Config`, so a failed reload leaves the running one untouched.
Imports only the standard library (`tomllib`), `jazzd.errors`, `jazzd.music.progression`
and `jazzd.play.settings`: never numpy, tensorflow or music21, so a bad setting is
reported before anything heavy loads.

The packaged `default.toml` is the schema.  Its sections and keys are the only ones
allowed, and the type of each default is the key's type (a whole number is accepted for a
decimal key; true/false is never a number); each section becomes a frozen dataclass
(`SECTIONS`).  `RULES` says what else each value must be (choices, ranges): the engine's
keys take their rule from their field of `jazzd.play.settings.Settings` (the one place
an engine setting is declared), the shell's keys from `SHELL_RULES` below.  `CHECKS`
holds the few rules that span several keys.  Every error is a `ConfigError` of one line
naming the file, the key and what is allowed, e.g.

    /etc/jazzd/jazzd.toml: engine.mode = "jam": must be one of call, duet, solo

`jazzd config` prints the settings in effect with where each came from (`dump`);
`jazzd config --default` prints default.toml.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, make_dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jazzd.errors import ConfigError
from jazzd.music.progression import parse_progression
from jazzd.play.settings import Between, Flag, OneOf, Rule, Settings, Text, engine_value

SYSTEM_CONFIG = Path("/etc/jazzd/jazzd.toml")
DEFAULT_LABEL = "default"  # origin of a value nobody overrode
COMMAND_LINE = "command line"  # origin of a value given as section.key=value


# --- what a value may be (the rule vocabulary is jazzd.play.settings') --------------------


@dataclass(frozen=True)
class FilePath(Text):
    """"" or a path; ~ is expanded and a relative path is taken from the setting file's folder
    (except the `words` that mean something else, e.g. "off")."""

    what: str = '"" or a path in quotes'
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chords(Text):
    """"" or a chord progression; parsed by the `_progression` check (it needs beats_per_bar)."""

    what: str = '"" or chords in quotes, e.g. "Dm7 G7 | Cmaj7 %"'


CC_NUMBER = Between(0, 119, zero="off", exclude=((64, "sustain pedal"),))
PORT = Text('"" (a virtual port) or a port number or name in quotes, e.g. "1"')

# The keys only the shell reads, in default.toml's order: what each value may be besides
# its type.  The engine's keys are the fields of `Settings`, with their rules.
SHELL_RULES: dict[str, Rule] = {
    "midi.backend": OneOf(("auto", "alsa", "jack", "coremidi", "winmm")),
    "midi.start_jack": OneOf(("auto", "never")),
    "midi.client_name": Text("non-empty text in quotes", nonempty=True),
    "midi.input": PORT,
    "midi.output": PORT,
    "midi.input_channel": Between(0, 16, zero="omni"),
    "midi.thru": Flag(),
    "clock.source": OneOf(("internal", "midi", "link")),
    "clock.tempo": Between(20, 300),
    "clock.send": Flag(),
    "clock.link_latency_ms": Between(-500, 500),
    "clock.link_start_stop": Flag(),
    "engine.progression": Chords(),
    "engine.seed": Between(0, 999_999, zero="a new seed each start"),
    "model.path": FilePath('"" (the bundled model) or a bundle file path in quotes'),
    "model.folder": FilePath('"" (none) or a folder path in quotes'),
    "model.memory": FilePath('"" ($STATE_DIRECTORY/memory.json, if set), "off" or a file path in quotes',
                             words=("off",)),
    "control.temperature_cc": CC_NUMBER,
    "control.density_cc": CC_NUMBER,
    "control.mode_cc": CC_NUMBER,
    "control.answer_length_cc": CC_NUMBER,
    "control.panic_cc": CC_NUMBER,
    "control.imitation_cc": CC_NUMBER,
    "control.forget_cc": CC_NUMBER,
    "control.feel_cc": CC_NUMBER,
    "control.articulation_cc": CC_NUMBER,
    "control.program_change": Flag(),
    "system.realtime": Flag(),
    "system.watchdog": Flag(),
    "system.log_level": OneOf(("debug", "info", "warning", "error")),
    "system.control_socket": FilePath('"" (the default place: README), "off" or a socket path in quotes',
                                      words=("off",)),
}


# --- the schema, from the packaged file -----------------------------------------------


def default_config_text() -> str:
    """The shipped default.toml, comments and all (for `jazzd config --default`)."""
    return resources.files("jazzd.live").joinpath("default.toml").read_text(encoding="utf-8")


def _schema() -> tuple[Mapping[str, Any], dict[str, Rule], dict[str, type]]:
    """default.toml's defaults, every key's rule and every section's dataclass, in the
    file's order; RuntimeError when the file, the engine's fields and SHELL_RULES differ
    (a packaging bug, never the user's)."""
    data = tomllib.loads(default_config_text())
    defaults = {f"{s}.{k}": v for s, table in data.items() for k, v in table.items()}
    engine = {f.metadata["key"]: f for f in fields(Settings)}
    drift = sorted((set(defaults) ^ (set(engine) | set(SHELL_RULES))) | (set(engine) & set(SHELL_RULES)))
    if drift:
        raise RuntimeError(f"jazzd/live/default.toml, config.SHELL_RULES and Settings differ: {drift}")
    for key, f in engine.items():
        if engine_value(f, defaults[key]) != f.default:
            raise RuntimeError(f"jazzd/live/default.toml: {key} = {defaults[key]!r} but "
                               f"Settings.{f.name} defaults to {f.default!r}")
    rules = {k: engine[k].metadata["rule"] if k in engine else SHELL_RULES[k] for k in defaults}
    sections = {s: make_dataclass(f"{s.title()}Config", [(k, type(v).__name__) for k, v in table.items()],
                                  frozen=True)
                for s, table in data.items()}
    return MappingProxyType(defaults), rules, sections


_DEFAULTS, RULES, SECTIONS = _schema()


@dataclass(frozen=True)
class Config:
    """Every setting, by section: `cfg.engine.mode`.  Equality compares values only.

    Each section is a frozen dataclass made from default.toml (`SECTIONS`).  `sources`
    lists the config files read, in order (the packaged default is not listed);
    `origins` maps each "section.key" to where its value came from: "default", a file
    path, or "command line".
    """

    midi: Any
    clock: Any
    engine: Any
    call: Any
    duet: Any
    model: Any
    control: Any
    system: Any
    sources: tuple[str, ...] = field(default=(), compare=False)
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

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

    def diff(self, other: Config) -> dict[str, tuple[Any, Any]]:
        """{"section.key": (mine, other's)} for every value that differs (e.g. after a reload)."""
        mine, theirs = self.flat(), other.flat()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


def _kind(key: str) -> type:
    return type(_DEFAULTS[key])


def user_config_path() -> Path:
    """$XDG_CONFIG_HOME/jazzd/jazzd.toml, else ~/.config/jazzd/jazzd.toml."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "jazzd" / "jazzd.toml"


def config_paths() -> tuple[Path, ...]:
    """The optional files read before --config: /etc, then the user's."""
    return (SYSTEM_CONFIG, user_config_path())


# --- checking one value --------------------------------------------------------------


def _show(value: Any, limit: int | None = 80) -> str:
    """A value as TOML would write it, on one line; cut to `limit` characters (for
    messages: None for TOML to read back)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):  # JSON's escapes are TOML's, but for DEL
        text = json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{k} = {_show(v, limit)}" for k, v in value.items()) + " }"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v, limit) for v in value) + "]"
    else:  # dates and times
        text = value.isoformat() if hasattr(value, "isoformat") else repr(value)
    return text if limit is None or len(text) <= limit else text[:limit - 3] + "..."


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
    if isinstance(rule, FilePath) and v and v not in rule.words:
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
    return Config(**parts, sources=sources, origins=MappingProxyType(dict(origins)))


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
    values, origins = dict(_DEFAULTS), dict.fromkeys(RULES, DEFAULT_LABEL)
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


# --- one setting changed while jazzd runs (`jazzd ctl set`) -------------------------


def resolve_key(name: str) -> str:
    """"section.key" for a dotted key, or for a key name found in one section only
    ("temperature" -> "engine.temperature"); else the config's one-line ConfigError."""
    if "." in name:
        return name
    found = [k for k in RULES if k.partition(".")[2] == name]
    if len(found) == 1:
        return found[0]
    if found:
        raise ConfigError(f"{name} is in several sections: say which, e.g. {found[0]}")
    raise ConfigError(f"unknown key {name}{_suggest('', name)}")


def with_setting(cfg: Config, key: str, value: Any, label: str) -> Config:
    """`cfg` with one setting changed, checked exactly as a file's or the command line's
    (the key's rule and the checks across keys); a ConfigError (one line, starting with
    `label`) and no change otherwise.  A string for a non-string key is read as TOML."""
    values, origins = cfg.flat(), dict(cfg.origins)
    _overlay_dotted(values, origins, {key: value}, label, Path.cwd())
    layers = (DEFAULT_LABEL, *cfg.sources, COMMAND_LINE, label)
    return _build(values, origins, cfg.sources, layers)


# --- `jazzd config` -------------------------------------------------------------------


def dump(cfg: Config, keys: Iterable[str] = ()) -> str:
    """The settings in effect as TOML, each with where its value came from ("default",
    a file, "command line") in a comment; read back, the text gives the same settings.
    With `keys` ("section.key"), only those, as dotted keys."""
    keys = list(keys)
    if keys:
        lines, groups = [], [([], [(key, key, cfg.get(key)) for key in keys])]
    else:
        lines = ["# The settings in effect, and where each came from. Files read: "
                 f"{', '.join(cfg.sources) or 'none'}."]
        groups = [(["", f"[{s}]"], [(f"{s}.{k}", k, v) for k, v in table.items()])
                  for s, table in cfg.to_dict().items()]
    for head, rows in groups:
        texts = [f"{name} = {_show(value, None)}" for _, name, value in rows]
        width = max(map(len, texts))
        lines += head + [f"{text:<{width}}  # {cfg.origin(key)}" for text, (key, _, _) in zip(texts, rows, strict=True)]
    return "\n".join(lines) + "\n"
