"""Read the seed's `original_metheny.mid` into the 18 solo bars its grammar was trained on.

Offline only (corpus ingest and tests); reads MIDI with mido and never imports music21
or tensorflow.

The seed (deepjazz / the Coursera assignment) parsed this file with music21 6.7.1 and
handed its grammar, for each of the 18 bars of the guitar solo (quarter-note offsets
476-548), the guitar's notes and rests and the piano's chords.  `read` rebuilds exactly
those inputs from the raw ticks, following music21 6.7.1's documented MIDI import and
the seed's `preprocess.__parse_midi`, so `read(path).encode()` gives the seed's corpus.

File layout this relies on (the seed's selection is specific to this file): the melody
is the track named 'Guitar' (music21's part 5), the chords come from the track named
'Piano' (part 0), and every instrument, tempo, key and time-signature event of the
piano and of the conductor tracks sits at tick 0 (otherwise the seed's header
`append`s would have shifted the piano's offsets; we refuse such files).

The emulation, per track (Guitar, Piano):

1. Note pairing: events in file order with absolute ticks; every note-on (velocity > 0)
   takes the earliest later note-off (or note-on with velocity 0) of the same channel
   and pitch; note-ons that never end are dropped.  Notes keep note-on order.
2. Chords: walking that order, the notes that start within tpq/16 ticks of a note *and*
   end within tpq/16 of it form a chord (offset = first note's start, length = first
   note's end minus the last gathered note's start, pitches in note order); a note that
   starts together with another but ends elsewhere stays a note and marks the track as
   needing voices.  A zero-length note or chord is a grace (length 0).
3. Quantisation, offsets and lengths separately: the nearest multiple of 1/4 or of 1/3
   quarter note; the smaller error wins, a tie goes to the smaller value, an exact
   midpoint of one grid rounds down.  A non-grace length that rounds to 0 becomes 1/4.
   Everything is then an integer number of twelfths of a quarter note.
4. Voices (tracks that need them): elements sorted by (offset, graces first, creation
   order).  The number of voices is the size of the largest "overlap group" (pairwise
   overlaps of the sorted spans, consolidated into groups keyed by offset as music21's
   getOverlaps does; this can exceed the true polyphony).  Each element goes to the
   first voice whose end (the latest end of its elements) is <= its offset; an element
   that fits nowhere is lost.  Before each non-empty voice after the first is added,
   the voices already added get rests: one from 0 to their first offset, one from their
   end to the part's end, and one for every gap.  So the first voice of two gets rests
   and the second gets none.
5. Melody (Guitar): exactly two voices (the seed unpacks two); the second voice's
   elements are inserted into the first, so at equal offsets the first voice's element
   reads first.  A length of 0 becomes 1/4.  Elements with 476 <= offset <= 548 are kept
   and grouped into runs of equal int(offset / 4).
6. Chords (Piano): the part flattened (voice by voice, so at equal offsets the lower
   voice's chord comes first), only chords with 476 <= offset <= 548, grouped the same
   way; the last run (the downbeat at 548) is dropped, and run i is paired with melody
   run i (by position, as the seed did; a mismatch in counts is the seed's failed
   assertion and raises InputError).
7. Each chord's quality is music21's `Chord.quality` on its default-spelled pitches
   (C C# D E- E F F# G G# A B- B): the root is the first distinct-letter pitch with a
   third, fifth, seventh... stacked above it (as many steps as it has other letters),
   else the one with the best "rootness" score (sum of 1/(k+6) over the chord steps
   3,5,7,2,4,6 it has); then the third and fifth in semitones from the first pitch of
   each step, with 'other' whenever step 1, 3 or 5 holds two different pitch classes.

Not exercised by this file, so unverified against music21: grace (zero-length) notes,
and chords in the guitar part inside the solo; such a chord is represented by its highest
pitch, since `Element` holds one pitch (the seed typed it C and gave it no interval).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import mido

from jazzd.data.ingest.common import Bar, Piece
from jazzd.errors import InputError
from jazzd.music.chords import Chord, spelled_chord
from jazzd.music.grammar import Element
from jazzd.music.pitch import DEFAULT_NAMES, DEFAULT_SPELLING

MELODY_TRACK = "Guitar"
CHORD_TRACK = "Piano"
SOLO_START, SOLO_END = 476, 548  # quarter notes, both ends included (the seed's slice)
UNITS = 12  # internal time unit: a twelfth of a quarter note (lcm of the 1/4 and 1/3 grids)
_GRIDS = (3, 4)  # 1/4 and 1/3 of a quarter note, in units
_MIN_DUR = 3  # 1/max(4, 3) quarter note: what a non-grace length rounding to 0 becomes
_BAR = 4 * UNITS
_HEADER_TYPES = {"program_change", "track_name", "instrument_name", "set_tempo",
                 "key_signature", "time_signature"}


@dataclass(slots=True)
class _El:
    """A quantised note, chord (several pitches) or rest (no pitches), in units."""

    offset: int
    dur: int
    pitches: tuple[int, ...]
    is_chord: bool = False
    grace: bool = False
    seq: int = 0  # insertion order in the stream that currently holds it

    @property
    def end(self) -> int:
        return self.offset + self.dur


def _fail(path: Path, problem: str) -> InputError:
    return InputError(f"{path}: {problem}")


# --- step 1-3: one track to quantised notes and chords ---------------------------------

def _paired_notes(track) -> list[list[int]]:
    """[on_tick, off_tick, pitch] in note-on order, each on paired with its first off."""
    notes: list[list[int]] = []
    pending: dict[tuple[int, int], deque] = {}
    tick = 0
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            entry = [tick, -1, msg.note]
            notes.append(entry)
            pending.setdefault((msg.channel, msg.note), deque()).append(entry)
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            queue = pending.get((msg.channel, msg.note))
            if queue:
                queue.popleft()[1] = tick
    return [n for n in notes if n[1] >= 0]


def _quantise(ticks: int, tpq: int) -> int:
    """Nearest multiple of 1/4 or 1/3 quarter (smaller error, then smaller value), in units."""
    if ticks < 0:
        ticks = 0
    x = ticks * UNITS  # the value in units is x / tpq
    best = None
    for grid in _GRIDS:
        step = grid * tpq
        low = (x // step) * grid
        err_low = x - low * tpq
        err_high = (low + grid) * tpq - x
        value, err = (low, err_low) if err_low <= err_high else (low + grid, err_high)
        if best is None or (err, value) < best:
            best = (err, value)
    return best[1]


def _track_elements(track, tpq: int) -> tuple[list[_El], bool]:
    """The track's notes and chords, quantised, sorted; and whether it needs voices."""
    notes = _paired_notes(track)
    tolerance = tpq / 16
    gathered: set[int] = set()
    voices_required = False
    raw = []  # (on, length in ticks, pitches, is_chord)
    for i, (t, t_off, pitch) in enumerate(notes):
        if i in gathered:
            continue
        group = None
        for j in range(i + 1, len(notes)):
            t_sub, t_off_sub, _ = notes[j]
            if abs(t_sub - t) > tolerance:
                break
            if abs(t_off_sub - t_off) > tolerance:
                voices_required = True
                continue
            if group is None:
                group = [i]
                gathered.add(i)
            group.append(j)
            gathered.add(j)
        if group is None:
            raw.append((t, t_off - t, (pitch,), False))
        else:
            length = notes[group[0]][1] - notes[group[-1]][0]
            raw.append((t, length, tuple(notes[k][2] for k in group), True))
    elements = []
    for seq, (on, length, pitches, is_chord) in enumerate(raw):
        grace = length == 0
        dur = 0 if grace else _quantise(length, tpq) or _MIN_DUR
        elements.append(_El(_quantise(on, tpq), dur, pitches, is_chord, grace, seq))
    elements.sort(key=_sort_key)
    return elements, voices_required


