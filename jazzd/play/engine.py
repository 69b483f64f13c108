"""The improvising engine: a deterministic core fed with events, returning timed notes.

numpy (through the runtime); one thread owns it.  It never reads a clock, the
environment or a global random state: input events and beat ticks carry their times
(seconds), and all randomness comes from the injected `numpy.random.Generator`.  So the
same inputs, times and seed give the same output, live or offline.

The engine keeps one timeline of values (the player's and its own) that it feeds to
the LSTM in order.  At each beat tick (and at the wake-up times it asks for) it
- hears the player's completed melody notes: quantised, encoded against the chord under
  them, and teacher-forced into the model, with rests for the gaps;
- decides what to play (mode `call`: answer a finished call from the next beat;
  `duet`: play all the time over the chords it hears; `solo`: play over the
  progression with no input);
- plans the notes that start before the horizon (the next beat, plus `lookahead - 1`
  more), with the latest known chord, and commits them: they come back as `Out` events
  with absolute times.  Its own notes tile time, so no two overlap, and every note on
  is returned with its note off.
If the player comes back during an answer (and `interrupt` is on), the answer ends at
once: everything scheduled from then on is cancelled and sounding notes are released.

Session memory (`jazzd.model.memory`): every value the engine hears (the player's notes
and the rests between them, as they reach the model) is also learned by `memory`, never
a value jazzd plays; the soloist mixes the memory into the model's choice as much as
`imitation` says (0: not at all, the decoding of an engine without memory).  The memory
outlives the engine: the daemon hands the same one to the engine of a new model.

Its own line keeps the beat, whatever lengths the model chooses.  The vocabulary holds
quintuplet fifths, septuplet sevenths and 0.3s, and a line laid end to end from them
drifts: one 0.2 value once left a solo 1/30 beat late for its last 193 notes (seeds
10-19, 64 bars: 969 of 3,438 notes off the grid).  So a value that starts off the grid
(sixteenths and eighth-note triplets, `jazzd.music.timeline`) ends on the next beat at
the latest: the tuplet group resolves on the beat, as a player lands a quintuplet run
on the next beat while the band keeps time.  Usually that only shortens the group's
last note (or completes the group: a 0.333 after four fifths is played as the fifth
fifth); the model's choices are never masked.  The model then hears the value that was
played, re-encoded with its played length, so its input, the position features and the
timeline agree, as they do in training, where values tile the bar exactly.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from jazzd.model.memory import SessionMemory
from jazzd.model.runtime import Runtime
from jazzd.music.chords import NO_CHORD, Chord
from jazzd.music.grammar import MIN_DUR, encode_value, parse_value
from jazzd.music.progression import DEFAULT_CHANGES, Progression, parse_progression
from jazzd.music.timeline import keep_the_beat, rests
from jazzd.play.events import Control, NoteOff, NoteOn, Out, Plan, Tick
from jazzd.play.listener import Listener
from jazzd.play.schedule import time_key
from jazzd.play.settings import MODES, Settings
from jazzd.play.soloist import Sampling, Soloist
from jazzd.play.tracker import ChordTracker

SUSTAIN = 64
_EPS = 1e-6
MAX_GAP_BARS = 2  # a longer silence is heard as this many bars of rest
_DEFAULT_PROGRESSION = parse_progression(DEFAULT_CHANGES)


@dataclass
class _Sounding:
    onset: float  # beats
    end: float
    note: int


@dataclass
class Stats:
    heard_values: int = 0
    played_notes: int = 0
    answers: int = 0
    interrupted: int = 0
    ignored_calls: int = 0


class Engine:
    def __init__(self, runtime: Runtime, rng: np.random.Generator, settings: Settings | None = None,
                 progression: Progression | None = None, memory: SessionMemory | None = None):
        self.settings = settings or Settings()
        self.rng = rng
        self.memory = memory if memory is not None else SessionMemory()
        self.soloist = Soloist(runtime, rng, Sampling(self.settings.temperature, 0, self.settings.top_p),
                               self.settings.pitch_range, self.memory)
        self.tracker = ChordTracker(self.settings.split, self.settings.chord_channel, progression)
        self.listener = Listener()
        self.stats = Stats()
        self._tick: Tick | None = None
        self._cursor: float | None = None   # beats: where the next value of the timeline starts
        self._last_bar: int | None = None
        self._prev_in_bar: int | None = None
        self._state = "listen"              # listen | answer | play
        self._answer_end = 0.0
        self._call_start: float | None = None
        self._sounding: list[_Sounding] = []
        self._snapshots: list[tuple[float, tuple]] = []
        self._velocity = 90.0
        # What it did, for tests, logs and the status line (bounded).
        self.trace: deque[tuple[float, str, int | None, str]] = deque(maxlen=512)  # beat, value, midi, chord
        self.answers: deque[tuple[float, float]] = deque(maxlen=64)  # (start, end) beats

    # --- time -------------------------------------------------------------------------
    @property
    def last_tick(self) -> Tick | None:
        """The latest beat tick, or None before the first."""
        return self._tick

    @property
    def spb(self) -> float:
        return 60.0 / self._tick.tempo

    def beat_of(self, t: float) -> float:
        return self._tick.beat + (t - self._tick.t) / self.spb

    def time_of(self, beat: float) -> float:
        return self._tick.t + (beat - self._tick.beat) * self.spb

    # --- input ------------------------------------------------------------------------
    def feed(self, event) -> Plan:
        """One input event (NoteOn, NoteOff, Control, Tick); returns what to schedule."""
        if isinstance(event, Tick):
            return self.tick(event)
        if self._tick is None:  # before the first beat there is no grid to hear on
            if isinstance(event, NoteOn | NoteOff) and self.tracker.is_chord_note(event.note, event.channel):
                (self.tracker.note_on if isinstance(event, NoteOn) and event.velocity else self.tracker.note_off)(
                    event.note, event.channel)
            return Plan([])
        if isinstance(event, Control):
            if event.control == SUSTAIN:
                self.tracker.sustain(event.value >= 64)
            return Plan([])
        is_on = isinstance(event, NoteOn) and event.velocity > 0
        if self._is_chord_hand(event.note, event.channel):
            (self.tracker.note_on if is_on else self.tracker.note_off)(event.note, event.channel)
            if self.settings.mode == "duet" and self._state != "play":
                return self._update(event.t)  # the first chord: join in from the next beat
            return Plan([])
        if self.settings.mode != "call":  # duet and solo listen for chords and dynamics only
            if is_on:
                self._velocity = 0.7 * self._velocity + 0.3 * event.velocity
            return Plan([])
        beat = self.beat_of(event.t)
        if not is_on:
            self.listener.note_off(beat, event.note)
            return self._update(event.t)
        self._velocity = 0.7 * self._velocity + 0.3 * event.velocity
        plan = Plan([])
        if self._state == "answer":
            if not self.settings.interrupt:
                return plan  # the answer keeps going; this note is not part of a call
            plan = self._cut(event.t)
            self.stats.interrupted += 1
        heard = self.listener.note_on(beat, event.note, event.velocity, self.tracker.chord(beat))
        if self._call_start is None:
            self._call_start = heard.onset  # on the grid, like the call's end
        return self._merge(plan, self._update(event.t))

    def tick(self, tick: Tick) -> Plan:
        """A beat begins: follow its time and tempo, then hear and plan.

        A beat that is not the next one (the transport started again at 0, or moved to
        a song position) begins a new timeline.  What was heard and planned on the old
        one means nothing on it: what sounds is cut, and the call in progress, the
        player's line and the model's place in it start afresh.  (Kept, a phrase from
        before a Start held the call's start, so the next call was measured from it and
        ignored, and the model's place stayed ahead of the new call, so it heard none
        of it.)"""
        plan = Plan([])
        if self._tick is not None and tick.beat != self._tick.beat + 1:
            plan = self._cut(tick.t)
            self._call_start = self._cursor = self._last_bar = None
            self.listener.reset()
            self.memory.cut()
        self._tick = tick
        return self._merge(plan, self._update(tick.t))

    def wake(self, t: float) -> Plan:
        """The time the engine asked to be woken at has come."""
        return self._update(t) if self._tick else Plan([])

    def adopt_chords(self, other: Engine) -> None:
        """Take over another engine's chord tracker (keys held, last chord, pedal), keeping
        this engine's split, chord channel and progression: for a model switch."""
        tracker = other.tracker
        tracker.split, tracker.chord_channel = self.tracker.split, self.tracker.chord_channel
        tracker.progression = self.tracker.progression
        self.tracker = tracker
        self._velocity = other._velocity

    def set_mode(self, mode: str, t: float) -> Plan:
        """Switch mode between beats; anything sounding is released, nothing hangs."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        plan = self._cut(t) if self._state != "listen" else Plan([])
        self.settings.mode = mode
        self._call_start = None
        self.listener.reset()
        return self._merge(plan, self._update(t) if self._tick else Plan([]))

    def stop(self, t: float) -> Plan:
        """Silence: cancel everything from `t` and release what sounds."""
        plan = self._cut(t)
        self._state = "listen"
        self._call_start = None
        return plan

    def _is_chord_hand(self, note: int, channel: int) -> bool:
        s = self.settings
        if s.melody_channel is not None:
            return channel != s.melody_channel and self.tracker.is_chord_note(note, channel)
        return self.tracker.is_chord_note(note, channel)

    # --- the timeline ------------------------------------------------------------------
    def _position(self, beat: float) -> tuple[float, bool]:
        bar = math.floor(beat / self.settings.beats_per_bar + _EPS)
        first = bar != self._last_bar
        if first:
            self._prev_in_bar = None
        self._last_bar = bar
        return beat - bar * self.settings.beats_per_bar, first

    def _chord(self, beat: float) -> Chord | None:
        """The latest known chord; in solo mode with nothing to follow, the standard changes."""
        chord = self.tracker.chord(beat)
        if chord is None and self.settings.mode == "solo":
            chord = _DEFAULT_PROGRESSION.chord_at(beat)
        return chord

    def _hear_rest(self, until: float) -> None:
        """Rests from the cursor to `until`, split at bar lines as in training
        (`timeline.rests`); a silence longer than `MAX_GAP_BARS` is heard as its last bars."""
        bpb = self.settings.beats_per_bar
        if self._cursor is None:
            self._cursor = until
            return
        if until - self._cursor > MAX_GAP_BARS * bpb:
            self._cursor = (math.floor(until / bpb) - MAX_GAP_BARS) * bpb
        for onset, stop in rests(self._cursor, until, bpb):
            self._hear(None, onset, stop - onset, self._chord(onset))
        self._cursor = max(self._cursor, until)

    def _hear(self, midi: int | None, onset: float, dur: float, chord: Chord | None) -> None:
        bar_pos, first = self._position(onset)
        value = encode_value(midi, dur, chord or NO_CHORD, self._prev_in_bar)
        self.soloist.hear(value, bar_pos, first, chord, midi)
        self.memory.learn(value, midi)
        if midi is not None:
            self._prev_in_bar = midi
        self._cursor = onset + dur
        self.stats.heard_values += 1

    def _hear_player(self) -> None:
        for note in self.listener.take_completed():
            onset = note.onset if self._cursor is None else max(note.onset, self._cursor)
            dur = note.end - onset
            if dur < MIN_DUR - _EPS:
                continue
            self._hear_rest(onset)
            self._hear(note.pitch, onset, dur, note.chord)

    # --- planning ----------------------------------------------------------------------
    def _update(self, t: float) -> Plan:
        s = self.settings
        now = self.beat_of(t)
        plan = Plan([])
        self._hear_player()
        self._sounding = [n for n in self._sounding if n.end > now + _EPS]
        if s.mode == "call":
            if self._state == "listen":
                self._check_call_end(now, plan)
            if self._state == "answer" and self._cursor is not None and self._cursor >= self._answer_end - _EPS:
                self._state = "listen"
        elif self._state != "play" and (s.mode == "solo" or self._chord(now) is not None):
            self._start_playing(now, "play")
        if self._state in ("answer", "play"):
            self._plan_until(math.floor(now + _EPS) + 1 + s.lookahead, now, plan)
        if s.mode == "call" and self._state == "listen" and self._call_start is not None \
                and not self.listener.sounding and self.listener.last_end is not None:
            plan.wake = self.time_of(self.listener.last_end + s.silence_beats)
        return plan

    def _check_call_end(self, now: float, plan: Plan) -> None:
        s = self.settings
        if self._call_start is None:
            return
        too_long = now - self._call_start >= s.max_bars * s.beats_per_bar - _EPS
        silent = (not self.listener.sounding and self.listener.last_end is not None
                  and now >= self.listener.last_end + s.silence_beats - _EPS)
        if not (too_long or silent):
            return
        end = self.listener.last_end if silent else now
        length = end - self._call_start
        self._call_start = None
        if length < s.min_beats - _EPS:
            self.stats.ignored_calls += 1
            return
        start = self._start_playing(now, "answer")
        self._answer_end = start + (s.answer_beats or max(1, round(length)))
        self.answers.append((start, self._answer_end))
        self.stats.answers += 1

    def _start_playing(self, now: float, state: str) -> float:
        """Begin playing on the next beat (or bar); returns that beat."""
        s = self.settings
        start = math.floor(now + _EPS) + 1
        if s.answer_start == "bar" and state == "answer":
            start = math.ceil(start / s.beats_per_bar - _EPS) * s.beats_per_bar
        self._hear_player()
        self._hear_rest(start)
        self._cursor = start
        self._state = state
        self._snapshots.clear()
        return start

    def _plan_until(self, horizon: float, now: float, plan: Plan) -> None:
        s = self.settings
        end = self._answer_end if self._state == "answer" else math.inf
        sampling = self.soloist.sampling  # settings may have changed since the last beat
        if (sampling.temperature, sampling.top_p) != (s.temperature, s.top_p):
            self.soloist.sampling = Sampling(s.temperature, 0, s.top_p)
        self.soloist.pitch_range = s.pitch_range
        self.soloist.imitation = s.imitation
        while self._cursor < min(horizon, end) - _EPS:
            onset = self._cursor
            chord = self._chord(onset) or _DEFAULT_PROGRESSION.chord_at(onset)
            self._snapshots.append((onset, self._snapshot()))
            bar_pos, first = self._position(onset)
            value, midi, dur = self.soloist.play(bar_pos, first, chord)
            stop = min(keep_the_beat(onset, dur), end)
            dur = stop - onset
            if abs(dur - parse_value(value).dur) > _EPS:  # the beat, the answer's end, MIN_DUR
                value = encode_value(midi, dur, chord, self._prev_in_bar)
                self.soloist.amend(value)
            self.trace.append((onset, value, midi, chord.symbol))
            self._cursor = stop
            if midi is None or dur < MIN_DUR - _EPS or onset < now - _EPS:
                continue
            self._prev_in_bar = midi
            if s.density < 1 and self.rng.random() >= s.density:
                continue
            accent = 8 if abs(onset - round(onset)) < _EPS else 0
            jitter = int(self.rng.integers(-s.velocity_humanize, s.velocity_humanize + 1)) if s.velocity_humanize else 0
            vel = min(max(round(self._velocity) + accent + jitter, 1), 127)
            plan.events.append(Out(self.time_of(onset), "on", midi, vel, s.output_channel, value))
            plan.events.append(Out(self.time_of(onset + dur), "off", midi, 0, s.output_channel))
            self._sounding.append(_Sounding(onset, onset + dur, midi))
            self.stats.played_notes += 1
        if len(self._snapshots) > 64:
            del self._snapshots[:-64]

    def _snapshot(self) -> tuple:
        return (self.soloist.snapshot(), self._last_bar, self._prev_in_bar)

    def _cut(self, t: float) -> Plan:
        """End what is playing at `t`: cancel the rest, release the sounding notes, and
        roll the model back to before the first value that will not be heard."""
        now = self.beat_of(t) if self._tick else 0.0
        cut = time_key(t)  # 'already started' is judged as the schedule judges it
        offs = [Out(t, "off", n.note, 0, self.settings.output_channel) for n in self._sounding
                if time_key(self.time_of(n.onset)) < cut < time_key(self.time_of(n.end))]
        self._sounding = []
        for onset, snap in self._snapshots:
            if onset >= now - _EPS:
                soloist, self._last_bar, self._prev_in_bar = snap
                self.soloist.restore(soloist)
                self._cursor = onset
                break
        self._snapshots.clear()
        if self._state != "listen":
            self._state = "listen"
        return Plan(offs, cancel_from=t)

    @staticmethod
    def _merge(a: Plan, b: Plan) -> Plan:
        return Plan(a.events + b.events, a.cancel_from if a.cancel_from is not None else b.cancel_from,
                    b.wake if b.wake is not None else a.wake)

