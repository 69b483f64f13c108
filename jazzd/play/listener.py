"""The listener: the player's melody notes, quantised to the beat grid, in order.

Pure Python; the engine's thread.  Never imports numpy, tensorflow or music21.

Times are beats (floats, from the transport's start).  Onsets and ends snap to the
nearest point of the beat grid (`jazzd.music.timeline`: 1/4 or 1/3 of a beat),
so a note played up to 1/24 beat early or late lands on its intended position.  The line
is monophonic: a new note cuts the one before it.  In a run (the next onset at most
`RUN_BEATS`, half a beat, later) a note held for more than half the time to the next
onset, as played (not as snapped), is heard to it (`HeardNote.value_end`): the silence
is how it was played (detached), not a rest, as ingest rounds a transcribed note's
length to its tatum step (at least one: in a run, the time between the onsets).  So
the model hears a staccato run as the run it learnt: before, a sixteenth played at 80%
of its length ending at 0.7 of a beat snapped to 0.667 (a sixth and a twelfth's rest,
every fourth note of a run), an eighth at 80% from the beat to 1/3 (a triplet eighth
and a sixth's rest).  A note held for half that time or less leaves a rest (a
sixteenth and a sixteenth's rest).  The raw onsets (before snapping; one per grid
position, the first) of about the last `RAW_ONSETS` notes are kept for the feel meter
(`raw_onsets`: what `feel = "player"` follows), with their raw ends (`raw_notes`: what
`articulation = "player"` follows).  A note is complete when it has ended (or been
cut) and the next note has started or can no longer start a run with it;
`take_completed` hands completed notes over in order.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from jazzd.music.chords import Chord
from jazzd.music.timeline import snap

MIN_BEATS = 1 / 12
RUN_BEATS = 1 / 2  # beats: a note the next follows this soon is in a run (see above)
LATE = 1 / 24  # beats: how late a note may be played and still snap to its grid point
RAW_ONSETS = 64
_EPS = 1e-9


@dataclass
class HeardNote:
    onset: float           # beats, on the grid
    pitch: int
    velocity: int
    chord: Chord | None    # the chord sounding when it was played
    end: float | None = None     # beats, on the grid: where it stopped sounding
    next_onset: float | None = None  # the next note's, if it ran on to it (see the module)
    raw_onset: float = 0.0       # beats, as played (not snapped)
    raw_end: float | None = None

    @property
    def dur(self) -> float:
        """How long it sounded (beats)."""
        return (self.end or self.onset) - self.onset

    @property
    def value_end(self) -> float | None:
        """Where its value ends as heard: the next onset in a run it was held for
        more than half of, else where it stopped sounding."""
        return self.next_onset if self.next_onset is not None else self.end


def _runs_on(note: HeardNote, onset: float, raw: float) -> bool:
    """Whether `note` (ended) is heard to the next note, at grid point `onset` (played
    at `raw`): the two are in a run and it sounded for more than half the time between
    them, as played (the snapped ends would judge a line unevenly: an eighth held 65%
    from the beat ends at 1/3, one from the off-beat at 3/4)."""
    return onset - note.onset <= RUN_BEATS + _EPS and 2 * (note.raw_end - note.raw_onset) > raw - note.raw_onset + _EPS


def _settled(note: HeardNote) -> float:
    """The beat from which no next onset could make `note` run on (one played up to
    `LATE` late still snaps to its grid point)."""
    return max(note.end, min(note.onset + RUN_BEATS + LATE, note.raw_onset + 2 * (note.raw_end - note.raw_onset)))


class Listener:
    def __init__(self):
        self._notes: list[HeardNote] = []
        self._held: HeardNote | None = None
        self.last_end: float | None = None  # beats: when the line last fell silent
        self._raw: deque[list] = deque(maxlen=RAW_ONSETS)  # [onset, end or None], beats as played

    def raw_onsets(self, beats: float) -> list[float]:
        """The player's latest onsets as played (beats, not snapped): those within
        `beats` of the last one (the player's feel lasts until the player plays again)."""
        return [x for x, _ in self.raw_notes(beats)]

    def raw_notes(self, beats: float) -> list[tuple[float, float | None]]:
        """The player's latest notes as played, (onset, end) beats not snapped (end None
        while it sounds), within `beats` of the last onset: what their articulation is
        measured from."""
        if not self._raw:
            return []
        last = self._raw[-1][0]
        return [(x, end) for x, end in self._raw if x >= last - beats]

    @property
    def sounding(self) -> bool:
        return self._held is not None

    @property
    def sounding_since(self) -> float | None:
        """The onset (beats, on the grid) of the note sounding now, or None."""
        return self._held.onset if self._held is not None else None

    def note_on(self, beat: float, pitch: int, velocity: int, chord: Chord | None) -> HeardNote:
        onset = snap(beat)
        if self._held is not None and self._held.onset == onset:
            if pitch > self._held.pitch:  # two notes at once: the top one is the melody
                self._held.pitch, self._held.velocity = pitch, velocity
            return self._held
        if self._held is not None:
            self._end(self._held, onset, beat)
        elif self._notes and self._notes[-1].end is not None and _runs_on(self._notes[-1], onset, beat):
            self._notes[-1].next_onset = onset  # (not yet handed over: see take_completed)
        if not self._raw or snap(self._raw[-1][0]) != onset:
            self._raw.append([beat, None])
        note = HeardNote(onset, pitch, velocity, chord, raw_onset=beat)
        self._notes.append(note)
        self._held = note
        return note

    def note_off(self, beat: float, pitch: int) -> None:
        if self._held is not None and self._held.pitch == pitch:
            self._end(self._held, snap(beat), beat)
            self._held = None

    def _end(self, note: HeardNote, end: float, raw: float) -> None:
        note.end = max(end, note.onset + MIN_BEATS)
        note.raw_end = max(raw, note.raw_onset)
        self.last_end = note.end
        if self._raw and self._raw[-1][1] is None:
            self._raw[-1][1] = max(raw, self._raw[-1][0])

    @property
    def waiting_beats(self) -> float:
        """How long the notes that have ended but are not handed over yet sounded."""
        return sum(n.dur for n in self._notes if n.end is not None)

    def take_completed(self, now: float = math.inf) -> list[HeardNote]:
        """Completed notes at beat `now`, oldest first; they are handed over once.  A
        note that has ended waits until the next one starts or could no longer run on
        to it, even played late (the default `now`: every note that has ended goes)."""
        notes, k = self._notes, 0
        while k < len(notes) and notes[k].end is not None \
                and (k + 1 < len(notes) or now >= _settled(notes[k]) - _EPS):
            k += 1
        done, self._notes = notes[:k], notes[k:]
        return done

    def reset(self) -> None:
        self._notes.clear()
        self._held = None
        self.last_end = None
        self._raw.clear()
