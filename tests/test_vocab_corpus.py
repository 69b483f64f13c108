"""Vocabulary order and fallback, the corpus file, and the seed's training windows."""

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from jazzd.data.corpus import Corpus, build
from jazzd.errors import InputError
from jazzd.music.vocab import Vocabulary
from jazzd.training.windows import seed_window_starts, seed_windows

from .conftest import SEED, need

VALUES = ["C,0.500", "C,0.250,<m2,P-4>", "R,0.250", "S,0.500,<P4,m-2>", "A,0.333", "C,1.000,<P4,m-2>"]


def test_order_is_a_sort_not_a_hash_order():
    assert Vocabulary(VALUES).values == Vocabulary(reversed(VALUES)).values
    code = ("from jazzd.music.vocab import Vocabulary; import json;"
            f"print(json.dumps(Vocabulary(set({VALUES!r})).values))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (0, 1, 2)}
    assert len(outs) == 1


@pytest.mark.parametrize(("value", "nearest"), [
    ("C,0.500", "C,0.500"),                    # inside: itself
    ("C,0.333", "C,0.250,<m2,P-4>"),           # same type, nearest duration (by ratio)
    ("C,1.000,<m2,P-4>", "C,1.000,<P4,m-2>"),  # same type and duration, nearest window
    ("C,0.500,<M3,d-3>", "C,0.500"),           # only windowless C of that length
    ("R,0.167", "R,0.250"),
    ("X,0.250", "A,0.333"),                    # no X at all: the approach tone stands in
])
def test_nearest_value_fallback(value, nearest):
    vocab = Vocabulary(VALUES)
    assert vocab.value(vocab.index(value)) == nearest


def test_max_size_keeps_the_most_frequent_and_reports_coverage():
    counts = Counter({"C,0.500": 5, "C,0.250": 4, "R,0.250": 3, "C,1.000": 1, "R,0.500": 1})
    vocab = Vocabulary.from_counts(counts, 3)
    assert set(vocab) == {"C,0.500", "C,0.250", "R,0.250"}
    cov = vocab.coverage(counts)
    assert cov["coverage"] == pytest.approx(12 / 14) and cov["distinct"] == 5


def _pieces():
    from jazzd.music.chords import parse_chord

    c = parse_chord("C7")
    return [("a", ["C,0.500", "R,0.250", "S,0.500,<P4,m-2>"], [0.0, 0.5, 0.75], [c, c, c]),
            ("b", ["C,0.500", "A,0.333"], [0.0, 0.5], [c, parse_chord("F")])]


def test_corpus_round_trip(tmp_path):
    corpus = build(_pieces(), meta={"source": "test"})
    path = corpus.save(tmp_path / "c.npz")
    back = Corpus.load(path)
    assert back.names == ["a", "b"] and back.vocab == corpus.vocab
    assert back.piece_values(0) == ["C,0.500", "R,0.250", "S,0.500,<P4,m-2>"]
    assert back.piece_values(1) == ["C,0.500", "A,0.333"]
    assert [back.chord_table[i]["symbol"] for i in back.chords] == ["C7", "C7", "C7", "C7", "F"]
    assert back.stats["tokens_per_type"] == {"A": 1, "C": 2, "R": 1, "S": 1}


def test_max_vocab_maps_outside_values_to_their_nearest():
    pieces = [*_pieces(), ("c", ["C,0.250,<m2,P-4>", "C,0.500"], [0.0, 0.25], [None, None])]
    from jazzd.music.chords import parse_chord

    pieces[2] = (*pieces[2][:3], [parse_chord("C")] * 2)
    corpus = build(pieces, max_vocab=4)  # one value of each type survives, however small
    assert set(corpus.vocab) == {"C,0.500", "R,0.250", "S,0.500,<P4,m-2>", "A,0.333"}
    assert corpus.stats["coverage"] == pytest.approx(6 / 7)
    assert corpus.piece_values(2) == ["C,0.500", "C,0.500"]  # nearest C value


def test_damaged_corpus_files_give_one_line_errors(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, manifest=np.array([{"a": 1}], dtype=object), tokens=np.zeros(1))
    for path in (junk, pickled, tmp_path / "missing.npz"):
        with pytest.raises(InputError) as err:
            Corpus.load(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_seed_window_starts_and_shapes():
    golden = json.loads(need(SEED / "derived" / "metheny_window_starts_seed0.json").read_text())
    assert seed_window_starts(275) == golden["starts"]
    values = need(SEED / "derived" / "metheny_corpus.txt").read_text().split()
    vocab = Vocabulary(values)
    tokens = vocab.encode(values)
    x, y, starts = seed_windows(tokens, len(vocab))
    assert x.shape == y.shape == (60, 30, 90) and x.dtype == bool
    assert not x[:, 0].any() and not y[:, 29].any()  # the zero start step; the empty last target
    assert (y[:, :-1] == x[:, 1:]).all()  # Y is X shifted left
    i = 7
    assert [vocab.value(int(k)) for k in x[i, 1:].argmax(-1)] == values[starts[i] + 1: starts[i] + 30]
    assert np.swapaxes(y, 0, 1).shape == (30, 60, 90)  # the seed's own Y layout
