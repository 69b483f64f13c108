"""Turn-taking in call mode on real phrases: how soon a call is answered, and how often a
rest inside a phrase would be taken for its end, with the old rule and the model's, as JSON.

    OPENBLAS_NUM_THREADS=1 python bench/turns.py [--model PATH] [--shared DIR] [--all]

A minimal measurement (the call-and-response report of `jazzd report` segments phrases
its own way): the WJD solos the bundle was validated on (`--all`: every solo in the
folder) are heard value by value, as the engine hears a player (`Soloist.hear`, the
position and chord features of training).  At every note followed by a rest, the model's
probability that a silence of a beat or more follows is read as the engine reads it
(`Soloist.silence_probability`, the silence split at the solo's bar lines), and the
engine's rule (`jazzd.play.engine.call_silence`) gives the silence that would end the
call there; the answer would start on the next beat after it: floor(end + silence) + 1.

A rest is a phrase end when it lasts `T` beats or more (T = 1, the phrase segmentation
of issue 12, and T = 2, which also counts rests of 1-2 beats as inside phrases): for
phrase ends, the gap from the last note off to the answer (median, mean); for rests
inside phrases, the share at which the answer would start before or with the soloist's
next note (it would sound, and be cut when the player comes back).  And how well the
probability alone tells the two apart (AUC), and the share of each above the threshold.
About 6 s for the 41 validation solos on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from jazzd.data.ingest.run import expand, read_source  # noqa: E402
from jazzd.model.bundle import load_bundle  # noqa: E402
from jazzd.model.runtime import Runtime  # noqa: E402
from jazzd.model.shipped import default_model  # noqa: E402
from jazzd.music.grammar import chord_at, iter_bar  # noqa: E402
from jazzd.music.timeline import rests  # noqa: E402
from jazzd.play.engine import call_silence  # noqa: E402
from jazzd.play.settings import Settings  # noqa: E402
from jazzd.play.soloist import Soloist  # noqa: E402

_EPS = 1e-6


def rests_after_notes(bundle, piece) -> list[tuple[float, float, float]]:
    """(last note off, beats to the next note, the model's end probability) at every
    note of `piece` followed by a rest."""
    soloist = Soloist(Runtime(bundle), np.random.default_rng(0))
    soloist.reset()
    bars = list(piece.bars)
    lines = [bar.start for bar in bars] + [bars[-1].start + bars[-1].length]
    onsets = sorted(el.offset for bar in bars for el in bar.elements if el.midi is not None)
    out = []
    for bar in bars:
        for k, (el, chord, value) in enumerate(iter_bar(bar.elements, bar.chords)):
            soloist.hear(value, el.offset - bar.start, k == 0, chord, el.midi)
            if el.midi is None:
                continue
            end = el.offset + el.dur
            i = np.searchsorted(onsets, end - _EPS)
            if i >= len(onsets) or onsets[i] - end < _EPS:
                continue  # the last note, or legato: no rest follows
            pieces = []
            for onset, stop in rests(end, end + 1.0, lines):
                j = max(np.searchsorted(lines, onset + _EPS) - 1, 0)
                first = abs(onset - lines[j]) < _EPS   # a silence from a bar line begins the bar
                chords = bars[min(j, len(bars) - 1)].chords
                pieces.append((stop - onset, onset - lines[j], first, chord_at(chords, onset) if chords else chord))
            out.append((end, float(onsets[i] - end), soloist.silence_probability(pieces)))
    return out


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a phrase end's probability > a rest inside's), ties counted half."""
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = np.concatenate([pos, neg]).argsort().argsort() + 1.0
    both = np.concatenate([pos, neg])
    for v in np.unique(both):  # average ranks of ties
        tie = both == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def measure(rows, settings: Settings, threshold: float) -> dict:
    """The rule of `settings` on the rests: per phrase segmentation, the gaps at phrase
    ends and the rests inside phrases answered; and the same for the phrase ends the
    model calls clear (probability at or above `threshold`) and for the rests inside
    phrases it expects to go on (below it)."""
    end, gap, p = (np.array(c) for c in zip(*rows, strict=True))
    silence = np.array([call_silence(settings, x) for x in p])
    start = np.floor(end + silence + _EPS) + 1
    waited, sounds = start - end, start <= end + gap + _EPS
    clear = p >= threshold
    result = {}
    for t in (1.0, 2.0):
        ends, inside = gap >= t - _EPS, gap < t - _EPS
        result[f"phrases_end_at_{t:g}_beats"] = {
            "phrase_ends": int(ends.sum()), "rests_inside": int(inside.sum()),
            "median_gap_beats": round(float(np.median(waited[ends])), 3),
            "mean_gap_beats": round(float(np.mean(waited[ends])), 3),
            "inside_answered": int(sounds[inside].sum()),
            "inside_answered_share": round(float(np.mean(sounds[inside])), 4),
            "clear_ends": int((ends & clear).sum()),
            "clear_ends_median_gap_beats": round(float(np.median(waited[ends & clear])), 3),
            "inside_expected_to_go_on": int((inside & ~clear).sum()),
            "inside_expected_to_go_on_answered_share": round(float(np.mean(sounds[inside & ~clear])), 4)}
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="bundle (default: the shipped model)")
    ap.add_argument("--shared", default=os.environ.get("JAZZD_SHARED", str(REPO.parent / "shared")))
    ap.add_argument("--all", action="store_true", help="every solo, not only the validation solos")
    args = ap.parse_args(argv)
    folder = Path(args.shared) / "data" / "wjazzd"
    if not folder.is_dir():
        print(json.dumps({"skipped": f"no WJD folder at {folder} (set --shared or JAZZD_SHARED)"}))
        return 0
    bundle = load_bundle(args.model or default_model())
    keep = set(bundle.manifest.get("training", {}).get("validation_pieces", []))
    jobs = [(path, f) for path, f in expand([folder]) if args.all or path.stem in keep]
    rows = [row for path, f in jobs for row in rests_after_notes(bundle, read_source(path, f))]
    p = np.array([r[2] for r in rows])
    gap = np.array([r[1] for r in rows])
    model = Settings()
    silence = replace(model, turn_taking="silence")
    report = {
        "solos": len(jobs), "rests_after_notes": len(rows),
        "rules": {"silence (old)": {"silence_beats": silence.silence_beats},
                  "model (default)": {"end_probability": model.end_probability,
                                      "end_silence_beats": model.end_silence_beats,
                                      "continue_silence_beats": model.continue_silence_beats}},
        "old": measure(rows, silence, model.end_probability),
        "new": measure(rows, model, model.end_probability),
        "end_probability": {
            f"auc_phrases_end_at_{t:g}": round(auc(p[gap >= t - _EPS], p[gap < t - _EPS]), 3) for t in (1.0, 2.0)},
    }
    report["end_probability"].update({
        "median_at_phrase_ends": round(float(np.median(p[gap >= 1 - _EPS])), 3),
        "median_inside_phrases": round(float(np.median(p[gap < 1 - _EPS])), 3),
        "share_at_or_above_threshold_at_phrase_ends": round(float(np.mean(p[gap >= 1 - _EPS] >= model.end_probability)), 3),
        "share_at_or_above_threshold_inside_phrases": round(float(np.mean(p[gap < 1 - _EPS] >= model.end_probability)), 3),
    })
    if math.isnan(report["end_probability"]["auc_phrases_end_at_1"]):
        report["end_probability"]["note"] = "no phrase ends or no rests inside phrases"
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
