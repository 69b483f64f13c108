"""The report's feel section: swing (BUR) and downbeat delay per solo, real against
generated.  numpy; offline (`jazzd report`).

Real solos are measured by the feel meter (`jazzd.music.feel`) on their exact onset
times where the source has them (the WJD CSVs: `jazzd.training.feel.measure_solo`);
other sources (MIDI files, quantised) are not measured.  A generated solo is measured
as it is played: its notes as the engine planned them (on the grid) placed by the feel
stage (`jazzd.play.feel.Feel`, the engine's own code) at the tempo of the real solo
whose changes it was rendered over, so both sets span the same tempos; once with the
report's feel and once straight, the baseline.  Per set: the medians and quartiles of
the per-solo medians (of solos with at least `MIN_BEATS` measured beats, as fitted), and each set's MGEval distance to the real solos (overlapping
area OA of the smoothed distributions of the values, and the MGEval OA and KL,
`jazzd.judge.mgeval`) for BUR and delay.  The plain OA is the one that tells: the MGEval
protocol compares distances between solos, and a set all at one value (straight: BUR
1, delay 0) sits at distances from the real solos much like theirs from each other.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jazzd.judge.mgeval import compare, overlap_area
from jazzd.model.feel import shipped_feel
from jazzd.music.feel import summarize
from jazzd.play.feel import Feel
from jazzd.play.render import on_grid
from jazzd.training.feel import MIN_BEATS

QUANTITIES = ("bur", "delay_ms")


def measure_real(path) -> dict | None:
    """A real solo's feel, when its source holds onset times (a WJD CSV), else None."""
    from jazzd.data.ingest.wjazzd import solo_paths
    from jazzd.training.feel import measure_solo

    path = Path(path)
    if path.suffix.lower() != ".csv" or not solo_paths(path)[1].is_file():
        return None
    return measure_solo(path)


def measure_rendered(notes, tempo: float, feel: str, seed: int, bars: int, bpb: int) -> dict:
    """A rendered solo's feel when played at `tempo` under `feel` (`Feel.place` on its
    grid notes)."""
    f = Feel(shipped_feel(), np.random.default_rng(seed))
    f.set(feel, 1.0, tempo)
    grid = on_grid(notes)
    played = f.place([(n.onset, n.onset + n.dur) for n in grid], -1.0)
    spb = 60.0 / tempo
    return summarize([on * spb for on, _ in played], [k * spb for k in range(bars * bpb + 1)]).as_dict()


def _stats(values: list[float]) -> dict:
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if not len(v):
        return {"solos": 0, "median": float("nan"), "q1": float("nan"), "q3": float("nan")}
    return {"solos": len(v), "median": float(np.median(v)), "q1": float(np.percentile(v, 25)),
            "q3": float(np.percentile(v, 75))}


def _value(m: dict | None, key: str) -> float:
    """A solo's value, NaN where it has fewer than `MIN_BEATS` measured beats (as fitted)."""
    if m is None or m.get(key) is None or m.get("beats", 0) < MIN_BEATS:
        return float("nan")
    return float(m[key])


def _column(measured: list[dict | None], key: str) -> np.ndarray:
    return np.array([[_value(m, key)] for m in measured])


def _distance(real: np.ndarray, other: np.ndarray) -> dict:
    """"oa": the overlapping area of the two sets' smoothed distributions of the values
    themselves (a set all at one value, as straight is, overlaps almost nothing);
    "mgeval_oa", "mgeval_kl": the MGEval protocol's (distances between solos), as for
    the other features."""
    a, b = real[~np.isnan(real[:, 0]), 0], other[~np.isnan(other[:, 0]), 0]
    m = compare(real, other)
    return {"oa": overlap_area(a, b), "mgeval_oa": m["oa"], "mgeval_kl": m["kl"]}


def section(real: list[dict | None], generated: dict[str, list[dict]]) -> dict | None:
    """{"sets": per set and quantity the stats; "distances": per generated set and
    quantity OA and KL against the real solos}; None when no real solo was measured."""
    if not any(m is not None and m.get("beats") for m in real):
        return None
    sets = {"real": {q: _stats([_value(m, q) for m in real]) for q in QUANTITIES}}
    dist = {}
    for name, measured in generated.items():
        sets[name] = {q: _stats([_value(m, q) for m in measured]) for q in QUANTITIES}
        dist[name] = {q: _distance(_column(real, q), _column(measured, q)) for q in QUANTITIES}
    if len(real) >= 6:  # the floor: one half of the real solos against the other
        dist["real (half vs half)"] = {q: _distance(_column(real[0::2], q), _column(real[1::2], q))
                                       for q in QUANTITIES}
    return {"sets": sets, "distances": dist}


def markdown(r: dict) -> list[str]:
    lines = ["## Time feel", "",
             "Swing (beat-upbeat ratio, BUR) and downbeat delay per solo, by the feel meter over beats "
             "holding two eighths (`jazzd.music.feel`): the real solos from their exact onset times, the "
             "generated ones as jazzd plays them, placed by its feel stage at the real solo's tempo. "
             "Median [quartiles] of the per-solo medians; OA: overlap of the distribution of the per-solo "
             "values with the real solos' (MGEval's OA, over distances between solos, in brackets).", "",
             "| set | solos | BUR | delay (ms) | BUR OA | delay OA |", "|---|---:|---:|---:|---:|---:|"]
    for name in [*r["sets"], *(n for n in r["distances"] if n not in r["sets"])]:
        q, d = r["sets"].get(name), r["distances"].get(name)
        cells = [f"{q[k]['median']:.3f} [{q[k]['q1']:.2f}, {q[k]['q3']:.2f}]" if q else "" for k in QUANTITIES]
        oas = [f"{d[k]['oa']:.3f} ({d[k]['mgeval_oa']:.3f})" if d else "" for k in QUANTITIES]
        lines.append(f"| {name} | {q['bur']['solos'] if q else ''} | {cells[0]} | {cells[1]} | {oas[0]} | {oas[1]} |")
    return [*lines, ""]
