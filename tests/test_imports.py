"""The core and ingest modules never import music21 or tensorflow (they cost ~700 MB, ~2 s)."""

import json
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "music21", "matplotlib")
CORE = ["jazzd.pitch", "jazzd.chords", "jazzd.grammar", "jazzd.vocab", "jazzd.corpus",
        "jazzd.windows", "jazzd.cli", "jazzd.ingest.run", "jazzd.ingest.wjazzd",
        "jazzd.ingest.seed", "jazzd.ingest.midi", "jazzd.chordrec"]


def test_core_modules_import_no_heavy_library():
    code = (f"import importlib, sys, json\nfor m in {CORE!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
