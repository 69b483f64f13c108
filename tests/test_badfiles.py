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

from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.notify import Notifier

from .test_bundle import DEFECTS, Trap  # noqa: F401  (Trap: the pickle trap DEFECTS uses)
from .test_fuzz import Wire
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
