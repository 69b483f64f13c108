"""A tiny deterministic weights bundle for engine tests (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np

from jazzd.model.bundle import array_shapes, save_bundle
from jazzd.music.features import FEATURE_SIZES
from jazzd.music.vocab import Vocabulary

DURS = ("0.250", "0.500", "0.333", "1.000")
WINDOWS = ("<m2,P-4>", "<P4,m-2>", "<d5,P1>", "<P1,d-5>", "<M3,d-3>")


def values() -> list[str]:
    out = [f"R,{d}" for d in DURS]
    for t in "CSA":
        for d in DURS:
            out.append(f"{t},{d}")
            out += [f"{t},{d},{w}" for w in WINDOWS]
    return out


def make_bundle(path, seed: int = 7, hidden: int = 24):
    vocab = Vocabulary(values())
    cfg = {"input": "embedding", "vocab_size": len(vocab), "embed_dim": 16,
           "features": ["position", "chord"], "feature_sizes": dict(FEATURE_SIZES),
           "layers": [hidden], "dropout": 0.0, "seq_len": 32, "gate_order": "ifco",
           "activation": "tanh", "recurrent_activation": "sigmoid"}
    rng = np.random.default_rng(seed)
    arrays = {name: (rng.standard_normal(shape) * 0.6).astype(np.float32)
              for name, shape in array_shapes(cfg).items()}
    # Rests a little less likely than notes, so scenarios have something to hear.
    arrays["dense_bias"][[vocab.index(f"R,{d}") for d in DURS]] -= 1.5
    return save_bundle(path, arrays, cfg, vocab, training={"note": "random test weights"})
