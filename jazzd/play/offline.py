"""Drive the engine with a manual clock: offline rendering and scripted scenarios.

numpy (through the engine); the calling thread; no real clock -- time jumps from event
to event, so a whole performance renders as fast as the model steps.
"""

from __future__ import annotations

from jazzd.play.events import Out, Tick
from jazzd.play.schedule import Schedule


class ManualClock:
    """Feeds scripted input events and beat ticks to an engine in time order, honours
    its wake-up requests, and records what would go out of the port, when."""

    def __init__(self, engine, tempo: float = 120.0, start: float = 0.0, first_beat: int = 0):
        self.engine = engine
        self.tempo = tempo
        self.schedule = Schedule()
        self.sent: list[Out] = []
        self.now = start
        self._beat = first_beat
        self._next_beat_t = start
        self._wake: float | None = None

    def _apply(self, plan) -> None:
        for ev in plan.events:
            if ev.t < self.now - 1e-9:
                raise AssertionError(f"engine planned {ev} in the past (now {self.now})")
        self.schedule.add(plan)
        if plan.wake is not None:
            self._wake = plan.wake

    def _advance_to(self, t: float, inclusive: bool = False) -> None:
        """Run beats, wake-ups and sends up to time t.  As in the daemon's loop, input
        that arrives at t is fed before what is scheduled at t is sent."""
        while True:
            candidates = [self._next_beat_t]
            if self._wake is not None:
                candidates.append(self._wake)
            nxt = min(candidates)
            if nxt > t:
                break
            self.sent += self.schedule.due(nxt, before=True)
            self.now = nxt
            if nxt == self._next_beat_t:
                self._apply(self.engine.tick(Tick(nxt, self._beat, self.tempo)))
                self._beat += 1
                self._next_beat_t = nxt + 60.0 / self.tempo
            if self._wake is not None and self._wake <= nxt:
                self._wake = None
                self._apply(self.engine.wake(nxt))
        self.sent += self.schedule.due(t, before=not inclusive)
        self.now = t

    def feed(self, event) -> None:
        self._advance_to(event.t)
        self._apply(self.engine.feed(event))

    def set_tempo(self, t: float, tempo: float) -> None:
        """From the next beat on, beats come at `tempo`."""
        self._advance_to(t)
        self.tempo = tempo

    def run_until(self, t: float) -> list[Out]:
        self._advance_to(t, inclusive=True)
        return self.sent

    def stop(self, t: float) -> list[Out]:
        self._advance_to(t)
        self._apply(self.engine.stop(t))
        self.sent += self.schedule.due(t)
        self.sent += self.schedule.clear()
        return self.sent


def render(engine, bars: int, tempo: float):
    """Play `bars` bars through the engine (solo mode, over its progression) from beat 0
    at time 0, and return the notes that went out, in beats: the same path as live play."""
    from jazzd.play.render import Note

    spb = 60.0 / tempo
    bpb = engine.settings.beats_per_bar
    engine.settings.mode = "solo"
    clock = ManualClock(engine, tempo=tempo, start=-spb, first_beat=-1)  # plays from beat 0
    end = bars * bpb * spb
    sent = clock.run_until(end - 1e-9)
    sent = sent + clock.stop(end)[len(sent):]
    notes, open_ = [], {}
    for ev in sent:
        if ev.kind == "on":
            open_[ev.number] = ev
        elif ev.kind == "off" and ev.number in open_:
            on = open_.pop(ev.number)
            notes.append(Note(on.t / spb, (ev.t - on.t) / spb, on.number, on.value))
    notes.sort(key=lambda n: n.onset)
    values = {round(b, 6): v for b, v, midi, _ in engine.trace if midi is not None}
    return [Note(n.onset, n.dur, n.midi, n.velocity, values.get(round(n.onset, 6), "")) for n in notes]
