"""jazzd on a private JACK server, measured from a separate client, as JSON.

    python bench/timing.py [--seconds 60] [--tempo 160] [--model PATH]
    python bench/timing.py --clock link [--link-tempo 150] [--link-seconds 20]

Starts `jackd -S -d dummy -r 48000 -p 64` under a private name, then `jazzd run` in duet
mode with `--clock-out` (so the grid it plays on arrives on the same wire as its notes),
holds a chord into jazzd:in and records jazzd's output for N seconds.  Reports:
- note onset error against the grid jazzd sends (beats fitted to the received MIDI clock;
  every clock pulse, 1/24 beat, is a grid point: the model's 32nd notes and 16th-note
  triplets sit on it, a quintuplet 1/5 pulse off it): median, p99 and max, in ms and
  JACK periods; and, as what was played rather than timing, the share of notes off the
  twelfths of a beat (1.5% of notes in an offline duet, seeds 0-7 at 160 bpm: 32nd
  notes and quintuplets; measured against twelfths, those alone set the p99 to a
  pulse, 15.6 ms, whenever they pass 1% of a run);
- time from start to READY=1, process RSS and CPU %;
- in call mode, the gap from the end of a played call to the first note of the answer
  (the answer is due one beat after a beat of silence);
- following MIDI clock (`--clock midi`, solo mode): the client sends Start and a 24-ppqn
  clock at --follow-tempo for --follow-seconds; jazzd's note onsets against that clock's
  grid (a line through the pulses' send times; twelfths of a beat): median, p99 and max,
  in ms and JACK periods.  Two JACK hops (client -> jazzd -> client) are in these.

With `--clock link` (needs the link extra), only this: the bench is a Link peer (session
at --link-tempo, founded 1.5 s before jazzd starts) and runs `jazzd run --mode solo
--clock link`; reports how long jazzd took to join (its log line), and its note onsets
against the bench peer's Link timeline (`beatAtTime`, twelfths of a beat): signed median
(the output path's constant lateness: JACK's period) and |error| median, p99, max, at
the first tempo and, after the peer changes it half way (to 4/5 of it), from one beat
after the change on.  One JACK hop (jazzd -> client) is in these.
"""

from __future__ import annotations

import argparse
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
import rtmidi

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from jazzd.live import rtjack  # noqa: E402
from jazzd.live.jackserver import SYNC  # noqa: E402
from jazzd.live.midi import parse  # noqa: E402
from jazzd.play.events import NoteOn  # noqa: E402

RATE, PERIOD = 48000, 64


def is_note_on(message: bytes) -> bool:
    return isinstance(parse(message, 0.0), NoteOn)


