"""The core and ingest modules never import music21 or tensorflow (they cost ~700 MB, ~2 s)."""

import json
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "music21", "matplotlib")
CORE = ["jazzd.pitch", "jazzd.chords", "jazzd.grammar", "jazzd.vocab", "jazzd.corpus",
        "jazzd.windows", "jazzd.cli", "jazzd.ingest.run", "jazzd.ingest.wjazzd",
        "jazzd.ingest.seed", "jazzd.ingest.midi", "jazzd.chordrec",
        # the daemon's side: model runtime, engine, shell
        "jazzd.bundle", "jazzd.runtime", "jazzd.features", "jazzd.soloist", "jazzd.tracker",
        "jazzd.listener", "jazzd.engine", "jazzd.schedule", "jazzd.offline", "jazzd.render",
        "jazzd.progression", "jazzd.evaluate", "jazzd.ngram", "jazzd.ports", "jazzd.notify",
        "jazzd.config", "jazzd.clock", "jazzd.daemon",
        # the report's side (matplotlib only inside its drawing functions)
        "jazzd.metrics", "jazzd.mgeval", "jazzd.copying", "jazzd.plots", "jazzd.report"]


def test_core_modules_import_no_heavy_library():
    code = (f"import importlib, sys, json\nfor m in {CORE!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_generate_from_the_command_line_loads_no_heavy_library(tmp_path):
    """The whole offline play path (bundle, runtime, engine, MIDI out), as a user runs it."""
    code = ("import sys, json\nfrom jazzd.cli import main\n"
            f"main(['generate', '-o', {str(tmp_path / 'x.mid')!r}, '--bars', '2'])\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []
    assert (tmp_path / "x.mid").exists()
