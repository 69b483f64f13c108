"""`jazzd eval`: how well a bundle predicts real solos, next to the trigram baseline.

numpy only (the runtime the daemon uses); offline.  The sources are encoded with the
bundle's own vocabulary (values outside it map to their nearest, as live input does).

With `imitation` above 0 it also scores the model with a session memory
(`jazzd.model.memory`) that learns each solo as it is scored: value t is predicted by
the model mixed with the memory of the values before t of the same solo (a fresh memory
per solo), as the engine mixes them live at that `engine.imitation`.  The solo plays the
player: what the memory adds is what a player's own line tells about its next value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from jazzd.data.ingest.common import Piece
from jazzd.errors import InputError
from jazzd.model.bundle import Bundle, load_bundle
from jazzd.model.memory import ORDER, SessionMemory
from jazzd.model.ngram import Trigram
from jazzd.model.runtime import Runtime
from jazzd.music.features import chord_class_of


def evaluate_ids(bundle: Bundle, pieces, imitation: float = 0.0) -> dict:
    """NLL per token (nats) and top-1 accuracy of the model over (ids, positions, chords)
    pieces, each run from a fresh state after BOS, with teacher forcing.  With
    `imitation` > 0, also under "memory" the same with a session memory that learns
    each piece as it is scored (see the module's docstring)."""
    runtime = Runtime(bundle)
    names = bundle.cfg.get("features", [])
    nll, correct, n = 0.0, 0, 0
    mem_nll, mem_correct = 0.0, 0
    memory = SessionMemory() if imitation > 0 else None
    if memory is not None:
        memory.bind(bundle.vocab)
    for ids, positions, chords in pieces:
        runtime.reset()
        prev = runtime.bos
        feats = {"position": positions, "chord": chords}
        if memory is not None:
            memory.clear()
        for t, target in enumerate(ids):
            probs = runtime.step(prev, tuple(int(feats[f][t]) for f in names))
            nll -= math.log(max(float(probs[target]), 1e-12))
            correct += int(np.argmax(probs)) == int(target)
            if memory is not None:
                mixed = memory.mix(probs, ids[max(0, t - ORDER):t].tolist(), 0, imitation)
                mem_nll -= math.log(max(float(mixed[target]), 1e-12))
                mem_correct += int(np.argmax(mixed)) == int(target)
                memory.learn(bundle.vocab.value(int(target)))
            n += 1
            prev = int(target)
    result = {"tokens": n, "nll": nll / n if n else float("nan"), "accuracy": correct / n if n else 0.0}
    if memory is not None:
        result["memory"] = {"imitation": imitation, "nll": mem_nll / n if n else float("nan"),
                            "accuracy": mem_correct / n if n else 0.0}
    return result


def baseline_path(bundle: Bundle) -> Path | None:
    name = bundle.manifest.get("training", {}).get("baseline")
    return Path(bundle.path).parent / name if name else None


def evaluate_pieces(bundle: Bundle, pieces: Iterable[Piece], imitation: float = 0.0) -> dict:
    """Encode the pieces with the bundle's vocabulary; score the model (and with
    `imitation` > 0 the model with a session memory) and the trigram baseline beside
    the bundle (None when it has none)."""
    encoded = []
    for piece in pieces:
        values, _onsets, chords, positions = piece.encode_full()
        encoded.append((np.array(bundle.vocab.encode(values), dtype=np.int32),
                        np.array(positions, np.int32),
                        np.array([chord_class_of(c.root, c.mask) for c in chords], np.int32)))
    result = evaluate_ids(bundle, encoded, imitation)
    result["pieces"] = len(encoded)
    bpath = baseline_path(bundle)
    if bpath is not None and bpath.exists():
        result["baseline"] = Trigram.load(bpath).evaluate(p[0] for p in encoded)
    else:
        result["baseline"] = None
    return result


def evaluate_sources(model_path, sources, fmt: str = "auto", split: str | None = None,
                     imitation: float = 0.0) -> dict:
    """`jazzd eval`: read the sources (with `split`, only the bundle's training or
    validation solos among them) and score them (with a session memory at `imitation`)."""
    from jazzd.data.ingest.run import expand, read_source

    bundle = load_bundle(model_path)
    keep = None
    if split:
        keep = set(bundle.manifest.get("training", {}).get(f"{split}_pieces", []))
    pieces = []
    for path, f in expand(sources, fmt):
        if keep is not None and Path(path).stem not in keep:
            continue
        piece = read_source(path, f)
        if not any(bar.elements for bar in piece.bars):
            raise InputError(f"{path}: no notes to ingest")
        pieces.append(piece)
    return evaluate_pieces(bundle, pieces, imitation)
