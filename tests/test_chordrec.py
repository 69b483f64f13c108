"""Chord recognition from sounding pitches: every quality, inversion and voicing."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jazzd.music.chordrec import ROOT_NAMES, TEMPLATES, recognize, symbol_for
from jazzd.music.chords import parse_chord

QUALITIES = list(TEMPLATES)
ROOTS = (0, 2, 3, 5, 6, 10, 11)


def pcs_of(root: int, quality: str) -> frozenset[int]:
    return frozenset((root + i) % 12 for i in TEMPLATES[quality][1])


def base_quality(chord) -> str | None:
    """The first TEMPLATES quality whose tones on the chord's root are exactly its pcs."""
    return next((q for q in QUALITIES if pcs_of(chord.root, q) == chord.pcs), None)


def equivalents(pcs: frozenset[int]) -> set[tuple[int, str]]:
    """Every (root, quality) whose template tones are exactly these pitch classes."""
    return {(r, q) for r in range(12) for q in QUALITIES if pcs_of(r, q) == pcs}


def voicing(root: int, quality: str, inversion: int, base: int = 48) -> list[int]:
    """Close position with tone number `inversion` in the bass, stacked upwards."""
    tones = [(root + i) % 12 for i in TEMPLATES[quality][1]]
    tones = tones[inversion:] + tones[:inversion]
    out, last = [], base - 1
    for pc in tones:
        p = last + 1 + (pc - last - 1) % 12
        out.append(p)
        last = p
    return out


def check(pitches: list[int], root: int, quality: str) -> None:
    """The reading is one of the chords these tones spell; the bass's one when it is."""
    chord = recognize(pitches)
    assert chord is not None, (pitches, root, quality)
    pcs = pcs_of(root, quality)
    assert chord.pcs == pcs
    found = (chord.root, base_quality(chord))
    options = equivalents(pcs)
    assert found in options
    bass = min(pitches) % 12
    if any(r == bass for r, _ in options):
        assert chord.root == bass, (pitches, chord.symbol)


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("root", ROOTS)
def test_root_position_is_exact(root, quality):
    for pitches in (voicing(root, quality, 0), voicing(root, quality, 0, base=36)):
        chord = recognize(pitches)
        assert (chord.root, base_quality(chord)) == (root, quality)
        assert chord.symbol == symbol_for(root, quality)
    # the same as pitch classes with no bass: the pitch-class set is named, root aside
    assert recognize(sorted(pcs_of(root, quality))).pcs == pcs_of(root, quality)


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("root", ROOTS)
def test_inversions_doublings_and_spread_voicings(root, quality):
    n = len(TEMPLATES[quality][1])
    for inv in range(n):
        close = voicing(root, quality, inv)
        check(close, root, quality)
        check([*close, close[0] + 12, close[-1] + 12], root, quality)  # doubled notes
        check([close[0] - 12, *close], root, quality)  # bass doubled an octave down
        spread = [p + 12 * (k % 2) for k, p in enumerate(close)]  # open voicing
        check(spread, root, quality)
        check([close[0], *(p + 24 for p in close[1:])], root, quality)  # wide gap


@pytest.mark.parametrize("quality", ["maj", "min", "7", "maj7", "mMaj7", "dim", "7sus4"])
@pytest.mark.parametrize("root", ROOTS)
def test_unambiguous_qualities_keep_root_in_every_inversion(root, quality):
    for inv in range(len(TEMPLATES[quality][1])):
        chord = recognize(voicing(root, quality, inv, base=55))
        assert (chord.root, base_quality(chord)) == (root, quality)


def test_ambiguous_sets_follow_the_bass():
    assert recognize([48, 64, 67, 69]).symbol == "C6"
    assert recognize([45, 60, 64, 67]).symbol == "Am7"
    assert recognize([0, 4, 7, 9]).symbol == "Am7"  # no bass: template priority
    assert recognize([51, 60, 66, 70]).symbol == "Ebm6"
    assert recognize([48, 63, 66, 70]).symbol == "Cm7b5"
    assert recognize([50, 55, 60]).symbol == "Gsus4"  # D G C: the bass has no reading
    assert recognize([43, 48, 50]).symbol == "Gsus4"
    assert recognize([48, 50, 55]).symbol == "Csus2"
    assert recognize([57, 60, 63, 66]).symbol == "Adim7"
    assert recognize([52, 56, 60]).symbol == "Eaug"


