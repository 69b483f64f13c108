"""Offline output: rendered notes as a MIDI file (solo + chord voicings).

mido only (the piano roll is `jazzd.judge.plots.piano_roll`); runs in the calling thread.  The notes come from the
engine (`jazzd.play.offline.render`), the same path as live play.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import mido

from jazzd.music.progression import Progression

TICKS_PER_BEAT = 480
SOLO_PROGRAM = 65  # General MIDI alto sax (0-based)
COMP_PROGRAM = 0   # acoustic grand piano


@dataclass(frozen=True)
class Note:
    onset: float  # beats from the start
    dur: float    # beats
    midi: int
    velocity: int
    value: str = ""
    grid: tuple[float, float] | None = None  # (onset, dur) on the beat grid, where the feel moved it


def on_grid(notes: list[Note]) -> list[Note]:
    """The notes as the engine planned them on the beat grid (before the feel moved
    them): what the grammar, the corpus and the report's metrics count in."""
    return [replace(n, onset=n.grid[0], dur=n.grid[1], grid=None) if n.grid else n for n in notes]


def voicing(chord, low: int = 52) -> list[int]:
    """A simple comping voicing: root in the bass, the other tones closed above `low`."""
    bass = 36 + (chord.root - 36) % 12
    upper = sorted(low + (pc - low) % 12 for pc in chord.pcs if pc != chord.root)
    return [bass, *upper]


def write_midi(path, notes: list[Note], progression: Progression, bars: int, tempo_bpm: float,
               comp: bool = True, player: list[Note] | None = None, solo_name: str = "solo") -> Path:
    """A type-1 MIDI file: tempo map, the solo (channel 1), chord voicings (channel 2) and,
    when given, the `player`'s notes (channel 3, a piano: `jazzd demo`'s other voice)."""
    def tick(beats: float) -> int:  # a downbeat the feel played early sounds from the start
        return max(round(beats * TICKS_PER_BEAT), 0)

    meta = mido.MidiTrack([
        mido.MetaMessage("track_name", name="jazzd", time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0),
        mido.MetaMessage("time_signature", numerator=progression.beats_per_bar, denominator=4, time=0),
    ])
    solo = [(tick(n.onset), 1, mido.Message("note_on", channel=0, note=n.midi, velocity=n.velocity))
            for n in notes]
    solo += [(tick(n.onset + n.dur), 0, mido.Message("note_off", channel=0, note=n.midi, velocity=0))
             for n in notes]
    chords = []
    played = [(tick(n.onset), 1, mido.Message("note_on", channel=2, note=n.midi, velocity=n.velocity))
              for n in player or ()]
    played += [(tick(n.onset + n.dur), 0, mido.Message("note_off", channel=2, note=n.midi, velocity=0))
               for n in player or ()]
    if comp:
        bpb = progression.beats_per_bar
        spans = []
        for bar in range(bars):
            for pos, chord in progression.chords_in_bar(bar):
                t = bar * bpb + pos
                if spans and spans[-1][1] is chord:
                    continue
                spans.append((t, chord))
        for k, (t, chord) in enumerate(spans):
            stop = spans[k + 1][0] if k + 1 < len(spans) else bars * bpb
            for p in voicing(chord):
                chords.append((tick(t), 1, mido.Message("note_on", channel=1, note=p, velocity=62)))
                chords.append((tick(stop), 0, mido.Message("note_off", channel=1, note=p, velocity=0)))
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    mid.tracks.append(meta)
    for name, program, channel, events in ((solo_name, SOLO_PROGRAM, 0, solo), ("chords", COMP_PROGRAM, 1, chords),
                                           ("player", COMP_PROGRAM, 2, played)):
        if not events and name in ("chords", "player"):
            continue
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                                mido.Message("program_change", channel=channel, program=program, time=0)])
        now = 0
        for t, _order, msg in sorted(events, key=lambda e: (e[0], e[1], e[2].note)):
            track.append(msg.copy(time=t - now))
            now = t
        mid.tracks.append(track)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)
    return path

