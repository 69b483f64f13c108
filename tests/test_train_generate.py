"""The trainer (seed regime, a small real run), `jazzd generate` and `jazzd eval`."""

import json

import mido
import pytest

from jazzd.cli import main
from jazzd.errors import ConfigError
from jazzd.music.progression import parse_progression

from .conftest import SEED, WJD, need

pytestmark = pytest.mark.keras
pytest.importorskip("tensorflow", reason="the trainer needs the train extra (tensorflow)")


def test_progression_text():
    prog = parse_progression("Dm7 G7 | Cmaj7 %")
    assert [[(t, c.symbol) for t, c in bar] for bar in prog.bars] == [[(0, "Dm7"), (2, "G7")], [(0, "Cmaj7")]]
    assert prog.chord_at(10.5).symbol == "G7"  # bar 3 loops back to bar 1 (beat 2.5 of it)
    for bad in ("% G7", "Dm7 || G7", "Hm7", "NC"):
        with pytest.raises(ConfigError):
            parse_progression(bad)


@pytest.fixture(scope="module")
def seed_corpus(tmp_path_factory):
    """The seed's 275-value corpus, ingested from the Metheny MIDI."""
    path = tmp_path_factory.mktemp("seed") / "seed.npz"
    midi = need(SEED / "original_metheny.mid")
    assert main(["ingest", "--format", "seed", str(midi), "-o", str(path), "-q"]) == 0
    return path


@pytest.mark.slow
def test_seed_preset_lands_in_the_seeds_loss_regime(seed_corpus, tmp_path):
    from jazzd.training.train import train

    lines = []
    result = train(seed_corpus, tmp_path / "seed.npz", preset="seed", log=lines.append)
    sums = result["metrics"]["seed_summed_loss"]
    # The seed: 129.86 at epoch 1 (29 x ln 90 = 130.5: chance) and 8.81 at epoch 100.
    assert 120 < sums["epoch_1"] < 132
    assert sums["last"] < 20
    assert any("summed loss" in line for line in lines)
    assert (tmp_path / "seed.config.json").exists() and (tmp_path / "seed.curves.png").exists()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A small default-preset model trained for two epochs on 40 WJD solos."""
    folder = need(WJD)
    tmp = tmp_path_factory.mktemp("model")
    solos = sorted((folder / "csv_melody").glob("*.csv"))[:40]
    assert main(["ingest", *map(str, solos), "-o", str(tmp / "c.npz"), "-q"]) == 0
    assert main(["train", str(tmp / "c.npz"), "-o", str(tmp / "m.npz"), "--epochs", "2",
                 "--hidden", "32", "--layers", "1", "--max-vocab", "200", "--seq-len", "32"]) == 0
    return tmp


@pytest.mark.slow
def test_default_training_writes_bundle_baseline_config_and_curves(small_model):
    from jazzd.model.bundle import load_bundle

    bundle = load_bundle(small_model / "m.npz")
    training = bundle.manifest["training"]
    assert len(bundle.vocab) == 200 and bundle.cfg["features"] == ["position", "chord"]
    assert set(training["train_pieces"]).isdisjoint(training["validation_pieces"])
    assert len(training["validation_pieces"]) == 4  # 10% of 40, split by piece
    assert training["metrics"]["validation"]["tokens"] > 0
    # the decoder's pitch tables, counted from the training solos only
    assert bundle.tables and bundle.manifest["pitch_tables"]["pieces"] == len(training["train_pieces"])
    for suffix in (".trigram.npz", ".config.json", ".curves.png"):
        assert (small_model / f"m{suffix}").exists()


@pytest.mark.slow
def test_eval_prints_one_json_object(small_model, capsys):
    folder = need(WJD)
    capsys.readouterr()
    assert main(["eval", str(folder), "--model", str(small_model / "m.npz"), "--split", "validation", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"tokens", "nll", "accuracy", "baseline"}
    assert out["pieces"] == 4 and out["tokens"] > 100
    assert 0 < out["nll"] < 10 and 0 < out["baseline"]["nll"] < 10
    metrics = json.loads((small_model / "m.config.json").read_text())["metrics"]["validation"]
    assert out["nll"] == pytest.approx(metrics["nll"], rel=1e-6)  # the same pieces, the same runtime


@pytest.mark.slow
def test_generate_same_seed_same_file_other_seed_other_solo(small_model, tmp_path):
    model = str(small_model / "m.npz")
    args = ["generate", "--model", model, "--chords", "Dm7 G7 | Cmaj7 %", "--bars", "8", "--tempo", "150"]
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert main([*args, "-o", str(tmp_path / f"{name}.mid"), "--seed", str(seed)]) == 0
    a, b, c = ((tmp_path / f"{n}.mid").read_bytes() for n in "abc")
    assert a == b and a != c
    mid = mido.MidiFile(tmp_path / "a.mid")
    names = [next(m.name for m in t if m.type == "track_name") for t in mid.tracks]
    assert names == ["jazzd", "solo", "chords"]
    solo = [m for m in mid.tracks[1] if m.type == "note_on"]
    offs = [m for m in mid.tracks[1] if m.type == "note_off"]
    assert len(solo) == len(offs) > 8
    assert all(55 <= m.note <= 84 for m in solo)
    assert sum(m.time for m in mid.tracks[1]) <= 8 * 4 * mid.ticks_per_beat  # ends with the 8 bars


@pytest.mark.slow
def test_generate_primed_with_a_call_and_a_piano_roll(small_model, tmp_path):
    call = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for p in [62, 65, 69, 72, 71, 67]:
        track.append(mido.Message("note_on", note=p, velocity=90, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=240))
    call.tracks.append(track)
    call.save(tmp_path / "call.mid")
    assert main(["generate", "--model", str(small_model / "m.npz"), "-o", str(tmp_path / "out.mid"),
                 "--prime", str(tmp_path / "call.mid"), "--bars", "4", "--png", str(tmp_path / "roll.png")]) == 0
    assert (tmp_path / "roll.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_generate_arguments_are_usage_errors(tmp_path, capsys):
    assert main(["generate", "-o", str(tmp_path / "x.mid"), "--chords", "Xyz7"]) == 2
    assert "chord" in capsys.readouterr().err
