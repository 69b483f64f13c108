"""How well jazzd follows a MIDI clock (`MidiClockFollower`, `TempoFilter`), as JSON.

    python bench/clock.py [--seeds N]

Pure arithmetic on exact timestamps (no ports, no real time), so it is repeatable:
1. steady: a 24-ppqn clock with uniform ±1 ms jitter on every pulse, N seeds, at 100,
   120 and 173 bpm: the worst tempo error one beat in (after 25 pulses) and from two
   beats on (pulses 48-287), and the share of runs over 0.5 bpm after one beat;
2. steps: the tempo jumps at pulse 144 (120 -> 140, 140 -> 120, 100 -> 173, 173 -> 100,
   and 120 -> 128, a 7% step): pulses until the line restarts, the worst tempo error one
   beat after the step and from two beats on;
3. faults (issue 11): two beats of clock, Start, 64 beats with one pulse in 50 lost,
   ±2 ms jitter, 8 spurious pulses and one doubled, at 120 and 173 bpm: the beat ticks
   against the sender's beats (median, p99, max in ms; runs with a beat missing,
   doubled or moved);
4. storm (issue 18): 320 stray pulses in 0.3 s over a steady 120 bpm clock, then
   Start: the ticks after the Start against the sender's beats, and the strays dropped;
5. start-up: Start, then a clock whose first pulses are held up (the first 1-6 pulses
   late by 0.25-0.9 of a period, the rest 0-1.5 ms late), or stalled once in the
   first 6 beats (3-40 ms, the held pulses released together), at 90, 120, 150 and
   180 bpm: the runs with any beat from beat 2 on more than half a period from the
   sender's (a beat numbered a pulse off: it stays off for the song), by case;
6. cost: microseconds a pulse on a steady clock.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jazzd.live.clock import PPQN, MidiClockFollower, TempoFilter  # noqa: E402
from jazzd.play.events import Tick  # noqa: E402

CLOCK, START = b"\xf8", b"\xfa"


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def steady(seeds: int) -> dict:
    out = {}
    for bpm in (100, 120, 173):
        period = 60.0 / bpm / PPQN
        one_beat, later = [], []
        for seed in range(seeds):
            rng = random.Random(seed)
            flt = TempoFilter()
            errors = []
            for k in range(12 * PPQN):
                flt.observe(10.0 + k * period + rng.uniform(-1e-3, 1e-3))
                errors.append(abs(flt.tempo - bpm))
            one_beat.append(errors[PPQN])
            later.append(max(errors[2 * PPQN:]))
        out[f"{bpm:g}_bpm"] = {"worst_after_25_pulses_bpm": round(max(one_beat), 3),
                               "share_over_0.5_after_25": round(sum(e > 0.5 for e in one_beat) / seeds, 4),
                               "worst_from_48_pulses_bpm": round(max(later), 3)}
    return out


def steps(seeds: int) -> dict:
    out = {}
    for before, after in ((120, 140), (140, 120), (100, 173), (173, 100), (120, 128)):
        resets_at, one_beat, later = [], [], []
        for seed in range(seeds):
            rng = random.Random(seed)
            flt, t = TempoFilter(before), 10.0
            step = 6 * PPQN
            errors = []
            for k in range(14 * PPQN):
                t += 60.0 / (before if k < step else after) / PPQN
                resets = flt.resets
                flt.observe(t + rng.uniform(-1e-3, 1e-3))
                if flt.resets > resets and k >= step and len(resets_at) <= seed:
                    resets_at.append(k - step + 1)
                errors.append(abs(flt.tempo - after))
            one_beat.append(errors[step + PPQN])
            later.append(max(errors[step + 2 * PPQN:]))
        out[f"{before}_to_{after}"] = {
            "runs_reset": len(resets_at),
            "reset_after_pulses": [min(resets_at), max(resets_at)] if resets_at else None,
            "worst_one_beat_after_bpm": round(max(one_beat), 3),
            "worst_from_two_beats_after_bpm": round(max(later), 3)}
    return out


def _ticks(arrivals: list[float], start_at: float) -> tuple[MidiClockFollower, list]:
    follower, ticks, started = MidiClockFollower(), [], False
    for t in arrivals:
        if not started and t >= start_at:
            ticks += follower.feed(start_at, START)
            started = True
        ticks += follower.feed(t, CLOCK)
    return follower, [tk for tk in ticks if isinstance(tk, Tick)]


def faults(seeds: int) -> dict:
    out = {}
    for bpm in (120, 173):
        period = 60.0 / bpm / PPQN
        errors, broken, lost, dropped = [], 0, 0, 0
        for seed in range(seeds):
            rng = random.Random(seed)
            sent = [10.0 + k * period for k in range(-2 * PPQN, 64 * PPQN + 6)]
            arrivals = [t + rng.uniform(-2e-3, 2e-3) for t in sent if rng.randrange(50)]
            arrivals += [rng.uniform(sent[2 * PPQN], sent[-1]) for _ in range(8)]
            arrivals.append(rng.choice(arrivals) + 1e-4)
            follower, ticks = _ticks(sorted(arrivals), 10.0 - period / 2)
            beat_t = sent[2 * PPQN::PPQN]
            if [tk.beat for tk in ticks[:65]] != list(range(65)):
                broken += 1
                continue
            errors += [abs(tk.t - beat_t[tk.beat]) * 1000 for tk in ticks[:65]]
            lost += follower.filter.lost
            dropped += sum(follower.filter.dropped.values())
        out[f"{bpm:g}_bpm"] = {"tick_error_ms": {"median": round(statistics.median(errors), 3),
                                                 "p99": round(percentile(errors, 99), 3),
                                                 "max": round(max(errors), 3)},
                               "runs_with_a_beat_missing_doubled_or_moved": broken,
                               "pulses_counted_lost": lost, "arrivals_dropped": dropped}
    return out


def storm(seeds: int) -> dict:
    period = 60.0 / 120 / PPQN
    errors, broken, dropped, resets = [], 0, 0, 0
    for seed in range(seeds):
        rng = random.Random(seed)
        sent = [10.0 + k * period for k in range(-4 * PPQN, 8 * PPQN + 6)]
        arrivals = [t + rng.uniform(-1e-3, 1e-3) for t in sent]
        arrivals += [rng.uniform(8.5, 8.8) for _ in range(320)]
        follower, ticks = _ticks(sorted(arrivals), 10.0 - period / 2)
        if [tk.beat for tk in ticks[:9]] != list(range(9)):
            broken += 1
            continue
        errors += [abs(tk.t - sent[4 * PPQN + PPQN * tk.beat]) * 1000 for tk in ticks[:9]]
        dropped += sum(follower.filter.dropped.values())
        resets += follower.filter.resets
    return {"tick_error_ms": {"median": round(statistics.median(errors), 3),
                              "max": round(max(errors), 3)},
            "runs_with_a_beat_missing_doubled_or_moved": broken,
            "strays_dropped_per_run": round(dropped / seeds, 1), "line_restarts": resets}


def startup(seeds: int) -> dict:
    cases: dict[str, list[int]] = {}
    for bpm in (90, 120, 150, 180):
        period = 60.0 / bpm / PPQN
        sent = [0.0005 + k * period for k in range(16 * PPQN)]
        for seed in range(seeds):
            rng = random.Random(seed * 1000 + bpm)
            runs = {}
            for held in range(1, 7):
                for late in (0.25, 0.4, 0.55, 0.7, 0.9):
                    runs[f"first {held} late {late:g} period"] = [
                        t + rng.uniform(0, 1.5e-3) + (late * period if k < held else 0.0) for k, t in enumerate(sent)]
            for _ in range(8):
                at, stall = sent[rng.randrange(6 * PPQN)], rng.uniform(3e-3, 40e-3)
                runs["a stall"] = [at + stall + rng.uniform(0, 2e-4) if at <= t < at + stall else t + rng.uniform(0, 1.5e-3)
                                   for t in sent]
                runs[f"a stall {_}"] = runs.pop("a stall")
            for name, arrivals in runs.items():
                _, ticks = _ticks(sorted(arrivals), 0.0)
                off = any(tk.beat >= 2 and abs(tk.t - sent[tk.beat * PPQN]) > period / 2 for tk in ticks)
                key = f"{bpm} bpm: " + ("a stall" if name.startswith("a stall") else name.split(" late")[0] + " late "
                                         + name.split(" late ")[1])
                runs_off = cases.setdefault(key, [0, 0])
                runs_off[0] += 1
                runs_off[1] += off
    total = sum(n for n, _ in cases.values())
    return {"runs": total, "runs_a_pulse_off": sum(b for _, b in cases.values()),
            "by_case": {k: f"{b}/{n}" for k, (n, b) in cases.items() if b}}


def cost() -> float:
    flt, period = TempoFilter(), 60.0 / 120 / PPQN
    rng = random.Random(0)
    times = [10.0 + k * period + rng.uniform(-1e-3, 1e-3) for k in range(20_000)]
    t0 = time.perf_counter()
    for t in times:
        flt.observe(t)
    return (time.perf_counter() - t0) / len(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    args = parser.parse_args()
    out = {"bench": "clock", "seeds": args.seeds, "steady": steady(args.seeds), "steps": steps(args.seeds),
           "faults": faults(min(args.seeds, 200)), "storm": storm(min(args.seeds, 200)),
           "startup": startup(min(args.seeds, 20)),
           "us_per_pulse": round(cost(), 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
