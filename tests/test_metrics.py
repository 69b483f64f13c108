"""The report's musical metrics on hand-made solos whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jazzd.data.ingest.common import Bar, Piece
from jazzd.judge.metrics import (
    FEATURES,
    LENGTH_CLASSES,
    MAX_INTERVAL,
    Note,
    Solo,
    chord_relative_counts,
    chord_tone_ratio,
    distinct_ngrams,
    duration_counts,
    entropy_bits,
    features,
    groove_consistency,
    interval_counts,
    ioi_counts,
    length_class,
    mean_abs_interval,
    notes_per_bar,
    pitch_class_counts,
    pitch_class_entropy,
    pitch_range,
    repeated_note_rate,
    rest_ratio,
    scale_tone_ratio,
    solo_of_piece,
    type_shares,
)
from jazzd.music.chords import parse_chord
from jazzd.music.grammar import Element

C7 = parse_chord("C7")
G7 = parse_chord("G7")


def solo(notes, bars=1, chord=C7, bpb=4.0, values=()) -> Solo:
    """Notes given as (onset, dur, midi) in beats from the start; bars of `bpb` beats."""
    return Solo("t", tuple(Note(t, d, m, chord, int(t // bpb), t % bpb) for t, d, m in notes),
                (bpb,) * bars, tuple(values))


def line(pitches, step=1.0, **kw) -> Solo:
    return solo([(k * step, step, p) for k, p in enumerate(pitches)], **kw)


def test_a_c_major_arpeggio_over_c7_is_all_chord_tones():
    s = line([60, 64, 67, 72])
    assert chord_tone_ratio(s) == 1.0
    assert chord_tone_ratio(s, strong_only=True) == 1.0
    assert scale_tone_ratio(s) == 1.0


def test_chord_scale_and_approach_tones_over_c7():
    s = line([60, 62, 66])  # C chord tone, D scale tone (F major), F# approach to G
    assert chord_tone_ratio(s) == pytest.approx(1 / 3)
    assert scale_tone_ratio(s) == pytest.approx(2 / 3)


def test_strong_beats_are_one_and_three_exactly_on_the_beat():
    s = solo([(0, 1, 60), (1, 1, 61), (2, 0.5, 64), (2.5, 0.5, 61)])
    assert chord_tone_ratio(s) == 0.5
    assert chord_tone_ratio(s, strong_only=True) == 1.0
    assert math.isnan(chord_tone_ratio(solo([(1, 1, 60)]), strong_only=True))


def test_type_shares_count_values_rests_included():
    s = line([60], values=("C,1.000", "R,1.000", "S,0.500,<m2,P-4>", "C,0.250,<m2,P-4>"))
    assert type_shares(s) == {"C": 0.5, "S": 0.25, "A": 0.0, "X": 0.0, "R": 0.25}


def test_pitch_class_histograms_absolute_and_above_the_root():
    s = solo([(0, 1, 60), (1, 1, 72), (2, 1, 67)], chord=G7)
    assert pitch_class_counts(s).tolist() == [2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    rel = chord_relative_counts(s)  # over G: C is the 4th (5 semitones), G the root
    assert rel[5] == 2 and rel[0] == 1 and rel.sum() == 3


def test_pitch_class_entropy_of_a_chromatic_bar_is_log2_12():
    s = line(range(60, 72), step=1 / 3)  # twelve triplet eighths: one bar, every pitch class
    assert pitch_class_entropy(s, 1) == pytest.approx(math.log2(12))
    assert entropy_bits(np.ones(12)) == pytest.approx(math.log2(12))


def test_pitch_class_entropy_over_one_and_four_bars():
    s = solo([(0, 1, 60), (1, 1, 72), (4, 1, 67), (5, 1, 79)], bars=2)
    assert pitch_class_entropy(s, 1) == 0.0  # each bar holds one pitch class
    assert pitch_class_entropy(s, 4) == pytest.approx(1.0)  # together: two, equally often
    assert math.isnan(pitch_class_entropy(solo([]), 1))


def test_groove_consistency_of_identical_bars_is_one():
    bar = [(0, 1, 60), (1, 0.5, 62), (1.5, 0.5, 64), (3, 1, 65)]
    s = solo(bar + [(t + 4, d, p) for t, d, p in bar], bars=2)
    assert groove_consistency(s) == 1.0


def test_groove_consistency_counts_differing_grid_positions():
    s = solo([(0, 1, 60), (1, 1, 60), (2, 1, 60), (3, 1, 60),
              (4, 1, 60), (5, 1, 60), (6, 1, 60), (7.5, 0.5, 60)], bars=2)
    assert groove_consistency(s) == pytest.approx(1 - 2 / 48)  # beat 4 vs beat 4 and a half
    assert math.isnan(groove_consistency(line([60])))


def test_repeated_note_rate_of_a_two_note_line():
    assert repeated_note_rate(line([60, 60, 62, 62])) == pytest.approx(2 / 3)
    assert repeated_note_rate(line([60, 60, 60, 60])) == 1.0
    assert math.isnan(repeated_note_rate(line([60])))


def test_intervals_range_and_density():
    s = line([60, 64, 62, 82], bars=2)
    assert mean_abs_interval(s) == pytest.approx((4 + 2 + 20) / 3)
    counts = interval_counts(s)
    assert counts[MAX_INTERVAL + 4] == 1 and counts[MAX_INTERVAL - 2] == 1
    assert counts[2 * MAX_INTERVAL] == 1  # +20 folded into +12
    assert pitch_range(s) == 22.0
    assert notes_per_bar(s) == 2.0


def test_rest_ratio_is_the_silent_share_of_the_bars():
    assert rest_ratio(solo([(0, 1, 60), (1, 2, 62)])) == pytest.approx(0.25)
    assert rest_ratio(solo([], bars=2)) == 1.0


def test_length_classes_and_histograms():
    assert LENGTH_CLASSES[length_class(0.5)] == 0.5
    assert LENGTH_CLASSES[length_class(0.34)] == pytest.approx(1 / 3)
    assert LENGTH_CLASSES[length_class(0.1)] == 0.25  # shorter than a 16th: a 16th
    assert LENGTH_CLASSES[length_class(16)] == 4.0
    s = solo([(0, 0.5, 60), (1, 0.5, 62), (1 + 1 / 3, 1 / 3, 64)])
    assert duration_counts(s)[length_class(0.5)] == 2
    iois = ioi_counts(s)
    assert iois[length_class(1.0)] == 1 and iois[length_class(1 / 3)] == 1 and iois.sum() == 2


def test_distinct_ngrams():
    assert distinct_ngrams("ababa", 2) == 0.5
    assert distinct_ngrams("abcde", 4) == 1.0
    assert math.isnan(distinct_ngrams("abc", 4))


def test_solo_of_piece_reads_values_against_the_chords():
    bars = [Bar(0.0, [Element(0.0, 1.0, 60), Element(1.0, 1.0, None), Element(2.0, 2.0, 64)], [(0.0, C7)]),
            Bar(4.0, [Element(4.0, 2.0, 67), Element(6.0, 2.0, 71)], [(4.0, C7), (6.0, G7)])]
    s = solo_of_piece(Piece("p", bars))
    assert [n.midi for n in s.notes] == [60, 64, 67, 71]
    assert [(n.bar, n.pos) for n in s.notes] == [(0, 0.0), (0, 2.0), (1, 0.0), (1, 2.0)]
    assert s.notes[3].chord is G7
    assert [v[0] for v in s.values] == ["C", "R", "C", "C", "C"]  # B is G7's third
    assert s.bar_lengths == (4.0, 4.0)


def test_every_feature_is_a_vector_and_defined_on_a_real_looking_line():
    s = line([60, 62, 64, 65, 67, 69, 70, 72], step=0.5, bars=1,
             values=tuple(f"C,0.500{',<M2,d-3>' if k else ''}" for k in range(8)))
    feats = features(s)
    assert set(feats) == set(FEATURES)
    assert all(v.ndim == 1 and np.isfinite(v).all() for k, v in feats.items() if k != "groove_consistency")
