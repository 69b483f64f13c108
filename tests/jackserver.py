"""A private JACK server on the dummy backend, for tests that need real MIDI ports.

A test module gets the `jack_server` fixture with

    from .jackserver import jack_server  # noqa: F401

but ruff then reports F811 on every test that takes `jack_server` as an argument (the
import counts as redefined while unused).  Lint-clean alternatives: put that import line
in tests/conftest.py once (the fixture is then visible everywhere), or write

    from . import jackserver
    jack_server = jackserver.jack_server

The server (`jackd -S -n jazzd-test-<pid> -d dummy -r 48000 -p 64`) starts on first use and
runs until the end of the pytest session; each test gets JACK_DEFAULT_SERVER pointing at
it (and JACK_NO_START_SERVER=1), and the rtmidi clients it made with `client()` are
closed after it.  Tests skip only where jackd is not installed (CI installs jackd2).

`-S` (jack2's synchronous mode): a client late in a cycle holds the cycle up (up to 10
timeouts, about 27 ms at period 64) instead of being skipped.  In jack2's default
asynchronous mode the server starts the next cycle without the late client, the
keyboard's next cycle clears its output buffer (the buffer a single connection reads
without a copy) before the late reader has read it, and the message is lost without an
error: "client = jazzd was not finished" in the log, and 59 notes of 60 in a test.  A
dummy backend has no hardware deadline, so waiting costs nothing but the time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jazzd.live import rtjack
from jazzd.live.jackserver import SYNC, remove_leftovers

RATE = 48000
PERIOD = 64
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for the servers and daemons a test starts: they get SIGTERM when the
    test process dies, however it dies (a crash in rtmidi's JACK thread, a timeout's
    SIGKILL), instead of playing on and loading the machine for every later test."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


@dataclass
class JackServer:
    """A running private jackd.  `name` is its server name (JACK_DEFAULT_SERVER)."""

    name: str
    process: subprocess.Popen
    log_path: Path
    start_s: float = 0.0
    stop_s: float = 0.0
    _clients: list = field(default_factory=list, repr=False)

    def client(self, kind: str, name: str = "test"):
        """A new rtmidi client on this server: kind "in" (a recorder, which receives
        SysEx and clock) or "out" (a keyboard).  Closed after the test."""
        import rtmidi

        if kind == "in":
            midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=name, queue_size_limit=8192)
            midi.ignore_types(sysex=False, timing=False, active_sense=False)
        elif kind == "out":
            midi = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
        else:
            raise ValueError(f'kind must be "in" or "out", not {kind!r}')
        self._clients.append(midi)
        return midi

    def close_clients(self) -> None:
        """Close this test's clients as jazzd closes its own (`jazzd.live.rtjack`): a
        plain `close_port` here crashed CI's test process once (jack2's latency race)."""
        while self._clients:
            rtjack.close(self._clients.pop())

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then wait (jackd takes about 1.5 s to exit); SIGKILL as a last resort."""
        self.close_clients()
        if self.process.poll() is None:
            t0 = time.perf_counter()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.stop_s = time.perf_counter() - t0
        remove_leftovers(self.name)  # (the product's own clean-up of a server's semaphores)
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def _wait_ready(server: JackServer, env: dict) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    jack_wait = shutil.which("jack_wait")
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        if jack_wait:
            # `jack_wait -c` says "running" or "not running"; polling it (rather than one
            # `jack_wait -w -t 10`) notices at once a jackd that exited with an error.
            done = subprocess.run([jack_wait, "-c"], env=env, capture_output=True, text=True)
            if done.stdout.strip() == "running":
                return
        else:  # no jack_wait (some distributions package it apart): ask rtmidi
            import rtmidi

            try:
                rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="probe").delete()
                return
            except rtmidi.RtMidiError:
                pass
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"jackd -n {server.name} did not start within {START_TIMEOUT_S:.0f} s "
                f"(exit code {server.process.returncode}); its log:\n{server.log()}")


def start_server(name: str | None = None, period: int = PERIOD) -> JackServer:
    """Start a private jackd on the dummy backend and wait until clients can connect.
    `period` in frames (at 48 kHz): longer periods tolerate a busier machine."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("needs jackd (apt-get install --no-install-recommends jackd2)")
    name = name or f"jazzd-test-{os.getpid()}"
    env = {**os.environ, "JACK_NO_START_SERVER": "1", "JACK_DEFAULT_SERVER": name}
    fd, log = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
    t0 = time.perf_counter()
    with os.fdopen(fd, "w") as log_file:
        process = subprocess.Popen(
            [jackd, SYNC, "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(period)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env,
            preexec_fn=die_with_parent)
    server = JackServer(name, process, Path(log))
    _wait_ready(server, env)
    server.start_s = time.perf_counter() - t0
    return server


_SERVER: JackServer | None = None


def _session_server(config) -> JackServer:
    global _SERVER
    if _SERVER is None or _SERVER.process.poll() is not None:
        _SERVER = start_server()
        config.add_cleanup(_SERVER.stop)
    return _SERVER


@pytest.fixture
def jack_server(request, monkeypatch) -> JackServer:
    """The session's private JACK server, with JACK_DEFAULT_SERVER set for this test."""
    server = _session_server(request.config)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    yield server
    server.close_clients()
