"""The feel model: the robust fit, the file (round trip, bad files), and the shipped
model fitted from the WJD training solos (swing higher at slow tempos)."""

import json

import numpy as np
import pytest

from jazzd.errors import InputError
from jazzd.model.feel import FeelModel, load_feel, shipped_feel
from jazzd.training.feel import fit, measure_solo, theil_sen


def test_theil_sen_ignores_outliers():
    rng = np.random.default_rng(0)
    x = np.log(rng.uniform(100, 300, 200))
    y = 3.0 - 0.3 * x + rng.normal(0, 0.05, 200)
    y[:20] += 5  # a tenth of wild solos
    a, b, spread = theil_sen(x, y)
    assert abs(b + 0.3) < 0.05 and abs(a - 3.0) < 0.3 and 0.03 < spread < 0.1


def test_fit_from_measured_solos_reads_back_its_lines():
    rng = np.random.default_rng(1)
    measured = []
    for tempo in rng.uniform(100, 300, 60):
        measured.append({"beats": 40, "tempo": tempo, "bur": 3.0 - 0.32 * np.log(tempo) + rng.normal(0, 0.02),
                         "delay_ms": 100 - 17.5 * np.log(tempo) + rng.normal(0, 1), "delay_spread_ms": 15.0})
    measured.append({"beats": 3, "tempo": 200, "bur": 9.0, "delay_ms": 500})  # too few beats: not fitted
    m = fit(measured)
    for tempo in (120, 200, 280):
        assert m.bur(tempo) == pytest.approx(3.0 - 0.32 * np.log(tempo), abs=0.02)
        assert m.delay_ms(tempo) == pytest.approx(100 - 17.5 * np.log(tempo), abs=1.0)
    assert m.info["solos"] == 60 and m.beat_spread_ms == 15.0
    with pytest.raises(InputError, match="at least 10"):
        fit(measured[:5])


def test_model_file_round_trip_and_bad_files(tmp_path):
    m = FeelModel(3.0, -0.3, 0.2, 100.0, -18.0, 8.0, 17.0, (110.0, 310.0), {"solos": 3})
    p = tmp_path / "f.json"
    p.write_text(json.dumps(m.to_json()))
    assert load_feel(p) == m
    assert m.bur(50) == m.bur(110) and m.delay_ms(1000) == m.delay_ms(310)  # held at the ends
    assert FeelModel.straight().bur(150) == 1.0 and FeelModel.straight().delay_ms(150) == 0.0
    for text, words in [("{", "not JSON"), ('{"format": "x"}', "not a jazzd feel model"),
                        (json.dumps({**m.to_json(), "version": 9}), "version 9"),
                        (json.dumps({**m.to_json(), "bur_a": "x"}), "bad field"),
                        (json.dumps({**m.to_json(), "delay_b": float("nan")}), "not a finite")]:
        p.write_text(text)
        with pytest.raises(InputError, match=words):
            load_feel(p)


def test_shipped_feel_model_swings_more_at_slow_tempos():
    m = shipped_feel()
    assert not m.info.get("straight"), "models/jazzd-wjd.feel.json is missing"
    assert m.bur(100) > m.bur(200) > m.bur(300) >= 1.0
    assert 1.2 < m.bur(200) < 1.5 and m.delay_ms(100) > m.delay_ms(250) >= 0
    assert "Weimar" in m.info["source"]


@pytest.mark.shared
def test_a_wjd_solo_is_measured(wjd_dir):
    solo = sorted((wjd_dir / "csv_melody").glob("*.csv"))[0]
    m = measure_solo(solo)
    assert m["name"] == solo.stem and m["tempo"] > 40
    if m["beats"]:
        assert 0.5 < m["bur"] < 4 and abs(m["delay_ms"]) < 100
