"""How jazzd's pitch choice separates it from real solos: the report's real-or-generated
test (`jazzd.judge.realfake`) and its MGEval family OAs, without the rest of
`jazzd report` (no likelihood, listening, feel, copying, plots or MIDI files).

Usage: bench/pitchfake.py [--real ../shared/data/wjazzd] [--split validation|train]
       [--seeds 0,100] [--solos N] [--model PATH]

Renders one solo per real solo over its changes exactly as `jazzd report` does
(`report.render_set`, seeds seed, seed+1, ...; articulation and feel wjd), and prints one
JSON object: per seed, the balanced accuracy and AUC overall and per feature family, the
features that separate most, the harmony / rhythm / line OAs, and pitch statistics of
the real and the generated solos (mean |interval|, interval shares, repeated notes,
direction change after a leap, range, mean pitch).  With `--split train` the real side
is the bundle's training solos (the first `--solos` of them): a development set that
leaves the validation solos for the final check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jazzd.data.ingest.run import expand, read_source
from jazzd.judge import realfake
from jazzd.judge.metrics import solo_of_piece
from jazzd.judge.report import (
    Options,
    SoloSet,
    _cap,
    distances,
    feature_table,
    played_set,
    render_set,
)
from jazzd.model.bundle import load_bundle

SHARED = Path(os.environ.get("JAZZD_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def pitch_stats(solos) -> dict:
    """Interval and register figures over a set's notes (consecutive notes of a solo)."""
    steps, after_leap, pitches, means = [], [], [], []
    for s in solos:
        p = np.array([n.midi for n in s.notes], dtype=int)
        if len(p) < 2:
            continue
        d = np.diff(p)
        steps.append(d)
        pitches.append(p)
        means.append(p.mean())
        # after a leap (|d| >= 5): does the next interval turn back (opposite sign)?
        for a, b in pairwise(d):
            if abs(a) >= 5 and b != 0:
                after_leap.append((np.sign(a) != np.sign(b), abs(b) <= 2))
    d = np.concatenate(steps)
    a = np.abs(d)
    moving = d[d != 0]
    share = {f"{k}": float(np.mean(a == k)) for k in range(0, 8)}
    share[">=8"] = float(np.mean(a >= 8))
    leaps = np.array(after_leap) if after_leap else np.zeros((0, 2))
    return {
        "notes": int(sum(len(x) for x in pitches)),
        "mean_abs_interval": float(a.mean()),
        "abs_interval_share": share,
        "up_share": float(np.mean(d > 0)),
        "direction_change": float(np.mean(np.sign(moving[1:]) != np.sign(moving[:-1]))),
        "after_leap_turns": float(leaps[:, 0].mean()) if len(leaps) else None,
        "after_leap_step": float(leaps[:, 1].mean()) if len(leaps) else None,
        "mean_pitch": float(np.mean(means)),
        "sd_of_solo_means": float(np.std(means)),
        "range_per_solo": float(np.mean([np.ptp(p) for p in pitches])),
        "pitch_sd_within_solo": float(np.mean([np.std(p) for p in pitches])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", default=str(SHARED / "data" / "wjazzd"))
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "models" / "jazzd-wjd.npz"))
    ap.add_argument("--split", default="validation", choices=("validation", "train"))
    ap.add_argument("--solos", type=int, default=0, help="at most this many real solos (0: all)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()

    bundle = load_bundle(args.model)
    names = set(bundle.manifest["training"][f"{args.split}_pieces"])
    jobs = [j for j in expand([args.real], "auto") if Path(j[0]).stem in names]  # the report's order
    if args.solos:
        jobs = jobs[:args.solos]
    pieces = [read_source(p, f) for p, f in jobs]
    real = SoloSet("real", "real", [solo_of_piece(_cap(p, None)) for p in pieces])
    real_played = played_set(real, jobs)
    real_table = feature_table(real.solos, real_played)
    out = {"split": args.split, "solos": len(pieces), "real": pitch_stats(real.solos), "seeds": {}}
    for seed in (int(s) for s in args.seeds.split(",")):
        opts = Options(real=[args.real], output="", model=args.model, seed=seed, progress=False)
        gen = render_set(bundle, pieces, opts, None)
        played = {"real": real_played, "generated": played_set(gen, jobs)}
        rf = realfake.measure(played, seed=seed)
        g = rf["sets"]["generated"]
        real_x, _ = realfake.feature_matrix(real_played)
        gen_x, _ = realfake.feature_matrix(played["generated"])
        d = realfake.effect_sizes(real_x, gen_x)
        order = [i for i in np.argsort(-np.abs(d)) if i in realfake.PITCH][:args.top]
        dist = distances(real_table, feature_table(gen.solos, played["generated"]))
        out["seeds"][seed] = {
            "balanced_accuracy": g["balanced_accuracy"], "auc": g["auc"],
            "pitch_only": g["families"]["pitch"]["balanced_accuracy"],
            "rhythm_only": g["families"]["rhythm"]["balanced_accuracy"],
            "floor": rf["sets"]["real (half vs half)"]["balanced_accuracy"],
            "oa": {k: round(v["oa"], 4) for k, v in dist["families"].items()},
            "oa_line_features": {k: round(v["oa"], 4) for k, v in dist["features"].items()
                                 if k in ("mean_abs_interval", "interval_histogram", "pitch_range",
                                          "repeated_note_rate", "distinct_4grams")},
            "top_pitch_features": [{"feature": realfake.FEATURE_NAMES[i], "d": round(float(d[i]), 3),
                                    "real": round(float(real_x[:, i].mean()), 4),
                                    "gen": round(float(gen_x[:, i].mean()), 4)} for i in order],
            "generated": pitch_stats(gen.solos),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
