"""The value grammar: interval names, classification, encode/decode properties."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jazzd.errors import VocabularyError
from jazzd.music.chords import parse_chord
from jazzd.music.grammar import (
    Element,
    classify,
    decode_value,
    encode_value,
    iter_bar,
    parse_value,
)
from jazzd.music.pitch import interval_name, parse_interval_name, window_names

# Worked examples of ../shared/notes/seed-pipeline.md section 2.3 (C4 = 60 as the previous note).
WINDOW_EXAMPLES = [
    (60, 62, ("P4", "m-2")),   # up a major 2nd
    (62, 60, ("m2", "P-4")),   # down a major 2nd
    (63, 60, ("P1", "d-5")),   # down a minor 3rd
    (60, 63, ("d5", "P1")),    # up a minor 3rd (C -> E-)
    (64, 60, ("d1", "P-5")),   # down a major 3rd
    (60, 61, ("M3", "d-3")),   # up an augmented unison (C -> C#)
    (64, 65, ("d4", "M-2")),   # up a minor 2nd (E -> F)
]


@pytest.mark.parametrize(("prev", "cur", "window"), WINDOW_EXAMPLES)
def test_worked_window_examples(prev, cur, window):
    assert window_names(prev, cur) == window


def test_interval_names_round_trip():
    for steps in range(-16, 17):
        for semis in range(-30, 31):
            try:
                name = interval_name(steps, semis)
            except VocabularyError:
                continue
            assert parse_interval_name(name) == (steps, semis), name


@pytest.mark.parametrize("bad", ["", "Q3", "M", "P3", "M4", "m-0", "x"])
def test_bad_interval_names_are_rejected(bad):
    with pytest.raises(VocabularyError):
        parse_interval_name(bad)


def test_classification_over_a_dominant_seventh():
    g7 = parse_chord("G7")  # G B D F: the major scale holding most of it is C major
    assert [classify(p, g7) for p in (67, 71, 74, 65)] == ["C"] * 4
    assert classify(69, g7) == "S" and classify(72, g7) == "S"
    assert classify(66, g7) == "A"  # F# is not in C major; it is a semitone from G
    assert classify(68, g7) == "A"
    assert classify(None, g7) == "R"


def test_classification_follows_the_seeds_scale_choice_on_ties():
    # C E G lies in C, F and G major; music21 picked the highest tonic, G major.
    c = parse_chord("C")
    assert classify(66, c) == "S"  # F# is in G major
    assert classify(65, c) == "A"  # F is not, but it is a semitone from E
    assert classify(70, c) == "X"  # B- is neither in the scale nor next to C, E or G


def test_first_note_of_a_bar_has_no_window_and_rests_keep_the_previous_note():
    c = parse_chord("C")
    els = [Element(0, 1, 60), Element(1, 0.5, None), Element(1.5, 0.5, 62)]
    assert [v for _, _, v in iter_bar(els, [(0.0, c)])] == ["C,1.000", "R,0.500", "S,0.500,<P4,m-2>"]


@pytest.mark.parametrize("bad", ["", "Q,0.250", "C", "C,abc", "C,0.000", "R,0.250,<P4,m-2>",
                                 "C,0.250,<P4>", "C,0.250,P4,m-2", "C,0.250,<Z4,m-2>"])
def test_bad_values_are_rejected_with_a_clear_error(bad):
    with pytest.raises(VocabularyError, match=r"bad value|bad interval"):
        parse_value(bad)


SYMBOLS = ["C", "Dm7", "G7", "Cmaj7", "Bb7", "F#m7b5", "Ebj7", "A7alt", "Bdim7", "Csus4", "E-7", "Ab79b"]
DURS = [1 / 12, 1 / 6, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0, 1.5, 2.0]
RANGE = (43, 84)  # G2..C6


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SYMBOLS), st.integers(*RANGE), st.integers(-9, 9),
       st.sampled_from(DURS), st.integers(0, 2**32 - 1))
def test_decode_of_encode_keeps_type_duration_and_window(symbol, pitch, step, dur, seed):
    chord = parse_chord(symbol)
    prev = pitch - step
    value = parse_value(encode_value(pitch, dur, chord, prev))
    midi, got_dur = decode_value(value, chord, prev, RANGE, np.random.default_rng(seed))
    lo, hi = value.window_semis
    assert prev + lo <= midi <= prev + hi  # inside the window...
    assert RANGE[0] <= midi <= RANGE[1]  # ...and the range
    assert classify(midi, chord) == value.type  # the original pitch qualifies, so the type holds
    assert f"{got_dur:.3f}" == f"{dur:.3f}"
    if step != 0:
        assert midi != prev or value.type == "X"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SYMBOLS), st.sampled_from("CSA"), st.one_of(st.none(), st.integers(40, 90)),
       st.integers(0, 2**32 - 1))
def test_decode_without_window_keeps_type_and_range(symbol, vtype, prev, seed):
    chord = parse_chord(symbol)
    assume(any(classify(p, chord) == vtype for p in range(RANGE[0], RANGE[1] + 1)))
    midi, _ = decode_value(f"{vtype},0.500", chord, prev, RANGE, np.random.default_rng(seed))
    assert RANGE[0] <= midi <= RANGE[1]
    assert classify(midi, chord) == vtype


def test_decode_never_repeats_the_previous_pitch_when_avoidable():
    rng = np.random.default_rng(0)
    a_minor = parse_chord("Am")  # chord tones A3 (57) and C4 (60) in the window [57, 63]
    value = encode_value(60, 0.5, a_minor, 60)  # a repeated C: unison window
    assert {decode_value(value, a_minor, 60, RANGE, rng)[0] for _ in range(50)} == {57}
    # With a single candidate (over C major only C4 is a chord tone there), the seed repeats it.
    c_major = parse_chord("C")
    assert {decode_value(value, c_major, 60, RANGE, rng)[0] for _ in range(10)} == {60}


def test_window_outside_the_range_falls_back_inside_the_range():
    chord = parse_chord("C")
    midi, _ = decode_value("C,0.500,<P11,P5>", chord, 84, RANGE, np.random.default_rng(1))
    assert RANGE[0] <= midi <= RANGE[1] and classify(midi, chord) == "C"


