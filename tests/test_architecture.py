"""The layers are a contract (pyproject.toml, import-linter), not prose: the tree keeps
them, and a change that breaks one is caught."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (the test extra)")


def lint(root: Path) -> subprocess.CompletedProcess:
    # the copy's own package must be the one analysed: put its root first on the path
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def copy_tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "jazzd", tmp_path / "jazzd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_tree_keeps_every_contract():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("music/pitch.py", "import jazzd.play.engine", "Layers"),            # upward
    ("play/engine.py", "import jazzd.data.corpus", "never reaches"),      # live path to the corpus
    ("live/daemon.py", "import jazzd.cli", "Layers"),                     # the old circle
    ("model/runtime.py", "import tensorflow", "TensorFlow"),             # a heavy library
    ("live/config.py", "import numpy", "stdlib only"),
    ("live/midi.py", "import mido", "stdlib only"),
    ("model/bundle.py", "import pickle", "without pickle"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    root = copy_tree(tmp_path)
    path = root / "jazzd" / module
    path.write_text(path.read_text() + f"\n\ndef _planted():\n    {line}\n")
    out = lint(root)
    assert out.returncode != 0
    assert contract in out.stdout.split("Broken contracts")[-1]
