"""The chord tracker: which chord the player's left hand (or chord channel) is holding.

Pure Python; the engine's thread.  Never imports numpy, tensorflow or music21.

Notes below the split point (or on the chord channel, when one is set) are the chord
hand; the sustain pedal keeps released notes sounding until it lifts.  When the hand
lifts, the last recognised chord holds.  With a fixed progression (and nothing played
below the split), the progression's chord at the current beat is the chord.
"""

from __future__ import annotations

from jazzd.music.chordrec import recognize
from jazzd.music.chords import Chord
from jazzd.music.progression import Progression


class ChordTracker:
    def __init__(self, split: int = 60, chord_channel: int | None = None,
                 progression: Progression | None = None):
        self.split = split
        self.chord_channel = chord_channel  # 0-based MIDI channel, or None = use the split
        self.progression = progression
        self._held: dict[tuple[int, int], int] = {}  # (channel, note) -> note
        self._pedal_held: set[tuple[int, int]] = set()
        self._pedal = False
        self._last: Chord | None = None
        self.heard_any = False

    def is_chord_note(self, note: int, channel: int) -> bool:
        if self.chord_channel is not None:
            return channel == self.chord_channel
        return note < self.split

    def note_on(self, note: int, channel: int = 0) -> None:
        """A key goes down: the held keys are read as a chord (releases never are, so a
        hand lifting key by key does not pass through chords nobody played)."""
        self._held[(channel, note)] = note
        self._pedal_held.discard((channel, note))
        self._update()

    def note_off(self, note: int, channel: int = 0) -> None:
        if self._pedal and (channel, note) in self._held:
            self._pedal_held.add((channel, note))
            return
        self._held.pop((channel, note), None)

    def sustain(self, down: bool) -> None:
        self._pedal = down
        if not down:
            for key in self._pedal_held:
                self._held.pop(key, None)
            self._pedal_held.clear()

    def _update(self) -> None:
        chord = recognize(self._held.values()) if len(self._held) >= 2 else None
        if chord is not None:
            self._last = chord
            self.heard_any = True

    def chord(self, beat: float = 0.0) -> Chord | None:
        """The chord now: the one being played (or last played), else the progression's."""
        if self._last is not None or self.progression is None:
            return self._last
        return self.progression.chord_at(beat)

    def reset(self) -> None:
        self._held.clear()
        self._pedal_held.clear()
        self._last = None
