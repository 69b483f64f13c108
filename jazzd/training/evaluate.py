"""`jazzd eval`: how well a bundle predicts real solos, next to the trigram baseline.

numpy only (the runtime the daemon uses); offline.  The sources are encoded with the
bundle's own vocabulary (values outside it map to their nearest, as live input does).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jazzd.model.bundle import Bundle, load_bundle
from jazzd.model.ngram import Trigram
from jazzd.model.runtime import Runtime
from jazzd.music.features import chord_class_of


def evaluate_ids(bundle: Bundle, pieces) -> dict:
    """NLL per token (nats) and top-1 accuracy of the model over (ids, positions, chords)
    pieces, each run from a fresh state after BOS, with teacher forcing."""
    runtime = Runtime(bundle)
    names = bundle.cfg.get("features", [])
    nll, correct, n = 0.0, 0, 0
    for ids, positions, chords in pieces:
        runtime.reset()
        prev = runtime.bos
        feats = {"position": positions, "chord": chords}
        for t, target in enumerate(ids):
            probs = runtime.step(prev, tuple(int(feats[f][t]) for f in names))
            nll -= math.log(max(float(probs[target]), 1e-12))
            correct += int(np.argmax(probs)) == int(target)
            n += 1
            prev = int(target)
    return {"tokens": n, "nll": nll / n if n else float("nan"), "accuracy": correct / n if n else 0.0}


def baseline_path(bundle: Bundle) -> Path | None:
    name = bundle.manifest.get("training", {}).get("baseline")
    return Path(bundle.path).parent / name if name else None


def evaluate_sources(model_path, sources, fmt: str = "auto", split: str | None = None) -> dict:
    """Encode the sources with the bundle's vocabulary and score model and baseline."""
    from jazzd.data.ingest.run import expand, read_piece

    bundle = load_bundle(model_path)
    keep = None
    if split:
        keep = set(bundle.manifest.get("training", {}).get(f"{split}_pieces", []))
    pieces, names = [], []
    for path, f in expand(sources, fmt):
        if keep is not None and Path(path).stem not in keep:
            continue
        name, values, _onsets, chord_keys, positions = read_piece(path, f)
        ids = np.array(bundle.vocab.encode(values), dtype=np.int32)
        chords = [chord_class_of(root, mask) for _symbol, root, mask, _quality in chord_keys]
        pieces.append((ids, np.array(positions, np.int32), np.array(chords, np.int32)))
        names.append(name)
    result = evaluate_ids(bundle, pieces)
    result["pieces"] = len(pieces)
    bpath = baseline_path(bundle)
    if bpath is not None and bpath.exists():
        result["baseline"] = Trigram.load(bpath).evaluate(p[0] for p in pieces)
    else:
        result["baseline"] = None
    return result
