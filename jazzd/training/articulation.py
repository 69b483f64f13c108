"""Articulation from the WJD: how long players hold a note relative to its span, counted
per cell (`jazzd.model.articulation`, which also draws from it) from the transcribed
sounding durations.  numpy only (no TensorFlow); offline (`jazzd articulation`).

Only the bundle's training solos are counted (the validation solos stay unseen).  For
each note but a solo's last (and notes sharing an onset with the next, which ingest
drops):
- span = the next note's onset minus this one's (beats of the metre; the share is taken
  in seconds, so a player's rubato between the two does not count as articulation);
- phrase-final: the silence after the note (next onset minus the note's sounding end,
  in beats) is a beat or more; then the span is the note's value length instead (its
  sounding length rounded to its tatum grid, at least one step, as ingest encodes it),
  since that is all a renderer knows of a note before a rest;
- held share = sounding duration / span, capped at 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from jazzd.data.ingest.wjazzd import Played
from jazzd.model.articulation import (
    ANY,
    BACKOFF,
    CLASSES,
    PHRASE_REST,
    QUANTILES,
    cell_key,
    length_class,
    position,
    tempo_band,
    to_json,
)

MIN_NOTES = 40  # a cell with fewer notes is left out (its notes count in the coarser cells)
_EPS = 1e-9


def value_length(note: Played) -> float:
    """The note's length as ingest encodes it (before the cap at the next onset)."""
    return max(round(note.length / note.step) * note.step, note.step)


def observations(notes: Sequence[Played]) -> list[tuple[str, str, str, bool, float]]:
    """(class, position, tempo band, phrase-final, held share) per note of one solo."""
    out = []
    for a, b in pairwise(notes):
        ioi, ioi_s = b.onset - a.onset, b.onset_s - a.onset_s
        if ioi < _EPS or not ioi_s > 0 or a.beatdur <= 0 or a.dur_s <= 0:
            continue
        final = ioi - a.length >= PHRASE_REST
        if final:
            span = value_length(a)
            share = a.length / span
        else:
            span = ioi
            share = a.dur_s / ioi_s
        out.append((length_class(span), position(a.onset), tempo_band(60.0 / a.beatdur), final,
                    min(share, 1.0)))
    return out


def ingest_check(notes: Sequence[Played]) -> np.ndarray:
    """Per note with a next onset, as played and as ingest encodes it: [held to the next
    onset as played (share >= 0.95), held to it as encoded (value length reaches the
    next onset), the gap as played (beats), the gap as encoded (beats), the span]."""
    rows = []
    for a, b in pairwise(notes):
        ioi = b.onset - a.onset
        if ioi < _EPS or a.beatdur <= 0:
            continue
        played = min(a.length, ioi)
        encoded = min(value_length(a), ioi)
        rows.append((played >= 0.95 * ioi, encoded >= ioi - _EPS, ioi - played, ioi - encoded, ioi))
    return np.array(rows, dtype=float).reshape(len(rows), 5)


def ingest_summary(rows: np.ndarray) -> dict:
    """What ingest's grid does to the gaps between notes (rows of `ingest_check`)."""
    return {"notes": len(rows), "held_to_next_played": float(rows[:, 0].mean()),
            "held_to_next_encoded": float(rows[:, 1].mean()),
            "silent_share_played": float(rows[:, 2].sum() / rows[:, 4].sum()),
            "silent_share_encoded": float(rows[:, 3].sum() / rows[:, 4].sum()),
            "gapless_with_a_gap_played": float(((rows[:, 1] == 1) & (rows[:, 2] > 0.05 * rows[:, 4])).mean())}


def fit(solos: Iterable[Sequence[Played]], min_notes: int = MIN_NOTES) -> tuple[dict, dict]:
    """(cells, info): quantiles of the held share per cell at every backoff level, cells
    with fewer than `min_notes` notes left out (the all-notes cell is always kept)."""
    shares: dict[str, list[float]] = defaultdict(list)
    pieces = notes = 0
    for solo in solos:
        pieces += 1
        for cls, pos, band, final, share in observations(solo):
            notes += 1
            parts = (cls, pos, band, "final" if final else "inside")
            for kept in BACKOFF:
                shares[cell_key(*(p if k else ANY for p, k in zip(parts, kept, strict=True)))].append(share)
    top = cell_key(ANY, ANY, ANY, ANY)
    cells = {key: (len(v), tuple(float(x) for x in np.quantile(np.asarray(v), QUANTILES)))
             for key, v in shares.items() if len(v) >= min_notes or (key == top and v)}
    return cells, {"pieces": pieces, "notes": notes, "min_notes": min_notes}


def summary(cells: dict) -> list[dict]:
    """Per length class and phrase position (all positions and tempos): n, quartiles."""
    rows = []
    for final in ("inside", "final"):
        for cls, _upper in CLASSES:
            key = cell_key(cls, ANY, ANY, final)
            if key in cells:
                n, q = cells[key]
                rows.append({"class": cls, "phrase": final, "n": n, "q25": q[5], "median": q[10], "q75": q[15]})
    return rows


def write_table(sources, bundle_path, output=None, split: str = "train") -> dict:
    """Fit the table on the bundle's `split` solos ('train', or 'all' the sources hold)
    among the WJD `sources` and write it (to `output`, else beside the bundle).  Returns
    what was done."""
    import json

    from jazzd.data.ingest.run import expand
    from jazzd.data.ingest.wjazzd import played_notes
    from jazzd.errors import InputError
    from jazzd.model.bundle import load_bundle
    from jazzd.model.shipped import articulation_path

    jobs = [p for p, fmt in expand(sources, "wjazzd") if fmt == "wjazzd"]
    if split == "train":
        names = set(load_bundle(bundle_path).training.get("train_pieces") or [])
        if not names:
            raise InputError(f"{bundle_path}: the bundle does not list its training solos; use --split all")
        jobs = [p for p in jobs if Path(p).stem in names]
        if len(jobs) < len(names):
            raise InputError(f"the sources hold {len(jobs)} of the bundle's {len(names)} training solos; "
                             "give the WJD folder it was trained on")
    if not jobs:
        raise InputError("no WJD solos in the sources; give a folder with csv_melody/ and csv_beats/")
    solos = [played_notes(p) for p in jobs]
    cells, info = fit(solos)
    info["split"] = split
    info["ingest"] = {k: round(v, 4) for k, v in ingest_summary(np.vstack([ingest_check(s) for s in solos])).items()}
    out = Path(output) if output else articulation_path(Path(bundle_path))
    out.write_text(json.dumps(to_json(cells, info), indent=1) + "\n", encoding="utf-8")
    return {"output": str(out), "cells": len(cells), **info, "summary": summary(cells)}
