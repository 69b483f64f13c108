"""Read solos in the Weimar Jazz Database CSV layout (csv_melody + csv_beats).  Offline.

Must not import music21 or tensorflow (standard library csv only: it is fast).

A solo is two CSV files of the same name: `csv_melody/X_Solo.csv` (one row per note:
metrical position bar/beat/tatum/division, duration in seconds, the local beat length
`beatdur`, MIDI pitch) and `csv_beats/X_Solo.csv` (one row per beat, with a chord symbol
where a chord starts).  Positions become quarter notes counted in beats of the beat
table, so bars of any length and metre changes need no special case.

- onset = beat index of (bar, beat) + (tatum - 1) / division;
- duration = seconds / beatdur, rounded to the note's tatum grid (at least one step, at
  most up to the next onset: the solos are monophonic);
- gaps become rests, split at bar lines (`jazzd.music.timeline.rests`: the engine hears
  live silences by the same rule);
- the chord of each note is the last chord symbol at or before its onset; 'NC' holds
  the chord before it (before any chord, the first chord of the solo is used); a solo
  with no chord at all (free jazz, 'NC' throughout) is read against `NO_CHORD`, over
  which every note is an X.
"""

from __future__ import annotations

import csv
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

from jazzd.data.ingest.common import Bar, Piece
from jazzd.errors import ChordSymbolError, InputError
from jazzd.music.chords import NO_CHORD, parse_chord
from jazzd.music.grammar import Element
from jazzd.music.timeline import rests

MELODY_COLUMNS = ("bar", "beat", "division", "tatum", "duration", "beatdur", "pitch")
BEAT_COLUMNS = ("bar", "beat", "chord")
_EPS = 1e-9


def solo_paths(path: Path) -> tuple[Path, Path]:
    """(melody csv, beats csv) for a solo given as either of its two files."""
    path = Path(path)
    root = path.parent.parent
    return root / "csv_melody" / path.name, root / "csv_beats" / path.name


def find_solos(folder: Path) -> list[Path]:
    """The melody CSVs of a WJD-layout folder (one with csv_melody/ and csv_beats/)."""
    return sorted((Path(folder) / "csv_melody").glob("*.csv"))


def _rows(path: Path, required: tuple[str, ...]) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(
                    f"{path}: missing column(s) {', '.join(missing)}; a WJD "
                    f"{'melody' if 'pitch' in required else 'beats'} CSV needs {', '.join(required)}")
            return list(reader)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror}); check the path") from err
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: not a CSV file ({err}); give a WJD csv_melody file") from err


def _snap(x: float, step: float) -> float:
    return round(x / step) * step


@dataclass(frozen=True, slots=True)
class Played:
    """A note as the WJD transcribes it, before ingest quantises it: where it sits in the
    metre (beats of the beat table), when it sounded (seconds) and for how long."""

    onset: float     # beats: beat index of (bar, beat) + (tatum - 1) / division
    onset_s: float   # seconds from the recording's start
    dur_s: float     # sounding duration, seconds
    beatdur: float   # the local beat length, seconds
    pitch: int
    step: float      # the note's tatum step in beats (1 / division, at most 1/2): the ingest grid

    @property
    def length(self) -> float:
        """The sounding duration in beats (the local beat length)."""
        return self.dur_s / self.beatdur if self.beatdur > 0 else self.step


def _played(melody_path: Path, beats_path: Path, notes: list[dict], beat_index: dict) -> list[Played]:
    out = []
    try:
        for n, row in enumerate(notes):
            key = (int(row["bar"]), int(row["beat"]))
            if key not in beat_index:
                raise InputError(f"{melody_path}: row {n + 2}: bar {key[0]} beat {key[1]} "
                                 f"is not in {beats_path.name}; the two files do not belong together")
            division = max(int(row["division"]), 1)
            onset_s = float(row["onset"]) if row.get("onset") not in (None, "") else float("nan")
            out.append(Played(beat_index[key] + (int(row["tatum"]) - 1) / division, onset_s,
                              float(row["duration"]), float(row["beatdur"]), round(float(row["pitch"])),
                              1.0 / max(division, 2)))
    except (ValueError, TypeError) as err:
        raise InputError(f"{melody_path}: bad number ({err}); expected the WJD melody columns") from None
    return out


def played_notes(path) -> list[Played]:
    """The notes of one solo (given as its melody CSV) as transcribed, in time order:
    metrical onsets with the sounding durations in seconds, unquantised (articulation,
    `jazzd.training.articulation`; the ingest check).  Same onsets as `read`."""
    melody_path, beats_path = solo_paths(Path(path))
    if not beats_path.exists():
        raise InputError(f"{melody_path}: no beats file {beats_path}; a WJD solo needs both "
                         "csv_melody/ and csv_beats/ files of the same name")
    beat_index = _beat_index(beats_path, _rows(beats_path, BEAT_COLUMNS))
    return sorted(_played(melody_path, beats_path, _rows(melody_path, MELODY_COLUMNS), beat_index),
                  key=lambda n: n.onset)


