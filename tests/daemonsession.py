"""A `jazzd run` process on a real JACK server, for the end-to-end tests: a real notify
socket, real signals, a keyboard client playing into jazzd and a recorder of its output."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from jazzd.live.midi import parse
from jazzd.play.events import NoteOff, NoteOn

from .jackserver import die_with_parent
from .tinymodel import make_bundle

TEMPO = 120.0
SPB = 60.0 / TEMPO


class Session:
    """A jazzd process plus a keyboard (into jazzd:in) and a recorder (from jazzd's out)."""

    def __init__(self, jack_server, tmp_path, *args, model_flag=True, wire=True, env=None):
        self.tmp = tmp_path
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / "notify"))
        self.notify.settimeout(0.2)
        self.model = make_bundle(tmp_path / "tiny.npz")
        # Its own runtime folder, with a short path (a socket path has at most 107 bytes):
        # the control socket, $XDG_RUNTIME_DIR/jazzd/control.sock, of this jazzd alone.
        self.runtime = Path(tempfile.mkdtemp(prefix="jzr", dir="/tmp"))
        self.control_path = self.runtime / "jazzd" / "control.sock"
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "JACK_NO_START_SERVER": "1",
               "JACK_DEFAULT_SERVER": jack_server.name, "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
               "XDG_RUNTIME_DIR": str(self.runtime), "OPENBLAS_NUM_THREADS": "1", **(env or {})}
        env.pop("RUNTIME_DIRECTORY", None)
        # feel = straight, articulation = legato: the daemon's tests time its notes against the beat grid
        cmd = [sys.executable, "-m", "jazzd", "run", "--backend", "jack", "--tempo", str(TEMPO), "--feel", "straight",
               "--articulation", "legato",
               *(["--model", str(self.model)] if model_flag else []), *args]
        # stderr goes to a file, as under systemd to the journal: a pipe nobody reads
        # fills at 64 kB, and then jazzd (and rtmidi's JACK thread) block writing to it.
        self.stderr_path = tmp_path / "jazzd.stderr"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                         preexec_fn=die_with_parent)
        self.messages: list[str] = []
        self.wait_for("READY=1", 15.0)
        self.ready_line = self.proc.stdout.readline()
        self.received: list[tuple[float, bytes]] = []
        self.kbd = self.rec = None
        if wire:
            self.wire(jack_server)

    def wire(self, jack_server) -> None:
        """A keyboard connected to jazzd:in and a recorder connected to jazzd's out."""
        self.kbd = jack_server.client("out", "kbd")
        self.rec = jack_server.client("in", "rec")
        self.rec.ignore_types(sysex=True, timing=False, active_sense=True)
        self.kbd.open_port(_index(self.kbd.get_ports(), "jazzd:in"))
        self.rec.open_port(_index(self.rec.get_ports(), ":out", "jazzd"))

    def wait_for(self, text: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                msg = self.notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:  # nothing more will come
                    pytest.fail(f"jazzd exited {self.proc.returncode} before {text!r}: {self.stderr()}")
                continue
            self.messages.append(msg)
            if text in msg:
                return msg
        pytest.fail(f"no {text!r} from jazzd within {timeout} s; got {self.messages}")

    def stderr(self) -> str:
        """What jazzd has written to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def statuses(self, seconds: float, until=None) -> list[tuple[float, str]]:
        """(arrival time, text) of the STATUS lines that arrive within `seconds`; with
        `until` (a test of the text), stop at the first that passes it."""
        got, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append(msg)
            if msg.startswith("STATUS="):
                got.append((time.monotonic(), msg))
                if until is not None and until(msg):
                    break
        return got

    def drain(self) -> list[str]:
        """Every notification that arrived and was not read yet."""
        self.notify.setblocking(False)
        try:
            while True:
                self.messages.append(self.notify.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.notify.settimeout(0.2)
        return self.messages

    def play(self, sends: list[tuple[float, list[int]]], duration: float) -> None:
        """Send each message at its time (seconds from now) and record for `duration`;
        `sent` holds when each message actually went; times are seconds from `started`
        (this process's time.monotonic() when the call began)."""
        start = self.started = time.monotonic()
        pending = sorted(sends, key=lambda s: s[0])
        self.sent: list[tuple[float, bytes]] = []  # (seconds from the start, message) as sent
        got: list[tuple[float, float, bytes]] = []  # (read, rtmidi's delta, message)
        i = 0
        while (now := time.monotonic()) - start < duration:
            while i < len(pending) and pending[i][0] <= now - start:
                self.kbd.send_message(list(pending[i][1]))
                self.sent.append((time.monotonic() - start, bytes(pending[i][1])))
                i += 1
            while (item := self.rec.get_message()) is not None:
                got.append((time.monotonic() - start, item[1], bytes(item[0])))
            time.sleep(0.0005)
        self.received += arrivals(got)

    def notes(self):
        """(time, on?, note) of the note messages received."""
        out = []
        for t, m in self.received:
            event = parse(m, t)
            if isinstance(event, NoteOn | NoteOff):
                out.append((t, isinstance(event, NoteOn), event.note))
        return out

    def story(self, notes: set[int]) -> str:
        """For a failure message: every message received that names one of `notes` (its
        time, hex), then the end of jazzd's stderr."""
        lines = [f"{t:8.4f} {m.hex(' ')}" for t, m in self.received
                 if len(m) == 3 and m[0] & 0xE0 == 0x80 and m[1] in notes]
        return "\n".join(["received:", *lines, "stderr:", *self.stderr().splitlines()[-20:]])

    def stop(self, sig=signal.SIGTERM) -> int:
        """Signal jazzd and record until it exits; `stop_received` holds (seconds after the
        signal, message) of what came after it."""
        self.proc.send_signal(sig)
        t0 = time.monotonic()
        got: list[tuple[float, float, bytes]] = []  # (read, rtmidi's delta, message), as in play
        while self.proc.poll() is None and time.monotonic() - t0 < 10:
            while self.rec is not None and (item := self.rec.get_message()) is not None:
                got.append((time.monotonic() - t0, item[1], bytes(item[0])))
            time.sleep(0.0005)
        time.sleep(0.1)
        while self.rec is not None and (item := self.rec.get_message()) is not None:
            got.append((time.monotonic() - t0, item[1], bytes(item[0])))
        self.stop_received: list[tuple[float, bytes]] = arrivals(got)
        self.received += self.stop_received
        return self.proc.wait(5)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        shutil.rmtree(self.runtime, ignore_errors=True)


def arrivals(got: list[tuple[float, float, bytes]]) -> list[tuple[float, bytes]]:
    """(arrival, message) from (read, delta, message): when each message reached the
    recorder, not when this process got round to reading it.  A hold-up of this process
    (tens of ms, now and then, on a busy machine) made every message read during it look
    late.  rtmidi times each message in JACK's thread (`delta`: seconds since the one
    before, at the period's start), so arrival k is arrival 0 plus the deltas up to k,
    and arrival 0 is fixed by the read that came soonest after its message arrived (reads
    are never early)."""
    if not got:
        return []
    since = [0.0]
    for _, delta, _ in got[1:]:
        since.append(since[-1] + delta)
    first = min(read - d for (read, _, _), d in zip(got, since, strict=True))
    return [(first + d, m) for (_, _, m), d in zip(got, since, strict=True)]


def _index(ports: list[str], *parts: str) -> int:
    hits = [i for i, p in enumerate(ports) if all(x in p for x in parts)]
    assert hits, f"no port with {parts} in {ports}"
    return hits[0]


def hanging(notes) -> set[int]:
    sounding: dict[int, int] = {}
    for _t, on, note in notes:
        sounding[note] = sounding.get(note, 0) + (1 if on else -1)
        sounding[note] = max(sounding[note], 0)
    return {n for n, c in sounding.items() if c}


CALL = [60, 62, 64, 65, 67, 65, 64, 62]


def call_messages(start: float = 0.3):
    sends = [(0.05, [0x90, 48, 70]), (0.05, [0x90, 52, 70]), (0.05, [0x90, 55, 70])]  # C major below the split
    for i, p in enumerate(CALL):
        sends += [(start + i * SPB, [0x90, p, 100]), (start + i * SPB + 0.8 * SPB, [0x80, p, 0])]
    return sends


@pytest.fixture
def session(jack_server, tmp_path):
    made = []

    def start(*args, **kwargs):
        s = Session(jack_server, tmp_path, *args, **kwargs)
        made.append(s)
        return s
    yield start
    for s in made:
        s.close()
