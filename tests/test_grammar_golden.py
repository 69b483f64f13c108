"""The codec against the seed's golden vectors (music21 6.7.1 output)."""

import json
from collections import Counter

import pytest

from jazzd.music.chords import spelled_chord
from jazzd.music.grammar import Element, iter_bar
from jazzd.music.vocab import Vocabulary

from .conftest import SEED, need


@pytest.fixture(scope="module")
def golden():
    path = need(SEED / "derived" / "metheny_grammar_inputs.json")
    return json.loads(path.read_text())["bars"]


def _encode(bar):
    chords = [(c["offset"], spelled_chord(c["names"], c["quality"])) for c in bar["chords"]]
    elements = [Element(e["offset"], e["quarter_length"], None if e["rest"] else e["midi"])
                for e in bar["elements"]]
    return [value for _, _, value in iter_bar(elements, chords)]


def test_codec_reproduces_every_golden_value(golden):
    got = [v for bar in golden for v in _encode(bar)]
    want = [v for bar in golden for v in bar["values"]]
    assert len(want) == 275
    mismatches = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert mismatches == []


def test_bars_join_to_the_golden_grammar_strings(golden):
    lines = need(SEED / "derived" / "metheny_abstract_grammars.txt").read_text().splitlines()
    assert [" ".join(_encode(bar)) for bar in golden] == lines


def test_vocabulary_matches_the_golden_counts(golden):
    counts = Counter(v for bar in golden for v in _encode(bar))
    rows = need(SEED / "derived" / "metheny_vocabulary.tsv").read_text().splitlines()[1:]
    want = {v: int(c) for v, c in (r.split("\t") for r in rows)}
    assert dict(counts) == want
    vocab = Vocabulary(counts)
    assert len(vocab) == 90
    by_type = Counter(v[0] for v in vocab)
    assert by_type == {"C": 37, "S": 24, "R": 12, "A": 12, "X": 5}
