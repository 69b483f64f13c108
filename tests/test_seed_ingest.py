"""The seed reader (`jazzd.data.ingest.seed`) against the seed's golden files (music21 6.7.1 output).

Needs ../shared (or $JAZZD_SHARED); the whole module skips where it is absent.
"""

from __future__ import annotations

import json

import pytest

from jazzd.data.ingest import seed
from jazzd.errors import InputError

from .conftest import SEED

pytestmark = pytest.mark.shared

MIDI = SEED / "original_metheny.mid"
DERIVED = SEED / "derived"
if not (MIDI.exists() and (DERIVED / "metheny_grammar_inputs.json").exists()):
    pytest.skip(f"needs {SEED} (the project's shared data, absent in a fresh clone)",
                allow_module_level=True)

# Positions in metheny_corpus.txt where read() is allowed to differ from the seed.
# None: the emulation reproduces all 275 values.
EXPECTED_DIFFERENCES: dict[int, str] = {}


@pytest.fixture(scope="module")
def piece():
    return seed.read(MIDI)


@pytest.fixture(scope="module")
def golden():
    return json.loads((DERIVED / "metheny_grammar_inputs.json").read_text())["bars"]


def test_corpus_matches_the_seed(piece):
    want = (DERIVED / "metheny_corpus.txt").read_text().split()
    got = piece.encode()[0]
    assert len(want) == 275
    assert len(got) == len(want)
    differing = {i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w}
    assert differing == set(EXPECTED_DIFFERENCES)
    assert len(want) - len(differing) == 275


def test_piece_shape(piece):
    assert piece.name == "original_metheny"
    assert piece.meta["format"] == "seed"
    assert len(piece.bars) == 18
    assert [bar.start for bar in piece.bars] == [476.0 + 4 * i for i in range(18)]
    assert all(bar.length == 4.0 for bar in piece.bars)
    assert piece.meta["melody_lost"] == 0


@pytest.mark.parametrize("index", range(18))
def test_bar_elements_match_the_golden_inputs(piece, golden, index):
    want = [(e["offset"], e["quarter_length"], None if e["rest"] else e["midi"])
            for e in golden[index]["elements"]]
    got = [(e.offset, e.dur, e.midi) for e in piece.bars[index].elements]
    assert got == want


@pytest.mark.parametrize("index", range(18))
def test_bar_chords_match_the_golden_inputs(piece, golden, index):
    want = [(c["offset"], c["quality"], frozenset(n.rstrip("0123456789") for n in c["names"]))
            for c in golden[index]["chords"]]
    got = [(offset, chord.quality, chord.names) for offset, chord in piece.bars[index].chords]
    assert got == want


def test_chord_groups_match_chords_by_measure(piece):
    groups = json.loads((DERIVED / "metheny_chords_by_measure.json").read_text())
    assert groups["0"] == []
    for number, bar in enumerate(piece.bars, start=1):
        want = [(c["abs_offset"], c["quality"]) for c in groups[str(number)]]
        assert [(offset, chord.quality) for offset, chord in bar.chords] == want


# music21 6.7.1's Chord.quality on MIDI-spelled chords (pitches in chord order), including
# cases where a pitch-class triad test would answer differently (repeated chord steps,
# the root music21 picks).
QUALITY_VECTORS = [
    ([44, 72, 40], "augmented"),
    ([81, 64, 37, 83, 69, 53, 41], "augmented"),
    ([79, 64, 46], "diminished"),
    ([71, 52, 38, 79, 40, 41, 37], "diminished"),
    ([38, 82], "major"),
    ([68, 67, 61, 43, 74, 66], "major"),
    ([51, 57, 42], "minor"),
    ([42, 46, 69, 61, 59], "minor"),
    ([72, 84], "other"),
    ([77, 81, 54], "other"),
    ([64, 66, 77, 60, 49, 42, 67], "other"),
    ([63, 67, 60, 58, 44], "other"),  # bar 1's "C-major-ninth chord"
    ([58, 65, 62, 57], "major"),  # bar 1's "Bb-major seventh chord"
]


@pytest.mark.parametrize(("midis", "quality"), QUALITY_VECTORS)
def test_music21_chord_quality(midis, quality):
    assert seed.m21_quality(midis) == quality


def test_cli_dumps_the_seed_corpus_and_windows_reproduce(tmp_path, capsys):
    from jazzd.cli import main
    from jazzd.data.corpus import Corpus
    from jazzd.training.windows import seed_windows

    out, dump = tmp_path / "seed.npz", tmp_path / "values.txt"
    assert main(["ingest", "--format", "seed", str(MIDI), "-o", str(out), "--dump-values", str(dump), "-q"]) == 0
    assert dump.read_text() == (SEED / "derived" / "metheny_corpus.txt").read_text()
    corpus = Corpus.load(out)
    assert corpus.stats["tokens"] == 275 and len(corpus.vocab) == 90
    x, y, starts = seed_windows(corpus.piece(0), len(corpus.vocab))
    golden = json.loads((SEED / "derived" / "metheny_window_starts_seed0.json").read_text())["starts"]
    assert starts == golden and x.shape == y.shape == (60, 30, 90)


def test_not_midi_raises_input_error_naming_the_file(tmp_path):
    junk = tmp_path / "junk_input.mid"
    junk.write_bytes(b"this is not a MIDI file\x00\xff" * 10)
    with pytest.raises(InputError, match=r"junk_input\.mid") as err:
        seed.read(junk)
    assert "\n" not in str(err.value)


def test_missing_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match=r"absent\.mid"):
        seed.read(tmp_path / "absent.mid")


def test_missing_guitar_track_raises_input_error(tmp_path):
    import mido

    mf = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Piano"),
                            mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=96)])
    mf.tracks.append(track)
    path = tmp_path / "no_guitar.mid"
    mf.save(path)
    with pytest.raises(InputError, match=r"no_guitar\.mid.*'Guitar'"):
        seed.read(path)