def _sort_key(el: _El) -> tuple[int, int, int]:
    return (el.offset, 0 if el.grace else 1, el.seq)


# --- step 4: voices and rests ------------------------------------------------------------

def _voice_count(elements: list[_El]) -> int:
    """Size of the largest overlap group, as music21's getOverlaps consolidates them."""
    # Pairs are tested in stream order, each element against the following ones until
    # the first that does not overlap it (music21 enumerates before sorting the spans).
    spans = [(el.offset, el.end) for el in elements]
    overlaps: list[list[int]] = [[] for _ in elements]
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            first, second = sorted((spans[i], spans[j]))
            if second[0] < first[1]:
                overlaps[i].append(j)
                overlaps[j].append(i)
            else:
                break
    groups: dict[int, list[int]] = {}
    where: dict[int, int] = {}  # element index -> the group key it was stored under
    for i, others in enumerate(overlaps):
        if not others:
            continue
        dst = None
        for j in sorted(others):
            if j in where:
                dst = where[j]
                continue
            if dst is None:
                dst = elements[i].offset
            groups.setdefault(dst, []).append(j)
            where[j] = dst
        if i not in where:
            if dst is None:
                dst = elements[i].offset
            groups.setdefault(dst, []).append(i)
            where[i] = dst
    return max((len(g) for g in groups.values()), default=1)


