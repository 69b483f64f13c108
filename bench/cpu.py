"""What jazzd costs in CPU while it waits and while it plays, with its timing beside it, as JSON.

    python bench/cpu.py [--seconds 30] [--period 64,256] [--model PATH]

On a private JACK server (dummy driver, 48 kHz; at each --period: 64 frames is what the
tests and bench/timing.py use, 256 what issue 19 measured on), `jazzd run` in six
situations, each for --seconds after a 2 s warm-up, with the process's CPU time from
/proc (user + system, % of one core):
- idle_call: call mode on its own clock, nothing played;
- idle_call_client: the same with a client connected to its control socket, silent
  (what `jazzd monitor` is between its requests: the loop sleeps in select(2) on it);
- idle_stopped_clock: following MIDI clock whose transport is stopped (a DAW that sends
  clock while stopped: 24 pulses a beat at 120 bpm, no Start);
- duet_160: duet at 160 bpm on its own clock with `--clock-out`, a chord held (as
  bench/timing.py), its note onsets against the grid of its own clock pulses;
- duet_160_subscriber: the same with a subscriber reading every event of its control
  socket (beats, heard and played notes): its CPU and its timing beside duet_160's;
- solo_240: solo at 240 bpm, the same measures.
Timing, where jazzd plays: note onsets against every clock pulse it sent (ms: median, p99,
max), and its clock pulses against their fitted line (the pulse send error, p99), all
timed by JACK where they reached this client (rtmidi's deltas), not when this process
read them.  This process sleeps 2 ms between reads, so it costs little itself.

Part of the cost is JACK's, not jazzd's loop: rtmidi makes one JACK client per direction,
and JACK runs each one's process callback (a thread of jazzd's process) every period, 750
times a second at 64 frames, whatever jazzd does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from timing import (  # noqa: E402
    RATE,
    clients,
    emit,
    error_stats,
    grid_errors,
    proc_stats,
    start_jack,
    start_jazzd,
)

from jazzd.live import rtjack  # noqa: E402
from jazzd.live.control import Client  # noqa: E402
from jazzd.live.stamps import Arrivals  # noqa: E402

CHORD = [[0x90, n, 70] for n in (50, 53, 57)]
WARM_UP_S = 2.0


def run(kbd, rec, seconds: float, pulse_s: float | None = None, control=None) -> list[tuple[float, bytes]]:
    """Read what jazzd sends for `seconds`, timed by JACK; with `pulse_s`, send MIDI clock
    pulses (0xF8, no Start) that far apart meanwhile; with `control` (a subscribed
    control socket), read its events too."""
    stamps, got = Arrivals(), []
    start = time.monotonic()
    next_pulse = start
    while (now := time.monotonic()) - start < seconds:
        while pulse_s is not None and next_pulse <= now:
            kbd.send_message([0xF8])
            next_pulse += pulse_s
        batch = []
        while (item := rec.get_message()) is not None:
            batch.append(item)
        got += zip(stamps.stamp([d for _, d in batch], time.monotonic()), (bytes(m) for m, _ in batch),
                   strict=True)
        if control is not None:
            with contextlib.suppress(BlockingIOError):
                control.events += control.sock.recv(1 << 16).count(b"\n")
        time.sleep(0.002)
    return got


def timing(got, tempo: float, period: int) -> dict:
    pulses = np.array([t for t, m in got if m == b"\xf8"])
    if len(pulses) < 48:
        return {"error": f"only {len(pulses)} clock pulses received"}
    k = np.round((pulses - pulses[0]) / (60.0 / tempo / 24))
    spp, origin = np.polyfit(k, pulses, 1)
    ons = np.array([t for t, m in got if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0])
    out = {"notes": len(ons)}
    if len(ons):
        out.update(error_stats(grid_errors(ons, origin, spp, pulses=1), period / RATE * 1000))
    residual = np.abs(pulses - (origin + k * spp)) * 1000
    out["pulse_error_ms"] = {"median": round(float(np.median(residual)), 3),
                             "p99": round(float(np.percentile(residual, 99)), 3)}
    return out


def situation(tmp: Path, server: str, period: int, args: list[str], seconds: float, pulse_s=None,
              chord=False, tempo: float | None = None, control: str | None = None) -> dict:
    """One situation; `control`: "connected" (a control socket client connected and
    silent, as `jazzd monitor` between its requests) or "subscribed" (one that reads
    every event)."""
    proc, _ready, _sock = start_jazzd(tmp, server, args)
    kbd, rec = clients(server)
    client = None
    try:
        if control is not None:
            client = Client([tmp / "jazzd" / "control.sock"])
            client.events = 0
            if control == "subscribed":
                client.request("subscribe")
            client.sock.setblocking(False)
        reader = client if control == "subscribed" else None
        if chord:
            for m in CHORD:
                kbd.send_message(m)
        run(kbd, rec, WARM_UP_S, pulse_s, reader)
        _, cpu0 = proc_stats(proc.pid)
        t0 = time.monotonic()
        got = run(kbd, rec, seconds, pulse_s, reader)
        _, cpu1 = proc_stats(proc.pid)
        out = {"args": args, "cpu_percent": round((cpu1 - cpu0) / (time.monotonic() - t0) * 100, 2)}
        if reader is not None:
            out["events"] = reader.events
        if tempo is not None:
            out.update(timing(got, tempo, period))
        return out
    finally:
        if client is not None:
            client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        rtjack.close(kbd)
        rtjack.close(rec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--period", default="64,256", help="JACK periods (frames), comma-separated")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    model = ["--model", args.model] if args.model else []
    out: dict = {"bench": "cpu", "seconds": args.seconds, "rate": RATE}
    for period in (int(p) for p in args.period.split(",")):
        server = f"jazzd-cpu-{os.getpid()}-{period}"
        jack = start_jack(server, period)
        tmp = Path(tempfile.mkdtemp(prefix="jazzd-cpu-"))
        res: dict = {"period_ms": round(period / RATE * 1000, 3)}
        try:
            res["idle_call"] = situation(tmp, server, period, ["--mode", "call", "--tempo", "120", *model],
                                         args.seconds)
            res["idle_call_client"] = situation(tmp, server, period, ["--mode", "call", "--tempo", "120", *model],
                                                args.seconds, control="connected")
            res["idle_stopped_clock"] = situation(tmp, server, period, ["--mode", "solo", "--clock", "midi", *model],
                                                  args.seconds, pulse_s=60.0 / 120 / 24)
            res["duet_160"] = situation(tmp, server, period, ["--mode", "duet", "--tempo", "160", "--clock-out",
                                                              *model], args.seconds, chord=True, tempo=160.0)
            res["duet_160_subscriber"] = situation(tmp, server, period, ["--mode", "duet", "--tempo", "160",
                                                                         "--clock-out", *model], args.seconds,
                                                   chord=True, tempo=160.0, control="subscribed")
            res["solo_240"] = situation(tmp, server, period, ["--mode", "solo", "--tempo", "240", "--clock-out",
                                                              *model], args.seconds, tempo=240.0)
        finally:
            jack.send_signal(signal.SIGTERM)
            jack.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)
        out[f"period_{period}"] = res
    emit(out)


if __name__ == "__main__":
    main()
