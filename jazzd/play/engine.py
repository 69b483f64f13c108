"""The improvising engine: a deterministic core fed with events, returning timed notes.

numpy (through the runtime); one thread owns it.  It never reads a clock, the
environment or a global random state: input events and beat ticks carry their times
(seconds), and all randomness comes from the injected `numpy.random.Generator`.  So the
same inputs, times and seed give the same output, live or offline.

The engine keeps one timeline of values (the player's and its own) that it feeds to
the LSTM in order.  At each beat tick (and at the wake-up times it asks for) it
- hears the player's completed melody notes: quantised, encoded against the chord under
  them, and teacher-forced into the model, with rests for the gaps; with
  `follow_register` its range moves to where the player plays (`jazzd.play.register`);
- decides what to play (mode `call`: answer a finished call from the next beat;
  `duet`: take turns with the player's melody over the chords it hears; `solo`: play
  over the progression with no input);
- plans the notes that start before the horizon (the next beat, plus `lookahead - 1`
  more), with the latest known chord, and commits them: they come back as `Out` events
  with absolute times, as the rendition plays them (`_emit`: the feel places them,
  `jazzd.play.feel`, then the articulation sets their note offs, `jazzd.play.articulation`).  Its own notes tile time, so no two overlap, and every note on
  is returned with its note off.
If the player comes back during an answer (and `interrupt` is on), the answer ends at
once: everything scheduled from then on is cancelled and sounding notes are released.

What the engine plans ahead is a promise it can take back.  Before each value it plans
it keeps a snapshot of the model, and before the rests that lead into an answer or a
duet turn, one of those too; a cut (`_cut`) rolls the model back to the first value that
will not be heard.  When the cut is the player coming in (a note at grid point `at`),
the value of jazzd's sounding at `at` is heard again shortened to end there (or not at
all, if under the shortest value), so the player's note goes into the timeline where it
was played, not after the end of a note of jazzd's that was cut off.  A note played
before the answer's first beat (with `interrupt` on) withdraws the answer: nothing of it
sounded, and the call goes on.

Turn-taking in call mode (`call.turn_taking`).  "silence": a call is over after
`silence_beats` (1) of silence and answered on the next beat, 1-2 beats after its last
note off.  "model" (the default): at the call's last note off the engine also reads,
without committing to it (snapshot, step, restore: `Soloist.silence_probability`), the
model's probability that a silence of a beat or more follows: its next-value
distribution summed over the rests at least that long, and past a bar line (where a
silence is split into rests, as in training) times the same read after a rest to the
bar line.  At or above `end_probability` (0.2) the call has clearly ended and is over
after `end_silence_beats` (0.5); below, after `continue_silence_beats` (1.25), so a
rest of `silence_beats` inside a phrase the model expects to go on does not end it.
Either way the answer starts on the next beat after that (`call_silence`).  Why these
numbers, measured on the 3,167 rests after notes in the 41 WJD validation solos
(`bench/turns.py`, phrases ending at rests of a beat or more): such a rest follows 5%
of notes; the shipped model gives 0.2 or more to 24% of real phrase ends and to 8.5% of
rests inside phrases (median 0.10 and 0.04; AUC 0.70).  With these settings the median
gap from a phrase end to the answer goes from 1.67 beats to 1.50 (for the clear ends,
178 of 743, from 2.0 to 1.0: answered on the next beat), and rests inside phrases that
would start an answer go from 0 to 3 of 2,424.  Counting rests of up to 2 beats as
inside phrases: gap 1.75 -> 1.50 beats, rests answered 3.6% -> 4.9% (2.6% of those the
model expects to go on, 3.3% before).  The model's probability helps mostly where it is
sure (a long note to a bar line): elsewhere the silence itself says as much, and the
trade between a quick answer and a rest taken for an end stays about where the
silence alone puts it (`bench/turns.py` prints both).

A turn opens with a note.  After a call the model, having heard the silence as rests,
often predicts more rest, and an answer could open with bars of it: 15 of the report's
480 answers had no note at all (the caller hears "no answer"), and `jazzd demo` at seed
7 answered a call with two bars of rests.  So until a turn (an answer, jazzd taking the
lead in a duet, a solo's start) has a note that sounds, the soloist draws no rest that
would end more than `OPENING_REST` (2) beats after the turn's start, nor past the middle
of an answer (a short call gets an answer as short): a rest up to there is a breath
before the reply, as players take one; and `density` never thins out the note that
opens a turn.  Only the turns that would have opened later
change (the report: answers without a note 15 -> 0; the shipped model's solos and the
golden logs unchanged; the seed recipe's solos, which open with long rests, changed).

Duet (`mode = "duet"`): two soloists taking turns in one timeline.  The model hears
every melody note the player plays, as in call mode, in order with the rests between,
and its own line; whoever leads owns the timeline:
- jazzd leads once it has a chord and the player is silent, from the next beat;
- the player's note on while jazzd leads is the player taking over: jazzd's plan from
  that moment is cut and the model rolled back to the player's onset (see above); from
  then the model hears the player's notes as they end;
- while the player leads, jazzd thins out: with `duet.overlap` above 0 its line goes on
  under the player's, off the timeline: a copy of the model's state taken when the
  player came in (jazzd's line up to the player's onset), so the model's own place
  stays with the player.  Of that line it plays only what a budget allows: its notes
  may sound at most `overlap` (default 0.1) times as long as the player's have sounded
  so far in this turn, every note counted whole when it is planned, so it overlaps the
  player at most that share of the player's sounding time.  0 = it rests.  The line
  rests (the model with it: no steps; it hears its silence bar by bar as bar lines
  pass) until the budget holds an eighth note (`ASIDE_MIN_BEATS`), comes in with a note
  on the beat after next (no rest drawn first: it waited to play; its silence is heard
  in one beat, its note drawn in the next, so the beat that draws the note does not
  also hear the silence), moves no faster than eighths (no value shorter than
  `ASIDE_MIN_BEATS`, nor one that would end off the grid, where the beat would cut it
  short: a line under a soloist thins out, it does not double a sixteenth run), draws
  notes only as long as the budget holds,
  and rests again, drawing nothing, once the budget holds no eighth: at the default,
  after 5 beats of the player's notes it adds an eighth, over a 4-bar phrase about 1.6
  beats of notes.  It is jazzd's line, not the player's: it neither breaks the
  player's line in the session memory nor is learnt by it.  At the default overlap at
  most one value of its line is drawn in a beat (at most two, eighths, at overlap 1):
  at 240 bpm under the player's detached 16th notes (4 values heard a beat), with the
  shipped model, the p99 beat costs 0.61-0.62 ms, 0.80-0.93 with a full session
  memory at imitation 1 (`bench/engine.py`, each beat's least time over identical
  runs; single runs on the project's shared machine 0.65-1.17 and 0.9-1.7 ms:
  bench/RESULTS.md);
- after `duet.gap_beats` (0.5) of the player's silence, jazzd fills the gap from the
  next beat (a gap of 2 beats after a note ending on beat b is filled from b + 1): what
  of the line under the player would sound past that beat is cut, and jazzd's line
  goes on from the timeline, which heard the player's phrase and its rests: its next
  phrase continues from what it heard.  The player coming back cuts it again.
The player's melody still sets the dynamics.

Session memory (`jazzd.model.memory`): every value the engine hears of the player (their
notes and the rests between them, as they reach the model) is also learned by `memory`,
never a value jazzd plays, nor a rest of its lines; the soloist mixes the memory into
the model's choice as much as `imitation` says (0: not at all, the decoding of an
engine without memory).  The memory
outlives the engine: the daemon hands the same one to the engine of a new model.  At
`imitation` above 0 (with `follow_register`) an answer or duet turn is placed from the
player's last note moved toward the centre of their register
(`jazzd.play.register.Register.re_entry`), as real next phrases re-enter.

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
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from jazzd.model.articulation import Articulation, shipped_articulation
from jazzd.model.feel import FeelModel, shipped_feel
from jazzd.model.memory import SessionMemory
from jazzd.model.runtime import Runtime
from jazzd.music.chords import NO_CHORD, Chord
from jazzd.music.grammar import MIN_DUR, encode_value, parse_value
from jazzd.music.progression import DEFAULT_CHANGES, Progression, parse_progression
from jazzd.music.timeline import keep_the_beat, rests, snap
from jazzd.play.articulation import Articulate
from jazzd.play.events import Control, NoteOff, NoteOn, Out, Plan, Tick
from jazzd.play.feel import PLAYER_WINDOW_BEATS, Feel
from jazzd.play.listener import Listener
from jazzd.play.register import Register
from jazzd.play.schedule import time_key
from jazzd.play.settings import MODES, Settings
from jazzd.play.soloist import Sampling, Soloist
from jazzd.play.tracker import ChordTracker

SUSTAIN = 64
_EPS = 1e-6
MAX_GAP_BARS = 2  # a longer silence is heard as this many bars of rest
_SLIVER = 0.0005  # a silence shorter than this is written 0.000 beats: not heard (`_hear_rest`)
OPENING_REST = 2.0  # beats: a turn's first note comes at most this long after its start
TRACE = 512       # values played and heard kept in `Engine.trace` and `Engine.heard` (tests, renders)
ASIDE_MIN_BEATS = 0.5  # duet: the line under the player rests until it may sound an eighth
_DEFAULT_PROGRESSION = parse_progression(DEFAULT_CHANGES)


@dataclass
class _Sounding:
    onset: float  # beats, as played (`feel`)
    end: float
    note: int


@dataclass
class _Planned:
    """A value of jazzd's line as planned (or the rests leading into its turn,
    `lead_in`), with the model's snapshot from before it: what a cut rolls back to."""

    onset: float  # beats
    end: float
    midi: int | None
    chord: Chord | None
    snap: tuple
    lead_in: bool = False


