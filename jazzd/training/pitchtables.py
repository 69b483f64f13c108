"""The decoder's pitch tables from a corpus: counted at the end of `jazzd train`, or added
to a bundle already trained (`jazzd pitch-tables`).  numpy only (no TensorFlow); offline.

Only the bundle's training solos are counted (the validation solos stay unseen), each
value read through the model's own vocabulary, as the model was taught it.  What the
tables hold and how the decoder uses them: `jazzd.model.pitchtable`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jazzd.data.corpus import Corpus
from jazzd.errors import InputError
from jazzd.model.bundle import arrays_sha256, load_bundle, save_bundle
from jazzd.model.pitchtable import PitchCounts
from jazzd.music.grammar import parse_value
from jazzd.music.vocab import Vocabulary

REINGEST = "ingest the sources again with this jazzd (the corpus then keeps the pitches)"


def has_pitches(corpus: Corpus) -> bool:
    return corpus.pitches is not None and corpus.reach is not None


def estimate(corpus: Corpus, pieces, vocab: Vocabulary) -> tuple[dict[str, np.ndarray], dict]:
    """(tables, info) counted over the corpus pieces `pieces` (indices), their values read
    through `vocab`.  InputError when the corpus has no pitches."""
    if not has_pitches(corpus):
        raise InputError(f"the corpus has no pitches (it was ingested before jazzd kept them); {REINGEST}")
    pieces = list(pieces)
    counts = PitchCounts()
    classes = corpus.chord_classes()
    model_value = {}  # corpus token -> the model's Value
    notes = 0
    for i in pieces:
        prev = None
        for k in range(int(corpus.offsets[i]), int(corpus.offsets[i + 1])):
            midi = int(corpus.pitches[k])
            if midi < 0:
                continue
            token = int(corpus.tokens[k])
            value = model_value.get(token)
            if value is None:
                value = model_value[token] = parse_value(vocab.value(vocab.index(corpus.vocab.value(token))))
            counts.add(value, midi, prev, int(classes[k]), int(corpus.reach[k]))
            prev = midi
            notes += 1
    info = {"pieces": len(pieces), "notes": notes}
    return counts.tables(), info


def add_to_bundle(corpus_path, bundle_path, output=None) -> dict:
    """Count the tables from the bundle's training solos in the corpus and write the
    bundle again with them (to `output`, else in place).  The weights, vocabulary, model
    config and training record are carried over untouched; afterwards every weight array
    is checked byte for byte against the original.  Returns what was done."""
    bundle = load_bundle(bundle_path)
    corpus = Corpus.load(corpus_path)
    names = bundle.training.get("train_pieces")
    if not names:
        raise InputError(f"{bundle_path}: the bundle does not list its training solos, so its "
                         "tables cannot be counted from them; retrain it with this jazzd")
    index = {name: i for i, name in enumerate(corpus.names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise InputError(f"{corpus_path}: {len(missing)} of the bundle's {len(names)} training solos are not "
                         f"in this corpus (e.g. {missing[0]!r}); give the corpus it was trained on")
    if not has_pitches(corpus):
        raise InputError(f"{corpus_path}: the corpus has no pitches (it was ingested before jazzd "
                         f"kept them); {REINGEST}")
    tables, info = estimate(corpus, [index[n] for n in names], bundle.vocab)
    info["corpus"] = str(corpus_path)
    before = arrays_sha256(bundle.arrays)
    out = Path(output or bundle_path)
    save_bundle(out, bundle.arrays, bundle.cfg, bundle.vocab, bundle.training, tables, info)
    after = load_bundle(out)
    same = (sorted(after.arrays) == sorted(bundle.arrays)
            and all(after.arrays[n].tobytes() == bundle.arrays[n].tobytes() for n in bundle.arrays)
            and arrays_sha256(after.arrays) == before)
    if not same:  # cannot happen short of a numpy bug; never leave a changed model behind silently
        raise InputError(f"{out}: the weights changed while adding the pitch tables; restore the bundle")
    return {**info, "bundle": str(out), "weights_sha256": before, "weights_unchanged": True}
