"""Engine input and output events.  Pure data; any thread.

Times are seconds on whatever monotonic clock the caller uses: the engine never reads
a clock itself, it only compares and converts the times it is given.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NoteOn:
    """A note the player played: the engine acts on it at `t` (live: when the loop read
    it; nothing that went out before can be taken back) and hears it as played at
    `played` (live: the MIDI system's time, a little earlier; None: at `t`)."""

    t: float
    note: int
    velocity: int
    channel: int = 0
    played: float | None = None


@dataclass(frozen=True, slots=True)
class NoteOff:
    """A note the player released; `t` and `played` as for NoteOn."""

    t: float
    note: int
    channel: int = 0
    played: float | None = None


@dataclass(frozen=True, slots=True)
class Control:
    t: float
    control: int
    value: int
    channel: int = 0


@dataclass(frozen=True, slots=True)
class Tick:
    """Beat `beat` (counted from the transport's start) begins at time `t`, at `tempo` bpm."""

    t: float
    beat: int
    tempo: float


@dataclass(frozen=True, slots=True)
class Out:
    """An event for the output port at time `t`: kind 'on', 'off' or 'cc'."""

    t: float
    kind: str
    number: int  # note, or controller
    value: int   # velocity (0 for off), or controller value
    channel: int = 0
    grammar: str = ""  # a note on the engine played: its grammar value (offline analysis)
    grid: float | None = None  # a note on/off the feel moved: its time on the beat grid (offline analysis)


@dataclass
class Plan:
    """What the engine asks of its shell after one call.

    `cancel_from`: drop every scheduled event at or after this time first (an answer
    was cut short); then schedule `events`; call the engine again at `wake` (seconds) if
    no tick or input comes before.
    """

    events: list[Out]
    cancel_from: float | None = None
    wake: float | None = None
