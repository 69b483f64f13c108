"""jazzd in an Ableton Link session: the binding's side of `--clock link`.  Main thread.

Ableton Link (GPL-2.0-or-later) comes with the optional extra `pip install 'jazzd[link]'`
(LinkPython-extern); `import link` happens only when a `LinkSession` is made, so jazzd
runs and imports without it, and asking for it without the extra is a one-line
ConfigError naming the install command.

No Python runs in Link's threads: no callbacks are registered.  The loop asks for a
`snapshot` each turn (`captureAppSessionState`, a copy under Link's lock: about 1 µs)
and `jazzd.live.clock.LinkFollower` does the arithmetic.

Link's clock is not the loop's: on Linux `clock().micros()` reads CLOCK_MONOTONIC_RAW,
the loop `time.monotonic()` (CLOCK_MONOTONIC, which NTP slews: up to 500 ppm, so the
two drift apart by up to 0.5 ms a second).  Their offset is measured at start and again
every `BRIDGE_S` (the best of a few back-to-back reads, each under a microsecond), so
times convert within a few microseconds plus the drift since the last measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from jazzd.errors import ConfigError
from jazzd.live.clock import LinkTimeline

INSTALL = "pip install 'jazzd[link]'"
BRIDGE_S = 1.0          # the clocks' offset is measured again this often
BRIDGE_READS = 5        # back-to-back reads per measurement; the tightest one counts
BRIDGE_MAX_S = 50e-6    # a measurement whose reads straddle more than this (a preemption) is not taken


def load_link():
    """The `link` module (LinkPython-extern), or a ConfigError naming the install command."""
    try:
        import link
    except ImportError:
        raise ConfigError('clock.source = "link" needs Ableton Link, an optional extra: '
                          f"{INSTALL} (LinkPython-extern; GPL-2.0-or-later)") from None
    return link


def clock_offset(clock, monotonic: Callable[[], float] = time.monotonic, reads: int = BRIDGE_READS
                 ) -> tuple[float, float]:
    """(Link's clock `clock.micros()` minus `monotonic`, in seconds; how long the read
    that gave it took): the tightest of `reads` back-to-back reads.  (The tests and
    bench/timing.py place a second peer's timeline on their clock with it too.)"""
    best = None
    for _ in range(reads):
        a = monotonic()
        micros = clock.micros()
        b = monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, micros / 1e6 - (a + b) / 2)
    return best[1], best[0]


class LinkSession:
    """jazzd's Link peer: enabled at once (Link resets a peer's timeline when it is
    enabled, so a new peer never imposes its tempo on a session already running: the
    older session wins when two meet, by Link's rule, unless they began within 0.5 s of
    each other), with start/stop sync as asked, proposing `tempo` only while alone.

    `module` and `monotonic` are the binding and the loop's clock (tests: fakes)."""

    def __init__(self, tempo: float, quantum: int, start_stop: bool = False, module=None,
                 monotonic: Callable[[], float] = time.monotonic):
        link = module if module is not None else load_link()
        self.quantum = float(quantum)
        self._monotonic = monotonic
        self._link = link.Link(float(tempo))
        self._link.startStopSyncEnabled = bool(start_stop)
        self._clock = self._link.clock()
        self._offset = self._measure(None)
        self._next_bridge = monotonic() + BRIDGE_S
        self._link.enabled = True
        self.enabled_at = monotonic()

    def _measure(self, old: float | None) -> float:
        """Link's clock minus the loop's (seconds), from the tightest of a few reads."""
        offset, straddle = clock_offset(self._clock, self._monotonic, BRIDGE_READS)
        if old is not None and straddle > BRIDGE_MAX_S:
            return old
        return offset

    def link_micros(self, t: float) -> int:
        """Loop time t as Link's host time in microseconds."""
        return round((t + self._offset) * 1e6)

    def loop_time(self, micros: int) -> float:
        """Link host time (µs) as loop time."""
        return micros / 1e6 - self._offset

    @property
    def peers(self) -> int:
        return self._link.numPeers()

    def snapshot(self, now: float) -> LinkTimeline:
        """The session at loop time `now`: its beat (quantum = bar), tempo, transport."""
        if now >= self._next_bridge:
            self._offset = self._measure(self._offset)
            self._next_bridge = now + BRIDGE_S
        state = self._link.captureAppSessionState()
        at = self.link_micros(now)
        beat = state.beatAtTime(at, self.quantum)
        # The tempo the beats advance at, from the timeline itself (the stable `tempo()`
        # may differ from it by Link's drift compensation).
        tempo = 60.0 * (state.beatAtTime(at + 1_000_000, self.quantum) - beat)
        return LinkTimeline(now, beat, tempo if tempo > 0 else state.tempo(), state.isPlaying(),
                            self.loop_time(state.timeForIsPlaying()), self._link.numPeers())

    def propose_tempo(self, tempo: float, now: float) -> bool:
        """Set the session's tempo from `now` on, but only while jazzd is alone in it
        (a peer does not override the tempo of the others); True if it did."""
        if self._link.numPeers():
            return False
        state = self._link.captureAppSessionState()
        state.setTempo(float(tempo), self.link_micros(now))
        self._link.commitAppSessionState(state)
        return True

    def close(self) -> None:
        """Leave the session."""
        self._link.enabled = False
