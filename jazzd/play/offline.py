"""Drive the engine with a manual clock: offline rendering and scripted scenarios.

numpy (through the engine); the calling thread; no real clock -- time jumps from event
to event, so a whole performance renders as fast as the model steps.  The turns are the
daemon's (`jazzd.play.driver`), so offline and live play agree.

Two performances: `render` (solo mode over the engine's progression: `jazzd generate`,
`jazzd report`) and `answer_call` (call mode: a phrase played in by a keyboard player,
with its chords in the left hand, and the engine's answer: the listening measure of
`jazzd report`, `jazzd.judge.listening`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jazzd.music.chords import Chord
from jazzd.play.driver import Driver
from jazzd.play.events import NoteOff, NoteOn, Out, Plan, Tick
from jazzd.play.schedule import time_key

if TYPE_CHECKING:
    from jazzd.play.render import Note  # mido: loaded only where notes are made


class ManualClock(Driver):
    """Feeds scripted input events and beat ticks to an engine in time order, honours
    its wake-up requests, and records what would go out of the port, when (`sent`).

    Input is queued and fed at its time's turn, all input of one time together, as the
    daemon feeds what one poll returns: so the nth note of a chord at `t` cannot find
    a note starting at `t` already sent."""

    def __init__(self, engine, tempo: float = 120.0, start: float = 0.0, first_beat: int = 0):
        self.sent: list[Out] = []
        super().__init__(engine, self.sent.append)
        self.tempo = tempo
        self.now = start
        self._beat = first_beat
        self._next_beat_t = start
        self._anchor = (start, first_beat)  # beat b is at t0 + (b - b0) * spb, as InternalClock has it
        self._inputs: list = []  # fed at the next turn at their (one) time

    def apply(self, plan: Plan) -> None:
        for ev in plan.events:
            if ev.t < self.now - 1e-9:
                raise AssertionError(f"engine planned {ev} in the past (now {self.now})")
        super().apply(plan)

    _apply = apply

    def _run(self, t: float, through: bool) -> None:
        """Every turn before `t` (and at `t`, with `through`) at its beat, wake-up or
        input time, in time order; then what is due before `t` (at `t` too, with
        `through`) goes out.  Times compare in microseconds (`time_key`), as in the
        schedule: input and a beat within one microsecond share a turn, as they share
        one of the daemon's polls."""
        while True:
            times = [self._next_beat_t]
            if self.wake is not None:
                times.append(self.wake)
            if self._inputs:
                times.append(self._inputs[0].t)
            nxt = min(times)
            key = time_key(nxt)
            if key > time_key(t) or (key == time_key(t) and not through):
                break
            self.now = nxt
            inputs = []
            if self._inputs and time_key(self._inputs[0].t) == key:
                inputs, self._inputs = self._inputs, []
            ticks = []
            if time_key(self._next_beat_t) == key:
                ticks.append(Tick(nxt, self._beat, self.tempo))
                self._beat += 1
                t0, b0 = self._anchor
                self._next_beat_t = t0 + (self._beat - b0) * (60.0 / self.tempo)
            self.turn(nxt, lambda inputs=inputs: self._feed_all(inputs), ticks)
        self.send_due(t, before=not through)
        self.now = t

    def _feed_all(self, events) -> None:
        for event in events:
            self.apply(self.engine.feed(event))

    def feed(self, event) -> None:
        """Input at `event.t` (not before the last input's time)."""
        if self._inputs and time_key(event.t) == time_key(self._inputs[0].t):
            self._inputs.append(event)
            return
        self._run(event.t, through=False)
        self._inputs = [event]

    def set_tempo(self, t: float, tempo: float) -> None:
        """From the next beat on, beats come at `tempo`."""
        self._run(t, through=True)
        self._anchor = (self._next_beat_t, self._beat)
        self.tempo = tempo

    def run_until(self, t: float) -> list[Out]:
        self._run(t, through=True)
        return self.sent

    def stop(self, t: float) -> list[Out]:
        """Input up to `t` is heard, then everything stops at `t` (a beat or wake-up at
        `t` itself would only plan what the stop cancels)."""
        self._run(t, through=False)
        self._feed_all(self._inputs)
        self._inputs = []
        self.sent += super().stop(t)
        return self.sent


