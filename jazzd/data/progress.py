"""A small progress bar on stderr (no dependency).  Offline commands only.

On a terminal it redraws one line; elsewhere (logs, CI) it prints nothing until the end,
so captured output stays clean.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str = "", stream=None, width: int = 30):
        self.total, self.desc, self.width = max(total, 0), desc, width
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.tty:
            frac = self.done / self.total if self.total else 1.0
            bar = "#" * int(frac * self.width)
            self.stream.write(f"\r{self.desc} [{bar:<{self.width}}] {self.done}/{self.total}")
            self.stream.flush()

    def close(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.tty:
            self.stream.write("\n")
        self.stream.write(f"{self.desc}: {self.done}/{self.total} in {elapsed:.1f} s\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