def die_with_parent() -> None:
    """`preexec_fn` for the jackd and jazzds a bench starts (as tests/jackserver.py's): an
    exception or a kill of the bench left them running at 13% CPU each, and they skewed
    the next bench run (a flood p99 of 13.6 ms with three of them about)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_jack(name: str, period: int = PERIOD) -> subprocess.Popen:
    jackd = shutil.which("jackd")
    if not jackd:
        sys.exit("bench/timing.py needs jackd: apt-get install jackd2")
    proc = subprocess.Popen([jackd, SYNC, "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(period)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
    subprocess.run(["jack_wait", "-w", "-t", "10"], env={**os.environ, "JACK_DEFAULT_SERVER": name},
                   check=True, capture_output=True)
    return proc


def start_jazzd(tmp: Path, server: str, args: list[str]):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp / f"notify-{time.monotonic_ns()}"))
    sock.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": sock.getsockname(), "JACK_DEFAULT_SERVER": server,
           "JACK_NO_START_SERVER": "1", "OPENBLAS_NUM_THREADS": "1", "XDG_CONFIG_HOME": str(tmp),
           "XDG_RUNTIME_DIR": str(tmp)}  # its control socket: tmp/jazzd/control.sock
    t0 = time.monotonic()
    # stderr to a file: a pipe nobody reads fills at 64 kB and then blocks jazzd
    with open(tmp / "jazzd.stderr", "a") as err:
        # feel = straight, articulation = legato: the benches time jazzd's notes against the beat grid
        proc = subprocess.Popen([sys.executable, "-m", "jazzd", "run", "--backend", "jack", "--feel", "straight",
                                 "--articulation", "legato",
                                 *args],
                                env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True,
                                preexec_fn=die_with_parent)
    while "READY=1" not in sock.recv(4096).decode():
        pass
    return proc, time.monotonic() - t0, sock


def clients(server: str):
    os.environ["JACK_DEFAULT_SERVER"] = server
    kbd = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-kbd")
    rec = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-rec", queue_size_limit=1 << 16)
    rec.ignore_types(sysex=True, timing=False, active_sense=True)
    kbd.open_port(next(i for i, p in enumerate(kbd.get_ports()) if "jazzd:in" in p))
    rec.open_port(next(i for i, p in enumerate(rec.get_ports()) if "jazzd" in p and ":out" in p))
    return kbd, rec


def record(rec, seconds: float, sends=()) -> list[tuple[float, bytes]]:
    got, start, pending = [], time.monotonic(), sorted(sends, key=lambda s: s[0])
    while (now := time.monotonic()) - start < seconds:
        while pending and pending[0][0] <= now - start:
            pending.pop(0)[1]()
        while (item := rec.get_message()) is not None:
            got.append((time.monotonic(), bytes(item[0])))
        time.sleep(0.0002)
    return got


def proc_stats(pid: int) -> tuple[dict, float]:
    """(RSS in MB: total, private and shared memory, CPU seconds so far).  A JACK client
    maps the server's shared segment (/dev/shm/jack-*), which counts in its RSS."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in status.splitlines())
          if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem")}
    rss = {"total": kb["VmRSS"] / 1024, "private": (kb["RssAnon"] + kb["RssFile"]) / 1024,
           "shared_memory": kb["RssShmem"] / 1024}
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def onset_errors(got, tempo: float, every: int = 2) -> np.ndarray:
    pulses = np.array([t for t, m in got if m[0] == 0xF8])
    if len(pulses) < 48:
        raise SystemExit("too few clock pulses received to fit the grid")
    # Number the pulses by their time, not their order: one pulse lost or merged on a
    # busy machine would otherwise shift every later index and skew the whole fit.
    nominal = 60.0 / tempo / 24
    k = np.round((pulses - pulses[0]) / nominal)
    slope, origin = np.polyfit(k, pulses, 1)  # seconds per pulse, time of the first pulse
    spb = slope * 24
    ons = np.array([t for t, m in got if is_note_on(m)])
    return grid_errors(ons, origin, slope, every), 60.0 / spb


def grid_errors(ons: np.ndarray, origin: float, spp: float, pulses: int = 2) -> np.ndarray:
    """Onset errors (ms) against every `pulses`th clock pulse from `origin` (a pulse,
    spp seconds apart): twelfths of a beat by default, every pulse with 1.  The recorder
    may connect after the first pulses went out, so `origin` may be an odd pulse: the
    phase that fits is taken."""
    best = None
    for shift in range(pulses):
        grid0 = origin + shift * spp
        errors = ons - (grid0 + np.round((ons - grid0) / (pulses * spp)) * pulses * spp)
        if best is None or np.median(np.abs(errors)) < np.median(np.abs(best)):
            best = errors
    return best * 1000


def error_stats(errors: np.ndarray, period_ms: float) -> dict:
    abs_err = np.abs(errors)
    return {"onset_error_ms": {"median": round(float(np.median(abs_err)), 3),
                               "p99": round(float(np.percentile(abs_err, 99)), 3),
                               "max": round(float(abs_err.max()), 3)},
            "onset_error_periods": {"median": round(float(np.median(abs_err)) / period_ms, 2),
                                    "p99": round(float(np.percentile(abs_err, 99)) / period_ms, 2)}}


def follow(tmp: Path, server: str, model: list[str], tempo: float, seconds: float) -> dict:
    """jazzd in solo mode following a clock this client sends: onsets against its grid."""
    proc, _ready, _sock = start_jazzd(tmp, server, ["--mode", "solo", "--clock", "midi", *model])
    kbd, rec = clients(server)
    pulse = 60.0 / tempo / 24
    sent: list[float] = []

    def tick() -> None:
        kbd.send_message([0xF8])
        sent.append(time.monotonic())

    sends = [(0.1 - 0.002, lambda: kbd.send_message([0xFA]))]
    sends += [(0.1 + k * pulse, tick) for k in range(int(seconds / pulse))]
    got = record(rec, seconds + 0.3, sends)
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    rtjack.close(kbd)
    rtjack.close(rec)
    spp, origin = np.polyfit(np.arange(len(sent)), np.array(sent), 1)  # the clock as sent
    ons = np.array([t for t, m in got if is_note_on(m)])
    return {"tempo_bpm": tempo, "seconds": seconds, "fitted_tempo_bpm": round(60.0 / (spp * 24), 3),
            "notes": len(ons), **error_stats(grid_errors(ons, origin, spp), PERIOD / RATE * 1000)}