def notes_of(sent: Sequence[Out], spb: float) -> list[Note]:
    """The notes among output events (each note on with its note off), in beats from
    time 0, sorted by onset; each carries the grammar value its note on played."""
    from jazzd.play.render import Note

    notes, open_ = [], {}
    for ev in sent:
        if ev.kind == "on":
            open_[ev.number] = ev
        elif ev.kind == "off" and ev.number in open_:
            on = open_.pop(ev.number)
            grid = None
            if on.grid is not None:  # the feel moved it; an off the feel did not place (a cut) ends it as played
                end = ev.grid if ev.grid is not None else ev.t
                grid = (on.grid / spb, (end - on.grid) / spb)
            notes.append(Note(on.t / spb, (ev.t - on.t) / spb, on.number, on.value, on.grammar, grid))
    notes.sort(key=lambda n: n.onset)
    return notes


def render(engine, bars: int, tempo: float):
    """Play `bars` bars through the engine (solo mode, over its progression) from beat 0
    at time 0, and return the notes that went out, in beats: the same path as live play.
    Each note carries the grammar value it played, taken from its note on."""
    spb = 60.0 / tempo
    bpb = engine.settings.beats_per_bar
    engine.settings.mode = "solo"
    clock = ManualClock(engine, tempo=tempo, start=-spb, first_beat=-1)  # plays from beat 0
    end = bars * bpb * spb
    clock.run_until(end - 1e-9)
    return notes_of(clock.stop(end), spb)


# --- call mode: a phrase played in, and the answer ------------------------------------

CALL_VELOCITY = 90   # a call note without a velocity of its own
CHORD_VELOCITY = 70
_EPS = 1e-6


@dataclass(frozen=True)
class CallAnswer:
    """What `answer_call` heard and played, in beats on the call's timeline.

    `notes`: the answer's notes, from `span`'s start on (empty without an answer).
    `span`: (start, end) beats of the engine's answer to the whole call, or None when it
    gave none (a call shorter than `min_beats`).  `call_end`: the call's last note off,
    as played.  `gap`: beats from `call_end` to the answer's first note (None without
    one).  `early`: answers the engine began before the call's last note on: it took a
    rest inside the phrase (or the phrase's length, past `max_bars`) for the end of the
    call, and the player's next note cut that answer short.
    """

    notes: list[Note]
    span: tuple[float, float] | None
    call_end: float
    gap: float | None
    early: int


def hands(settings) -> tuple[int, int]:
    """(melody, chord) channels a keyboard player's two hands use under the settings:
    the melody on the melody channel (else channel 0, or 1 when 0 is the chord
    channel); the chords on the chord channel, else on the melody's (the split tells
    the hands apart), else, when only the melody has a channel, on the next channel."""
    s = settings
    melody = s.melody_channel if s.melody_channel is not None else (1 if s.chord_channel == 0 else 0)
    if s.chord_channel is not None:
        return melody, s.chord_channel
    return melody, melody if s.melody_channel is None else (melody + 1) % 16


def left_hand(chord: Chord, split: int) -> list[int]:
    """A voicing of `chord` below `split` (`render.voicing`: the root in the bass, the
    other tones closed in the octave under the split): what the left hand holds."""
    from jazzd.play.render import voicing

    out = set()
    for p in voicing(chord, low=max(split - 12, 0)):
        while p >= split and p >= 12:
            p -= 12
        out.add(p)
    return sorted(out)


