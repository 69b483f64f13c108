"""Every benchmark, one table: run bench/{ingest,step,engine,clock,timing,flood,cpu}.py and write their
headline numbers, with the machine they ran on, to bench/RESULTS.md (and print it).

    python bench/run_all.py [--only ingest,step,engine,clock,timing,flood,cpu] [--timing-seconds 60]
                            [-o bench/RESULTS.md]

Each benchmark runs as its own process, exactly as it runs alone (each prints one JSON
object; the raw objects are kept in bench/results.json), with one BLAS thread
(OPENBLAS_NUM_THREADS=1, what the daemon runs with).  A benchmark that cannot run here
(no jackd for timing.py, no TensorFlow for step.py's Keras rows, no ../shared for the
ingest corpus) is listed as skipped with its reason; the others still run.  The load
average is recorded too: numbers from a busy machine are not numbers from an idle one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BENCHES = ("ingest", "step", "engine", "clock", "timing", "flood", "cpu")


def machine() -> dict:
    """CPU model, cores, RAM, kernel, Python, numpy, the commit, the load."""
    def first(path: str, key: str) -> str | None:
        try:
            with open(path, encoding="utf-8") as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith(key)), None)
        except OSError:
            return None

    mem_kb = first("/proc/meminfo", "MemTotal")
    try:
        import numpy

        numpy_version = numpy.__version__
    except ImportError:
        numpy_version = None
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or None
    return {
        "cpu": first("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "ram_gb": round(int(mem_kb.split()[0]) / 1024 ** 2, 1) if mem_kb else None,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": numpy_version,
        "commit": commit,
        "load_average_1min_before": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run(name: str, args: list[str]) -> dict:
    """One benchmark as a process: its JSON, or why it did not run."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], capture_output=True,
                          text=True, env=env, cwd=REPO)
    wall = round(time.monotonic() - start, 1)
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return {"skipped": lines[-1] if lines else f"exit code {proc.returncode}", "wall_s": wall}
    return {**out, "wall_s": wall}


