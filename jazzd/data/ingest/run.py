"""Ingest many sources into one corpus: format detection, parallel reading, skipping
bad files with one line each.  Offline (the `jazzd ingest` command).

Must not import music21 or tensorflow.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from jazzd.data.corpus import Corpus, build, chord_key
from jazzd.data.progress import Progress
from jazzd.errors import InputError, JazzdError
from jazzd.music.grammar import type_reach

FORMATS = ("auto", "seed", "wjazzd", "midi")
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")


@dataclass
class Result:
    corpus: Corpus
    raw_values: list[str]
    failures: list[str]


def expand(sources, fmt: str = "auto") -> list[tuple[Path, str]]:
    """Every (file, format) that `sources` name; folders are searched."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    jobs: list[tuple[Path, str]] = []
    for src in map(Path, sources):
        if not src.exists():
            raise InputError(f"{src}: no such file or folder")
        if src.is_dir():
            if (src / "csv_melody").is_dir() and fmt in ("auto", "wjazzd"):
                from jazzd.data.ingest.wjazzd import find_solos

                jobs += [(p, "wjazzd") for p in find_solos(src)]
            elif fmt == "wjazzd":
                raise InputError(f"{src}: not a WJD folder; it needs csv_melody/ and csv_beats/ inside")
            else:
                found = sorted(p for p in src.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
                if not found:
                    raise InputError(f"{src}: no MIDI files (*.mid) and no csv_melody/ folder inside")
                jobs += [(p, "midi" if fmt == "auto" else fmt) for p in found]
        elif fmt != "auto":
            jobs.append((src, fmt))
        elif src.suffix.lower() == ".csv":
            jobs.append((src, "wjazzd"))
        else:
            jobs.append((src, "midi"))
    return jobs


def read_source(path: Path, fmt: str):
    """Read one source of a known format (see `expand`) into a `Piece`.  Raises InputError."""
    if fmt == "wjazzd":
        from jazzd.data.ingest.wjazzd import read
    elif fmt == "seed":
        from jazzd.data.ingest.seed import read
    else:
        from jazzd.data.ingest.midi import read
    return read(path)


def read_piece(path: Path, fmt: str):
    """Read and encode one source (`piece_record`).  Raises InputError."""
    record = piece_record(read_source(path, fmt))
    if not record[1]:
        raise InputError(f"{path}: no notes to ingest")
    return record


def piece_record(piece):
    """A `Piece` as `build` takes it: (name, values, onsets, chord keys, positions,
    pitches, reach), pitches being MIDI numbers or None for rests and reach each chord's
    `grammar.type_reach`."""
    values, onsets, chords, positions = piece.encode_full()
    pitches = [el.midi for bar in piece.bars for el in bar.elements]  # encode_full's order
    return (piece.name, values, onsets, [chord_key(c) for c in chords], positions, pitches,
            [type_reach(c) for c in chords])


def _read_job(job):
    path, fmt = job
    try:
        return read_piece(path, fmt), None
    except JazzdError as err:
        return None, str(err)
    except Exception as err:  # a reader bug must not lose the other files
        return None, f"{path}: cannot ingest ({type(err).__name__}: {err})"


def ingest(sources, fmt: str = "auto", max_vocab: int | None = None,
           workers: int | None = None, show_progress: bool = True) -> Result:
    """Read every source (in parallel), skip the bad ones, and build the corpus."""
    jobs = expand(sources, fmt)
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    results, failures = [], []
    progress = Progress(len(jobs), "ingest") if show_progress else None
    if workers > 1 and len(jobs) > 4:
        with ProcessPoolExecutor(workers) as pool:
            outcomes = pool.map(_read_job, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
            for outcome in outcomes:
                _collect(outcome, results, failures, progress)
    else:
        for job in jobs:
            _collect(_read_job(job), results, failures, progress)
    if progress:
        progress.close()
    if not results:
        raise InputError("nothing to ingest: every source failed (" + "; ".join(failures[:3]) + ")")
    corpus = build(results, max_vocab=max_vocab,
                   meta={"sources": [str(s) for s in sources], "format": fmt, "max_vocab": max_vocab,
                         "skipped": failures})
    raw = [v for _, values, *_ in results for v in values]
    return Result(corpus, raw, failures)


def _collect(outcome, results, failures, progress):
    piece, error = outcome
    if error:
        failures.append(error)
    else:
        results.append(piece)
    if progress:
        progress.update()
