"""The schedule: engine plans waiting for their time.  Pure; the real-time thread.

Never imports numpy, tensorflow or music21.  The daemon's loop adds each `Plan` the
engine returns and sends what `due(now)` hands back; offline rendering and the tests
drain it the same way, so live and offline agree on what was actually sent.  At equal
times a note off goes before a note on, so a repeated pitch is re-struck, not swallowed.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import replace

from jazzd.play.events import Out, Plan

_ORDER = {"off": 0, "cc": 1, "on": 2}


def time_key(t: float) -> int:
    """Times compare in whole microseconds, so a note off and the next note on computed
    from the same beat by two different plans count as simultaneous (off first)."""
    return round(t * 1e6)


class Schedule:
    def __init__(self, limit: int = 4096):
        # Bounded: at most `limit` events but note offs, which are kept past it; an off
        # leaves when due, and the engine plans a few beats ahead, so those are few.
        self._heap: list[tuple[int, int, int, Out]] = []
        self._seq = itertools.count()
        self.limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, plan: Plan) -> None:
        """Cancel what the plan cancels, then queue its events (bounded: past `limit`
        note ons are dropped and counted; note offs are always kept)."""
        if plan.cancel_from is not None:
            cut = time_key(plan.cancel_from)
            # Note offs at the cut itself stay: their notes ended there, as planned.  A note
            # starting at the cut is cancelled (see Engine._cut, which agrees on this).
            self._heap = [e for e in self._heap if e[0] < cut or (e[0] == cut and e[3].kind == "off")]
            heapq.heapify(self._heap)
        for ev in plan.events:
            if len(self._heap) >= self.limit and ev.kind == "on":
                self.dropped += 1
                continue
            heapq.heappush(self._heap, (time_key(ev.t), _ORDER[ev.kind], next(self._seq), ev))

    def next_time(self) -> float | None:
        return self._heap[0][3].t if self._heap else None

    def due(self, now: float, before: bool = False) -> list[Out]:
        """Every event at or before `now` (strictly before, with `before`), in time order."""
        out = []
        limit = time_key(now) - (1 if before else 0)
        while self._heap and self._heap[0][0] <= limit:
            out.append(heapq.heappop(self._heap)[3])
        return out

    def retime(self, move, after: float) -> None:
        """Move every event later than `after` to `move(t)` (a clock followed changed its
        timeline: what was planned on the old one goes to the same beats of the new)."""
        limit = time_key(after)
        moved = []
        for key, order, seq, ev in self._heap:
            if key > limit:
                ev = replace(ev, t=move(ev.t))
                key = time_key(ev.t)
            moved.append((key, order, seq, ev))
        heapq.heapify(moved)
        self._heap = moved

    def clear(self) -> list[Out]:
        """Drop everything; returns the note offs that were pending (to send at once)."""
        offs = [e[3] for e in self._heap if e[3].kind == "off"]
        self._heap.clear()
        return offs