def _get(d: dict, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def rows(results: dict) -> list[tuple[str, str, str]]:
    """(benchmark, what, value) for the table: the numbers the README and model card quote."""
    out = []

    def add(bench: str, what: str, value, unit: str = "") -> None:
        if value is not None:
            out.append((bench, what, f"{value}{unit}"))

    r = results.get("ingest", {})
    if r and "skipped" not in r:
        workers = max((k for k in r if k.startswith("workers_")), key=lambda k: int(k.split("_")[1]))
        for key in sorted({"workers_1", workers}):
            n = key.split("_")[1]
            add("ingest", f"WJD corpus, {n} worker{'s' if n != '1' else ''}: wall", _get(r, key, "wall_s"), " s")
            add("ingest", f"WJD corpus, {n} worker{'s' if n != '1' else ''}: files/s", _get(r, key, "files_per_s"))
            add("ingest", f"WJD corpus, {n} worker{'s' if n != '1' else ''}: values/s", _get(r, key, "tokens_per_s"))
        add("ingest", "parallel speed-up", r.get("parallel_speedup"), "x")
        add("ingest", "seed Metheny MIDI (275 values): best of 5", _get(r, "seed_metheny", "best_s"), " s")
    r = results.get("step", {})
    if r and "skipped" not in r:
        for key, label in (("runtime_step", "numpy runtime: one step"),
                           ("runtime_step_sample", "numpy runtime: step + sample"),
                           ("keras_predict", "Keras model.predict: one step"),
                           ("keras_call", "Keras model(x): one step"),
                           ("tf_function", "tf.function: one step")):
            t = _get(r, "times", key)
            if t:
                add("step", f"{label} (median / p99)", f"{t['median_us']} / {t['p99_us']}", " µs")
        add("step", "Keras predict / numpy step+sample", _get(r, "median_ratios", "keras_predict/runtime_step_sample"), "x")
    r = results.get("engine", {})
    if r and "skipped" not in r:
        per_beat = "(median / p99 / max; p99 of each beat's best of the 3 runs)"

        def beats(c: dict) -> str:
            return f"{c['median_us']} / {c['p99_us']} / {c['max_us']}; {c.get('p99_us_best')}"

        c = r.get("cost_per_beat", {})
        if c:
            add("engine", f"duet at {c['tempo_bpm']:g} bpm, engine time per beat {per_beat}", beats(c),
                f" µs (budget {c['budget_us_per_beat']} µs)")
        for key in ("cost_per_beat_with_memory", "cost_per_beat_with_memory_half"):
            c = r.get(key, {})
            if c:
                add("engine", f"the same with a full session memory at imitation {c['imitation']:g}: per beat "
                    f"{per_beat}; its mix per value played (median / p99)",
                    f"{beats(c)}; {c['memory_mix']['median_us']} / {c['memory_mix']['p99_us']}", " µs")
        for key, label in (("lead_line", "jazzd's own line (solo) at 240 bpm"),
                           ("lead_line_with_memory", "the same with a full session memory at imitation 1")):
            c = r.get(key, {})
            if c:
                add("engine", f"{label}: per beat {per_beat}; values drawn a beat (mean / p99 / max)",
                    f"{beats(c)} µs; {c['values_per_beat_mean']} / "
                    f"{c['values_per_beat_p99']:g} / {c['values_per_beat_max']}")
        add("engine", "offline render of 32 bars", _get(r, "render_32_bars", "wall_s"), " s")
        ct = r.get("strong_beat_chord_tone_ratio", {})
        add("engine", "chord tones on beats 1 and 3: generated / real WJD",
            f"{ct.get('generated')} / {ct.get('real')}" if ct else None)
    r = results.get("clock", {})
    if r and "skipped" not in r:
        worst = " / ".join(str(_get(r, "steady", f"{b}_bpm", "worst_from_48_pulses_bpm")) for b in (100, 120, 173))
        add("clock", "following MIDI clock, ±1 ms jitter: worst tempo error from two beats on, 100 / 120 / 173 bpm",
            worst, " bpm")
        f = _get(r, "faults", "120_bpm")
        if f:
            e = f["tick_error_ms"]
            add("clock", "1 pulse in 50 lost, ±2 ms jitter, stray and doubled pulses, 120 bpm: beat error "
                "(median / p99 / max)", f"{e['median']} / {e['p99']} / {e['max']}", " ms")
            add("clock", "runs of 64 beats with a beat missing, doubled or moved", f["runs_with_a_beat_missing_doubled_or_moved"])
        add("clock", "320 stray pulses in 0.3 s, then Start: beat error max", _get(r, "storm", "tick_error_ms", "max"), " ms")
        add("clock", "cost per pulse", r.get("us_per_pulse"), " µs")
    r = results.get("timing", {})
    if r and "skipped" not in r:
        d = r.get("duet", {})
        if d:
            e = d["onset_error_ms"]
            add("timing", f"JACK duet {d['seconds']:g} s at {d['tempo_bpm']:g} bpm: onset error against its "
                "clock pulses (median / p99 / max)", f"{e['median']} / {e['p99']} / {e['max']}", " ms")
            add("timing", "JACK duet: notes off the twelfths of a beat (what it played: 32nds, tuplets)",
                d.get("off_twelfths_share"))
            add("timing", "start to READY=1", d.get("start_to_ready_s"), " s")
            add("timing", "daemon RSS / CPU", f"{_get(d, 'rss_mb', 'total')} MB / {d.get('cpu_percent')} %")
        add("timing", "call mode: first answer note after the call ends",
            _get(r, "call", "gap_after_call_beats"), " beats")
        f = r.get("follow", {})
        if f:
            e = f["onset_error_ms"]
            add("timing", f"following a {f['tempo_bpm']:g} bpm MIDI clock, solo: onset error (median / p99 / max)",
                f"{e['median']} / {e['p99']} / {e['max']}", " ms")
    r = results.get("flood", {})
    if r and "skipped" not in r:
        sends = " / ".join(str(_get(r, p, "send_error_ms", "p99")) for p in ("idle", "flood", "after"))
        add("flood", f"{r['rate_per_s']:,} msg/s for {r['phase_s']:g} s in duet: send error p99 "
            "(clock pulses) idle / flood / after", sends, " ms")
        add("flood", "send error p99 ratio flooded / idle (target <= 2)", r.get("send_p99_ratio_flood_over_idle"), "x")
        phases = " / ".join(str(_get(r, p, "p99_ms")) for p in ("idle", "flood", "after"))
        add("flood", "note onsets against twelfths of a beat, p99 idle / flood / after (a tuplet the model "
            "plays moves its line off that grid and counts here as error)", phases, " ms")
        add("flood", "private memory growth under the flood", _get(r, "flood", "rss_growth_mb"), " MB")
    r = results.get("cpu", {})
    for per in sorted((k for k in r if k.startswith("period_")), key=lambda k: int(k.split("_")[1])):
        frames = per.split("_")[1]
        for key, label in (("idle_call", "waiting in call mode, nothing played"),
                           ("idle_stopped_clock", "following a stopped MIDI clock (pulses, no Start)"),
                           ("duet_160", "duet at 160 bpm, sending clock"),
                           ("solo_240", "solo at 240 bpm, sending clock")):
            c = r[per].get(key, {})
            add("cpu", f"period {frames}: {label}: CPU (% of a core)", c.get("cpu_percent"), " %")
            if "onset_error_ms" in c:
                e = c["onset_error_ms"]
                add("cpu", f"period {frames}: {label}: onset error against its clock pulses (median / p99), "
                    "pulse error p99", f"{e['median']} / {e['p99']} ms, {_get(c, 'pulse_error_ms', 'p99')}", " ms")
    for name in BENCHES:
        r = results.get(name)
        if r is not None and "skipped" in r:
            out.append((name, "skipped", r["skipped"]))
    return out


def markdown(results: dict, mach: dict) -> str:
    lines = ["# Benchmark results", "",
             f"`python bench/run_all.py` (or `make bench`), {mach['date']}, commit `{mach['commit']}`. "
             "Every benchmark ran as its own process with one BLAS thread; raw JSON in "
             "`bench/results.json`. See `bench/README.md` for what each one measures.", "",
             "| machine | |", "|---|---|"]
    for key, label in (("cpu", "CPU"), ("cores", "cores"), ("ram_gb", "RAM (GB)"), ("kernel", "kernel"),
                       ("python", "Python"), ("numpy", "numpy"), ("load_average_1min_before", "load average before"),
                       ("load_average_1min_after", "load average after")):
        lines.append(f"| {label} | {mach.get(key)} |")
    lines += ["", "| benchmark | what | value |", "|---|---|---:|"]
    lines += [f"| {b} | {w} | {v} |" for b, w, v in rows(results)]
    walls = ", ".join(f"{n} {results[n]['wall_s']} s" for n in BENCHES if n in results)
    lines += ["", f"Wall time per benchmark: {walls}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ", ".join(BENCHES))
    parser.add_argument("--timing-seconds", type=float, default=60.0, help="length of timing.py's duet run")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        sys.exit(f"bench/run_all.py: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    mach = machine()
    results = {}
    for name in chosen:
        print(f"running bench/{name}.py ...", file=sys.stderr, flush=True)
        extra = ["--seconds", f"{args.timing_seconds:g}"] if name == "timing" else []
        results[name] = run(name, extra)
    mach["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    text = markdown(results, mach)
    args.output.write_text(text, encoding="utf-8")
    args.output.with_name("results.json").write_text(
        json.dumps({"machine": mach, "results": results}, indent=1) + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
