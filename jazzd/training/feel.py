"""The feel model from the WJD solos (`jazzd feel-model`): how swing (BUR) and the
downbeat delay depend on tempo.  numpy only (no TensorFlow); offline.

Each solo is measured by the feel meter (`jazzd.music.feel`) on its exact onset times
(csv_melody `onset`, seconds) over its beat times (csv_beats `onset`).  Only the
bundle's training solos are fitted (the validation solos stay unseen).  The fit, per
quantity (the solo's median BUR, its median downbeat delay in ms): a Theil-Sen line in
log tempo (robust: the median of the pairwise slopes), with the spread around it (1.4826
x the median absolute residual), from solos with at least `MIN_BEATS` measured beats.
What the model holds and how the engine uses it: `jazzd.model.feel`.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np

from jazzd.data.ingest.wjazzd import find_solos, solo_paths
from jazzd.errors import InputError
from jazzd.model.bundle import load_bundle
from jazzd.model.feel import FEEL_VERSION, FeelModel
from jazzd.music.feel import beat_feels, summarize

MIN_BEATS = 10  # measured beats a solo needs to be fitted


def _column(path: Path, name: str) -> list[float]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if name not in (reader.fieldnames or []):
                raise InputError(f"{path}: no {name!r} column; the feel model needs WJD CSVs with onset times")
            return [float(row[name]) for row in reader]
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror}); check the path") from err
    except ValueError as err:
        raise InputError(f"{path}: bad number in {name!r} ({err})") from None


def measure_solo(melody_csv: Path) -> dict:
    """One WJD solo's feel: `FeelSummary` fields plus its name and the within-solo spread
    (1.4826 x MAD, ms) of the per-beat downbeat delay."""
    melody, beats_path = solo_paths(Path(melody_csv))
    onsets = _column(melody, "onset")
    beats = sorted(_column(beats_path, "onset"))
    f = summarize(onsets, beats)
    out = {"name": melody.stem, **f.as_dict()}
    per = beat_feels(onsets, beats)
    if len(per) >= 2:
        d = np.array([b.delay for b in per]) * 1000
        out["delay_spread_ms"] = float(1.4826 * np.median(np.abs(d - np.median(d))))
    return out


def measure_folder(folder) -> list[dict]:
    solos = find_solos(Path(folder))
    if not solos:
        raise InputError(f"{folder}: no csv_melody/*.csv; give a folder in the WJD CSV layout")
    return [measure_solo(p) for p in solos]


def theil_sen(x, y) -> tuple[float, float, float]:
    """(intercept, slope, spread) of the Theil-Sen line y = a + b x; spread = 1.4826 x
    the median absolute residual."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    keep = np.abs(dx) > 1e-12
    slope = float(np.median((y[j] - y[i])[keep] / dx[keep]))
    intercept = float(np.median(y - slope * x))
    spread = float(1.4826 * np.median(np.abs(y - intercept - slope * x)))
    return intercept, slope, spread


def fit(measured: list[dict]) -> FeelModel:
    """The feel model from measured solos (`measure_solo`)."""
    use = [m for m in measured if m["beats"] >= MIN_BEATS and m["tempo"]]
    if len(use) < 10:
        raise InputError(f"only {len(use)} solos have {MIN_BEATS} or more measurable beats; "
                         "the feel model needs at least 10")
    lt = np.log([m["tempo"] for m in use])
    bur = theil_sen(lt, [m["bur"] for m in use])
    delay = theil_sen(lt, [m["delay_ms"] for m in use])
    spread = float(np.median([m["delay_spread_ms"] for m in use if "delay_spread_ms" in m]))
    tempos = [m["tempo"] for m in use]
    return FeelModel(bur_a=bur[0], bur_b=bur[1], bur_spread=bur[2], delay_a=delay[0], delay_b=delay[1],
                     delay_spread=delay[2], beat_spread_ms=spread,
                     tempo_range=(float(np.percentile(tempos, 2.5)), float(np.percentile(tempos, 97.5))),
                     info={"solos": len(use), "beats": int(sum(m["beats"] for m in use)),
                           "median_bur": float(np.median([m["bur"] for m in use])),
                           "median_delay_ms": float(np.median([m["delay_ms"] for m in use])),
                           "median_tempo": float(np.median(tempos))})


def build(folder, model_path, output) -> tuple[FeelModel, list[dict]]:
    """`jazzd feel-model`: measure the WJD solos in `folder`, fit the bundle's training
    solos among them, write the model to `output`.  Returns (model, measured training solos)."""
    bundle = load_bundle(model_path)
    names = set(bundle.training.get("train_pieces") or [])
    if not names:
        raise InputError(f"{model_path}: the bundle does not list its training solos; retrain it with this jazzd")
    measured = [m for m in measure_folder(folder) if m["name"] in names]
    if not measured:
        raise InputError(f"{folder}: none of the bundle's {len(names)} training solos is here; "
                         "give the WJD folder it was trained on")
    model = fit(measured)
    model.info.update({"source": "Weimar Jazz Database (training split of " + Path(model_path).name + ")",
                       "version": FEEL_VERSION})
    Path(output).write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    return model, measured


def bins(measured: list[dict], edges=(0, 120, 160, 200, 250, math.inf)) -> list[dict]:
    """Median BUR and delay of the solos per tempo band: a check of the fit, printed."""
    out = []
    for lo, hi in itertools.pairwise(edges):
        sel = [m for m in measured if m["beats"] >= MIN_BEATS and m["tempo"] and lo <= m["tempo"] < hi]
        if sel:
            out.append({"tempo": (lo, hi), "solos": len(sel), "bur": float(np.median([m["bur"] for m in sel])),
                        "delay_ms": float(np.median([m["delay_ms"] for m in sel]))})
    return out