def answer_call(engine, call: Sequence[Note], chords: Sequence[tuple[float, Chord]], tempo: float,
                play_answer: bool = True) -> CallAnswer:
    """Play a call into the engine in call mode, as a keyboard player would, and return
    the answer.

    `call`: the melody (`render.Note`s, beats; monophonic: a note that overlaps the
    next is released at the next onset), played as NoteOn/NoteOff on the melody
    channel (`hands`).  `chords`: the changes, (beat, Chord), each held in the left
    hand (`left_hand`, below the split, on the chord channel) until the next, the last
    to the end.  The changes go on under the answer, as a player comps through it: give
    them for as long as the answer may last.  Beat 0 is a bar line (the engine counts
    bars from it) and sounds at time 0; beats begin one beat before the first event.  A
    call note the engine would hear as the chord hand (below the split, when no
    channels are set) is a ValueError, and so is a chord note it would hear as melody.

    The run lasts until the latest the answer can end (a bar after the call's silence,
    plus `answer_beats`, or the call's length); with `play_answer` off it stops a beat
    after the call's silence and keeps no notes: enough to count `early` answers, and
    `span` still says whether the call was answered.  Deterministic: the same engine
    (seed, settings), call, chords and tempo give the same answer.
    """
    s = engine.settings
    s.mode = "call"
    if not call:
        raise ValueError("answer_call: the call has no notes")
    call = sorted(call, key=lambda n: n.onset)
    melody_ch, chord_ch = hands(s)
    spb = 60.0 / tempo
    # (beat, order, event); at one time: releases, then the left hand, then the melody.
    events: list[tuple[float, int, NoteOn | NoteOff]] = []
    call_end = call[0].onset
    for k, n in enumerate(call):
        if engine.is_chord_hand(n.midi, melody_ch):
            raise ValueError(f"answer_call: call note {n.midi} would be heard as the chord hand "
                             f"(split {s.split}); set melody_channel and chord_channel, or transpose the call")
        end = n.onset + n.dur if k + 1 == len(call) else min(n.onset + n.dur, call[k + 1].onset)
        end = max(end, n.onset + _EPS)
        call_end = max(call_end, end)
        events.append((n.onset, 2, NoteOn(n.onset * spb, n.midi, n.velocity or CALL_VELOCITY, melody_ch)))
        events.append((end, 0, NoteOff(end * spb, n.midi, melody_ch)))
    last_on = events[-2][2]
    if play_answer:
        length = call_end - call[0].onset
        horizon = (math.floor(call_end + s.silence_beats) + 1 + s.beats_per_bar
                   + (s.answer_beats or math.ceil(length) + 1))
    else:
        horizon = call_end + s.silence_beats + 1
    held: list[int] = []
    for beat, chord in sorted(chords, key=lambda c: c[0]):
        if beat >= horizon:
            break
        voiced = left_hand(chord, s.split)
        for p in voiced:
            if not engine.is_chord_hand(p, chord_ch):
                raise ValueError(f"answer_call: chord note {p} would be heard as the melody "
                                 f"(split {s.split}); set a chord_channel or a higher split")
        events += [(beat, 0, NoteOff(beat * spb, p, chord_ch)) for p in held if p not in voiced]
        events += [(beat, 1, NoteOn(beat * spb, p, CHORD_VELOCITY, chord_ch)) for p in voiced if p not in held]
        held = voiced
    events.sort(key=lambda e: (time_key(e[2].t), e[1]))
    first = math.floor(min([call[0].onset] + [b for b, _ in chords]) + _EPS) - 1
    clock = ManualClock(engine, tempo=tempo, start=first * spb, first_beat=first)
    answers_before, triggered_before = len(engine.answers), engine.stats.answers
    early = 0
    for beat, _order, ev in events:
        if beat >= horizon:
            break
        clock.feed(ev)  # the engine runs up to the event's time; the event waits for its turn
        if ev is last_on:
            early = engine.stats.answers - triggered_before
    clock.run_until(horizon * spb - 1e-9)
    sent = clock.stop(horizon * spb)
    later = list(engine.answers)[answers_before:][early:]
    span = (float(later[0][0]), float(later[0][1])) if later else None
    notes = []
    if play_answer and span is not None:
        notes = [n for n in notes_of(sent, spb) if n.onset >= span[0] - _EPS]
    gap = notes[0].onset - call_end if notes else None
    return CallAnswer(notes, span, call_end, gap, early)
