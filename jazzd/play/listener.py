"""The listener: the player's melody notes, quantised to the beat grid, in order.

Pure Python; the engine's thread.  Never imports numpy, tensorflow or music21.

Times are beats (floats, from the transport's start).  Onsets and ends snap to the
nearest point of the beat grid (`jazzd.music.timeline`: 1/4 or 1/3 of a beat),
so a note played up to 1/24 beat early or late lands on its intended position.  The line
is monophonic: a new note cuts the one before it.  The raw onsets (before snapping;
one per grid position, the first) of about the last `RAW_ONSETS` notes are kept for the
feel meter (`raw_onsets`: what `feel = "player"` follows), with their raw ends (`raw_notes`:
what `articulation = "player"` follows).  A note is complete when it has ended
(or been cut); `take_completed` hands completed notes over in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from jazzd.music.chords import Chord
from jazzd.music.timeline import snap

MIN_BEATS = 1 / 12
RAW_ONSETS = 64


@dataclass
class HeardNote:
    onset: float           # beats, on the grid
    pitch: int
    velocity: int
    chord: Chord | None    # the chord sounding when it was played
    end: float | None = None

    @property
    def dur(self) -> float:
        return (self.end or self.onset) - self.onset


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
        if not self._raw or snap(self._raw[-1][0]) != onset:
            self._raw.append([beat, None])
        note = HeardNote(onset, pitch, velocity, chord)
        self._notes.append(note)
        self._held = note
        return note

    def note_off(self, beat: float, pitch: int) -> None:
        if self._held is not None and self._held.pitch == pitch:
            self._end(self._held, snap(beat), beat)
            self._held = None

    def _end(self, note: HeardNote, end: float, raw: float) -> None:
        note.end = max(end, note.onset + MIN_BEATS)
        self.last_end = note.end
        if self._raw and self._raw[-1][1] is None:
            self._raw[-1][1] = max(raw, self._raw[-1][0])

    def take_completed(self) -> list[HeardNote]:
        """Completed notes, oldest first; they are handed over once."""
        done = [n for n in self._notes if n.end is not None]
        self._notes = [n for n in self._notes if n.end is None]
        return done

    def reset(self) -> None:
        self._notes.clear()
        self._held = None
        self.last_end = None
        self._raw.clear()
