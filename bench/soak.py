"""A long run: jazzd plays duet for N minutes on a private JACK server, as JSON.

    python bench/soak.py [--minutes 30] [--window 60] [--tempo 160] [--model PATH]
                         [--warmup 5] [--reload-every SECONDS [--reload-model]]
                         [--trace [--trace-top N] [--trace-frames N]]

Starts `jackd -S -d dummy -r 48000 -p 64` under a private name and `jazzd run --mode duet
--clock-out`; a keyboard client holds a chord and changes it every 4 bars (so the chord
tracker and the engine keep working), a recorder takes everything jazzd sends.  Every
window (default 60 s) it records jazzd's private memory, CPU, its send-time error
(how far each MIDI clock pulse it sends lies from the straight line of the window's
pulses: median, p99, max), and the drift of jazzd's beat clock
against the monotonic clock: the mean offset of its 24-ppqn pulses from the ideal grid
of the requested tempo, anchored at the first window.  With `--reload-every S` it sends
jazzd SIGHUP every S seconds (a reload: config, model and a new engine, as an operator's
`systemctl reload jazzd`), and checks at the end that jazzd counted them all.  A model
file that has not changed is not read again at a reload; with `--reload-model` jazzd
plays a copy of the model in the soak's temporary folder, whose time the soak moves
before each SIGHUP, so that every reload loads the model again.

Memory (issue 16: jazzd runs as a service for weeks).  Private memory (RssAnon +
RssFile) is read every `SAMPLE_S` (10 s); the summary's `memory_slope_kb_per_hour` is
the least-squares line through the samples after `--warmup` minutes (default 5: the
allocator's pools, numpy's caches and the engine's bounded buffers fill in the first
minutes), and `memory_growth_after_warmup_mb` the last sample less the first one after
the warm-up.  A fit, not first-to-last: the private RSS moves in 4 kB pages and by
malloc's trims, and two samples alone read that noise as growth.  Target (issue 16): at
most 500 kB an hour over a 60-minute run with a reload every 10 minutes:

    python bench/soak.py --minutes 60 --reload-every 600

`--trace` starts jazzd with PYTHONTRACEMALLOC (`--trace-frames`, default 1) and asks it
through its control socket (`jazzd.live.memtrace`: the `memory` command) for the
allocation sites whose live Python memory grew most between the end of the warm-up and
the end of the run (`--trace-top`, default 15): what holds the growth, by file and line.
Tracing costs (every allocation takes about twice as long; the traces themselves take
memory), so a traced run's RSS and timing are not the product's: run the slope without it.

Targets (issue 6): growth under 2 MB, drift under 1 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import clients, emit, is_note_on, proc_stats, start_jazzd

from jazzd.live import rtjack
from jazzd.live.control import Client  # (timing put the repository on sys.path)
from jazzd.live.jackserver import SYNC

SAMPLE_S = 10.0  # private memory is read this often, for the slope

# The recorder runs in a process of its own: once in a 30-minute run here, the test's
# rtmidi JACK input crashed (a segfault copying an event in JACK's thread, after an
# overrun), which must not end the soak; it is restarted and counted.
RECORDER = r"""
import sys, time, rtmidi
rec = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="soak-rec", queue_size_limit=1 << 16)
rec.ignore_types(sysex=True, timing=False, active_sense=True)
rec.open_port(next(i for i, p in enumerate(rec.get_ports()) if "jazzd" in p and ":out" in p))
print("ready", flush=True)
while True:
    item = rec.get_message()
    if item is None:
        sys.stdout.flush()
        time.sleep(0.0002)
        continue
    sys.stdout.write(f"{time.monotonic():.6f} {bytes(item[0]).hex()}\n")
