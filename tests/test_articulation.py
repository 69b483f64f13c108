"""Articulation: the held-share table (fit on synthetic notes, lookup, backoff, draws) and
its command.  The WJD part skips without the shared data."""

import json

import numpy as np
import pytest

from jazzd.data.ingest.wjazzd import Played
from jazzd.errors import InputError
from jazzd.model.articulation import (
    QUANTILES,
    backoff_keys,
    draw,
    from_json,
    length_class,
    load_articulation,
    position,
    tempo_band,
    to_json,
)
from jazzd.training.articulation import fit, observations, summary, value_length
from tests.conftest import SHARED

BEAT = 0.5  # seconds: 120 bpm ("medium")


def line(shares, ioi=0.5, beatdur=BEAT, rest_after=None, step=0.25):
    """Notes `ioi` beats apart, each sounding `share` of the gap; a silence of
    `rest_after` beats after the note of that index."""
    notes, t = [], 0.0
    for k, share in enumerate(shares):
        notes.append(Played(t, t * beatdur, share * ioi * beatdur, beatdur, 60, step))
        t += ioi + (rest_after[1] if rest_after and rest_after[0] == k else 0.0)
    return notes


def test_classes_positions_and_bands():
    assert [length_class(x) for x in (0.25, 1 / 3, 0.5, 2 / 3, 1.0, 2.0)] == \
        ["16th", "8th triplet", "8th", "8th", "quarter", "long"]
    assert [position(x) for x in (3.0, 3.01, 2.99, 3.5, 3 + 1 / 3)] == ["on", "on", "on", "off", "off"]
    assert [tempo_band(x) for x in (90, 120, 199, 300)] == ["slow", "medium", "medium", "fast"]
    assert backoff_keys("8th", "off", "fast", True) == [
        "8th|off|fast|final", "8th|off|*|final", "8th|*|*|final", "8th|*|*|*", "*|*|*|*"]


def test_observations_share_span_and_phrase_end():
    notes = line([0.5, 0.8, 1.3, 0.9], rest_after=(2, 2.0))
    obs = observations(notes)
    assert len(obs) == 3  # the last note has no span
    assert [o[4] for o in obs[:2]] == pytest.approx([0.5, 0.8])
    assert obs[0][:4] == ("8th", "on", "medium", False) and obs[1][1] == "off"
    # the third sounds 0.65 beat, then 1.85 beats of silence: phrase-final, span = its
    # value length (0.65 on the 16th grid -> 0.75), share 0.65 / 0.75
    cls, _pos, _band, final, share = obs[2]
    assert final and cls == "quarter" and share == pytest.approx(0.65 / 0.75)
    assert value_length(notes[2]) == pytest.approx(0.75)


def test_fit_recovers_known_shares_and_backs_off():
    rng = np.random.default_rng(1)
    slow_legato = line(rng.uniform(0.9, 1.0, 400), beatdur=0.75)    # 80 bpm
    fast_detached = line(rng.uniform(0.4, 0.6, 400), beatdur=0.25)  # 240 bpm
    table = from_json(to_json(*fit([slow_legato, fast_detached], min_notes=40)))
    assert table.median(0.5, 0.0, 80, False) == pytest.approx(0.95, abs=0.02)
    assert table.median(0.5, 0.5, 240, False) == pytest.approx(0.5, abs=0.03)
    key, n, _q = table.cell(0.5, 0.0, 150, False)  # no medium-tempo notes: tempo merged
    assert key == "8th|on|*|inside" and n == 400  # 200 on-beat notes of each line
    assert table.cell(2.0, 0.0, 150, True)[0] == "*|*|*|*"  # nothing like it: all notes
    rows = summary(table.cells)
    assert [r["class"] for r in rows] == ["8th"] and rows[0]["n"] == 798


def test_draw_follows_the_quantiles_and_the_rng():
    q = [0.5 + 0.5 * u for u in QUANTILES]  # uniform on [0.5, 1]
    assert draw(q, 0.0) == 0.5 and draw(q, 1.0) == 1.0 and draw(q, 0.25) == pytest.approx(0.625)
    table = from_json(to_json({"*|*|*|*": (100, tuple(q))}, {}))
    a = [table.held_share(0.5, 0.0, 120, False, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]  # same rng state, same share
    draws = [table.held_share(0.5, 0.0, 120, False, np.random.default_rng(s)) for s in range(400)]
    assert min(draws) >= 0.5 and max(draws) <= 1.0 and np.mean(draws) == pytest.approx(0.75, abs=0.02)


def test_bad_tables_are_one_line_errors(tmp_path):
    good = to_json({"*|*|*|*": (10, tuple(QUANTILES))}, {})
    bad = [{"format": "x"}, {**good, "version": 99}, {**good, "cells": {}},
           {**good, "cells": {"*|*|*|*": {"n": 3, "q": [1.0] + [0.5] * 20}}}]
    for data in bad:
        with pytest.raises(InputError):
            from_json(data)
    path = tmp_path / "a.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_articulation(path)


def test_shipped_table_loads_and_is_counted_from_training_solos():
    from jazzd.model.shipped import default_articulation

    table = load_articulation(default_articulation())
    assert table.info["split"] == "train" and table.info["pieces"] == 369
    inside = table.median(0.5, 0.5, 160, False)
    assert 0.5 < inside < 0.98  # real eighths are not held to the next onset


def test_command_fits_the_bundles_training_solos(tmp_path):
    wjd = SHARED / "data" / "wjazzd"
    if not wjd.is_dir():
        pytest.skip(f"needs {wjd} (the project's shared data, absent in a fresh clone)")
    from jazzd.cli import main

    some = sorted((wjd / "csv_melody").glob("*.csv"))[:3]
    out = tmp_path / "t.json"
    assert main(["articulation", *map(str, some), "--split", "all", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["info"]["pieces"] == 3 and data["info"]["split"] == "all"
    assert main(["articulation", *map(str, some), "-o", str(out)]) == 2  # not all training solos
