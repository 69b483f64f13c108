"""`jazzd report`: changes of real solos to a progression and back, the whole report on a
few WJD solos with the tiny model, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jazzd.cli import main
from jazzd.data.ingest.common import Bar, Piece
from jazzd.judge.metrics import solo_of_piece
from jazzd.judge.report import piece_of_notes, progression_of_piece
from jazzd.music.chords import parse_chord
from jazzd.music.grammar import Element
from jazzd.music.progression import Progression
from jazzd.play.render import Note

from .conftest import REPO, WJD, need
from .tinymodel import make_bundle

C7, F7, G7 = parse_chord("C7"), parse_chord("F7"), parse_chord("G7")
HEAVY = ("tensorflow", "keras", "music21")


def real_piece() -> Piece:
    """A pickup bar of 2 beats, then two 4/4 bars; absolute offsets as the readers give."""
    return Piece("real", [
        Bar(-2.0, [Element(-1.0, 1.0, 60)], [(-2.0, G7)], 2.0),
        Bar(0.0, [Element(0.0, 4.0, 64)], [(0.0, C7), (2.0, F7)], 4.0),
        Bar(4.0, [Element(4.0, 4.0, 67)], [(4.0, F7)], 4.0),
    ])


def test_progression_of_a_real_solo_keeps_its_bars_and_changes():
    prog = progression_of_piece(real_piece())
    assert prog.beats_per_bar == 4 and len(prog) == 3
    assert prog.bars == (((0.0, G7),), ((0.0, C7), (2.0, F7)), ((0.0, F7),))
    assert prog.chord_at(6.5) is F7 and prog.chord_at(4.0) is C7
    assert len(progression_of_piece(real_piece(), bars=2)) == 2


def test_progression_from_bars_holds_chords_and_drops_those_past_the_bar():
    prog = Progression.from_bars([[(0, C7), (5.0, G7)], [], [(1.0, G7)]], 4)
    assert prog.bars == (((0.0, C7),), ((0.0, C7),), ((0.0, C7), (1.0, G7)))


def test_rendered_notes_become_a_piece_with_rests_split_at_bar_lines():
    prog = Progression.from_bars([[(0, C7)], [(0, F7)]], 4)
    notes = [Note(1.0, 0.5, 60, 90), Note(1.5, 0.5, 64, 90), Note(6.0, 1.0, 65, 90)]
    piece = piece_of_notes("gen", notes, prog, 2)
    assert [(e.offset, e.dur, e.midi) for e in piece.bars[0].elements] == [
        (0.0, 1.0, None), (1.0, 0.5, 60), (1.5, 0.5, 64), (2.0, 2.0, None)]
    assert [(e.offset, e.dur, e.midi) for e in piece.bars[1].elements] == [(4.0, 2.0, None), (6.0, 1.0, 65)]
    assert piece.bars[1].chords == [(4.0, F7)]
    solo = solo_of_piece(piece)
    assert [v[0] for v in solo.values] == ["R", "C", "C", "R", "R", "C"]  # F is F7's root


def wjd_solos(n: int):
    """The first n WJD solos that also come as MIDI files in the WJD folder."""
    folder = need(WJD)
    csvs = [p for p in sorted((folder / "csv_melody").glob("*.csv"))
            if (folder / "midi" / f"{p.stem.removesuffix('_Solo')}_FINAL.mid").exists()][:n]
    return csvs, [folder / "midi" / f"{p.stem.removesuffix('_Solo')}_FINAL.mid" for p in csvs]


@pytest.mark.slow
@pytest.mark.shared
def test_report_end_to_end_on_wjd_solos(tmp_path):
    """Eight real solos, the same solos read from their MIDI files as the comparison set
    (a set that must come out close to the real one), the tiny random model and another
    as a comparison model; in a
    fresh interpreter, to prove the report never loads TensorFlow or music21."""
    csvs, midis = wjd_solos(8)
    bundle, other = make_bundle(tmp_path / "tiny.npz"), make_bundle(tmp_path / "other.npz", seed=8)
    out = tmp_path / "report"
    args = ["report", "--model", str(bundle), "--real", *map(str, csvs), "--compare", *map(str, midis),
            "--compare-name", "wjd-midi", "--compare-model", str(other), "--bars", "16", "--samples", "9",
            "-o", str(out), "-q"]
    code = (f"import sys, json\nfrom jazzd.cli import main\nrc = main({args!r})\n"
            f"print(json.dumps([rc, sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    rc, heavy = json.loads(run.stdout.splitlines()[-1])
    assert (rc, heavy) == (0, [])

    for name in ("report.md", "metrics.json", "plots/histograms.png", "plots/overlap.png",
                 "plots/roll-1.png", "plots/roll-3.png"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "midi").glob("generated-*.mid"))) == 9
    assert not list((out / "midi").glob("other-*"))  # other models are measured, not written
    r = json.loads((out / "metrics.json").read_text())
    assert list(r["sets"]) == ["real", "generated", "wjd-midi", "other"]
    assert r["sets"]["other"]["kind"] == "model" and r["sets"]["other"]["bars"] == r["sets"]["generated"]["bars"]
    real, gen = r["sets"]["real"], r["sets"]["generated"]
    assert real["pieces"] == 8 and gen["pieces"] == 9 and r["settings"]["split_used"] == "all"
    assert real["bars"] == 8 * 16 and gen["bars"] == real["bars"] + 16  # the ninth reuses the first changes
    assert r["likelihood"]["pieces"] == 8 and r["likelihood"]["tokens"] > 1000
    assert r["likelihood"]["tokens"] == real["values"]  # scored within --bars, as measured
    assert r["likelihood"]["baseline"] is None  # the tiny bundle has none
    for s in r["sets"].values():
        assert 0.2 < s["features"]["chord_tone_ratio"]["mean"] < 0.9
        assert 1 < s["features"]["notes_per_bar"]["mean"] < 16
        assert abs(sum(s["features"]["type_shares"]["mean"]) - 1) < 1e-9
        assert s["copying"] is None  # no training solos among the sources
    # the same solos through the MIDI reader play like themselves, and better than noise
    copy, noise = r["distances"]["wjd-midi"]["families"], r["distances"]["generated"]["families"]
    for family in ("rhythm", "line"):
        assert copy[family]["oa"] > 0.8
        assert copy[family]["oa"] > noise[family]["oa"]
    assert "real (half vs half)" in r["distances"]
    md = (out / "report.md").read_text()
    assert "| chord-tone ratio (beats 1 and 3) |" in md and "wjd-midi OA" in md
    # real or generated: every set against the real solos (as played), and the floor
    rog = r["real_or_generated"]
    assert rog["real_durations"] == "as played"
    assert set(rog["sets"]) == {"generated", "wjd-midi", "other", "real (half vs half)"}
    gen_test = rog["sets"]["generated"]
    assert gen_test["windows"] == [16, 18] and gen_test["solos"] == [8, 9]  # 2 windows of 8 bars a piece
    assert 0.8 < gen_test["auc"] <= 1  # a random model's lines are told from real ones
    assert "**Real or generated:**" in md and "## Real or generated?" in md
    # the listening measure: phrases of the real solos (within --bars) as calls
    listening = r["listening"]
    assert listening["solos"] == 8 and listening["pairs"]["used"] == listening["pairs"]["available"] > 10
    assert listening["settings"]["tempo"] == 140 and listening["turn_taking"]["gap"]["n"] > 0
    assert "## Listening: call and response" in md and "| register (correlation of mean pitches) |" in md
    # the time feel: the real solos from their onset times, the generated ones as played
    feel = r["feel"]
    assert list(feel["sets"]) == ["real", "generated (wjd)", "generated (straight)"]
    assert feel["sets"]["real"]["bur"]["solos"] > 0 and 1.0 < feel["sets"]["real"]["bur"]["median"] < 2.5
    straight = feel["sets"]["generated (straight)"]["bur"]  # (the tiny model's lines rarely hold eighths)
    assert straight["solos"] == 0 or abs(straight["median"] - 1.0) < 1e-6
    assert "## Time feel" in md


@pytest.mark.shared
def test_report_copy_check_and_validation_split(tmp_path):
    """With a bundle that names its training solos, --split auto judges on the others
    and the copy check reads the training solos from the same sources."""
    from jazzd.judge.report import select_real, training_index
    from jazzd.model.bundle import load_bundle

    csvs, _ = wjd_solos(6)
    bundle = load_bundle(make_bundle(tmp_path / "tiny.npz"))
    bundle.manifest["training"] = {"train_pieces": [p.stem for p in csvs[:4]],
                                   "validation_pieces": [p.stem for p in csvs[4:]]}
    jobs = [(p, "wjazzd") for p in csvs]
    chosen, split = select_real(bundle, jobs, "auto")
    assert split == "validation" and [p for p, _ in chosen] == csvs[4:]
    index = training_index(bundle, jobs, "wjazzd", progress=False)
    from jazzd.data.ingest.run import read_source

    values = solo_of_piece(read_source(csvs[2], "wjazzd")).values
    assert index.longest(values)[0] == len(values)  # a training solo is copied whole
    # --split all: the real set holds the training solos, already read: the same index
    read = {p: read_source(p, "wjazzd") for p in csvs}
    again = training_index(bundle, jobs, "wjazzd", progress=False, read=read)
    assert again.tokens == index.tokens and again.longest(values) == index.longest(values)


def test_report_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", "--real", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jazzd report:") and "nowhere" in err and "\n" not in err
    bundle = make_bundle(tmp_path / "tiny.npz")
    assert main(["report", "--model", str(bundle), "--real", str(tmp_path), "--bars", "0",
                 "-o", str(tmp_path / "r")]) == 2
    assert "--bars" in capsys.readouterr().err
    assert main(["report", "--model", str(bundle), "--real", str(tmp_path), "--calls", "1",
                 "-o", str(tmp_path / "r")]) == 2
    assert "--calls" in capsys.readouterr().err
    assert main(["report", "--model", str(bundle), "--real", str(tmp_path), "--listen-set", "call.nope=1",
                 "-o", str(tmp_path / "r")]) == 2
    assert "call.nope" in capsys.readouterr().err
    assert main(["report", "--model", str(tmp_path / "missing.npz"), "--real", str(tmp_path),
                 "-o", str(tmp_path / "r")]) == 2
