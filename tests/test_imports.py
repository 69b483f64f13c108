"""What the offline play path really loads when a user runs it.  Which module may import
what is the import-linter contract in pyproject.toml (tests/test_architecture.py)."""

import json
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "music21", "matplotlib")


def test_generate_from_the_command_line_loads_no_heavy_library(tmp_path):
    """The whole offline play path (bundle, runtime, engine, MIDI out), as a user runs it."""
    code = ("import sys, json\nfrom jazzd.cli import main\n"
            f"main(['generate', '-o', {str(tmp_path / 'x.mid')!r}, '--bars', '2'])\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []
    assert (tmp_path / "x.mid").exists()
