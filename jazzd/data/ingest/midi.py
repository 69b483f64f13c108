"""Read any MIDI file into a `Piece`: a quantised monophonic melody with chords per beat.

Offline (corpus ingest); mido only: it must never import music21 or tensorflow.

- Melody: the chosen track (index, or a substring of its name) or else the track/channel
  with the most single (not struck-together), high notes; channel 10 (drums) never
  counts.  One line: of notes starting together the highest wins; a note is cut where
  the next one starts.
- Time: position is ticks / ticks_per_beat (tempo plays no part).  Onsets and ends snap
  to 1/4 or 1/3 of a quarter note, whichever fits that beat's onsets better (1/4 on a
  tie); no note is shorter than one step; gaps are rests, split at bar lines.  Bars
  follow the time signatures (4/4 without one); a change mid-bar cuts that bar short.
  Bars with no elements (before the first note) are left out; a note crossing a bar
  line stays whole in the bar where it starts.
- Chords, read per quarter note with `chordrec.recognize`, the last one held where
  nothing is recognised: from the chosen or detected chord track (the other non-drum
  track with the most notes struck together, e.g. a piano), over the pitches sounding in
  the beat; else from the melody: its (up to five) strongest pitch classes by time
  sounding in the bar + the half bar + the beat, fewer until one is recognised.  The
  first chord found holds before it; with none at all the piece gets one chord of its
  three commonest pitch classes (by duration), rooted on the commonest.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from itertools import pairwise
from math import ceil, floor
from pathlib import Path

import mido

from jazzd.data.ingest.common import Bar, Piece
from jazzd.errors import InputError
from jazzd.music.chordrec import recognize
from jazzd.music.chords import Chord, chord_from_pcs
from jazzd.music.grammar import Element
from jazzd.music.timeline import rests

U = 48  # internal time unit: 1/48 quarter note; the 1/4 and 1/3 grids are 12 and 16 units
GRIDS = (12, 16)
DRUMS = 9  # MIDI channel 10, counted from 0
SAME_ONSET = 1 / 16  # quarter notes: notes closer than this are struck together
Note = tuple[float, float, int]  # (start, end) in quarter notes, MIDI pitch


def read(path, melody_track: int | str | None = None, chord_track: int | str | None = None,
         drop_blocks: bool = False) -> Piece:
    """Read a MIDI file (any type) into a `Piece`; see the module docstring for how.

    `drop_blocks`: when one part holds both the melody and the chords (as the seed's
    deepjazz outputs do: generated line and accompaniment on one channel), leave block
    chords out of the melody (`BLOCK` or more notes struck and released together); they
    still give the chords."""
    path = Path(path)
    mid = _open(path)
    parts, sigs = _scan(mid, path)
    melody_key = _select(mid, melody_track, parts, path) or _detect_melody(parts)
    chord_key = _select(mid, chord_track, parts, path) or _detect_chords(parts, melody_key)
    melody = _merged(parts, melody_key)
    if drop_blocks and chord_key == melody_key:
        melody = _without_blocks(melody) or melody
    line = _monophonic(melody)
    bars = _bars(sigs, line[-1][1])
    n_beats = ceil(line[-1][1] / U) + 1
    chords = [] if chord_key is None else _chords_from_track(_merged(parts, chord_key), n_beats)
    if not any(chords):
        chord_key, chords = None, _chords_from_melody(line, bars, n_beats)
    timeline = _hold(chords, line)
    out = []
    for (start, length), els in zip(bars, _elements(line, bars), strict=True):
        if not els:
            continue
        first = min(int(start // U), n_beats - 1)
        bar_chords = [(start / U, timeline[first])]
        for k in range(first + 1, min(ceil((start + length) / U), n_beats)):
            if timeline[k] != timeline[k - 1]:
                bar_chords.append((float(k), timeline[k]))
        out.append(Bar(start / U, els, bar_chords, length / U))
    meta = {"format": "midi", "path": str(path), "ticks_per_beat": mid.ticks_per_beat,
            "melody_track": _label(mid, melody_key),
            "chords_from": "melody" if chord_key is None else _label(mid, chord_key),
            "time_signatures": [(s / U, n, d) for s, n, d in sigs]}
    return Piece(path.stem, out, meta)


# --- reading ----------------------------------------------------------------------------

def _open(path: Path) -> mido.MidiFile:
    try:
        mid = mido.MidiFile(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        raise InputError(f"{path}: not a MIDI file ({err}); give a Standard MIDI File (.mid)") from None
    if not any(msg.type != "end_of_track" for track in mid.tracks for msg in track):
        raise InputError(f"{path}: empty MIDI file (no tracks or no events); export it again with its notes")
    return mid


def _scan(mid: mido.MidiFile, path: Path):
    """Notes per (track, channel) in quarter notes (drums left out), and the meter."""
    tpb = mid.ticks_per_beat
    parts: dict[tuple[int, int], list[Note]] = defaultdict(list)
    sigs, drums = {}, 0
    for ti, track in enumerate(mid.tracks):
        now, sounding = 0, defaultdict(list)
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                drums += msg.channel == DRUMS
                sounding[msg.channel, msg.note].append(now)
            elif msg.type in ("note_on", "note_off") and sounding[msg.channel, msg.note]:
                start = sounding[msg.channel, msg.note].pop(0)
                if msg.channel != DRUMS:
                    parts[ti, msg.channel].append((start / tpb, now / tpb, msg.note))
            elif msg.type == "time_signature":
                sigs[now / tpb] = (msg.numerator, msg.denominator)
        for (channel, note), starts in sounding.items():  # never released: end at track end
            if channel != DRUMS:
                parts[ti, channel].extend((s / tpb, now / tpb, note) for s in starts)
    if not parts:
        what = "only drum notes (channel 10)" if drums else "no notes (only meta/control events)"
        raise InputError(f"{path}: {what}; give a MIDI file with a melody in it")
    for notes in parts.values():
        notes.sort()
    return dict(parts), _meters(sorted(sigs.items()), min(n[0][0] for n in parts.values()))


def _meters(sigs, first_note: float) -> list[tuple[int, int, int]]:
    """(start unit, numerator, denominator) from 0 and at every change of meter.  Before
    any signature it is 4/4; one that comes before the first note holds from the start,
    and the others move to the nearest quarter note (performed files put them off beat)."""
    meter = {0: (4, 4)}
    for start, sig in sigs:
        meter[0 if start <= first_note else floor(start + 0.5) * U] = sig
    out: list[tuple[int, int, int]] = []
    for at, sig in sorted(meter.items()):
        if not out or sig != out[-1][1:]:
            out.append((at, *sig))
    return out


def _name(mid, index: int) -> str:
    return next((m.name for m in mid.tracks[index] if m.type == "track_name"), "")


def _label(mid, key) -> str:
    return f"{key[0]} {_name(mid, key[0])!r}" + (f" channel {key[1] + 1}" if len(key) > 1 else "")


def _select(mid, choice, parts, path: Path):
    """The key of a chosen track (index, digits or a name substring); None when not chosen."""
    if choice is None:
        return None
    names = [_name(mid, i) for i in range(len(mid.tracks))]
    if isinstance(choice, int) or str(choice).isdigit():
        index = int(choice) if 0 <= int(choice) < len(names) else None
    else:
        index = next((i for i, n in enumerate(names) if str(choice).lower() in n.lower()), None)
    listing = ", ".join(f"{i} {n!r}" for i, n in enumerate(names))
    if index is None:
        raise InputError(f"{path}: no track {choice!r}; the tracks are: {listing}")
    if not any(t == index for t, _ in parts):
        raise InputError(f"{path}: track {index} {names[index]!r} has no notes (drums aside); "
                         f"choose another of: {listing}")
    return (index,)


def _merged(parts, key) -> list[Note]:
    """The notes of one part (track, channel) or, for a chosen track (index,), all of it."""
    return sorted(n for k, notes in parts.items() if k[:len(key)] == key for n in notes)


def _chordal(notes: list[Note]) -> int:
    """How many notes are struck together with a neighbour: onsets within `SAME_ONSET`,
    sounding together for half the shorter one at least (a fast run is not a chord)."""
    together = set()
    for i, (a, b) in enumerate(pairwise(notes)):
        if b[0] - a[0] < SAME_ONSET and min(a[1], b[1]) - b[0] >= 0.5 * min(a[1] - a[0], b[1] - b[0]):
            together.update((i, i + 1))
    return len(together)


BLOCK = 3  # notes struck and released together that make a block chord, for `drop_blocks`


def _without_blocks(notes: list[Note]) -> list[Note]:
    """The notes that are not part of a block chord."""
    key = [(round(s / SAME_ONSET), round(e / SAME_ONSET)) for s, e, _ in notes]
    size = Counter(key)
    return [n for n, k in zip(notes, key, strict=True) if size[k] < BLOCK]


def _detect_melody(parts):
    def score(notes):
        mean = sum(n[2] for n in notes) / len(notes)
        return (len(notes) - _chordal(notes)) * min(1.0, max(0.05, (mean - 36) / 36))
    return max(parts, key=lambda k: (score(parts[k]), -k[0], -k[1]))


def _detect_chords(parts, melody_key):
    """The part outside the melody with the most notes struck together (at least 30% of
    its notes and 3 in all); the melody itself when it is such a part and no other is."""
    def chordal(notes):
        n = _chordal(notes)
        return n if n >= 3 and n >= 0.3 * len(notes) else 0
    others = {k: chordal(v) for k, v in parts.items() if k[:len(melody_key)] != melody_key}
    if any(others.values()):
        return max(others, key=lambda k: (others[k], -k[0], -k[1]))
    return melody_key if chordal(_merged(parts, melody_key)) else None


# --- time -------------------------------------------------------------------------------

def _fit(times) -> int:
    """The grid step (units) that fits these times (quarter notes) best; 1/4 on a tie."""
    errs = [sum(abs(t * U / g - floor(t * U / g + 0.5)) * g for t in times) for g in GRIDS]
    return GRIDS[0] if errs[0] <= errs[1] + 1e-9 else GRIDS[1]


def _monophonic(notes: list[Note]) -> list[tuple[int, int, int]]:
    """Quantised (start, end, pitch) in units, one note at a time."""
    by_beat = defaultdict(list)
    for s, _, _ in notes:
        by_beat[floor(s)].append(s)
    steps = {k: _fit(ts) for k, ts in by_beat.items()}

    def snap(t: float) -> int:  # a note end in a beat with no onset: its own best grid
        step = steps.get(floor(t)) or _fit([t])
        return floor(t * U / step + 0.5) * step

    line: dict[int, tuple[int, int]] = {}
    for s, e, p in notes:
        qs = snap(s)  # at least one step of the grid of the beat it lands in
        qe = max(snap(e), qs + steps.get(qs // U, GRIDS[0]))
        if qs not in line or p > line[qs][1]:  # struck together: the highest wins
            line[qs] = (qe, p)
    starts = sorted(line)
    return [(s, min(line[s][0], starts[i + 1]) if i + 1 < len(starts) else line[s][0], line[s][1])
            for i, s in enumerate(starts)]


def _bars(sigs, end: int) -> list[tuple[int, int]]:
    """(start, length) in units of every bar up to `end`."""
    bars, t, i = [], 0, 0
    while t < end:
        while i + 1 < len(sigs) and sigs[i + 1][0] <= t:
            i += 1
        length = max(1, sigs[i][1] * 4 * U // sigs[i][2])
        if i + 1 < len(sigs):
            length = min(length, sigs[i + 1][0] - t)
        bars.append((t, length))
        t += length
    return bars


def _elements(line, bars) -> list[list[Element]]:
    """Each bar's notes and rests (rests fill gaps and split at bar lines)."""
    starts = [s for s, _ in bars]
    out: list[list[Element]] = [[] for _ in bars]

    def add(s: int, e: int, midi: int | None) -> None:
        out[bisect_right(starts, s) - 1].append(Element(s / U, (e - s) / U, midi))

    cursor = None
    for s, e, p in line:
        gap_from = bars[bisect_right(starts, s) - 1][0] if cursor is None else cursor
        for a, b in rests(gap_from, s, starts):
            add(a, b, None)
        add(s, e, p)
        cursor = e
    return out