@dataclass
class Stats:
    heard_values: int = 0
    played_notes: int = 0
    answers: int = 0
    interrupted: int = 0
    ignored_calls: int = 0
    heard_notes: int = 0    # the player's melody notes the model heard
    withdrawn: int = 0      # answers taken back before their first beat: the call went on
    player_turns: int = 0   # duet: times the player took over from jazzd
    aside_notes: int = 0    # duet: notes jazzd played under the player (within `overlap`)


def call_silence(settings: Settings, end_probability: float) -> float:
    """The silence (beats) after a call's last note off that ends the call, by
    `call.turn_taking`: "silence", `silence_beats`; "model", `end_silence_beats` when the
    model's probability that a rest of a beat or more follows is at least
    `end_probability`, else `continue_silence_beats`.  The answer starts on the next beat
    after it (`floor(last note off + silence) + 1`)."""
    s = settings
    if s.turn_taking == "silence":
        return s.silence_beats
    return s.end_silence_beats if end_probability >= s.end_probability else s.continue_silence_beats


class Engine:
    def __init__(self, runtime: Runtime, rng: np.random.Generator, settings: Settings | None = None,
                 progression: Progression | None = None, memory: SessionMemory | None = None,
                 feel_model: FeelModel | None = None, articulation: Articulation | None = None,
                 trace: int = TRACE):
        self.settings = settings or Settings()
        self.rng = rng
        # The feel's spread draws from its own stream (spawned: the engine's is untouched,
        # so feel = straight chooses exactly what an engine without a feel stage chose).
        self.feel = Feel(feel_model if feel_model is not None else shipped_feel(), rng.spawn(1)[0])
        # Articulation too (a second spawned stream: legato draws nothing, and neither
        # the engine's choices nor the feel's spread change with the articulation).
        self.articulate = Articulate(articulation if articulation is not None else shipped_articulation(),
                                     rng.spawn(1)[0])
        self.memory = memory if memory is not None else SessionMemory()
        self.soloist = Soloist(runtime, rng, Sampling(self.settings.temperature, 0, self.settings.top_p),
                               self.settings.pitch_range, self.memory)
        self.tracker = ChordTracker(self.settings.split, self.settings.chord_channel, progression)
        self.listener = Listener()
        self.register = Register()          # the player's register, for follow_register
        self.stats = Stats()
        self._tick: Tick | None = None
        self._cursor: float | None = None   # beats: where the next value of the timeline starts
        self._last_bar: int | None = None
        self._prev_in_bar: int | None = None
        self._state = "listen"              # listen | answer | play
        self._answer_end = 0.0
        self._call_start: float | None = None
        self._sounding: list[_Sounding] = []
        self._snapshots: list[_Planned] = []
        self._velocity = 90.0
        self._answer_start = 0.0
        self._turn_start = 0.0              # the beat jazzd's turn (answer, solo, duet lead) began
        self._turn_sounded = True           # ... and whether a note of it has gone out since
        self._answered_call: float | None = None  # the start of the call answered, while it can be withdrawn
        self._end_p: tuple[tuple, float] | None = None  # (where the call ended, end probability)
        self._aside: tuple | None = None   # duet: jazzd's line under the player's (snapshot, cursor)
        self._aside_enters: float | None = None  # ... the beat it comes in at, after resting
        self._turn_time = 0.0              # duet: beats the player's notes sounded this turn
        self._overlap_spent = 0.0          # duet: beats jazzd's notes sounded under them
        # What it did, for tests, logs and the status line (bounded).  `trace` and `heard`
        # keep the latest `trace` values for tests and offline renders; nothing reads them
        # live, so the daemon keeps none (0): a service for weeks holds no container that
        # only fills (issue 16: 512 of each took ~10 minutes of bench/soak.py's duet to fill).
        self.trace: deque[tuple[float, str, int | None, str]] = deque(maxlen=trace)  # beat, value, midi, chord
        self.answers: deque[tuple[float, float]] = deque(maxlen=64)  # (start, end) beats
        self.heard: deque[tuple[float, str, int | None]] = deque(maxlen=trace)  # the player's: beat, value, midi
        self.call_ends: deque[tuple[float, float, float]] = deque(maxlen=64)  # (last note off, p, silence)

    # --- time -------------------------------------------------------------------------
    @property
    def last_tick(self) -> Tick | None:
        """The latest beat tick, or None before the first."""
        return self._tick

    @property
    def spb(self) -> float:
        return 60.0 / self._tick.tempo

    @property
    def state(self) -> str:
        """What the engine does now: listen, answer (call mode) or play."""
        return self._state

    def chord_at(self, t: float) -> Chord | None:
        """The chord the engine plays over at time `t` (the player's, else the progression's)."""
        return self._chord(self.beat_of(t) if self._tick is not None else 0.0)

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
        mode = self.settings.mode
        if self.is_chord_hand(event.note, event.channel):
            (self.tracker.note_on if is_on else self.tracker.note_off)(event.note, event.channel)
            if mode == "duet" and self._state != "play":
                return self._update(event.t)  # the first chord: join in from the next beat
            return Plan([])
        if mode == "solo":  # solo listens for chords and dynamics only
            if is_on:
                self._velocity = 0.7 * self._velocity + 0.3 * event.velocity
            return Plan([])
        beat = self.beat_of(event.t if event.played is None else event.played)  # as played
        if not is_on:
            self.listener.note_off(beat, event.note)
            return self._update(event.t)
        self._velocity = 0.7 * self._velocity + 0.3 * event.velocity
        plan = Plan([])
        if mode == "call" and self._state == "answer":
            if not self.settings.interrupt:
                return plan  # the answer keeps going; this note is not part of a call
            if self._answered_call is not None and time_key(event.t) <= time_key(self.time_of(self._answer_start)):
                plan = self._withdraw(event.t, snap(beat))
            else:
                plan = self._cut(event.t, snap(beat))
                self.stats.interrupted += 1
        elif mode == "duet" and (self._state == "play" or self._aside is None):
            plan = self._player_comes_in(event.t, snap(beat))
        heard = self.listener.note_on(beat, event.note, event.velocity, self.tracker.chord(beat))
        if mode == "call" and self._call_start is None:
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
            self._hear_player()  # (a note that ended on the old timeline, as it was before the jump)
            plan = self._cut(tick.t)
            self._call_start = self._cursor = self._last_bar = None
            self._turn_time = self._overlap_spent = 0.0
            self.listener.reset()
            self.memory.cut()
        self._tick = tick
        return self._merge(plan, self._update(tick.t))

    def wake(self, t: float) -> Plan:
        """The time the engine asked to be woken at has come."""
        return self._update(t) if self._tick else Plan([])

    def adopt_chords(self, other: Engine) -> None:
        """Take over another engine's chord tracker (keys held, last chord, pedal), keeping
        this engine's split, chord channel and progression, and the player's register it
        heard: for a model switch."""
        tracker = other.tracker
        tracker.split, tracker.chord_channel = self.tracker.split, self.tracker.chord_channel
        tracker.progression = self.tracker.progression
        self.tracker = tracker
        self._velocity = other._velocity
        self.register = other.register

    def set_mode(self, mode: str, t: float) -> Plan:
        """Switch mode between beats; anything sounding is released, nothing hangs."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        plan = self._cut(t) if self._state != "listen" or self._aside is not None else Plan([])
        self.settings.mode = mode
        self._call_start = None
        self._hear_player()  # (a note that ended and waits to be handed over is heard, not lost)
        self.listener.reset()
        return self._merge(plan, self._update(t) if self._tick else Plan([]))

    def stop(self, t: float) -> Plan:
        """Silence: cancel everything from `t` and release what sounds."""
        plan = self._cut(t)
        self._state = "listen"
        self._call_start = None
        return plan

    def is_chord_hand(self, note: int, channel: int) -> bool:
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

    def _hear_rest(self, until: float, own: bool = False) -> None:
        """Rests from the cursor to `until`, split at bar lines as in training
        (`timeline.rests`); a silence longer than `MAX_GAP_BARS` is heard as its last bars."""
        bpb = self.settings.beats_per_bar
        if self._cursor is None:
            self._cursor = until
            return
        if until - self._cursor > MAX_GAP_BARS * bpb:
            self._cursor = (math.floor(until / bpb) - MAX_GAP_BARS) * bpb
        for onset, stop in rests(self._cursor, until, bpb):
            if stop - onset >= _SLIVER:  # (shorter is no rest, and "R,0.000" no value: it would raise)
                self._hear(None, onset, stop - onset, self._chord(onset), own)
        self._cursor = max(self._cursor, until)

    def _hear(self, midi: int | None, onset: float, dur: float, chord: Chord | None, own: bool = False) -> None:
        """Teacher-force a value into the timeline: the player's (or a rest), or with
        `own` one of jazzd's, played shorter than planned."""
        bar_pos, first = self._position(onset)
        value = encode_value(midi, dur, chord or NO_CHORD, self._prev_in_bar)
        self.soloist.hear(value, bar_pos, first, chord, midi)
        if not own:  # (the memory learns the player's line, never jazzd's: its rests included)
            self.memory.learn(value, midi)
        if midi is not None:
            self._prev_in_bar = midi
        self._cursor = onset + dur
        if not own:
            self.stats.heard_values += 1
            if midi is not None:
                self.heard.append((onset, value, midi))

    def _hear_player(self, now: float = math.inf) -> None:
        """Hear the player's notes completed by beat `now` (`Listener.take_completed`;
        the default: every note that has ended, as when jazzd takes a turn)."""
        for note in self.listener.take_completed(now):
            self._turn_time += note.dur
            onset = note.onset if self._cursor is None else max(note.onset, self._cursor)
            dur = note.value_end - onset
            if dur < MIN_DUR - _EPS:
                continue
            self._hear_rest(onset)
            self._hear(note.pitch, onset, dur, note.chord)
            self.register.hear(note.pitch)
            self.stats.heard_notes += 1

    # --- planning ----------------------------------------------------------------------
    def _update(self, t: float) -> Plan:
        s = self.settings
        now = self.beat_of(t)
        plan = Plan([])
        self._hear_player(now)
        self._sounding = [n for n in self._sounding if n.end > now + _EPS]
        if s.mode == "call":
            if self._state == "listen":
                self._check_call_end(now, plan)
            if self._state == "answer" and self._cursor is not None and self._cursor >= self._answer_end - _EPS:
                self._state = "listen"
        elif s.mode == "duet":
            plan = self._duet_turn(now, plan)
        elif self._state != "play":
            self._start_playing(now, "play")
        if self._state in ("answer", "play"):
            self._plan_until(math.floor(now + _EPS) + 1 + s.lookahead, now, plan)
        if s.mode == "call" and self._state == "listen" and self._call_start is not None \
                and not self.listener.sounding and self.listener.last_end is not None:
            plan.wake = self.time_of(self.listener.last_end + self._call_silence(now))
        return plan

    def _check_call_end(self, now: float, plan: Plan) -> None:
        s = self.settings
        if self._call_start is None:
            return
        too_long = now - self._call_start >= s.max_bars * s.beats_per_bar - _EPS
        silent = (not self.listener.sounding and self.listener.last_end is not None
                  and now >= self.listener.last_end + self._call_silence(now) - _EPS)
        if not (too_long or silent):
            return
        end = self.listener.last_end if silent else now
        length = end - self._call_start
        call_start, self._call_start = self._call_start, None
        if length < s.min_beats - _EPS:
            self.stats.ignored_calls += 1
            return
        if silent and self._end_p is not None:
            self.call_ends.append((end, self._end_p[1], self._call_silence(now)))
        start = self._start_playing(now, "answer")
        self._answer_start = start
        self._answered_call = call_start if silent else None  # (a call that ran too long stays answered)
        self._answer_end = start + (s.answer_beats or max(1, round(length)))
        self.answers.append((start, self._answer_end))
        self.stats.answers += 1

    def _call_silence(self, now: float) -> float:
        """The silence after the call's last note off that ends it (`call_silence`).  The
        model's end probability is read once per call end, and only once the silence has
        lasted the shorter of the two it may ask for: before that, neither could end the
        call (so a player's fast line costs no read between its notes)."""
        s = self.settings
        if s.turn_taking == "silence":
            return s.silence_beats
        first = min(s.end_silence_beats, s.continue_silence_beats)
        if now < self.listener.last_end + first - _EPS:
            return first
        self._hear_player()  # the read hears the call's last note (it may still wait to be handed over)
        where = (self.listener.last_end, self._cursor)
        if self._end_p is None or self._end_p[0] != where:
            self._end_p = (where, self._end_probability())
        return call_silence(s, self._end_p[1])

    def _end_probability(self) -> float:
        """The model's probability that a silence of at least a beat follows what it has
        heard, split into rests at a bar line as `_hear_rest` would hear it."""
        if self._cursor is None:
            return 0.0
        bar = (self._last_bar, self._prev_in_bar)
        pieces = []
        for onset, stop in rests(self._cursor, self._cursor + 1.0, self.settings.beats_per_bar):
            bar_pos, first = self._position(onset)
            pieces.append((stop - onset, bar_pos, first, self._chord(onset)))
        self._last_bar, self._prev_in_bar = bar
        return self.soloist.silence_probability(pieces)

    def _withdraw(self, t: float, at: float) -> Plan:
        """The player played on before the answer's first beat: the call was not over.
        Nothing of the answer sounded: it is taken back, and the call goes on."""
        plan = self._cut(t, at)
        self._call_start, self._answered_call = self._answered_call, None
        if self.answers:
            self.answers.pop()
        self.stats.answers -= 1
        self.stats.withdrawn += 1
        return plan

    # --- duet: taking turns ------------------------------------------------------------
    def _duet_turn(self, now: float, plan: Plan) -> Plan:
        """Who leads: jazzd once it has a chord and the player is silent (for
        `gap_beats`), from the next beat; else the player, with jazzd's line under it."""
        s = self.settings
        if self._state == "play" or self._chord(now) is None:
            return plan
        lis = self.listener
        if lis.sounding or (lis.last_end is not None and now < lis.last_end + s.gap_beats - _EPS):
            self._plan_aside(now, plan)
            if not lis.sounding:
                plan.wake = self.time_of(lis.last_end + s.gap_beats)
            return plan
        start = math.floor(now + _EPS) + 1
        plan = self._merge(plan, self._end_aside(start))
        self._turn_time = self._overlap_spent = 0.0
        self._start_playing(now, "play")
        return plan

    def _player_comes_in(self, t: float, at: float) -> Plan:
        """The player's turn begins with a note at grid point `at`.  If jazzd leads, its
        plan is cut at once and the model rolled back to `at`.  jazzd's line goes on under
        the player's from `at`, off the timeline, if `overlap` lets it play at all (and
        it has a chord to play over)."""
        plan = Plan([])
        if self._state == "play":
            plan = self._cut(t, at)
            self.stats.player_turns += 1
        self._turn_time = self._overlap_spent = 0.0
        if self.settings.overlap > 0 and self._chord(at) is not None:
            main = self._line()
            self._hear_rest(at, own=True)
            self._aside, self._aside_enters = self._line(), None
            self._set_line(main)
        return plan

    def _plan_aside(self, now: float, plan: Plan) -> None:
        """Plan jazzd's line under the player's (its own copy of the model's state and
        place), sounding only what the overlap budget allows."""
        s, lis = self.settings, self.listener
        if self._aside is None or s.overlap <= 0:
            return
        horizon = math.floor(now + _EPS) + 1 + s.lookahead
        if not lis.sounding and lis.last_end is not None:  # not past where jazzd takes the lead
            horizon = min(horizon, math.floor(lis.last_end + s.gap_beats + _EPS) + 1)
        cursor = self._aside[1]
        if cursor is not None and cursor >= horizon - _EPS:
            return  # planned that far already
        if self._aside_budget(now) < ASIDE_MIN_BEATS - _EPS:
            # not an eighth to spend: the line rests, and the model with it, bar by bar
            # as bar lines pass (so coming in again costs one rest, not a bar's worth)
            bar_line = math.floor(now / s.beats_per_bar + _EPS) * s.beats_per_bar
            if cursor is not None and cursor < bar_line - _EPS:
                with self._on_aside():
                    self._hear_rest(bar_line, own=True)
            return
        enters = self._aside_enters
        if enters is not None and now < enters - 1 - _EPS:
            return  # it comes in at `enters`, drawn in the beat before it
        with self._on_aside():
            if cursor is not None and cursor < now - _EPS:
                # It rested: it hears its silence to the beat after next and comes in there,
                # its note drawn in the next beat (silence and note in different beats: the
                # beat's cost is one or the other).
                self._aside_enters = math.floor(now + _EPS) + 2
                self._hear_rest(self._aside_enters, own=True)
            else:
                self._plan_until(horizon, now, plan, aside=True, enter=enters is not None)
                self._aside_enters = None

    @contextmanager
    def _on_aside(self):
        """The line under the player's in place of the timeline for the block, then
        kept, and the timeline back."""
        main = self._line()
        self._set_line(self._aside)
        yield
        self._aside = self._line()
        self._set_line(main)

    def _aside_budget(self, now: float) -> float:
        """Beats the line under the player may still sound this turn (`overlap` of the
        player's sounding time, less what it has sounded)."""
        return self.settings.overlap * self._player_time(now) - self._overlap_spent

    def _end_aside(self, start: float) -> Plan:
        """jazzd takes the lead at beat `start`: what its line under the player would
        sound from then on is cut there (it has nothing else planned)."""
        if self._aside is None and not self._sounding:
            return Plan([])
        self._aside = None
        at = self.time_of(start)
        ch = self.settings.output_channel
        offs = [Out(at, "off", n.note, 0, ch) for n in self._sounding if n.onset < start - _EPS < n.end - 2 * _EPS]
        self._sounding = [_Sounding(n.onset, min(n.end, start), n.note) for n in self._sounding
                          if n.onset < start - _EPS]
        return Plan(offs, cancel_from=at)

    def _player_time(self, now: float) -> float:
        """Beats the player's notes have sounded this turn, up to `now`: those heard, those
        ended but not handed over yet (`Listener.take_completed`), the one sounding."""
        since = self.listener.sounding_since
        return self._turn_time + self.listener.waiting_beats + (max(now - since, 0.0) if since is not None else 0.0)

    def _start_playing(self, now: float, state: str) -> float:
        """Begin playing on the next beat (or bar); returns that beat."""
        s = self.settings
        start = math.floor(now + _EPS) + 1
        if s.answer_start == "bar" and state == "answer":
            start = math.ceil(start / s.beats_per_bar - _EPS) * s.beats_per_bar
        self._hear_player()
        before, cursor = self._snapshot(), self._cursor
        self._hear_rest(start)
        self._cursor = start
        self._state = state
        self._turn_start, self._turn_sounded = start, False
        self._snapshots.clear()
        if cursor is not None and cursor < start - _EPS:  # the rests leading in can be taken back
            self._snapshots.append(_Planned(cursor, start, None, None, before, lead_in=True))
        solo = self.soloist
        if s.imitation > 0 and s.follow_register and solo.prev_midi is not None:
            solo.prev_midi = self.register.re_entry(solo.prev_midi, s.imitation)  # (the snapshot keeps the old)
        return start

    def _plan_until(self, horizon: float, now: float, plan: Plan, aside: bool = False, enter: bool = False) -> None:
        """Plan jazzd's line from the cursor up to `horizon`.  With `aside`, the line
        under the player's in a duet: not kept for a roll-back, not in the trace, and
        sounding only within the overlap budget; `enter`: it has rested until the budget
        held a note, so it comes in with one (no rest drawn first)."""
        s = self.settings
        end = self._answer_end if self._state == "answer" and not aside else math.inf
        sampling = self.soloist.sampling  # settings may have changed since the last beat
        if (sampling.temperature, sampling.top_p) != (s.temperature, s.top_p):
            self.soloist.sampling = Sampling(s.temperature, 0, s.top_p)
        self.soloist.pitch_range = self.register.range(s.pitch_range) if s.follow_register else s.pitch_range
        self.soloist.imitation = s.imitation
        pending: list[tuple[float, float, int, int, str]] = []  # grid onset, end, midi, velocity, value
        while self._cursor < min(horizon, end) - _EPS:
            if aside:
                budget = self._aside_budget(now)
                if budget < ASIDE_MIN_BEATS - _EPS:
                    break  # no note it may play would fit: it rests, drawing nothing
            onset = self._cursor
            chord = self._chord(onset) or _DEFAULT_PROGRESSION.chord_at(onset)
            snapshot = None if aside else self._snapshot()
            bar_pos, first = self._position(onset)
            if aside:  # under the player's line: no busier than eighths, notes that fit the
                # budget, coming in with one after a rest, and the player's line goes on
                value, midi, dur = self.soloist.play(bar_pos, first, chord, 0.0 if enter else math.inf,
                                                     ASIDE_MIN_BEATS, budget, cut=False)
                enter = False
            else:  # a turn's first note comes within OPENING_REST beats of its start (and
                # in the first half of an answer): no longer rest before it
                opening = math.inf if self._turn_sounded else \
                    max(self._turn_start + min(OPENING_REST, (end - self._turn_start) / 2) - onset, 0.0)
                value, midi, dur = self.soloist.play(bar_pos, first, chord, opening)
            stop = min(keep_the_beat(onset, dur), end)
            dur = stop - onset
            if abs(dur - parse_value(value).dur) > _EPS:  # the beat, the answer's end, MIN_DUR
                value = encode_value(midi, dur, chord, self._prev_in_bar)
                self.soloist.amend(value)
            if not aside:
                self._snapshots.append(_Planned(onset, stop, midi, chord, snapshot))
                self.trace.append((onset, value, midi, chord.symbol))
            self._cursor = stop
            if midi is None or dur < MIN_DUR - _EPS or onset < now - _EPS:
                continue
            self._prev_in_bar = midi
            if aside:
                if dur > budget + _EPS:
                    break  # over the budget: the line rests until there is more to spend
                self._overlap_spent += dur
                self.stats.aside_notes += 1
            if s.density < 1 and (aside or self._turn_sounded) and self.rng.random() >= s.density:
                continue  # (the note that opens a turn is never thinned out)
            accent = 8 if abs(onset - round(onset)) < _EPS else 0
            jitter = int(self.rng.integers(-s.velocity_humanize, s.velocity_humanize + 1)) if s.velocity_humanize else 0
            vel = min(max(round(self._velocity) + accent + jitter, 1), 127)
            pending.append((onset, onset + dur, midi, vel, value))
            self.stats.played_notes += 1
            self._turn_sounded = self._turn_sounded or not aside
        if pending:
            self._emit(pending, now, plan, self._cursor >= end - _EPS)
        if len(self._snapshots) > 64:
            del self._snapshots[:-64]

    def _emit(self, pending: list, now: float, plan: Plan, closed: bool = False) -> None:
        """The planned notes (grid onset, grid end, midi, velocity, value) as played: placed
        by the feel (`jazzd.play.feel`), then their note offs by the articulation
        (`jazzd.play.articulation`; `closed`: the line ends at the cursor): note on and
        note off events, and what sounds."""
        s = self.settings
        tempo = self._tick.tempo
        if s.feel == "player":
            self.feel.hear_player(self.listener.raw_onsets(PLAYER_WINDOW_BEATS), self.spb)
        if s.articulation == "player":
            self.articulate.hear_player(self.listener.raw_notes(PLAYER_WINDOW_BEATS), tempo)
        self.feel.set(s.feel, s.feel_amount, tempo)
        grid = [(on, end) for on, end, *_ in pending]
        played = self.articulate.offs(self.feel.place(grid, now), grid, self._cursor, closed,
                                      s.articulation, s.articulation_amount, tempo)
        moved = played != grid
        for (grid_on, grid_end, midi, vel, value), (on, end) in zip(pending, played, strict=True):
            plan.events.append(Out(self.time_of(on), "on", midi, vel, s.output_channel, value,
                                   self.time_of(grid_on) if moved else None))
            plan.events.append(Out(self.time_of(end), "off", midi, 0, s.output_channel,
                                   grid=self.time_of(grid_end) if moved else None))
            self._sounding.append(_Sounding(on, end, midi))

    def _snapshot(self) -> tuple:
        return (self.soloist.snapshot(), self._last_bar, self._prev_in_bar)

    def _line(self) -> tuple:
        """A copy of the line's state: the model's, its place in the bar, and the cursor."""
        return (self._snapshot(), self._cursor)

    def _set_line(self, line: tuple) -> None:
        (soloist, self._last_bar, self._prev_in_bar), self._cursor = line
        self.soloist.restore(soloist)

    def _restore(self, planned: _Planned) -> None:
        soloist, self._last_bar, self._prev_in_bar = planned.snap
        self.soloist.restore(soloist)
        self._cursor = planned.onset

    def _cut(self, t: float, at: float | None = None) -> Plan:
        """End what is playing at `t`: cancel the rest, release the sounding notes, and
        roll the model back to before the first value that will not be heard.  With `at`
        (the grid point where the player came in), to `at` itself: the value sounding
        there is heard again cut short to end at `at`, and the rests leading into jazzd's
        turn, if `at` falls in them, are taken back too."""
        now = self.beat_of(t) if self._tick else 0.0
        cut = time_key(t)  # 'already started' is judged as the schedule judges it
        offs = [Out(t, "off", n.note, 0, self.settings.output_channel) for n in self._sounding
                if time_key(self.time_of(n.onset)) < cut < time_key(self.time_of(n.end))]
        self._sounding = []
        for planned in self._snapshots:
            if at is None:
                if planned.lead_in or planned.onset < now - _EPS:
                    continue
                self._restore(planned)
            else:
                if planned.end <= at + _EPS:
                    continue
                self._restore(planned)
                if planned.midi is not None and at - planned.onset >= MIN_DUR - _EPS:
                    self._hear(planned.midi, planned.onset, at - planned.onset, planned.chord, own=True)
            break
        self._snapshots.clear()
        self._aside = None
        if self._state != "listen":
            self._state = "listen"
        return Plan(offs, cancel_from=t)

    @staticmethod
    def _merge(a: Plan, b: Plan) -> Plan:
        return Plan(a.events + b.events, a.cancel_from if a.cancel_from is not None else b.cancel_from,
                    b.wake if b.wake is not None else a.wake)