"""


class Recorder:
    """jazzd's output as (monotonic time, bytes), from a child process."""

    def __init__(self, server: str):
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": server, "JACK_NO_START_SERVER": "1"}
        self.crashes = 0
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", RECORDER], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout.readline().strip() == b"ready"
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._rest = b""

    def read(self) -> list[tuple[float, bytes]]:
        try:
            data = os.read(self.proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            data = None
        if data == b"" or (data is None and self.proc.poll() is not None):
            self.crashes += 1
            self._start()
            return []
        if not data:
            return []
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        return [(float(t), bytes.fromhex(m.decode())) for t, m in (line.split() for line in lines)]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()

RATE, PERIOD = 48000, 64
CHORDS = ([50, 53, 57, 60], [55, 59, 62, 65], [48, 52, 55, 59], [57, 60, 64, 67])  # Dm7 G7 Cmaj7 Am7


def start_jack(name: str, log: Path) -> subprocess.Popen:
    jackd = shutil.which("jackd")
    if not jackd:
        sys.exit("bench/soak.py needs jackd: apt-get install jackd2")
    with open(log, "w") as f:
        proc = subprocess.Popen([jackd, SYNC, "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
                                stdout=f, stderr=subprocess.STDOUT)
    waited = subprocess.run(["jack_wait", "-w", "-t", "10"], env={**os.environ, "JACK_DEFAULT_SERVER": name},
                            capture_output=True)
    if waited.returncode != 0:  # (a server that never came up is not left behind)
        proc.terminate()
        proc.wait(10)
        sys.exit(f"bench/soak.py: the private JACK server {name} did not start within 10 s; see {log}")
    return proc


def send_errors(pulses: np.ndarray, origin: float, spp: float) -> np.ndarray:
    """How far (ms) each clock pulse jazzd sent lies from the straight line fitted to
    this window's pulses (numbered by time from the run's first pulse).  The pulses are
    scheduled output at exact times, through the same loop and port as the notes, so
    this is jazzd's send-time error.  (Note onsets cannot be checked against a fixed
    grid over a long run: the model plays quintuplets and other tuplets whose values
    move the line off the twelfths of a beat.)"""
    k = np.round((pulses - origin) / spp)
    slope, intercept = np.polyfit(k, pulses, 1)
    return (pulses - (intercept + k * slope)) * 1000


def memory_slope(samples: list[tuple[float, float]], warmup_s: float) -> dict:
    """The private memory's least-squares slope in kB an hour over the samples (seconds
    from the start, kB) taken after `warmup_s`, and the growth from the first of them to
    the last; None where fewer than 3 samples are left."""
    after = [(t, kb) for t, kb in samples if t >= warmup_s]
    if len(after) < 3:
        return {"memory_slope_kb_per_hour": None, "memory_growth_after_warmup_mb": None, "slope_samples": len(after)}
    t, kb = np.array(after).T
    slope = np.polyfit(t / 3600.0, kb, 1)[0]
    return {"memory_slope_kb_per_hour": round(float(slope), 1),
            "memory_growth_after_warmup_mb": round(float(kb[-1] - kb[0]) / 1024, 3),
            "slope_samples": len(after)}


def ask_memory(tmp: Path, top: int) -> dict:
    """jazzd's `memory` reply (`jazzd.live.memtrace`): what grew since the last ask."""
    with Client([tmp / "jazzd" / "control.sock"], timeout=30.0) as client:
        return client.request("memory", top=top)["memory"]


def ask_status(tmp: Path) -> dict:
    with Client([tmp / "jazzd" / "control.sock"], timeout=10.0) as client:
        return client.request("status")["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per report window")
    parser.add_argument("--tempo", type=float, default=160.0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the memory slope")
    parser.add_argument("--reload-every", type=float, default=0.0, metavar="SECONDS",
                        help="send jazzd SIGHUP (a reload) this often; 0: never")
    parser.add_argument("--reload-model", action="store_true",
                        help="make every reload read the model again (a copy whose file time moves)")
    parser.add_argument("--trace", action="store_true",
                        help="run jazzd with PYTHONTRACEMALLOC and report the allocation sites that grew after warm-up")
    parser.add_argument("--trace-frames", type=int, default=1, help="frames of each traced allocation's stack")
    parser.add_argument("--trace-top", type=int, default=15, help="sites in the trace report (1-100)")
    args = parser.parse_args()
    if args.trace:
        os.environ["PYTHONTRACEMALLOC"] = str(args.trace_frames)  # (start_jazzd hands on the environment)
    if args.trace and not args.minutes > args.warmup:
        sys.exit("bench/soak.py --trace: --minutes must be longer than --warmup (the trace compares the two)")
    spp = 60.0 / args.tempo / 24  # seconds per clock pulse, as asked for
    server = f"jazzd-soak-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="jazzd-soak-"))
    jack = start_jack(server, tmp / "jackd.log")
    out: dict = {"bench": "soak", "minutes": args.minutes, "tempo_bpm": args.tempo,
                 "warmup_minutes": args.warmup, "reload_every_s": args.reload_every or None,
                 "reload_model": args.reload_model,
                 "traced": args.trace, "jack": {"rate": RATE, "period": PERIOD}, "windows": []}
    status = ""
    try:
        model_file = args.model
        if args.reload_model:
            from jazzd.model.shipped import default_model

            model_file = str(tmp / "model.npz")
            shutil.copyfile(args.model or default_model(), model_file)
        model = ["--model", model_file] if model_file else []
        proc, ready_s, sock = start_jazzd(tmp, server, ["--mode", "duet", "--clock-out",
                                                       "--tempo", str(args.tempo), *model])
        sock.settimeout(0)
        kbd, rec0 = clients(server)
        rtjack.close_port(rec0)  # clients() wires a recorder of its own: the child's is used
        rec = Recorder(server)
        out["start_to_ready_s"] = round(ready_s, 3)
        start = time.monotonic()
        end = start + args.minutes * 60
        chord_s = 16 * 60.0 / args.tempo
        held: list[int] = []
        next_chord, chord_i = start, 0
        origin = None
        rss_first = None
        samples: list[tuple[float, float]] = []  # (seconds from start, private kB)
        next_sample = start
        next_reload = start + args.reload_every if args.reload_every > 0 else math.inf
        reloads_sent = 0
        traced_at_warmup = None
        while (w0 := time.monotonic()) < end:
            pulses, ons = [], []
            _rss0, cpu0 = proc_stats(proc.pid)
            w_end = min(w0 + args.window, end)
            while (now := time.monotonic()) < w_end:
                if now >= next_sample:
                    samples.append((now - start, proc_stats(proc.pid)[0]["private"] * 1024))
                    next_sample += SAMPLE_S
                if now >= next_reload:
                    if args.reload_model:
                        os.utime(model_file)  # a new time: the file reads as changed
                    proc.send_signal(signal.SIGHUP)
                    reloads_sent += 1
                    next_reload += args.reload_every
                if args.trace and traced_at_warmup is None and now - start >= args.warmup * 60:
                    traced_at_warmup = ask_memory(tmp, args.trace_top)  # the baseline: what warm-up holds
                if now >= next_chord:  # a new chord: release the old one first
                    for n in held:
                        kbd.send_message([0x80, n, 0])
                    held = CHORDS[chord_i % len(CHORDS)]
                    for n in held:
                        kbd.send_message([0x90, n, 60])
                    chord_i += 1
                    next_chord += chord_s
                for t, m in rec.read():
                    if m[0] == 0xF8:
                        pulses.append(t)
                    elif is_note_on(m):
                        ons.append(t)
                try:
                    while True:
                        msg = sock.recv(4096).decode()
                        if msg.startswith("STATUS="):
                            status = msg[7:]
                except (BlockingIOError, TimeoutError):
                    pass
                time.sleep(0.001)
            rss1, cpu1 = proc_stats(proc.pid)
            pulses_a, ons_a = np.array(pulses), np.array(ons)
            if origin is None:
                origin = pulses_a[0]
            # Drift: how far this window's pulses sit from the ideal grid of the asked
            # tempo, anchored at the run's first pulse (the mean, so that JACK's period
            # quantisation and the recorder's wake-ups average out).
            k = np.round((pulses_a - origin) / spp)
            offset_ms = float(np.mean(pulses_a - (origin + k * spp))) * 1000
            errors = np.abs(send_errors(pulses_a, origin, spp))
            if rss_first is None:
                rss_first = rss1["private"]
            window = {"t_min": round((time.monotonic() - start) / 60, 2),
                      "private_rss_mb": round(rss1["private"], 2),
                      "cpu_percent": round((cpu1 - cpu0) / (time.monotonic() - w0) * 100, 1),
                      "notes": len(ons_a), "pulses": len(pulses_a),
                      "send_error_ms": {"median": round(float(np.median(errors)), 3),
                                   "p99": round(float(np.percentile(errors, 99)), 3),
                                   "max": round(float(errors.max()), 3)},
                      "clock_offset_ms": round(offset_ms, 3)}
            out["windows"].append(window)
            print(json.dumps(window), file=sys.stderr, flush=True)
        offsets = [w["clock_offset_ms"] for w in out["windows"]]
        drift = [o - offsets[0] for o in offsets]
        rss = [w["private_rss_mb"] for w in out["windows"]]
        p99 = [w["send_error_ms"]["p99"] for w in out["windows"]]
        samples.append((time.monotonic() - start, proc_stats(proc.pid)[0]["private"] * 1024))
        final = ask_status(tmp)
        if args.trace:
            grown = ask_memory(tmp, args.trace_top)
            out["trace"] = {"frames": args.trace_frames,
                            "python_kb_after_warmup": traced_at_warmup["total_kb"] if traced_at_warmup else None,
                            "python_kb_at_end": grown["total_kb"], "grown_kb": grown["grown_kb"],
                            "seconds_compared": grown["since_s"], "grown_sites": grown["sites"]}
        out["memory_samples_kb"] = [[round(t, 1), round(kb)] for t, kb in samples]
        out["summary"] = {
            **memory_slope(samples, args.warmup * 60),
            "reloads_sent_counted_rejected": [reloads_sent, final["counters"]["reloads"],
                                              final["counters"]["rejected_reloads"]],
            "memory_growth_mb": round(rss[-1] - rss_first, 2),
            "memory_mb_first_last_max": [rss[0], rss[-1], max(rss)],
            "max_clock_drift_ms": round(max(abs(d) for d in drift), 3),
            "send_error_p99_ms_first_last_worst_median": [p99[0], p99[-1], max(p99), float(np.median(p99))],
            "send_error_max_ms_worst": max(w["send_error_ms"]["max"] for w in out["windows"]),
            "notes": sum(w["notes"] for w in out["windows"]),
            "last_status": status,
            "recorder_restarts": rec.crashes,
        }
        rec.close()
        proc.send_signal(signal.SIGTERM)
        out["exit_code"] = proc.wait(10)
    finally:
        jack.send_signal(signal.SIGTERM)
        jack.wait(10)
        log = (tmp / "jackd.log").read_text(errors="replace")
        # The dummy driver's own timer waking late (a VM's lot; an idle jackd here logs
        # ~3 a second) apart from cycles a client did not finish in time.
        lines = log.splitlines()
        out["jack_overruns"] = {"driver_timer_late": sum("JackTimedDriver::Process XRun" in x for x in lines),
                                "client_not_finished": sum("JackEngine::XRun" in x for x in lines)}
        shutil.rmtree(tmp, ignore_errors=True)
    emit(out)


if __name__ == "__main__":
    main()
