"""Bad files and settings at the daemon: at start-up one line naming the file and the
problem, exit 2; on a reload the old, working setup keeps playing.  And nothing in the
package ever calls pickle, eval or exec on data.  (Each bundle defect and each config
error has its own message test in test_bundle.py and test_config.py; here they meet the
daemon.)"""

from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jazzd.errors import BundleError
from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.notify import Notifier

from .test_bundle import DEFECTS, Trap  # noqa: F401  (Trap: the pickle trap DEFECTS uses)
from .test_fuzz import Wire, sounding_at_end
from .tinymodel import make_bundle

PACKAGE = Path(__file__).resolve().parents[1] / "jazzd"
BAD_BUNDLES = ["empty", "truncated", "text", "wrong format", "newer version", "NaN", "object array"]
BAD_CONFIGS = {
    "unknown key": ("[engine]\nmood = 'blue'\n", "engine.mood"),
    "wrong type": ("[clock]\ntempo = 'fast'\n", "clock.tempo"),
    "out of range": ("[engine]\ntemperature = 99.0\n", "engine.temperature"),
    "bad TOML": ("[engine\n", "line 1"),
    "not UTF-8": (b"[engine]\nmode = '\xff'\n", "UTF-8"),
}


def test_nothing_unpickles_evals_or_execs():
    """An AST scan of the package: no pickle/marshal/shelve, no eval/exec/compile of
    anything, and every np.load says allow_pickle=False."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                found += [f"{where} imports {n}" for n in names
                          if n.split(".")[0] in ("pickle", "marshal", "shelve", "dill", "cloudpickle")]
            elif isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if isinstance(node.func, ast.Name) and name in ("eval", "exec", "compile", "__import__"):
                    found.append(f"{where} calls {name}")
                if name == "load" and isinstance(node.func, ast.Attribute) and \
                        getattr(node.func.value, "id", "") == "np":
                    kw = {k.arg: k.value for k in node.keywords}
                    if not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False):
                        found.append(f"{where} np.load without allow_pickle=False")
    assert found == []


@pytest.mark.parametrize("defect", BAD_BUNDLES)
def test_a_bad_bundle_stops_start_up_with_one_line_and_exit_2(tmp_path, defect):
    good = make_bundle(tmp_path / "good.npz")
    make, expected = DEFECTS[defect]
    bad = make(good, tmp_path)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "JACK_NO_START_SERVER": "1"}
    out = subprocess.run([sys.executable, "-m", "jazzd", "run", "--model", str(bad)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and expected in lines[0], out.stderr


@pytest.fixture
def playing(tmp_path):
    """A daemon started from a config file, playing solo into memory."""
    good = make_bundle(tmp_path / "good.npz")
    config = tmp_path / "jazzd.toml"
    config.write_text(f'[engine]\nmode = "solo"\n[model]\npath = "{good}"\n')
    cfg = load_config(config, system_paths=[])
    daemon = Daemon(cfg, config_file=config, notifier=Notifier(environ={}))
    daemon.monotonic = lambda: 0.0
    daemon.start(now=0.0, ports=Wire())
    for k in range(400):  # two seconds: it plays
        daemon.step(k * 0.005)
    return daemon, config, good


def _assert_kept(daemon, before, caplog, named):
    cfg, engine = before
    assert daemon.cfg is cfg and daemon.engine is engine and daemon.counters.rejected_reloads == 1
    assert f"reload rejected, still playing the old setup: {named}" in caplog.text
    sent = len(daemon.ports.out)
    for k in range(400, 800):
        daemon.step(k * 0.005)
    assert len(daemon.ports.out) > sent  # and it goes on playing


@pytest.mark.parametrize("defect", BAD_BUNDLES)
def test_a_reload_with_a_bad_bundle_keeps_the_old_one(playing, tmp_path, defect, caplog):
    daemon, config, good = playing
    make, expected = DEFECTS[defect]
    bad = make(good, _fresh(tmp_path))
    config.write_text(f'[engine]\nmode = "solo"\n[model]\npath = "{bad}"\n')
    before = (daemon.cfg, daemon.engine)
    with caplog.at_level(logging.ERROR, logger="jazzd"):
        assert daemon.reload(2.0) is False
    _assert_kept(daemon, before, caplog, str(bad))
    assert expected in caplog.text


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_a_reload_with_a_bad_config_keeps_the_old_one(playing, case, caplog):
    daemon, config, _good = playing
    text, expected = BAD_CONFIGS[case]
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = (daemon.cfg, daemon.engine)
    with caplog.at_level(logging.ERROR, logger="jazzd"):
        assert daemon.reload(2.0) is False
    _assert_kept(daemon, before, caplog, str(config))
    assert expected in caplog.text


def test_a_good_reload_says_what_changed_and_the_engine_plays_it(playing, caplog):
    daemon, config, good = playing
    config.write_text(f'[engine]\nmode = "solo"\ntemperature = 0.5\n[model]\npath = "{good}"\n'
                      '[midi]\noutput_channel = 3\n')
    with caplog.at_level(logging.INFO, logger="jazzd"):
        assert daemon.reload(2.0) is True
    assert "reloaded (midi.output_channel 1 -> 3, engine.temperature 1.0 -> 0.5): " in caplog.text
    assert (daemon.engine.settings.temperature, daemon.engine.settings.output_channel) == (0.5, 2)


def test_a_reload_of_an_unreadable_config_keeps_the_old_one(playing, caplog):
    daemon, config, _good = playing
    config.unlink()
    config.mkdir()  # a folder where the file was: cannot be read, even as root
    before = (daemon.cfg, daemon.engine)
    with caplog.at_level(logging.ERROR, logger="jazzd"):
        assert daemon.reload(2.0) is False
    _assert_kept(daemon, before, caplog, str(config))


def _fresh(tmp_path: Path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    return folder


# --- the program-change folder: loaded at start and on reload, never at the switch --------

def _folder_daemon(tmp_path, folder, mode="solo"):
    good = make_bundle(tmp_path / "good.npz")
    config = tmp_path / "jazzd.toml"
    config.write_text(f'[engine]\nmode = "{mode}"\n[model]\npath = "{good}"\nfolder = "{folder}"\n')
    daemon = Daemon(load_config(config, system_paths=[]), config_file=config, notifier=Notifier(environ={}))
    daemon.monotonic = lambda: 0.0
    return daemon


def test_a_program_change_switches_to_a_bundle_loaded_at_start_reading_no_file(tmp_path, monkeypatch):
    folder = tmp_path / "programs"
    folder.mkdir()
    for name, seed in (("a.npz", 1), ("b.npz", 2)):
        make_bundle(folder / name, seed=seed)
    make_bundle(folder / "a.trigram.npz", seed=3)  # a baseline beside a bundle is no program
    daemon = _folder_daemon(tmp_path, folder)
    wire = Wire()
    daemon.start(now=0.0, ports=wire)
    assert [p.name for p, _ in daemon.programs] == ["a.npz", "b.npz"]
    for k in range(200):
        daemon.step(k * 0.005)
    # From here on no bundle can be read: the files are gone and loading fails loudly.
    for path in folder.iterdir():
        path.unlink()

    def no_loading(path):
        raise AssertionError(f"a bundle was loaded on the beat path: {path}")
    monkeypatch.setattr("jazzd.live.daemon.load_bundle", no_loading)
    sent = len(wire.out)
    wire.inbox.append(bytes([0xC0, 1]))
    daemon.step(1.0)
    assert daemon.model_name == "b.npz" and daemon.engine.soloist.runtime is daemon.programs[1][1]
    for k in range(201, 600):
        daemon.step(k * 0.005)
    assert len(wire.out) > sent  # the new model plays on
    wire.inbox.append(bytes([0xC0, 0]))
    daemon.step(3.0)
    assert daemon.model_name == "a.npz"
    daemon.shutdown(3.0)
    assert sounding_at_end(wire.out) == set()


def test_bad_bundles_in_the_program_folder_stop_start_up_one_line_each_exit_2(tmp_path):
    good = make_bundle(tmp_path / "good.npz")
    folder = tmp_path / "programs"
    folder.mkdir()
    make_bundle(folder / "a.npz")
    bad = []
    for defect in ("truncated", "text"):
        make, expected = DEFECTS[defect]
        (tmp_path / defect).mkdir()
        path = make(good, tmp_path / defect)
        bad.append((folder / f"{defect}.npz", expected))
        path.rename(bad[-1][0])
    config = tmp_path / "jazzd.toml"
    config.write_text(f'[model]\nfolder = "{folder}"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "JACK_NO_START_SERVER": "1"}
    out = subprocess.run([sys.executable, "-m", "jazzd", "run", "--config", str(config), "--model", str(good)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == len(bad), out.stderr
    for line, (path, expected) in zip(lines, sorted(bad), strict=True):
        assert line.startswith("jazzd run: ") and str(path) in line and expected in line, line


def test_a_missing_program_folder_stops_start_up(tmp_path):
    daemon = _folder_daemon(tmp_path, tmp_path / "nowhere")
    with pytest.raises(BundleError, match=r"nowhere: no such folder of model bundles \(\[model\] folder\)"):
        daemon.start(now=0.0, ports=Wire())


def test_a_reload_with_a_bad_bundle_in_the_program_folder_keeps_the_old_setup(tmp_path, caplog):
    folder = tmp_path / "programs"
    folder.mkdir()
    make_bundle(folder / "a.npz", seed=1)
    daemon = _folder_daemon(tmp_path, folder)
    daemon.start(now=0.0, ports=Wire())
    for k in range(400):
        daemon.step(k * 0.005)
    programs = daemon.programs
    make, expected = DEFECTS["NaN"]
    make(folder / "a.npz", _fresh(tmp_path)).rename(folder / "b.npz")
    before = (daemon.cfg, daemon.engine)
    with caplog.at_level(logging.ERROR, logger="jazzd"):
        assert daemon.reload(2.0) is False
    _assert_kept(daemon, before, caplog, str(folder / "b.npz"))
    assert expected in caplog.text and daemon.programs is programs
    (folder / "b.npz").unlink()
    make_bundle(folder / "c.npz", seed=2)
    assert daemon.reload(4.0) is True  # once the folder is good, a reload takes it in
    assert [p.name for p, _ in daemon.programs] == ["a.npz", "c.npz"]
