"""jazzd.live.config: the packaged default is the schema; layers override in order; every error is one line."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path

import pytest

import jazzd
from jazzd.cli import main
from jazzd.errors import ConfigError
from jazzd.live.config import (
    CHECKS,
    RULES,
    SECTIONS,
    SHELL_RULES,
    Between,
    Config,
    Flag,
    OneOf,
    config_paths,
    default_config_text,
    load_config,
    parse_overrides,
    user_config_path,
)
from jazzd.play.settings import Settings

# The defaults as documented in the design (and in default.toml's comments).
DOCUMENTED = {
    "midi": {"backend": "auto", "start_jack": "never", "client_name": "jazzd", "input": "", "output": "",
             "input_channel": 0, "output_channel": 1, "thru": False},
    "clock": {"source": "internal", "tempo": 120.0, "send": False, "link_latency_ms": 0.0,
              "link_start_stop": False, "beats_per_bar": 4},
    "engine": {"mode": "call", "split": 60, "chord_channel": 0, "melody_channel": 0,
               "progression": "", "seed": 0, "temperature": 1.0, "top_p": 0.95, "density": 1.0,
               "imitation": 0.9, "range_low": 55, "range_high": 84, "follow_register": True,
               "lookahead_beats": 1, "velocity_humanize": 6, "feel": "wjd", "feel_amount": 1.0,
               "articulation": "wjd", "articulation_amount": 1.0},
    "call": {"silence_beats": 1.0, "max_bars": 4, "min_beats": 1.0, "answer_start": "beat",
             "answer_beats": 0, "interrupt": True, "turn_taking": "model", "end_probability": 0.2,
             "end_silence_beats": 0.5, "continue_silence_beats": 1.25},
    "duet": {"overlap": 0.1, "gap_beats": 0.5},
    "model": {"path": "", "folder": "", "memory": ""},
    "control": {"temperature_cc": 71, "density_cc": 74, "mode_cc": 80, "answer_length_cc": 81,
                "panic_cc": 82, "imitation_cc": 85, "forget_cc": 86, "feel_cc": 87,
                "articulation_cc": 89,
                "program_change": True},
    "system": {"realtime": False, "watchdog": True, "log_level": "info", "control_socket": ""},
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(fn, *args, **kwargs) -> str:
    """The ConfigError message of a call, checked to be a single line."""
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    assert info.value.exit_code == 2
    return message


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path / "jazzd.toml", text), system_paths=[])


# --- the defaults -----------------------------------------------------------------------


def test_default_loads_and_equals_the_documented_defaults():
    cfg = load_config(system_paths=[])
    assert cfg.to_dict() == DOCUMENTED
    assert cfg.sources == ()
    assert {cfg.origin(k) for k in RULES} == {"default"}
    assert cfg.engine.mode == "call" and cfg.control.panic_cc == 82


def test_default_types_follow_the_default_values():
    cfg = load_config(system_paths=[])
    for section, keys in DOCUMENTED.items():
        for key, value in keys.items():
            assert type(getattr(getattr(cfg, section), key)) is type(value), f"{section}.{key}"


def test_default_config_text_is_the_shipped_file():
    text = default_config_text()
    assert text == (Path(jazzd.__file__).parent / "live" / "default.toml").read_text(encoding="utf-8")
    assert tomllib.loads(text) == DOCUMENTED


def test_config_is_frozen_and_compares_by_value(tmp_path):
    cfg = load_config(system_paths=[])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.engine.mode = "solo"
    same = load_text(tmp_path, '[engine]\nmode = "call"\n')
    assert same == cfg and same.sources == (str(tmp_path / "jazzd.toml"),)
    assert hash(same) == hash(cfg)


# --- layers -----------------------------------------------------------------------------


def test_precedence_etc_then_user_then_config_file_then_overrides(tmp_path):
    etc = write(tmp_path / "etc" / "jazzd.toml",
                '[clock]\ntempo = 100.0\nbeats_per_bar = 3\n[engine]\nmode = "duet"\n'
                '[system]\nlog_level = "warning"\n')
    user = write(tmp_path / "user" / "jazzd.toml",
                 '[clock]\ntempo = 110.0\n[engine]\nmode = "solo"\ntemperature = 0.5\n')
    explicit = write(tmp_path / "explicit.toml", '[clock]\ntempo = 130.0\n[engine]\nmode = "call"\n')
    cfg = load_config(explicit, {"clock.tempo": 140}, system_paths=[etc, user])

    assert cfg.clock.tempo == 140.0 and cfg.origin("clock.tempo") == "command line"
    assert cfg.engine.mode == "call" and cfg.origin("engine.mode") == str(explicit)
    assert cfg.engine.temperature == 0.5 and cfg.origin("engine.temperature") == str(user)
    assert cfg.clock.beats_per_bar == 3 and cfg.origin("clock.beats_per_bar") == str(etc)
    assert cfg.system.log_level == "warning"
    assert cfg.origin("engine.density") == "default" and cfg.engine.density == 1.0
    assert cfg.sources == (str(etc), str(user), str(explicit))

    # Each layer alone on top of the defaults, and without the later layers.
    assert load_config(system_paths=[etc, user]).clock.tempo == 110.0
    assert load_config(system_paths=[etc]).clock.tempo == 100.0
    assert load_config(explicit, system_paths=[etc, user]).clock.tempo == 130.0


def test_missing_optional_files_are_skipped(tmp_path):
    cfg = load_config(system_paths=[tmp_path / "nope.toml", tmp_path / "no" / "dir" / "x.toml"])
    assert cfg.sources == () and cfg.to_dict() == DOCUMENTED


def test_missing_explicit_config_file_is_an_error(tmp_path):
    missing = tmp_path / "missing.toml"
    message = error_of(load_config, missing, system_paths=[])
    assert message.startswith(f"{missing}: ") and "--config" in message


def test_default_paths_are_etc_then_the_xdg_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_paths() == (Path("/etc/jazzd/jazzd.toml"), tmp_path / "xdg" / "jazzd" / "jazzd.toml")
    user = write(tmp_path / "xdg" / "jazzd" / "jazzd.toml", "[engine]\ndensity = 0.5\n")
    if not Path("/etc/jazzd/jazzd.toml").exists():
        cfg = load_config()
        assert cfg.engine.density == 0.5 and cfg.sources == (str(user),)


@pytest.mark.parametrize("xdg", ["", "relative/dir"])
def test_user_config_dir_falls_back_to_dot_config(tmp_path, monkeypatch, xdg):
    # The XDG spec says an empty or relative $XDG_CONFIG_HOME is ignored.
    monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_config_path() == tmp_path / ".config" / "jazzd" / "jazzd.toml"


def test_reload_reads_the_files_again(tmp_path):
    path = write(tmp_path / "jazzd.toml", "[engine]\ntemperature = 0.8\n")
    before = load_config(path, system_paths=[])
    write(path, "[engine]\ntemperature = 1.2\n")
    after = load_config(path, system_paths=[])
    assert before.diff(after) == {"engine.temperature": (0.8, 1.2)}


# --- types ------------------------------------------------------------------------------


def test_ints_are_accepted_for_float_keys(tmp_path):
    cfg = load_text(tmp_path, "[clock]\ntempo = 140\n[engine]\ntemperature = 2\n[call]\nmin_beats = 0\n")
    assert cfg.clock.tempo == 140.0 and type(cfg.clock.tempo) is float
    assert type(cfg.engine.temperature) is float and type(cfg.call.min_beats) is float
    assert type(load_config(overrides={"engine.density": 0}, system_paths=[]).engine.density) is float


@pytest.mark.parametrize("text, key", [
    ("[midi]\ninput_channel = true\n", "midi.input_channel"),
    ("[clock]\nbeats_per_bar = false\n", "clock.beats_per_bar"),
    ("[clock]\ntempo = true\n", "clock.tempo"),
    ("[control]\npanic_cc = true\n", "control.panic_cc"),
])
def test_bools_are_not_numbers(tmp_path, text, key):
    message = error_of(load_text, tmp_path, text)
    assert f"{key} = true" in message or f"{key} = false" in message
    assert "must be" in message and ("integer" in message or "number" in message)


def test_floats_are_not_ints_and_numbers_are_not_bools_or_text(tmp_path):
    assert "engine.split = 60.5: must be an integer from 0 to 127" in error_of(
        load_text, tmp_path, "[engine]\nsplit = 60.5\n")
    assert "midi.thru = 1: must be true or false" in error_of(load_text, tmp_path, "[midi]\nthru = 1\n")
    assert 'midi.input = 1: must be "" (a virtual port) or a port number or name in quotes' in error_of(
        load_text, tmp_path, "[midi]\ninput = 1\n")


# --- errors: one line, naming the file, the key and what is allowed -----------------------

BAD_FILES = [
    # (file text, what the message must contain)
    ('[engine]\nmode = "jam"\n', 'engine.mode = "jam": must be one of call, duet, solo'),
    ("[engien]\nmode = \"call\"\n", "unknown section [engien]; did you mean [engine]?"),
    ("[audio]\nrate = 1\n", "unknown section [audio] (sections: midi, clock, engine, call, duet, model, control, system)"),
    ("[engine]\ntemprature = 1.0\n", "unknown key engine.temprature; did you mean engine.temperature?"),
    ("[engine]\ntempo = 90\n", "unknown key engine.tempo; did you mean clock.tempo?"),
    ("[engine]\nwibble = 1\n", "unknown key engine.wibble (keys in [engine]: mode, split,"),
    ("tempo = 90\n", "tempo = 90 is outside any section; did you mean clock.tempo?"),
    ("midi = 3\n", "midi = 3: must be a section, written [midi] on a line of its own"),
    ("[engine.extra]\nx = 1\n", "unknown key engine.extra"),
    ('[clock]\ntempo = "fast"\n', 'clock.tempo = "fast": must be a number from 20 to 300'),
    ("[clock]\ntempo = 400.0\n", "clock.tempo = 400.0: must be a number from 20 to 300"),
    ("[clock]\ntempo = 19\n", "clock.tempo = 19: must be a number from 20 to 300"),
    ("[clock]\nbeats_per_bar = 0\n", "clock.beats_per_bar = 0: must be an integer from 1 to 12"),
    ("[engine]\ntemperature = nan\n", "engine.temperature = nan: must be a number from 0 to 3"),
    ("[engine]\ntemperature = inf\n", "engine.temperature = inf: must be a number from 0 to 3"),
    ("[engine]\ntop_p = 0\n", "engine.top_p = 0: must be a number above 0 and at most 1"),
    ("[engine]\ntop_p = 1.5\n", "engine.top_p = 1.5: must be a number above 0 and at most 1"),
    ("[engine]\ndensity = -0.1\n", "engine.density = -0.1: must be a number from 0 to 1"),
    ('[engine]\nmode = ["call"]\n', 'engine.mode = ["call"]: must be one of call, duet, solo'),
    ("[midi]\noutput_channel = 0\n", "midi.output_channel = 0: must be an integer from 1 to 16"),
    ("[midi]\ninput_channel = 17\n", "midi.input_channel = 17: must be 0 (omni) or an integer from 1 to 16"),
    ('[midi]\nclient_name = "  "\n', 'midi.client_name = "  ": must be non-empty text in quotes'),
    ('[midi]\nbackend = "ALSA"\n', 'midi.backend = "ALSA": must be one of auto, alsa, jack, coremidi, winmm'),
    ("[call]\nsilence_beats = 0.1\n", "call.silence_beats = 0.1: must be a number from 0.25 to 8"),
    ("[call]\nanswer_beats = 65\n", "call.answer_beats = 65: must be 0 (as long as the call) or an integer from 1 to 64"),
    ('[system]\nlog_level = "INFO"\n', 'system.log_level = "INFO": must be one of debug, info, warning, error'),
    ("[model]\npath = 3\n", 'model.path = 3: must be "" (the bundled model) or a bundle file path in quotes'),
    ("[control]\nmode_cc = 64\n", "control.mode_cc = 64: must be 0 (off) or an integer from 1 to 119 except 64 (sustain pedal)"),
    ("[control]\npanic_cc = 123\n", "control.panic_cc = 123: must be 0 (off) or an integer from 1 to 119"),
    ("[control]\ndensity_cc = 71\n", "control.density_cc = 71: same CC number as control.temperature_cc"),
    ("[control]\ntemperature_cc = 74\n", "control.temperature_cc = 74: same CC number as control.density_cc"),
    ("[engine]\nrange_low = 80\n", "engine.range_low = 80: must be at least an octave (12) below engine.range_high (84)"),
    ("[engine]\nrange_high = 60\n", "engine.range_high = 60: must be at least an octave (12) above engine.range_low (55)"),
    ("[engine]\nchord_channel = 2\nmelody_channel = 2\n", "engine.melody_channel = 2: must differ from engine.chord_channel (2)"),
    ("[midi]\ninput_channel = 1\n[engine]\nchord_channel = 2\n", "engine.chord_channel = 2: must be 0 or 1"),
    ('[engine]\nprogression = "Dm7 Xq7 | Cmaj7"\n', "engine.progression = \"Dm7 Xq7 | Cmaj7\": chord progression: chord symbol 'Xq7'"),
    ('[engine]\nprogression = "% Cmaj7"\n', 'engine.progression = "% Cmaj7": chord progression'),
    ('[engine]\nprogression = "Dm7 || G7"\n', "engine.progression = \"Dm7 || G7\": chord progression 'Dm7 || G7': bar 2 is empty"),
    ('[engine]\nprogression = "  "\n', 'engine.progression = "  ": empty chord progression'),
]


@pytest.mark.parametrize("text, expected", BAD_FILES, ids=[e.split(":")[0][:40] for _, e in BAD_FILES])
def test_bad_settings_give_one_line_naming_file_key_and_allowed_values(tmp_path, text, expected):
    path = tmp_path / "jazzd.toml"
    message = error_of(load_text, tmp_path, text)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_the_error_names_the_layer_that_set_the_bad_value(tmp_path):
    etc = write(tmp_path / "etc.toml", '[engine]\nmode = "duet"\n')
    user = write(tmp_path / "user.toml", '[engine]\nmode = "jam"\n')
    assert error_of(load_config, system_paths=[etc, user]) == (
        f'{user}: engine.mode = "jam": must be one of call, duet, solo')
    # A rule across keys blames the key set last, in the file that set it.
    etc = write(tmp_path / "etc.toml", "[control]\ntemperature_cc = 20\n")
    user = write(tmp_path / "user.toml", "[control]\nmode_cc = 20\n")
    assert error_of(load_config, system_paths=[etc, user]).startswith(
        f"{user}: control.mode_cc = 20: same CC number as control.temperature_cc")
    assert error_of(load_config, system_paths=[etc], overrides={"control.density_cc": "20"}).startswith(
        "command line: control.density_cc = 20: same CC number as control.temperature_cc")
    etc = write(tmp_path / "etc.toml", "[engine]\nrange_high = 70\n")
    user = write(tmp_path / "user.toml", "[engine]\nrange_low = 60\n")
    assert error_of(load_config, system_paths=[etc, user]).startswith(f"{user}: engine.range_low = 60:")


def test_progression_is_checked_against_beats_per_bar(tmp_path):
    cfg = load_text(tmp_path, '[clock]\nbeats_per_bar = 3\n[engine]\nprogression = "Dm7 G7 | Cmaj7 %"\n')
    assert cfg.engine.progression == "Dm7 G7 | Cmaj7 %"


@pytest.mark.parametrize("text, expected", [
    ('[engine]\nmode = \n', "not valid TOML: Invalid value (at line 2, column 8)"),
    ('[engine]\nmode = "call"\nmode = "duet"\n', "not valid TOML: Cannot overwrite a value (at line 3"),
    ('[engine\n', "not valid TOML: "),
    ('[engine]\nmode = "call\n', "(at line 2"),
])
def test_toml_syntax_errors_name_the_file_and_line(tmp_path, text, expected):
    message = error_of(load_text, tmp_path, text)
    assert message.startswith(f"{tmp_path / 'jazzd.toml'}: not valid TOML: ")
    assert expected in message and "line" in message


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "jazzd.toml"
    path.write_bytes(b'[engine]\nprogression = "C\xe9"\n')
    assert error_of(load_config, path, system_paths=[]) == f"{path}: not UTF-8 text (line 2); TOML files must be UTF-8"


def test_a_folder_in_place_of_the_file(tmp_path):
    folder = tmp_path / "jazzd.toml"
    folder.mkdir()
    assert error_of(load_config, system_paths=[folder]).startswith(f"{folder}: cannot read: ")
    assert error_of(load_config, folder, system_paths=[]).startswith(f"{folder}: cannot read: ")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_an_error_even_when_optional(tmp_path):
    path = write(tmp_path / "jazzd.toml", "[engine]\n")
    path.chmod(0)
    try:
        assert error_of(load_config, system_paths=[path]).startswith(f"{path}: cannot read: permission denied")
    finally:
        path.chmod(0o644)


def test_permission_denied_message(tmp_path, monkeypatch):
    # The same as above, for runs as root: the OS error is simulated.
    path = write(tmp_path / "jazzd.toml", "[engine]\n")
    real = Path.read_bytes

    def read_bytes(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert error_of(load_config, system_paths=[path]) == (
        f"{path}: cannot read: permission denied (check the file's owner and mode)")


# --- command-line overrides -----------------------------------------------------------------


def test_overrides_accept_command_line_strings_and_python_values():
    cfg = load_config(overrides={"clock.tempo": "140", "midi.thru": "true", "engine.split": 48,
                                 "engine.mode": "solo", "engine.progression": "Dm7 G7 | Cmaj7",
                                 "midi.input": "1"}, system_paths=[])
    assert (cfg.clock.tempo, cfg.midi.thru, cfg.engine.split) == (140.0, True, 48)
    assert (cfg.engine.mode, cfg.engine.progression, cfg.midi.input) == ("solo", "Dm7 G7 | Cmaj7", "1")
    assert cfg.sources == () and cfg.origin("clock.tempo") == "command line"


@pytest.mark.parametrize("overrides, expected", [
    ({"engine.mode": "jam"}, 'command line: engine.mode = "jam": must be one of call, duet, solo'),
    ({"clock.tempo": "fast"}, 'command line: clock.tempo = "fast": must be a number from 20 to 300'),
    ({"midi.thru": "yes"}, 'command line: midi.thru = "yes": must be true or false'),
    ({"clock.beats_per_bar": True}, "command line: clock.beats_per_bar = true: must be an integer from 1 to 12"),
    ({"engine.temprature": 1}, "command line: unknown key engine.temprature; did you mean engine.temperature?"),
    ({"tempo": 90}, 'command line: "tempo" is not section.key; did you mean clock.tempo?'),
    ({"audio.rate": 1}, "command line: unknown key audio.rate (sections: midi,"),
])
def test_bad_overrides_name_the_command_line(overrides, expected):
    assert error_of(load_config, overrides=overrides, system_paths=[]).startswith(expected)


def test_parse_overrides():
    assert parse_overrides(["engine.mode=duet", " clock.tempo =140", "engine.progression=Dm7 | G7=x"]) == {
        "engine.mode": "duet", "clock.tempo": "140", "engine.progression": "Dm7 | G7=x"}
    assert error_of(parse_overrides, ["engine.mode"]) == (
        'command line: "engine.mode" is not section.key=value, e.g. engine.mode=duet')
    assert "is not section.key=value" in error_of(parse_overrides, ["=duet"])


def test_command_line_settings_go_on_top_of_the_files_and_are_checked_with_them(tmp_path):
    etc = write(tmp_path / "etc.toml", "[control]\ntemperature_cc = 20\n")
    cfg = load_config(system_paths=[etc])
    louder = load_config(system_paths=[etc], overrides={"engine.density": 0.5, "engine.mode": "duet"})
    assert (louder.engine.density, louder.engine.mode) == (0.5, "duet")
    assert louder.sources == cfg.sources == (str(etc),)
    assert louder.origin("engine.mode") == "command line" and louder.origin("control.temperature_cc") == str(etc)
    assert cfg.diff(louder) == {"engine.mode": ("call", "duet"), "engine.density": (1.0, 0.5)}
    assert error_of(load_config, system_paths=[etc], overrides={"control.mode_cc": 20}) == (
        "command line: control.mode_cc = 20: same CC number as control.temperature_cc; "
        "control CCs must all differ (0 = off)")


def test_get_and_flat():
    cfg = load_config(system_paths=[])
    assert cfg.get("engine.top_p") == 0.95
    assert list(cfg.flat()) == list(RULES)
    assert "did you mean engine.top_p?" in error_of(cfg.get, "engine.topp")


# --- paths ------------------------------------------------------------------------------


def test_paths_are_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = load_text(tmp_path, '[model]\npath = "bundles/sax.npz"\nfolder = "~/jazzd/bundles"\n')
    assert cfg.model.path == str(tmp_path / "bundles" / "sax.npz")
    assert cfg.model.folder == str(tmp_path / "home" / "jazzd" / "bundles")
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "home")
    assert load_config(overrides={"model.path": "x.npz"}, system_paths=[]).model.path == str(
        tmp_path / "home" / "x.npz")
    assert load_config(overrides={"model.path": "/abs/x.npz"}, system_paths=[]).model.path == "/abs/x.npz"
    assert load_config(system_paths=[]).model.path == ""


def test_the_memory_file_is_a_path_except_off(tmp_path):
    cfg = load_text(tmp_path, '[model]\nmemory = "state/memory.json"\n')
    assert cfg.model.memory == str(tmp_path / "state" / "memory.json")
    assert load_text(tmp_path, '[model]\nmemory = "off"\n').model.memory == "off"
    assert load_config(overrides={"model.memory": "off"}, system_paths=[]).model.memory == "off"
    assert main(["config", "model.memory", "--memory", "off"]) == 0


# --- the file documents itself; no drift between the file, RULES and the dataclasses ---------


def key_docs() -> dict[str, str]:
    """{"section.key": the comment block right above the key} from default.toml."""
    docs: dict[str, str] = {}
    section, block = "", []
    for line in default_config_text().splitlines():
        s = line.strip()
        if s.startswith("#"):
            block.append(s.lstrip("#").strip())
        elif not s or s.startswith("["):
            section = s.strip("[]") if s else section
            block = []
        else:
            key = s.partition("=")[0].strip()
            docs[f"{section}.{key}"] = " ".join(block)
            block = []
    return docs


def test_every_key_in_default_toml_has_a_comment_that_states_its_allowed_values():
    docs = key_docs()
    assert list(docs) == list(RULES)
    for key, doc in docs.items():
        assert len(doc) > 20, f"{key}: no comment above it in default.toml"
        rule = RULES[key]
        if isinstance(rule, OneOf):
            assert all(c in doc for c in rule.choices) and "One of:" in doc, key
        elif isinstance(rule, Flag):
            assert "true or false" in doc, key
        elif isinstance(rule, Between):
            lo, hi = (f"{x:g}" for x in (rule.lo, rule.hi))
            if rule.lo_open:
                assert f"{lo} < " in doc and f" <= {hi}" in doc, key
            else:
                assert f"{lo}-{hi}" in doc or (rule.zero and f"1-{hi}" in doc and "0 =" in doc), key
            for number, _why in rule.exclude:
                assert f"except {number}" in doc, key


def test_every_schema_entry_has_a_default_and_a_typed_field():
    defaults = tomllib.loads(default_config_text())
    flat = {f"{s}.{k}": v for s, table in defaults.items() for k, v in table.items()}
    assert list(flat) == list(RULES)
    assert list(defaults) == list(SECTIONS)
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            value = flat[f"{section}.{f.name}"]
            assert f.type == type(value).__name__, f"{section}.{f.name}"
            assert RULES[f"{section}.{f.name}"].ok(value), f"default of {section}.{f.name} breaks its rule"
    assert CHECKS  # the rules across keys exist and the defaults pass them (test above)


# --- the engine's settings: one field each, in jazzd.play.settings ---------------------


def test_engine_settings_come_from_the_config_in_the_engines_units():
    assert Settings.from_config(load_config(system_paths=[]).flat()) == Settings()
    cfg = load_config(system_paths=[], overrides={
        "engine.chord_channel": 2, "midi.output_channel": 16, "engine.range_low": 40,
        "engine.lookahead_beats": 3, "clock.beats_per_bar": 3, "call.interrupt": False,
        "engine.top_p": 0.5})
    s = Settings.from_config(cfg.flat())
    assert (s.chord_channel, s.melody_channel, s.output_channel) == (1, None, 15)  # 0-based
    assert (s.pitch_range, s.lookahead, s.beats_per_bar, s.interrupt, s.top_p) == ((40, 84), 3, 3, False, 0.5)


def test_every_engine_setting_has_its_key_and_rule_in_the_schema():
    for f in dataclasses.fields(Settings):
        assert RULES[f.metadata["key"]] is f.metadata["rule"], f.name
    assert not set(SHELL_RULES) & {f.metadata["key"] for f in dataclasses.fields(Settings)}


@pytest.mark.parametrize(("edit", "complaint"), [
    (lambda text: text.replace("velocity_humanize = 6\n", ""), "['engine.velocity_humanize']"),
    (lambda text: text.replace("[system]\n", "[system]\nswing = 0.5\n"), "['system.swing']"),
    (lambda text: text.replace("range_low = 55", "range_low = 50"),
     "engine.range_low = 50 but Settings.range_low defaults to 55"),
    (lambda text: text.replace("output_channel = 1", "output_channel = 2"),
     "midi.output_channel = 2 but Settings.output_channel defaults to 0"),
])
def test_drift_between_default_toml_and_the_fields_is_caught(monkeypatch, edit, complaint):
    from jazzd.live import config

    text = default_config_text()
    monkeypatch.setattr(config, "default_config_text", lambda: edit(text))
    with pytest.raises(RuntimeError, match=re.escape(complaint)):
        config._schema()


# --- `jazzd config` ----------------------------------------------------------------------


def printed(capsys, *argv: str) -> dict[str, tuple[str, str]]:
    """{"section.key": (value as printed, origin)} from `jazzd config`'s output."""
    assert main(["config", *argv]) == 0
    out, section = {}, ""
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("["):
            section = line.strip("[]") + "."
        elif line and not line.startswith("#"):
            setting, _, origin = line.partition("  # ")
            key, _, value = setting.partition(" = ")
            out[section + key] = (value.strip(), origin)
    return out


