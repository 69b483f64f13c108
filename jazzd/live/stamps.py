"""When each input message arrived, in the loop's clock, from the MIDI system's own times.

The loop reads its input when it polls, and a poll comes late when the machine is busy
(on 2 cores with other work: several milliseconds).  A MIDI clock follower that took the
poll's time for a pulse's saw pulses late, in runs: its line learnt the lateness, and
the on-time pulses after it looked early enough to be dropped as stray (the JACK
external-clock test failed that way, a beat shifted by a pulse for good, when the
machine was loaded).  The MIDI system times every message where it arrives: rtmidi
hands each with `delta`, the seconds since the one before it, as JACK's process thread
(which runs at real-time priority, whatever the loop does) or ALSA's queue saw them.

So message k arrived at `offset + since[k]`, `since` being the sum of the deltas from
the first message on, in the MIDI system's time.  The offset (where the MIDI system's
time zero falls on the loop's clock) is not handed over; but every message arrived
before the poll that read it, so `read - since[k]` is an upper bound of it, and the
smallest bound yet, from the read that came soonest after its message, is the
estimate (`tests/daemonsession.arrivals` times the tests' recordings the same way).
It rises by `RELAX` a second between reads (at most `RELAX_STEP` from one read with
messages to the next, so an idle hour does not forget it), so that a delta the MIDI
system lost (a full rtmidi queue) or two clocks that drift apart cannot skew the times
for good; a prompt read pulls it straight back.  Each time is kept between the previous read and
this one, where the message must have arrived.

rtmidi's delta is the time since the previous message it *received*, counted or not:
messages filtered by `ignore_types` still move it, and their time is lost with them
(measured on JACK: ignoring active sensing between notes made every later time early
by the gaps).  So the ports take every message type and jazzd drops them itself.

Pure arithmetic: no clock is read here (the caller passes the read time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RELAX = 0.001       # seconds a second the offset may rise between reads (heals lost deltas)
RELAX_STEP = 0.001  # and at most this much from one read to the next (an idle hour keeps it)


class Arrivals:
    """Loop times of the messages of one input stream (reset when the port is reopened:
    a new rtmidi client starts its deltas again)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._since: float | None = None   # MIDI-system seconds from the first message on
        self._offset: float | None = None  # loop time of that first message, at most
        self._offset_at = 0.0              # the read that last moved the offset
        self._read = -math.inf             # the previous read (poll), with messages or not

    def stamp(self, deltas: Iterable[float], read: float) -> list[float]:
        """The arrival times of the messages a poll at `read` returned, oldest first,
        from their deltas (seconds since the message before).  Call it for every poll,
        the empty ones too: a message arrived after the poll before its own."""
        low, self._read = self._read, read
        since = []
        total = self._since
        for delta in deltas:
            total = 0.0 if total is None else total + max(delta, 0.0)
            since.append(total)
        if not since:
            return []
        self._since = total
        bound = read - total  # the last message arrived by `read` at the latest
        if self._offset is None or bound < self._offset:
            self._offset = bound
        else:
            rise = min(RELAX * (read - self._offset_at), RELAX_STEP)
            self._offset = min(bound, self._offset + rise)
        self._offset_at = read
        return [min(read, max(low, self._offset + s)) for s in since]
