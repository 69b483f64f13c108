"""Chord symbols: WJD syntax, lead-sheet spellings, errors, and the seed's derived scales."""

import csv

import pytest

from jazzd.errors import ChordSymbolError
from jazzd.music.chords import derived_scale, parse_chord

from .conftest import WJD, need

C, Db, D, Eb, E, F, Gb, G, Ab, A, Bb, B = range(12)

CASES = {
    # WJD syntax
    "Bb7": (Bb, {Bb, D, F, Ab}, "major"),
    "C-7": (C, {C, Eb, G, Bb}, "minor"),
    "Ebj7": (Eb, {Eb, G, Bb, D}, "major"),
    "F-7b5": (F, {F, Ab, B, Eb}, "diminished"),
    "Fm7b5": (F, {F, Ab, B, Eb}, "diminished"),
    "Bbo": (Bb, {Bb, Db, E}, "diminished"),
    "Bbo7": (Bb, {Bb, Db, E, G}, "diminished"),
    "C7alt": (C, {C, E, Bb, Db, Eb, Gb, Ab}, "other"),  # no perfect fifth: Dorian-derived
    "A79b13": (A, {A, Db, E, G, Bb, Gb}, "major"),  # WJD puts accidentals after: 9b, then 13
    "A79b13b": (A, {A, Db, E, G, Bb, F}, "major"),
    "D-": (D, {D, F, A}, "minor"),
    "Ebj79#11#": (Eb, {Eb, G, Bb, D, Gb, A}, "major"),
    "C-69": (C, {C, Eb, G, A, D}, "minor"),
    "Ab+7": (Ab, {Ab, C, E, Gb}, "augmented"),
    "Gsus7": (G, {G, C, D, F}, "other"),
    "Bb-7/Eb": (Bb, {Bb, Db, F, Ab, Eb}, "minor"),
    "C/E": (C, {C, E, G}, "major"),
    "D-j7": (D, {D, F, A, Db}, "minor"),
    # lead-sheet spellings
    "Cmaj7": (C, {C, E, G, B}, "major"),
    "CM7": (C, {C, E, G, B}, "major"),
    "Cmaj9": (C, {C, E, G, B, D}, "major"),
    "CmMaj7": (C, {C, Eb, G, B}, "minor"),
    "Dm7": (D, {D, F, A, C}, "minor"),
    "G7b9": (G, {G, B, D, F, Ab}, "major"),
    "Am7b5": (A, {A, C, Eb, G}, "diminished"),
    "Bdim7": (B, {B, D, F, Ab}, "diminished"),
    "Csus4": (C, {C, F, G}, "other"),
    "Csus2": (C, {C, D, G}, "other"),
    "C7sus4": (C, {C, F, G, Bb}, "other"),
    "C6/9": (C, {C, E, G, A, D}, "major"),
    "F#m7": (Gb, {Gb, A, Db, E}, "minor"),
    "C7(#11)": (C, {C, E, G, Bb, Gb}, "major"),
    "Caug": (C, {C, E, Ab}, "augmented"),
}


@pytest.mark.parametrize("symbol", sorted(CASES))
def test_symbols_give_root_pitch_classes_and_quality(symbol):
    root, pcs, quality = CASES[symbol]
    chord = parse_chord(symbol)
    assert (chord.root, set(chord.pcs), chord.quality) == (root, pcs, quality)


def test_slash_chord_keeps_its_bass():
    assert parse_chord("Bb7/Ab").bass == Ab
    assert Ab in parse_chord("C-/Bb").pcs | {Ab}  # bass joins the sounding pitch classes
    assert Bb in parse_chord("C-/Bb").pcs


@pytest.mark.parametrize("symbol", ["NC", "N.C.", ""])
def test_no_chord_is_none(symbol):
    assert parse_chord(symbol) is None


@pytest.mark.parametrize("symbol", ["H7", "Cfoo", "C7/Q", "7", "C7#", "Cmaj7zz"])
def test_unknown_symbols_name_the_symbol_and_a_fix(symbol):
    with pytest.raises(ChordSymbolError) as err:
        parse_chord(symbol)
    assert repr(symbol) in str(err.value) and "\n" not in str(err.value)


def test_every_chord_symbol_in_the_wjd_parses():
    folder = need(WJD / "csv_beats")
    symbols = set()
    for path in folder.glob("*.csv"):
        with open(path, newline="") as f:
            symbols |= {row["chord"] for row in csv.DictReader(f) if row["chord"]}
    assert len(symbols) > 350
    for symbol in sorted(symbols):
        chord = parse_chord(symbol)
        if symbol == "NC":
            assert chord is None
            continue
        assert chord.root in chord.pcs, symbol
        assert 2 <= len(chord.pcs) <= 8, symbol


def test_derived_scales_follow_music21s_choice():
    # ties between C, F and G major go to the highest tonic; Dorian over D F A C is G Dorian
    assert derived_scale((C, E, G), True)[0] == "G"
    assert derived_scale((D, F, A, C), False) == ("G", frozenset("G A B- C D E F".split()))
    assert derived_scale((Db, F, Ab, C, Gb), True)[0] == "D-"  # D- beats its enharmonic C#
    assert derived_scale((Db, F, Ab), True)[0] == "G#"  # the highest of D-, G-, G#; no A- tried
    assert derived_scale((), True) == ("", frozenset())