def test_jazzd_config_prints_every_setting_with_where_it_came_from(tmp_path, monkeypatch, capsys):
    from jazzd.live import config

    etc = write(tmp_path / "etc" / "jazzd.toml", "[clock]\nbeats_per_bar = 3\n")
    user = write(tmp_path / "xdg" / "jazzd" / "jazzd.toml", "[engine]\ntemperature = 0.5\n")
    explicit = write(tmp_path / "explicit.toml", '[engine]\nmode = "duet"\n')
    monkeypatch.setattr(config, "SYSTEM_CONFIG", etc)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    argv = ["--config", str(explicit), "--tempo", "140", "--set", "control.panic_cc=90",
            "--set", 'midi.client_name=jazz "d"\x7f', "--set", "engine.progression=Dm7 G7 | Cmaj7 %"]
    shown = printed(capsys, *argv)
    assert list(shown) == list(RULES)
    assert shown["clock.beats_per_bar"] == ("3", str(etc))
    assert shown["engine.temperature"] == ("0.5", str(user))
    assert shown["engine.mode"] == ('"duet"', str(explicit))
    assert shown["clock.tempo"] == ("140.0", "command line")
    assert shown["control.panic_cc"] == ("90", "command line")
    assert shown["engine.density"] == ("1.0", "default")

    # The output is TOML that reads back as the same settings.
    assert main(["config", *argv]) == 0
    again = load_text(tmp_path, capsys.readouterr().out)
    expected = load_config(explicit, {"clock.tempo": 140, "control.panic_cc": 90,
                                      "midi.client_name": 'jazz "d"\x7f',
                                      "engine.progression": "Dm7 G7 | Cmaj7 %"},
                           system_paths=[etc, user])
    assert again == expected and again.midi.client_name == 'jazz "d"\x7f'


def test_jazzd_config_keys_default_and_errors(tmp_path, monkeypatch, capsys):
    from jazzd.live import config

    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "etc" / "jazzd.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert main(["config", "engine.top_p", "clock.tempo", "--tempo", "90"]) == 0
    assert capsys.readouterr().out == "engine.top_p = 0.95  # default\nclock.tempo = 90.0   # command line\n"
    assert main(["config", "--default"]) == 0
    assert capsys.readouterr().out == default_config_text()
    assert main(["config", "engine.topp"]) == 2
    assert capsys.readouterr().err == "jazzd config: unknown key engine.topp; did you mean engine.top_p?\n"
    assert main(["config", "--set", "engine.mode=jam"]) == 2
    assert capsys.readouterr().err == (
        'jazzd config: command line: engine.mode = "jam": must be one of call, duet, solo\n')
