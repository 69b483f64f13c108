"""Drive the engine with a manual clock: offline rendering and scripted scenarios.

numpy (through the engine); the calling thread; no real clock -- time jumps from event
to event, so a whole performance renders as fast as the model steps.  The turns are the
daemon's (`jazzd.play.driver`), so offline and live play agree.
"""

from __future__ import annotations

from jazzd.play.driver import Driver
from jazzd.play.events import Out, Plan, Tick
from jazzd.play.schedule import time_key


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


def render(engine, bars: int, tempo: float):
    """Play `bars` bars through the engine (solo mode, over its progression) from beat 0
    at time 0, and return the notes that went out, in beats: the same path as live play.
    Each note carries the grammar value it played, taken from its note on."""
    from jazzd.play.render import Note

    spb = 60.0 / tempo
    bpb = engine.settings.beats_per_bar
    engine.settings.mode = "solo"
    clock = ManualClock(engine, tempo=tempo, start=-spb, first_beat=-1)  # plays from beat 0
    end = bars * bpb * spb
    clock.run_until(end - 1e-9)
    notes, open_ = [], {}
    for ev in clock.stop(end):
        if ev.kind == "on":
            open_[ev.number] = ev
        elif ev.kind == "off" and ev.number in open_:
            on = open_.pop(ev.number)
            notes.append(Note(on.t / spb, (ev.t - on.t) / spb, on.number, on.value, on.grammar))
    notes.sort(key=lambda n: n.onset)
    return notes