def _beat_index(beats_path: Path, beats: list[dict]) -> dict[tuple[int, int], int]:
    try:
        return {(int(row["bar"]), int(row["beat"])): i for i, row in enumerate(beats)}
    except (ValueError, TypeError) as err:
        raise InputError(f"{beats_path}: bad number in bar/beat columns ({err})") from None


def read(path) -> Piece:
    """Read one solo, given as its melody CSV (its beats CSV is found beside it)."""
    melody_path, beats_path = solo_paths(Path(path))
    if not beats_path.exists():
        raise InputError(f"{melody_path}: no beats file {beats_path}; a WJD solo needs both "
                         "csv_melody/ and csv_beats/ files of the same name")
    beats = _rows(beats_path, BEAT_COLUMNS)
    notes = _rows(melody_path, MELODY_COLUMNS)
    if not beats:
        raise InputError(f"{beats_path}: no beats; the beats CSV has a header but no rows")
    if not notes:
        raise InputError(f"{melody_path}: no notes; the melody CSV has a header but no rows")

    # Beat table -> absolute beat index of every (bar, beat); bar starts and lengths.
    beat_index: dict[tuple[int, int], int] = {}
    bar_start: dict[int, int] = {}
    bar_len: dict[int, int] = {}
    changes: list[tuple[float, object]] = []
    try:
        for i, row in enumerate(beats):
            bar, beat = int(row["bar"]), int(row["beat"])
            beat_index[(bar, beat)] = i
            bar_start.setdefault(bar, i)
            bar_len[bar] = bar_len.get(bar, 0) + 1
            symbol = row["chord"].strip()
            if symbol:
                try:
                    chord = parse_chord(symbol)
                except ChordSymbolError as err:
                    raise InputError(f"{beats_path}: row {i + 2}: {err}") from None
                changes.append((float(i), chord))
    except (ValueError, TypeError) as err:
        raise InputError(f"{beats_path}: bad number in bar/beat columns ({err})") from None
    # 'NC' (None) holds the chord before it; leading NCs take the first real chord.
    first = next((c for _, c in changes if c is not None), None)
    if first is None:
        first = NO_CHORD  # a free solo ('NC' throughout): its notes are all X
    held, chords = first, []
    for t, c in changes:
        held = c if c is not None else held
        if not chords or chords[-1][1] is not held:
            chords.append((t, held))
    if not chords or chords[0][0] > 0:
        chords.insert(0, (0.0, first))

    # Notes -> (onset, duration, pitch) in beats, monophonic.
    events = sorted((n.onset, max(_snap(n.length, n.step), n.step), n.pitch)
                    for n in _played(melody_path, beats_path, notes, beat_index))

    bar_of_beat = {}
    for bar, start in bar_start.items():
        for k in range(bar_len[bar]):
            bar_of_beat[start + k] = bar
    total_beats = len(beats)
    bar_lines = sorted({float(t) for bar, start in bar_start.items() for t in (start, start + bar_len[bar])})

    def bar_bounds(t: float) -> tuple[int, int]:
        i = min(int(t + _EPS), total_beats - 1)
        bar = bar_of_beat[i]
        return bar_start[bar], bar_start[bar] + bar_len[bar]

    elements: list[Element] = []
    for k, (onset, dur, pitch) in enumerate(events):
        nxt = events[k + 1][0] if k + 1 < len(events) else None
        if nxt is not None and nxt - onset < _EPS:
            continue  # a second note at the same onset: keep the later row's, drop this one
        if nxt is not None:
            dur = min(dur, nxt - onset)
        elements.append(Element(onset, dur, pitch))
        if nxt is not None:
            elements += [Element(a, b - a, None) for a, b in rests(onset + dur, nxt, bar_lines)]

    bars: list[Bar] = []
    for el in elements:
        start, end = bar_bounds(el.offset)
        if not bars or bars[-1].start != start:
            bars.append(Bar(float(start), [], _chords_in(chords, start, end), float(end - start)))
        bars[-1].elements.append(el)
    name = melody_path.stem
    return Piece(name, bars, {"format": "wjazzd", "source": str(melody_path),
                              "notes": sum(1 for e in elements if e.midi is not None)})


def _chords_in(chords, start: float, end: float):
    """The chord sounding at `start` (placed at `start`) and those starting inside the bar."""
    i = max(bisect_right(chords, start + _EPS, key=lambda c: c[0]) - 1, 0)
    j = bisect_left(chords, end - _EPS, key=lambda c: c[0])
    return [(float(start), chords[i][1]), *chords[i + 1:j]]