def link_offset(peer) -> float:
    """Link's clock (CLOCK_MONOTONIC_RAW, µs) minus time.monotonic(), in seconds."""
    from jazzd.live.abletonlink import clock_offset

    return clock_offset(peer.clock(), reads=20)[0]


def link_errors(ons, state, offset: float) -> np.ndarray:
    """Signed onset errors (ms) against the twelfths of a beat of a Link timeline."""
    spb = 60.0 / state.tempo()
    beats = np.array([state.beatAtTime(round((t + offset) * 1e6), 4.0) for t in ons])
    return (beats * 12 - np.round(beats * 12)) / 12 * spb * 1000


def link_stats(errors: np.ndarray) -> dict:
    """|error| stats, the signed median (a constant lateness: what `clock.link_latency_ms`
    takes out) and the p99 of the distance from it (the jitter nothing takes out)."""
    median = float(np.median(errors))
    return {"notes": len(errors), "signed_median_ms": round(median, 3),
            "jitter_p99_ms": round(float(np.percentile(np.abs(errors - median), 99)), 3),
            **error_stats(errors, PERIOD / RATE * 1000)}


def record_arrivals(rec, seconds: float) -> list[tuple[float, bytes]]:
    """As `record`, but each message timed when it reached the recorder (rtmidi's JACK
    frame-time deltas, anchored by the read soonest after its message: see
    tests/daemonsession.arrivals), not when this process got round to reading it."""
    from tests.daemonsession import arrivals

    got, start = [], time.monotonic()
    while time.monotonic() - start < seconds:
        while (item := rec.get_message()) is not None:
            got.append((time.monotonic(), item[1], bytes(item[0])))
        time.sleep(0.0002)
    return arrivals(got)


