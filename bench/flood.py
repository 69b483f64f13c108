"""jazzd's timing before, during and after an input flood, in one run, as JSON.

    python bench/flood.py [--rate 10000] [--seconds 10] [--tempo 160] [--model PATH] [--control]

On a private JACK server (dummy backend, 64 frames at 48 kHz), `jazzd run` plays duet
with `--clock-out` while a keyboard client holds a chord; the run has three phases of
`--seconds` each: idle, flooded (`--rate` messages/s of notes, controllers and MIDI
clock) and after.  Reports per phase the onset error of jazzd's notes against its own
clock grid (median, p99, max ms), the send-time error of its clock pulses (each pulse
against the phase's fitted line), the p99 ratios flooded/idle (the target is at most 2),
jazzd's private memory and CPU, and what STATUS says it dropped.

With --control the flood comes to its control socket instead (issue 14): a subscriber
that never reads, a 1 MB line, binary garbage, more clients than it takes, and 1,000
connect/disconnect cycles spread over the phase; the control socket's counters (from
`jazzd status --json`) show what it refused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import clients, emit, is_note_on, onset_errors, proc_stats, start_jack, start_jazzd


def pool(rng, n: int = 4096) -> list[list[int]]:
    out = []
    for _ in range(n):
        k = rng.integers(3)
        if k == 0:
            note = int(rng.integers(60, 84))
            out += [[0x90, note, int(rng.integers(1, 128))], [0x80, note, 0]]
        elif k == 1:
            out.append([0xB0, int(rng.choice([1, 7, 11])), int(rng.integers(128))])
        else:
            out.append([0xF8])
    return out


class ControlFlood:
    """The hostile side of the control socket at `path` (--control)."""

    CYCLES = 1000

    def __init__(self, path: Path, seconds: float):
        self.path, self.seconds = str(path), seconds
        self.held: list[socket.socket] = []
        self.cycles = 0

    def _connect(self, rcvbuf: int | None = None) -> socket.socket | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            return None
        s.setblocking(False)
        self.held.append(s)
        return s

    def start(self) -> None:
        never_reads = self._connect(rcvbuf=4096)
        never_reads.send(b'{"v": 1, "cmd": "subscribe"}\n')
        with contextlib.suppress(BlockingIOError):
            self._connect().send(b"x" * 1_000_000)  # a 1 MB line (what fits), no newline
        self._connect().send(np.random.default_rng(2).bytes(2000) + b"\n")  # binary garbage
        for _ in range(12):  # more clients than it takes (8)
            self._connect()

    def tick(self, elapsed: float) -> None:
        """Connect and disconnect, up to CYCLES times spread over the phase."""
        while self.cycles < min(self.CYCLES, elapsed / self.seconds * self.CYCLES):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with contextlib.suppress(OSError):
                c.connect(self.path)
            c.close()
            self.cycles += 1

    def stop(self) -> None:
        for s in self.held:
            s.close()


def phase(kbd, rec, seconds: float, rate: int, messages, hostile: ControlFlood | None = None) -> tuple[list, int]:
    """Record for `seconds`, sending `rate` messages/s (0: none), with `hostile` at the
    control socket meanwhile; (received, sent)."""
    got, sent, start = [], 0, time.monotonic()
    if hostile is not None:
        hostile.start()
    while (elapsed := time.monotonic() - start) < seconds:
        if hostile is not None:
            hostile.tick(elapsed)
        due = int(elapsed * rate)
        while sent < due:
            kbd.send_message(messages[sent % len(messages)])
            sent += 1
        while (item := rec.get_message()) is not None:
            got.append((time.monotonic(), bytes(item[0])))
        time.sleep(0.0005 if rate else 0.0002)
    if hostile is not None:
        hostile.stop()
    return got, sent


def summary(errors: np.ndarray) -> dict:
    e = np.abs(errors)
    return {"notes": len(e), "median_ms": round(float(np.median(e)), 3),
            "p99_ms": round(float(np.percentile(e, 99)), 3), "max_ms": round(float(e.max()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000, help="flood messages per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--tempo", type=float, default=160.0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--control", action="store_true", help="flood the control socket instead of MIDI")
    args = parser.parse_args()
    server = f"jazzd-flood-{os.getpid()}"
    jack = start_jack(server)
    tmp = Path(tempfile.mkdtemp(prefix="jazzd-flood-"))
    out: dict = {"bench": "flood", "target": "control socket" if args.control else "MIDI input",
                 "rate_per_s": 0 if args.control else args.rate, "phase_s": args.seconds, "tempo_bpm": args.tempo}
    try:
        model = ["--model", args.model] if args.model else []
        proc, _ready, sock = start_jazzd(tmp, server, ["--mode", "duet", "--clock-out",
                                                       "--tempo", str(args.tempo), *model])
        sock.settimeout(0.01)
        kbd, rec = clients(server)
        for m in ([0x90, 50, 70], [0x90, 53, 70], [0x90, 57, 70]):
            kbd.send_message(m)
        messages = pool(np.random.default_rng(1))
        phases, everything = [], []
        control = tmp / "jazzd" / "control.sock"
        flood_rate = 0 if args.control else args.rate
        for name, rate in (("idle", 0), ("flood", flood_rate), ("after", 0)):
            rss0, cpu0 = proc_stats(proc.pid)
            hostile = ControlFlood(control, args.seconds) if args.control and name == "flood" else None
            got, sent = phase(kbd, rec, args.seconds, rate, messages, hostile)
            rss1, cpu1 = proc_stats(proc.pid)
            everything += got
            phases.append((name, sum(1 for _, m in got if is_note_on(m))))
            pulses = np.array([t for t, m in got if m[0] == 0xF8])
            k = np.round((pulses - pulses[0]) / (60.0 / args.tempo / 24))
            slope, intercept = np.polyfit(k, pulses, 1)
            send = np.abs(pulses - (intercept + k * slope)) * 1000  # clock pulses: scheduled output
            out[name] = {"send_error_ms": {"median": round(float(np.median(send)), 3),
                                           "p99": round(float(np.percentile(send, 99)), 3),
                                           "max": round(float(send.max()), 3)},
                         "sent_to_jazzd": sent, "private_rss_mb": round(rss1["private"], 1),
                         "rss_growth_mb": round(rss1["private"] - rss0["private"], 2),
                         "cpu_percent": round((cpu1 - cpu0) / args.seconds * 100, 1)}
        # One grid for the whole run (the clock's first pulse is beat 0), split by phase.
        errors, _fitted = onset_errors(everything, args.tempo)
        start = 0
        for name, count in phases:
            out[name] = {**summary(errors[start:start + count]), **out[name]}
            start += count
        out["p99_ratio_flood_over_idle"] = round(out["flood"]["p99_ms"] / out["idle"]["p99_ms"], 2)
        out["send_p99_ratio_flood_over_idle"] = round(
            out["flood"]["send_error_ms"]["p99"] / out["idle"]["send_error_ms"]["p99"], 2)
        out["p99_ratio_after_over_idle"] = round(out["after"]["p99_ms"] / out["idle"]["p99_ms"], 2)
        time.sleep(5.5)  # one report period: the last STATUS has the drop counts
        status = ""
        try:
            while True:
                msg = sock.recv(4096).decode()
                if msg.startswith("STATUS="):
                    status = msg[7:]
        except (TimeoutError, BlockingIOError):
            pass
        out["last_status"] = status
        if args.control:
            reply = subprocess.run([sys.executable, "-m", "jazzd", "status", "--json", "--socket", str(control)],
                                   capture_output=True, text=True, timeout=30)
            out["control_counts"] = json.loads(reply.stdout)["control"] if reply.returncode == 0 else reply.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    finally:
        jack.send_signal(signal.SIGTERM)
        jack.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    emit(out)


if __name__ == "__main__":
    main()