@pytest.mark.parametrize(("pitches", "symbol"), [
    ([48, 64, 67, 70, 74], "C7"),  # C9
    ([48, 64, 70, 73], "C7"),  # C7b9, no fifth
    ([48, 64, 70, 75], "C7"),  # C7#9, no fifth
    ([48, 64, 67, 70, 78], "C7"),  # C7#11
    ([48, 64, 68, 70], "C7"),  # C7#5 = b13 without the fifth
    ([48, 64, 67, 70, 74, 81], "C7"),  # C13
    ([43, 59, 65, 68], "G7"),  # G7b9 no fifth: B F Ab over G
    ([48, 64, 67, 71, 74, 78, 81], "Cj7"),  # Cmaj13#11
    ([53, 64, 69, 72, 79], "Fj7"),  # Fmaj9
    ([50, 65, 69, 72, 76], "Dm7"),  # Dm9
    ([50, 65, 69, 72, 79], "Dm7"),  # Dm11
    ([50, 65, 72, 79], "Gsus7"),  # D F C G: G7sus4 exactly, over a D
    ([47, 62, 65, 69, 73], "Bm7b5"),  # Bm9b5
    ([48, 65, 67, 70, 74], "Csus7"),  # C9sus4
    ([48, 64, 67, 69, 74], "C6"),  # C6/9
    ([48, 60, 64, 67, 74], "C"),  # Cadd9
    ([48, 63, 67, 71, 74], "Cmj7"),  # Cm(maj9)
    ([48, 64, 68, 71], "Caug"),  # Cmaj7#5
    ([48, 64, 70], "C7"),  # shell voicing
    ([48, 63, 70], "Cm7"),
    ([48, 64, 71], "Cj7"),
    ([48, 55, 58], "C7"),  # no third
    ([60, 64, 67, 78], "C"),  # a foreign tone (F#) over a triad
])
def test_tensions_map_to_base_quality(pitches, symbol):
    assert recognize(pitches).symbol == symbol


def test_single_notes_and_non_chords_give_none():
    assert recognize([]) is None
    assert recognize([60]) is None
    assert recognize([60, 72, 84]) is None  # one pitch class, doubled
    assert recognize([7]) is None
    assert recognize([60, 61, 62]) is None  # cluster
    assert recognize([0, 1, 2, 3]) is None
    assert recognize([60, 61]) is None
    assert recognize([64, 70]) is None  # a bare tritone has no root of its own
    assert recognize([60, 70]) is None  # root and seventh only


def test_bass_context():
    assert recognize([67], bass=48).symbol == "C5"  # power chord from the bass
    assert recognize([64], bass=48).symbol == "C"  # third over the bass: fifth left out
    assert recognize([60, 67]).symbol == "C5"
    assert recognize({0, 4, 7, 9}, bass=0).symbol == "C6"
    assert recognize({0, 4, 7, 9}, bass=9).symbol == "Am7"
    assert recognize([4, 7, 10, 2], bass=0).symbol == "C7"  # rootless C9 over C


def test_same_chord_object_for_every_voicing():
    a = recognize([48, 52, 55, 58])
    b = recognize([36, 58, 64, 67, 74])
    assert a == b and a.bass is None and a.quality == "major"
    # the same tones over E are Em7b5 (b13): the bass decides an exact tie
    assert recognize([52, 58, 60, 67, 74]).symbol == "Em7b5"


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("root", range(12))
def test_symbols_round_trip_through_parse_chord(root, quality):
    chord = recognize(voicing(root, quality, 0))
    parsed = parse_chord(chord.symbol)
    assert parsed.root == root
    assert parsed.pcs == chord.pcs
    assert chord.symbol.startswith(ROOT_NAMES[root])


@settings(max_examples=300, deadline=None)
@given(root=st.integers(0, 11), quality=st.sampled_from(QUALITIES), inv=st.integers(0, 3),
       octaves=st.lists(st.integers(0, 2), min_size=4, max_size=4), base=st.integers(36, 60),
       doubled=st.booleans())
def test_property_any_voicing_keeps_root_and_quality(root, quality, inv, octaves, base, doubled):
    tones = voicing(root, quality, inv % len(TEMPLATES[quality][1]), base)
    pitches = [p + 12 * o for p, o in zip(tones, octaves, strict=False)]
    if doubled:
        pitches.append(pitches[-1] + 12)
    check(pitches, root, quality)
    # unambiguous sets keep exactly the root and base quality they were built from
    if len(equivalents(pcs_of(root, quality))) == 1:
        chord = recognize(pitches)
        assert (chord.root, base_quality(chord)) == (root, quality)


def test_speed():
    voicings = [voicing(r, q, i % len(TEMPLATES[q][1]), 40 + i)
                for r in range(12) for q in QUALITIES for i in range(4)]
    t0 = time.perf_counter()
    for _ in range(20):
        for v in voicings:
            recognize(v)
    dt = time.perf_counter() - t0
    print(f"{20 * len(voicings)} recognitions in {dt * 1000:.1f} ms")
