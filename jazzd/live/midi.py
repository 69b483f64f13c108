"""MIDI bytes, in and out: the one table of message lengths, the parser from a raw
message to an engine event (or the reason it is dropped), the encoder of the engine's
output, and the panic sequence.  Pure and stdlib only (an import-linter contract); any
thread.  The daemon, `jazzd panic`, the tests and the benchmarks all speak MIDI through
this module.

What `parse` accepts is what the MIDI system hands over: one complete message per call
(rtmidi and JACK deliver whole messages).  So running status is not supported (a message
that starts with a data byte is malformed), a data byte above 0x7F is malformed, a
channel message must have exactly its length, and a Note On with velocity 0 is a Note
Off.  System messages (SysEx 0xF0 ... 0xF7 of any size and content, clock, transport,
Song Position) are passed on whole: whether they mean anything is the clock follower's
business (`jazzd.live.clock`).  Polyphonic and channel pressure and pitch bend are valid
and of no use to jazzd: `parse` returns None for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jazzd.play.events import Control, NoteOff, NoteOn, Out

NOTE_OFF, NOTE_ON, POLY_PRESSURE, CONTROL_CHANGE = 0x80, 0x90, 0xA0, 0xB0
PROGRAM_CHANGE, CHANNEL_PRESSURE, PITCH_BEND, SYSTEM = 0xC0, 0xD0, 0xE0, 0xF0
SYSEX = 0xF0
# Channel messages: the status byte's high nibble -> the whole message's length in bytes.
LENGTH = {NOTE_OFF: 3, NOTE_ON: 3, POLY_PRESSURE: 3, CONTROL_CHANGE: 3,
          PROGRAM_CHANGE: 2, CHANNEL_PRESSURE: 2, PITCH_BEND: 3}

# Controllers (conventions §3.3).
SUSTAIN = 64
ALL_SOUND_OFF = 120      # mutes at once, whatever the pedal and release times
RESET_CONTROLLERS = 121
ALL_NOTES_OFF = 123      # releases notes, but a held pedal keeps them sounding

# Drop reasons, as counted in STATUS and the log.
EMPTY, MALFORMED, OTHER_CHANNEL = "empty", "malformed", "other channel"


@dataclass(frozen=True, slots=True)
class Program:
    """Program Change `program` (0..127) on `channel`, at `t`."""

    t: float
    program: int
    channel: int = 0


@dataclass(frozen=True, slots=True)
class System:
    """A system message (status 0xF0..0xFF), whole, that arrived at `t`."""

    t: float
    data: bytes


Event = NoteOn | NoteOff | Control | Program | System


def parse(data: bytes, t: float, channel: int | None = None) -> Event | str | None:
    """One raw message that arrived at `t`: its event, None for a valid message jazzd
    has no use for, or the reason to drop it (`EMPTY`, `MALFORMED`, `OTHER_CHANNEL`).
    `channel` (0..15) keeps only that channel's messages; None keeps all.  Never raises
    on bytes."""
    if not data:
        return EMPTY
    status = data[0]
    if status < 0x80 or (status != SYSEX and any(b > 0x7F for b in data[1:])):
        return MALFORMED
    if status >= SYSTEM:
        return System(t, bytes(data))
    kind, ch = status & 0xF0, status & 0x0F
    if len(data) != LENGTH[kind]:
        return MALFORMED
    if channel is not None and ch != channel:
        return OTHER_CHANNEL
    if kind == NOTE_ON and data[2] > 0:
        return NoteOn(t, data[1], data[2], ch)
    if kind in (NOTE_ON, NOTE_OFF):
        return NoteOff(t, data[1], ch)
    if kind == CONTROL_CHANGE:
        return Control(t, data[1], data[2], ch)
    if kind == PROGRAM_CHANGE:
        return Program(t, data[1], ch)
    return None


def note_off(channel: int, note: int) -> bytes:
    return bytes((NOTE_OFF | channel, note, 0))


def encode(ev: Out) -> bytes:
    """The engine's output event as a message: a note on, a note off (velocity 0), or a
    controller; on channel `ev.channel & 0x0F`."""
    ch = ev.channel & 0x0F
    if ev.kind == "on":
        return bytes((NOTE_ON | ch, ev.number, ev.value))
    if ev.kind == "off":
        return note_off(ch, ev.number)
    return bytes((CONTROL_CHANGE | ch, ev.number, ev.value))


def panic_messages(channels: Iterable[int] = range(16),
                   notes: Iterable[tuple[int, int]] | None = None,
                   reset_controllers: bool = False) -> list[bytes]:
    """The robust all-off sequence (conventions §3.3), as raw messages.

    Note-off (velocity 0) for every note: all 128 on each of `channels` when `notes` is
    None, else each given (channel, note) pair once, in order; then on each channel
    CC64=0 (sustain off), CC123=0 (all notes off), CC120=0 (all sound off), and CC121=0
    (reset all controllers) when `reset_controllers`.  Channels are 0..15.
    """
    channels = list(channels)
    for ch in channels:
        _check(ch, 15, "channel")
    if notes is None:
        offs = [note_off(ch, note) for ch in channels for note in range(128)]
    else:
        offs, seen = [], set()
        for ch, note in notes:
            _check(ch, 15, "channel")
            _check(note, 127, "note")
            if (ch, note) not in seen:
                seen.add((ch, note))
                offs.append(note_off(ch, note))
    controllers = (SUSTAIN, ALL_NOTES_OFF, ALL_SOUND_OFF)
    controllers += (RESET_CONTROLLERS,) if reset_controllers else ()
    return offs + [bytes((CONTROL_CHANGE | ch, cc, 0)) for ch in channels for cc in controllers]


def _check(value: int, top: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ValueError(f"{what} must be in range 0..{top}, not {value!r}")
