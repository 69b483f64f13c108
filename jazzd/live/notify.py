"""Tell systemd how the daemon is doing (sd_notify without libsystemd).  Main/beat-loop
thread; stdlib only: must not import numpy, tensorflow or music21.

`Notifier` sends the sd_notify(3) datagrams READY, RELOADING, STOPPING, STATUS and
WATCHDOG to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or '@name' for an
abstract socket).  Without $NOTIFY_SOCKET (not run by systemd, or Type= is not notify)
every call is a silent no-op.  The environment is read once, at construction.

A send never raises and never blocks: the socket is non-blocking, so a full queue on
systemd's side drops the datagram.  Failures are counted in `failures` (the last one
in `last_error`) and logged once, as a warning, on the "jazzd.live.notify" logger.

The watchdog (`WatchdogSec=` in the unit) is fed from the beat loop, without a thread:

    notifier = Notifier()
    ...
    now = time.monotonic()
    if notifier.watchdog_due(now):      # one float comparison; False when disabled
        notifier.watchdog(now)          # WATCHDOG=1, next ping due half an interval on

so a beat loop that stops turning also stops pinging, and systemd restarts the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# systemd reads a notification with one recv into a buffer of this size (PIPE_BUF);
# longer datagrams are refused, so STATUS texts are cut well below it.
MAX_STATUS_CHARS = 1024


def _address(value: str | None) -> str | None:
    """The socket address for $NOTIFY_SOCKET, or None: '/path', or '@name' -> '\\0name'."""
    if not value or len(value) < 2:
        return None
    if value[0] == "/":
        return value
    if value[0] == "@":
        return "\0" + value[1:]
    return None  # e.g. "vsock:..." (systemd >= 253): not for a local MIDI daemon


def _watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of $WATCHDOG_USEC in seconds if the watchdog is ours, else None (sd_watchdog_enabled)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    wd_pid = environ.get("WATCHDOG_PID")
    if wd_pid is not None:
        try:
            if int(wd_pid) != pid:
                return None  # set for another process (e.g. our parent): not ours to feed
        except ValueError:
            return None
    return usec / 2e6


def _clean(text: str) -> str:
    """One line, at most MAX_STATUS_CHARS: a newline would start another assignment."""
    return " ".join(str(text).splitlines())[:MAX_STATUS_CHARS]


class Notifier:
    """An sd_notify client.  Without $NOTIFY_SOCKET every send does nothing and returns False.

    `environ` (default os.environ) and `pid` (default os.getpid()) are read once, here.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None):
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET")
        self._address = _address(raw)
        self._socket: socket.socket | None = None
        self.failures = 0
        self.last_error: str | None = None
        if raw and self._address is None:
            self._fail(f"unsupported NOTIFY_SOCKET {raw!r} (want /path or @name)")
        self._interval_s = _watchdog_interval_s(env, os.getpid() if pid is None else pid)
        # `watchdog_due` is one comparison: infinity when the watchdog is off, else the
        # next deadline (0.0: due at once, since systemd started counting at exec).
        self._next_ping_s = float("inf") if self._interval_s is None else 0.0

    # -- the messages ------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """READY=1: start-up (or a reload) is complete."""
        return self.send("READY=1" if status is None else f"READY=1\nSTATUS={_clean(status)}")

    def reloading(self) -> bool:
        """RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, µs): call `ready` when done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """STOPPING=1: the daemon is shutting down."""
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        """STATUS=<text>: one line for `systemctl status` (newlines become spaces)."""
        return self.send(f"STATUS={_clean(text)}")

    def watchdog(self, now: float | None = None) -> bool:
        """WATCHDOG=1, and the next ping falls due half a watchdog interval after `now`
        (time.monotonic() seconds; read here when None)."""
        if self._interval_s is not None:
            self._next_ping_s = (time.monotonic() if now is None else now) + self._interval_s
        return self.send("WATCHDOG=1")

    # -- the watchdog schedule ---------------------------------------------------

    def watchdog_due(self, now: float) -> bool:
        """True when a ping is due at `now` (time.monotonic() seconds).  Cheap: one compare."""
        return now >= self._next_ping_s

    # -- the transport -----------------------------------------------------------

    def send(self, message: str) -> bool:
        """Send one datagram; True if it left.  Never raises: failures are counted."""
        if self._address is None:
            return False
        try:
            if self._socket is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._socket = sock
            # sendto, not connect: a socket that systemd re-creates (daemon-reexec) is
            # found again by its address on the next call.
            self._socket.sendto(message.encode("utf-8", "replace"), self._address)
            return True
        except Exception as err:  # never take the daemon down over a notification
            first_line = str(message).split("\n", 1)[0]
            self._fail(f"{first_line}: {type(err).__name__}: {err}")
            return False

    def close(self) -> None:
        """Close the socket (sends after this open a new one)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, what: str) -> None:
        self.failures += 1
        self.last_error = what
        if self.failures == 1:
            log.warning("systemd notification failed (further failures are only counted): %s",
                        what)