# --- chords -----------------------------------------------------------------------------

def _beat_weights(notes, n_beats: int, scale: float = 1.0) -> list[dict[int, float]]:
    """Per quarter note, pitch -> how long it sounds in that beat (quarter notes)."""
    weights: list[dict[int, float]] = [defaultdict(float) for _ in range(n_beats)]
    for s, e, p in notes:
        s, e = s / scale, e / scale
        for k in range(max(0, floor(s)), min(n_beats, ceil(e))):
            weights[k][p] += min(e, k + 1) - max(s, k)
    return weights


def _chords_from_track(notes: list[Note], n_beats: int) -> list[Chord | None]:
    out = []
    for w in _beat_weights(notes, n_beats):
        pcw = _pc_weights(w)
        keep = [p for p in w if pcw[p % 12] >= 0.25 * max(pcw.values())]
        out.append(recognize(keep, bass=min(keep)) if keep else None)
    return out


def _chords_from_melody(line, bars, n_beats: int) -> list[Chord | None]:
    """Per beat: the strongest pitch classes of its bar + half bar + beat, recognised."""
    beat_w = _beat_weights(line, n_beats, scale=U)
    starts = [s for s, _ in bars]
    windows: dict[tuple[int, int], dict[int, float]] = {}
    seen: dict[tuple[int, ...], Chord | None] = {}
    out = []
    for k in range(n_beats):
        start, length = bars[max(0, bisect_right(starts, k * U) - 1)]
        half = length // 2 if length >= 4 * U else length
        lo = start + max(0, k * U - start) // half * half
        for a, n in ((start, length), (lo, half)):
            if (a, n) not in windows:
                windows[a, n] = _pc_weights(*beat_w[floor(a / U):ceil((a + n) / U)])
        pcw = _pc_weights(beat_w[k], windows[start, length], windows[lo, half])
        top = sorted(pcw, key=lambda pc: (-pcw[pc], pc))
        top = tuple(pc for pc in top if pcw[pc] >= 0.1 * pcw[top[0]])[:5] if top else ()
        if top not in seen:
            seen[top] = next(filter(None, (recognize(top[:n]) for n in range(len(top), 1, -1))), None)
        out.append(seen[top])
    return out


def _pc_weights(*weights) -> dict[int, float]:
    """Pitch (class) weights summed by pitch class."""
    pcw = defaultdict(float)
    for w in weights:
        for p, x in w.items():
            pcw[p % 12] += x
    return pcw


def _hold(chords: list[Chord | None], line) -> list[Chord]:
    """Every beat's chord: the last one recognised, the first one before that; with none
    at all, the piece's three most common pitch classes rooted on the commonest."""
    first = next((c for c in chords if c is not None), None)
    if first is None:
        pcw = _pc_weights(*({p: e - s} for s, e, p in line))
        top = sorted(pcw, key=lambda pc: (-pcw[pc], pc))[:3]
        first = recognize(top) or chord_from_pcs(top[0], [(pc - top[0]) % 12 for pc in top])
    held, out = first, []
    for c in chords:
        held = c or held
        out.append(held)
    return out
