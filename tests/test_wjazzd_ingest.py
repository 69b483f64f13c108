"""WJD CSV ingest: a hand-made solo with known values, bad files, and the real folder."""

import csv
import json

import pytest

from jazzd.cli import main
from jazzd.data.corpus import Corpus
from jazzd.data.ingest import wjazzd
from jazzd.data.ingest.run import ingest
from jazzd.errors import InputError

from .conftest import WJD, need

MELODY_HEADER = "bar,beat,beatdur,denom,division,duration,num,onset,period,pitch,subtatum,tatum".split(",")
BEATS_HEADER = "bar,bass_pitch,beat,chord,chorus_id,form,onset,signature".split(",")


def write_solo(root, name="Test_Solo", notes=None, chords=None, bars=2):
    """A 4/4 solo at 0.5 s per beat.  notes: (bar, beat, division, tatum, beats long, pitch)."""
    (root / "csv_melody").mkdir(parents=True, exist_ok=True)
    (root / "csv_beats").mkdir(parents=True, exist_ok=True)
    chords = chords or {(1, 1): "C7", (2, 1): "F"}
    notes = notes if notes is not None else [
        (1, 1, 2, 1, 0.5, 64),   # E, an 8th
        (1, 1, 2, 2, 0.5, 67),   # G, an 8th
        (1, 2, 1, 1, 1.0, 70),   # B-, a quarter
        (1, 4, 1, 1, 1.0, 72),   # C (after a quarter rest)
        (2, 1, 3, 1, 1 / 3, 69),  # A, triplets over F
        (2, 1, 3, 2, 1 / 3, 70),
        (2, 1, 3, 3, 1 / 3, 72),
    ]
    with open(root / "csv_melody" / f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(MELODY_HEADER)
        for bar, beat, div, tatum, beats, pitch in notes:
            w.writerow([bar, beat, 0.5, 4, div, beats * 0.5, 4, 0, 4, float(pitch), 0, tatum])
    with open(root / "csv_beats" / f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(BEATS_HEADER)
        for bar in range(1, bars + 1):
            for beat in range(1, 5):
                w.writerow([bar, 40, beat, chords.get((bar, beat), ""), 1, "", 0, "4/4"])
    return root / "csv_melody" / f"{name}.csv"


def test_a_hand_made_solo_gives_the_values_worked_out_by_hand(tmp_path):
    piece = wjazzd.read(write_solo(tmp_path))
    values, onsets, chords = piece.encode()
    assert values == [
        "C,0.500", "C,0.500,<d5,P1>", "C,1.000,<d5,P1>", "R,1.000", "C,1.000,<P4,m-2>",
        "C,0.333", "S,0.333,<d4,M-2>", "C,0.333,<P4,m-2>",  # B- is in B- major, derived over F
    ]
    assert onsets == [0, 0.5, 1, 2, 3, 4, 4 + 1 / 3, 4 + 2 / 3]
    assert [c.symbol for c in chords] == ["C7"] * 5 + ["F"] * 3
    assert [b.start for b in piece.bars] == [0.0, 4.0]


def test_rests_are_split_at_bar_lines_and_chords_change_mid_bar(tmp_path):
    notes = [(1, 1, 1, 1, 1.0, 60), (2, 3, 1, 1, 1.0, 65)]
    piece = wjazzd.read(write_solo(tmp_path, notes=notes, chords={(1, 1): "C", (2, 3): "F"}))
    values, onsets, chords = piece.encode()
    assert values == ["C,1.000", "R,3.000", "R,2.000", "C,1.000"]
    assert onsets == [0, 1, 4, 6]
    assert [c.symbol for c in chords] == ["C", "C", "C", "F"]


def test_missing_columns_and_unknown_chords_are_one_line_errors(tmp_path):
    path = write_solo(tmp_path)
    path.write_text("bar,beat,pitch\n1,1,60\n")
    with pytest.raises(InputError, match=r"Test_Solo.csv: missing column\(s\) division"):
        wjazzd.read(path)
    path = write_solo(tmp_path / "b", chords={(1, 1): "C7", (2, 1): "Hmaj"})
    with pytest.raises(InputError, match=r"row 6: unknown chord symbol 'Hmaj'|row 6: chord symbol 'Hmaj'"):
        wjazzd.read(path)


def test_one_bad_file_is_skipped_with_one_line_and_the_exit_code_says_so(tmp_path, capsys):
    write_solo(tmp_path, "Good_Solo")
    write_solo(tmp_path, "Other_Solo")
    bad = write_solo(tmp_path, "Bad_Solo")
    bad.write_text("garbage\n")
    out = tmp_path / "corpus.npz"
    code = main(["ingest", str(tmp_path), "-o", str(out), "--format", "wjazzd", "-q"])
    err = capsys.readouterr().err
    assert code == 1
    skipped = [line for line in err.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and "Bad_Solo.csv" in skipped[0]
    assert Corpus.load(out).names == ["Good_Solo", "Other_Solo"]


def test_cli_writes_corpus_statistics_and_dumped_values(tmp_path, capsys):
    write_solo(tmp_path)
    out, dump = tmp_path / "c.npz", tmp_path / "values.txt"
    assert main(["ingest", str(tmp_path), "-o", str(out), "--dump-values", str(dump), "--json", "-q"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["pieces"] == 1 and stats["tokens"] == 8 and stats["notes"] == 7
    assert stats["tokens_per_type"] == {"C": 6, "R": 1, "S": 1}
    assert dump.read_text().splitlines()[:2] == ["C,0.500", "C,0.500,<d5,P1>"]


def test_nothing_to_ingest_is_a_usage_error(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "nope"), "-o", str(tmp_path / "c.npz")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.slow
def test_every_wjd_solo_ingests():
    folder = need(WJD)
    result = ingest([folder], fmt="wjazzd", show_progress=False)
    stats = result.corpus.stats
    assert result.failures == []
    assert stats["pieces"] == len(list((folder / "csv_melody").glob("*.csv"))) == 410
    assert stats["notes"] == 180712  # every note of every solo, none dropped
    assert stats["top_n"]["1000"] > 0.9
