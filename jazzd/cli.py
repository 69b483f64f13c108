"""The `jazzd` command line.  Main thread; each subcommand imports what it needs lazily,
so `jazzd run` never pays for the offline tools (and never imports tensorflow/music21).

`main(argv)` returns the exit code: 0 success, 1 runtime failure or partial success
(e.g. files skipped), 2 bad usage, configuration or input.  Errors print one line;
set JAZZD_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .errors import JazzdError


def _cmd_ingest(args) -> int:
    from .ingest.run import ingest

    result = ingest(args.sources, fmt=args.format, max_vocab=args.max_vocab, workers=args.workers,
                    show_progress=not args.quiet)
    result.corpus.save(args.output)
    if args.dump_values:
        with open(args.dump_values, "w", encoding="utf-8") as f:
            f.writelines(v + "\n" for v in result.raw_values)
    stats = result.corpus.stats
    for line in result.failures:
        print(f"skipped: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps({**stats, "skipped": len(result.failures), "output": str(args.output)}))
    else:
        print(f"wrote {args.output}")
        print(f"  pieces      {stats['pieces']}  (skipped {len(result.failures)})")
        print(f"  notes       {stats['notes']}")
        print(f"  tokens      {stats['tokens']}")
        print(f"  distinct    {stats['distinct']}")
        print(f"  vocabulary  {stats['vocabulary']}  (covers {stats['coverage']:.2%} of tokens exactly)")
        tops = "  ".join(f"top {n}: {f:.1%}" for n, f in stats["top_n"].items())
        print(f"  coverage    {tops}")
        types = "  ".join(f"{t} {c}" for t, c in stats["tokens_per_type"].items())
        print(f"  per type    {types}")
    return 1 if result.failures else 0


def _cmd_run(args) -> int:
    print("jazzd run: the live daemon is not built yet (it lands with the daemon issue); "
          "today jazzd can ingest corpora: see `jazzd ingest --help`", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jazzd", description="A real-time MIDI jazz improviser.")
    parser.add_argument("--version", action="version", version=f"jazzd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", help="build a corpus file from solos (WJD CSV, MIDI, the seed)")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="files or folders")
    p.add_argument("-o", "--output", required=True, metavar="CORPUS", help="corpus file to write (.npz)")
    p.add_argument("--format", default="auto", choices=["auto", "seed", "wjazzd", "midi"],
                   help="source format (default: auto: WJD folders and .csv, else MIDI)")
    p.add_argument("--max-vocab", type=int, metavar="N",
                   help="keep the N most frequent values; map the rest to their nearest")
    p.add_argument("--dump-values", metavar="FILE", help="write the values one per line, in corpus order")
    p.add_argument("--workers", type=int, metavar="N", help="parallel readers (default: one per core)")
    p.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("run", help="run the live daemon (not built yet)")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except JazzdError as err:
        if os.environ.get("JAZZD_DEBUG"):
            raise
        print(f"jazzd {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