def link_session(tmp: Path, server: str, model: list[str], tempo: float, seconds: float) -> dict:
    """jazzd in a Link session with this process as the other peer (see the docstring)."""
    import re

    import link

    peer = link.Link(tempo)
    peer.enabled = True
    time.sleep(1.5)  # the older session (by 0.5 s) is the one both keep; 0.6 s was not always enough
    try:
        proc, _ready, _sock = start_jazzd(tmp, server, ["--mode", "solo", "--clock", "link", *model])
        _kbd, rec = clients(server)
        offset = link_offset(peer)
        before = peer.captureAppSessionState()
        got = record_arrivals(rec, seconds / 2)
        changed = time.monotonic()
        state = peer.captureAppSessionState()
        state.setTempo(tempo * 0.8, round((changed + offset) * 1e6))
        peer.commitAppSessionState(state)
        after = peer.captureAppSessionState()
        got += record_arrivals(rec, seconds / 2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        rtjack.close(_kbd)
        rtjack.close(rec)
        log = (tmp / "jazzd.stderr").read_text()
        joined = re.search(r"joined a session of \d+ other peers? at ([\d.]+) bpm, ([\d.]+) s after start", log)
        ons = np.array([t for t, m in got if is_note_on(m)])
        first = ons[ons < changed]
        later = ons[ons >= changed + 60.0 / (tempo * 0.8)]
        return {"tempo_bpm": tempo, "seconds": seconds,
                "joined_after_s": float(joined[2]) if joined else None,
                "session_tempo_on_joining_bpm": float(joined[1]) if joined else None,
                "before_change": link_stats(link_errors(first, before, offset)),
                "after_change": {"tempo_bpm": tempo * 0.8, **link_stats(link_errors(later, after, offset))},
                "all": link_stats(np.concatenate([link_errors(first, before, offset),
                                                  link_errors(later, after, offset)]))}
    finally:
        peer.enabled = False


def link_main(model: list[str], tempo: float, seconds: float) -> None:
    """`--clock link`: the Link measurement alone, on its own private JACK server."""
    try:
        import link  # noqa: F401
    except ImportError:
        sys.exit("bench/timing.py --clock link needs the link extra: pip install 'jazzd[link]'")
    server = f"jazzd-bench-{os.getpid()}"
    jack = start_jack(server)
    tmp = Path(tempfile.mkdtemp(prefix="jazzd-bench-"))
    out: dict = {"bench": "timing", "jack": {"rate": RATE, "period": PERIOD, "period_ms": PERIOD / RATE * 1000}}
    try:
        out["link"] = link_session(tmp, server, model, tempo, seconds)
    finally:
        jack.send_signal(signal.SIGTERM)
        jack.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    emit(out)


def emit(out: dict) -> None:
    """Print a benchmark's JSON, with the machine it ran on."""
    out["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                      "load_average_1min": os.getloadavg()[0]}
    print(json.dumps(out, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tempo", type=float, default=160.0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--follow-tempo", type=float, default=150.0)
    parser.add_argument("--follow-seconds", type=float, default=20.0)
    parser.add_argument("--clock", choices=["link"], default=None,
                        help="only jazzd in an Ableton Link session (needs the link extra)")
    parser.add_argument("--link-tempo", type=float, default=150.0)
    parser.add_argument("--link-seconds", type=float, default=20.0)
    args = parser.parse_args()
    model = ["--model", args.model] if args.model else []
    if args.clock == "link":
        return link_main(model, args.link_tempo, args.link_seconds)
    server = f"jazzd-bench-{os.getpid()}"
    jack = start_jack(server)
    tmp = Path(tempfile.mkdtemp(prefix="jazzd-bench-"))
    out: dict = {"bench": "timing", "jack": {"rate": RATE, "period": PERIOD, "period_ms": PERIOD / RATE * 1000}}
    try:
        proc, ready_s, _sock = start_jazzd(tmp, server, ["--mode", "duet", "--clock-out", "--tempo",
                                                         str(args.tempo), *model])
        kbd, rec = clients(server)
        chord = [[0x90, n, 70] for n in (50, 53, 57)]
        rss0, cpu0 = proc_stats(proc.pid)
        got = record(rec, args.seconds, [(0.01, lambda: [kbd.send_message(m) for m in chord])])
        rss1, cpu1 = proc_stats(proc.pid)
        errors, fitted = onset_errors(got, args.tempo, every=1)
        twelfths, _ = onset_errors(got, args.tempo)
        out["duet"] = {
            "seconds": args.seconds, "tempo_bpm": args.tempo, "fitted_tempo_bpm": round(fitted, 3),
            "notes": len(errors), **error_stats(errors, PERIOD / RATE * 1000),
            "off_twelfths_share": round(float(np.mean(np.abs(twelfths) > 60_000 / fitted / 48)), 4),
            "start_to_ready_s": round(ready_s, 3),
            "rss_mb": {k: round(v, 1) for k, v in rss1.items()},
            "rss_growth_mb": round(rss1["total"] - rss0["total"], 2),
            "cpu_percent": round((cpu1 - cpu0) / args.seconds * 100, 1),
        }
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        rtjack.close(kbd)
        rtjack.close(rec)

        proc, _ready, _sock = start_jazzd(tmp, server, ["--mode", "call", "--tempo", "120", *model])
        kbd, rec = clients(server)
        spb = 0.5
        sends = [(0.05, lambda m=m: kbd.send_message(m)) for m in chord]
        call = [60, 62, 64, 65, 67, 65, 64, 62]
        for i, p in enumerate(call):
            sends += [(0.3 + i * spb, lambda p=p: kbd.send_message([0x90, p, 100])),
                      (0.3 + i * spb + 0.4, lambda p=p: kbd.send_message([0x80, p, 0]))]
        start = time.monotonic()
        got = record(rec, 8.0, sends)
        first = min(t for t, m in got if is_note_on(m)) - start
        call_end = 0.3 + 7 * spb + 0.4
        out["call"] = {"tempo_bpm": 120, "call_end_s": call_end, "first_answer_note_s": round(first, 4),
                       "gap_after_call_beats": round((first - call_end) / spb, 3),
                       "due_within_beats": "1 beat of silence + at most 1 beat to the next beat"}
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        rtjack.close(kbd)
        rtjack.close(rec)
        out["follow"] = follow(tmp, server, model, args.follow_tempo, args.follow_seconds)
    finally:
        jack.send_signal(signal.SIGTERM)
        jack.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    emit(out)


if __name__ == "__main__":
    main()
