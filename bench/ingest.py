"""Ingest throughput on the WJD folder: files/s, tokens/s and wall time, as JSON.

    python bench/ingest.py [FOLDER] [--workers N]

Runs the same path as `jazzd ingest` (parallel readers, encoding, vocabulary), once
with one worker and once with one per core, so the ratio shows what parallelism buys.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jazzd.data.ingest.run import ingest


def main() -> None:
    default = Path(os.environ.get("JAZZD_SHARED") or Path(__file__).resolve().parents[2] / "shared")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=default / "data" / "wjazzd")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    runs = {}
    for workers in sorted({1, args.workers}):
        t0 = time.perf_counter()
        result = ingest([args.folder], fmt="wjazzd", workers=workers, show_progress=False)
        wall = time.perf_counter() - t0
        stats = result.corpus.stats
        runs[f"workers_{workers}"] = {
            "wall_s": round(wall, 3), "files": stats["pieces"], "skipped": len(result.failures),
            "files_per_s": round(stats["pieces"] / wall, 1), "tokens": stats["tokens"],
            "tokens_per_s": round(stats["tokens"] / wall),
        }
    w1, wn = runs["workers_1"]["wall_s"], runs[f"workers_{args.workers}"]["wall_s"]
    seed_midi = default / "data" / "seed" / "original_metheny.mid"
    if seed_midi.exists():  # the seed's selection, emulating music21 6.7.1 from ticks
        from jazzd.data.ingest import seed

        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            values = seed.read(seed_midi).encode()[0]
            times.append(time.perf_counter() - t0)
        runs["seed_metheny"] = {"values": len(values), "best_s": round(min(times), 3)}
    print(json.dumps({"bench": "ingest", "folder": str(args.folder), "cpus": os.cpu_count(),
                      "machine": platform.machine(), "python": platform.python_version(),
                      **runs, "parallel_speedup": round(w1 / wn, 2)}, indent=2))


if __name__ == "__main__":
    main()
