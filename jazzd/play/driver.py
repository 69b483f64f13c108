"""The driver loop: the one way time moves an engine, live and offline.  Pure; the
thread that owns the engine (the daemon's real-time loop, or the caller's offline).

The driver never reads a clock: each `turn` gets its time `now` (seconds) from the
caller.  The daemon turns at every poll with the real time (`jazzd.live.daemon`);
`ManualClock` turns at each beat, wake-up and input time, jumping from one to the next,
so a whole performance renders as fast as the model steps.  Both hand the driver the
same things in the same order, so live and offline cannot disagree.  A turn:

1. sends what was due before `now`;
2. takes the input that arrived by `now` (it is fed before what starts at `now` goes
   out: a player who interrupts at `now` cancels a note starting then, as the engine's
   cut and the schedule assume);
3. sends what is due at `now`, so a beat's own notes never wait for step 4's planning;
4. ticks the beats that began, then wakes the engine if the time it asked for has come.
The caller sends again what fell due while the engine planned (`send_due`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from jazzd.play.events import Out, Plan, Tick
from jazzd.play.schedule import Schedule


class Driver:
    """An engine, the schedule of what it planned, and its wake-up time; `send` is
    called with each `Out` event when its time has come."""

    def __init__(self, engine, send: Callable[[Out], None], schedule: Schedule | None = None):
        self.engine = engine
        self.send = send
        self.schedule = Schedule() if schedule is None else schedule
        self.wake: float | None = None  # when the engine asked to be called again

    def apply(self, plan: Plan) -> None:
        """Schedule what the engine asked for (cancellations first) and note its wake-up."""
        if plan.cancel_from is not None or plan.events:
            self.schedule.add(plan)
        if plan.wake is not None:
            self.wake = plan.wake

    def send_due(self, now: float, before: bool = False) -> None:
        """Send every event due at or before `now` (strictly before, with `before`)."""
        for ev in self.schedule.due(now, before):
            self.send(ev)

    def turn(self, now: float, take_input: Callable[[], None] | None = None,
             ticks: Iterable[Tick] = ()) -> None:
        """One turn at `now` (see the module docstring).  `take_input` feeds the input
        that arrived by `now` (through `apply`); `ticks` are the beats that began by
        `now`, in order (read only after the input is taken)."""
        self.send_due(now, before=True)
        if take_input is not None:
            take_input()
        self.send_due(now)
        for tick in ticks:
            self.apply(self.engine.tick(tick))
        if self.wake is not None and now >= self.wake:
            self.wake = None
            self.apply(self.engine.wake(now))

    def stop(self, now: float) -> list[Out]:
        """Silence at `now`: the engine cuts everything from `now` and releases what
        sounds (sent at once); returns the note offs still scheduled after that (the
        caller releases its sounding notes its own way), and the schedule is empty."""
        self.apply(self.engine.stop(now))
        self.send_due(now)
        return self.schedule.clear()