def _highest_time(voice: list[_El]) -> int:
    return max((el.end for el in voice), default=0)


def _add_rests(voice: list[_El], target_end: int, counter: list[int]) -> None:
    """music21's makeRests(fillGaps=True) on one voice: lead-in, tail and gap rests."""
    def rest(offset, dur):
        counter[0] += 1
        voice.append(_El(offset, dur, (), seq=counter[0]))

    low = min((el.offset for el in voice), default=0)
    high = _highest_time(voice)
    if low > 0:
        rest(0, low)
    if target_end > high:
        rest(high, target_end - high)
    gaps = []
    reached = 0
    for el in sorted(voice, key=_sort_key):
        if el.offset > reached:
            gaps.append((reached, el.offset - reached))
        reached = max(reached, el.end)
    for offset, dur in gaps:
        rest(offset, dur)


def _make_voices(elements: list[_El], rests: bool = True) -> tuple[list[list[_El]], int]:
    """The non-empty voices (each a list in insertion order) and how many elements were lost.

    `rests=False` skips the rests (they never change the order of the notes and chords).
    """
    count = _voice_count(elements)
    if count == 1:
        return [], 0
    voices: list[list[_El]] = [[] for _ in range(count)]
    ends = [0] * count
    counter = [0]
    lost = 0
    for el in elements:
        for k in range(count):
            if ends[k] <= el.offset:
                counter[0] += 1
                el.seq = counter[0]
                voices[k].append(el)
                ends[k] = max(ends[k], el.end)
                break
        else:
            lost += 1
    inserted: list[list[_El]] = []
    for voice in voices:
        if not voice:
            continue
        if inserted and rests:
            part_end = max(_highest_time(v) for v in inserted)
            for v in inserted:
                _add_rests(v, part_end, counter)
        inserted.append(voice)
    return inserted, lost


# --- step 7: music21's chord quality ------------------------------------------------------

def _letter(midi: int) -> int:
    return DEFAULT_SPELLING[midi % 12][0]


def _step(root: int, midi: int) -> int:
    """Chord step (1-7) of a default-spelled pitch above a root, octaves ignored."""
    return (_letter(midi) - _letter(root)) % 7 + 1


def _find_root(midis: list[int]) -> int:
    distinct, letters = [], set()
    for m in midis:
        if _letter(m) not in letters:
            letters.add(_letter(m))
            distinct.append(m)
    if len(distinct) == 1:
        return midis[0]
    order = (3, 5, 7, 2, 4, 6)
    for candidate in distinct:
        have = {_step(candidate, m) for m in midis}
        if all(s in have for s in order[:len(distinct) - 1]):
            return candidate
    scores = []
    for candidate in distinct:
        have = {_step(candidate, m) for m in midis}
        score = 0
        for k, s in enumerate(order):
            if s in have:
                score += 1 / (k + 6)
        scores.append(score)
    return distinct[scores.index(max(scores))]


def m21_quality(midis: list[int]) -> str:
    """music21 6.7.1's `Chord.quality` for MIDI pitches (in chord order), default spelling."""
    if not midis:
        return "other"
    root = _find_root(midis)

    def semis(step):
        for m in midis:
            if _step(root, m) == step:
                return (m - root) % 12
        return None

    def repeated(step):
        first = semis(step)
        return any(_step(root, m) == step and (m - root) % 12 != first for m in midis)

    third, fifth = semis(3), semis(5)
    if third is None or repeated(1) or repeated(3):
        return "other"
    if fifth is None:
        return {4: "major", 3: "minor"}.get(third, "other")
    if repeated(5):
        return "other"
    return {(4, 7): "major", (3, 7): "minor", (4, 8): "augmented",
            (3, 6): "diminished"}.get((third, fifth), "other")


def _spelled(midi: int) -> str:
    return f"{DEFAULT_NAMES[midi % 12]}{midi // 12 - 1}"


def _chord(midis: tuple[int, ...]) -> Chord:
    return spelled_chord([_spelled(m) for m in midis], m21_quality(list(midis)))


# --- steps 5-6 and the public reader ------------------------------------------------------

def _runs(elements: list[_El]) -> list[tuple[int, list[_El]]]:
    """Consecutive runs of equal int(offset / 4) (elements already in reading order)."""
    runs: list[tuple[int, list[_El]]] = []
    for el in elements:
        key = el.offset // _BAR
        if runs and runs[-1][0] == key:
            runs[-1][1].append(el)
        else:
            runs.append((key, [el]))
    return runs


def _in_solo(el: _El) -> bool:
    return SOLO_START * UNITS <= el.offset <= SOLO_END * UNITS


