"""What grew in the running daemon: tracemalloc snapshots compared, for `jazzd ctl memory`.

A service that runs for weeks must keep its memory flat after warm-up (issue 16); when
it does not, the question is which lines of code hold the new memory.  Python's
tracemalloc answers it, but only when it traces from the start, and tracing costs
(about twice the time of every allocation, and the traces' own memory): so it is off
unless jazzd is started with Python's own switch, PYTHONTRACEMALLOC=1 (or N for N
frames of each allocation's stack).  The control socket's `memory` command then takes
a snapshot and compares it with the one the previous `memory` took (the first: with
nothing, so it lists what is held): the allocation sites whose live memory grew most,
and the traced total.  `bench/soak.py --trace` asks once after warm-up and once at the
end.

A snapshot stalls the loop for as long as it takes (tens of milliseconds with a model
loaded): a diagnosis, not something to ask while playing on stage.  One snapshot is
kept (the last one), so asking again and again holds no more than one.

Stdlib only; no clock is read here (the caller passes the time).
"""

from __future__ import annotations

import tracemalloc

from jazzd.errors import JazzdError

TOP = 10        # sites in a report unless asked for another number
MAX_TOP = 100   # ... and at most this many

# tracemalloc's own allocations (and this module's) are not the daemon's
_IGNORE = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__),
           tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
           tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"), tracemalloc.Filter(False, "<unknown>"))


class MemoryTrace:
    """Compares each snapshot with the previous one.  Holds one snapshot at most."""

    def __init__(self) -> None:
        self._last: tracemalloc.Snapshot | None = None
        self._last_at: float | None = None

    def report(self, now: float, top: int = TOP) -> dict:
        """The `top` sites (file:line) whose traced memory grew most since the previous
        report; `total_kb` what the sites hold now and `grown_kb` how much more than at
        the previous report (None the first time); `traced_kb` all tracemalloc sees,
        the snapshots themselves included.  JazzdError (one line, with the fix) when
        tracing is off."""
        if not tracemalloc.is_tracing():
            raise JazzdError("memory: allocation tracing is off; start jazzd with PYTHONTRACEMALLOC=1 "
                             "in its environment to trace (it slows every allocation)")
        if not 1 <= top <= MAX_TOP:
            raise JazzdError(f"memory: top must be 1 to {MAX_TOP}, got {top}")
        snapshot = tracemalloc.take_snapshot().filter_traces(_IGNORE)
        current, peak = tracemalloc.get_traced_memory()
        if self._last is None:
            stats = snapshot.statistics("lineno")
            sites = [_site(s.traceback, s.size, s.size, s.count, s.count) for s in stats[:top]]
        else:
            stats = snapshot.compare_to(self._last, "lineno")  # sorted by the growth, largest first
            sites = [_site(s.traceback, s.size, s.size_diff, s.count, s.count_diff) for s in stats[:top]]
        since = None if self._last_at is None else round(now - self._last_at, 3)
        self._last, self._last_at = snapshot, now
        grown = None if since is None else round(sum(s.size_diff for s in stats) / 1024, 1)
        return {"traced_kb": round(current / 1024, 1), "traced_peak_kb": round(peak / 1024, 1),
                "frames": tracemalloc.get_traceback_limit(), "since_s": since,
                "total_kb": round(sum(s.size for s in stats) / 1024, 1), "grown_kb": grown, "sites": sites}


def _site(traceback: tracemalloc.Traceback, size: int, size_diff: int, count: int, count_diff: int) -> dict:
    frame = traceback[0]
    return {"site": f"{frame.filename}:{frame.lineno}", "kb": round(size / 1024, 2),
            "diff_kb": round(size_diff / 1024, 2), "blocks": count, "diff_blocks": count_diff}