def _find_track(mf: mido.MidiFile, name: str, path: Path):
    for track in mf.tracks:
        if track.name.strip() == name:
            if not any(m.type == "note_on" and m.velocity > 0 for m in track):
                raise _fail(path, f"the {name!r} track has no notes")
            return track
    raise _fail(path, f"no track named {name!r}; the seed layout needs a 'Guitar' melody "
                      "and a 'Piano' chord track")


def _check_headers(mf: mido.MidiFile, piano, path: Path) -> None:
    """The piano's and the conductor tracks' header events must all quantise to offset 0.

    (Conductor tracks, those without notes, lend only tempo, key and time signatures.)
    """
    tpq = mf.ticks_per_beat
    conductor_types = {"set_tempo", "key_signature", "time_signature"}
    checks = [(piano, _HEADER_TYPES)]
    checks += [(t, conductor_types) for t in mf.tracks
               if not any(m.type == "note_on" and m.velocity > 0 for m in t)]
    for track, types in checks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type in types and _quantise(tick, tpq) != 0:
                raise _fail(path, f"{msg.type} at tick {tick} in track {track.name!r}: "
                                  "the seed emulation needs header events at tick 0")


def _melody(guitar, tpq: int, path: Path) -> tuple[list[_El], dict]:
    elements, voices_required = _track_elements(guitar, tpq)
    voices, lost = _make_voices(elements) if voices_required else ([], 0)
    if len(voices) != 2:
        raise _fail(path, f"the 'Guitar' track makes {len(voices)} voices; "
                          "the seed's preprocessing needs exactly 2")
    first, second = voices
    counter = max(el.seq for el in first)
    merged = list(first)
    for el in sorted(second, key=_sort_key):
        counter += 1
        merged.append(_El(el.offset, el.dur, el.pitches, el.is_chord, el.grace, counter))
    merged.sort(key=_sort_key)
    for el in merged:
        if el.dur == 0:
            el.dur = _MIN_DUR
    stats = {"melody_voice_sizes": [len(first), len(second)], "melody_lost": lost}
    return [el for el in merged if _in_solo(el)], stats


def _chords(piano, tpq: int) -> list[_El]:
    elements, voices_required = _track_elements(piano, tpq)
    voices = _make_voices(elements, rests=False)[0] if voices_required else []
    if voices:
        flat, seq = [], 0
        for voice in voices:  # flattening walks the voices in order, each in storage order
            for el in voice:
                seq += 1
                flat.append(_El(el.offset, el.dur, el.pitches, el.is_chord, el.grace, seq))
        flat.sort(key=_sort_key)
    else:
        flat = elements
    return [el for el in flat if el.is_chord and _in_solo(el)]


def read(path) -> Piece:
    """The seed's 18 solo bars of `original_metheny.mid`, as its grammar received them."""
    path = Path(path)
    try:
        mf = mido.MidiFile(path)
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except Exception as err:  # mido raises OSError, EOFError, ValueError, KeyError ...
        raise _fail(path, f"not a readable MIDI file ({type(err).__name__}: {err})") from None
    tpq = mf.ticks_per_beat
    if not isinstance(tpq, int) or tpq <= 0:
        raise _fail(path, f"unsupported MIDI time division {tpq!r}")
    guitar = _find_track(mf, MELODY_TRACK, path)
    piano = _find_track(mf, CHORD_TRACK, path)
    _check_headers(mf, piano, path)

    melody, stats = _melody(guitar, tpq, path)
    melody_runs = _runs(melody)
    chord_runs = _runs(_chords(piano, tpq))
    if chord_runs:
        del chord_runs[-1]  # the seed drops the last group (the downbeat at 548)
    if not melody_runs or len(melody_runs) != len(chord_runs):
        raise _fail(path, f"{len(melody_runs)} melody bars but {len(chord_runs)} chord bars "
                          f"in quarter notes {SOLO_START}-{SOLO_END} (the seed asserts equal)")

    bars = []
    for (key, els), (_, chord_els) in zip(melody_runs, chord_runs, strict=True):
        elements = [Element(el.offset / UNITS, el.dur / UNITS,
                            max(el.pitches) if el.pitches else None) for el in els]
        chords = [(c.offset / UNITS, _chord(c.pitches)) for c in chord_els]
        bars.append(Bar(start=float(key * 4), elements=elements, chords=chords))
    meta = {"format": "seed", "path": str(path), "ticks_per_quarter": tpq,
            "melody_track": MELODY_TRACK, "chord_track": CHORD_TRACK,
            "solo_range": (SOLO_START, SOLO_END), **stats}
    return Piece(name=path.stem, bars=bars, meta=meta)


__all__ = ["m21_quality", "read"]
