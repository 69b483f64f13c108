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
from pathlib import Path

from jazzd import __version__
from jazzd.errors import ConfigError, JazzdError
from jazzd.model.shipped import default_model


def _cmd_ingest(args) -> int:
    from jazzd.data.ingest.run import ingest

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



def _cmd_train(args) -> int:
    from jazzd.training.train import train

    train(args.corpus, args.output, preset=args.preset, layers=args.layers, hidden=args.hidden,
          seq_len=args.seq_len, epochs=args.epochs, batch=args.batch, lr=args.lr,
          max_vocab=args.max_vocab, seed=args.seed, strategy=args.strategy,
          log=lambda line: print(line, flush=True))
    return 0


def _cmd_pitch_tables(args) -> int:
    from jazzd.training.pitchtables import add_to_bundle

    done = add_to_bundle(args.corpus, args.model, args.output)
    print(f"wrote {done['bundle']}: pitch tables from {done['notes']} notes of its {done['pieces']} "
          f"training solos; weights unchanged (sha256 {done['weights_sha256'][:16]}...)")
    return 0


def _cmd_articulation(args) -> int:
    from jazzd.training.articulation import write_table

    done = write_table(args.sources, str(args.model or default_model()), args.output, args.split)
    print(f"wrote {done['output']}: held shares of {done['notes']} notes of {done['pieces']} "
          f"{'training ' if done['split'] == 'train' else ''}solos, {done['cells']} cells")
    print("  span class     phrase       n   median (quartiles)")
    for row in done["summary"]:
        print(f"  {row['class']:<14} {row['phrase']:<7} {row['n']:>6}   {row['median']:.3f} "
              f"({row['q25']:.3f}-{row['q75']:.3f})")
    ing = done["ingest"]
    print(f"  ingest's grid: notes held to the next onset {ing['held_to_next_played']:.1%} as played, "
          f"{ing['held_to_next_encoded']:.1%} as encoded; silent share of the spans "
          f"{ing['silent_share_played']:.1%} as played, {ing['silent_share_encoded']:.1%} as encoded")
    return 0


def _cmd_feel_model(args) -> int:
    from jazzd.training.feel import bins, build

    model, measured = build(args.wjd, args.model or default_model(), args.output)
    i = model.info
    print(f"wrote {args.output}: feel of {i['solos']} training solos ({i['beats']} measured beats; "
          f"median tempo {i['median_tempo']:.0f} bpm, BUR {i['median_bur']:.3f}, delay {i['median_delay_ms']:.1f} ms)")
    print(f"  BUR      = {model.bur_a:.4f} {model.bur_b:+.4f} ln(bpm)   spread {model.bur_spread:.3f}")
    print(f"  delay ms = {model.delay_a:.3f} {model.delay_b:+.3f} ln(bpm)   spread {model.delay_spread:.2f} ms; "
          f"downbeats within a solo {model.beat_spread_ms:.1f} ms")
    for tempo in (100, 150, 200, 250, 300):
        print(f"  at {tempo:3d} bpm: BUR {model.bur(tempo):.3f}, delay {model.delay_ms(tempo):5.1f} ms")
    for b in bins(measured):
        lo, hi = b["tempo"]
        print(f"  solos at {lo:g}-{hi:g} bpm: {b['solos']:3d}, median BUR {b['bur']:.3f}, delay {b['delay_ms']:5.1f} ms")
    return 0


def _cmd_generate(args) -> int:
    import numpy as np

    from jazzd.model.bundle import load_bundle
    from jazzd.model.runtime import Runtime
    from jazzd.music.progression import DEFAULT_CHANGES, parse_progression
    from jazzd.play.engine import Engine, Settings
    from jazzd.play.offline import render
    from jazzd.play.render import write_midi

    if args.bars < 1 or args.tempo <= 0 or args.temperature < 0 or not 0 < args.top_p <= 1:
        raise ConfigError("--bars and --tempo must be positive, --temperature at least 0, --top-p in (0, 1]")
    if not 0 <= args.feel_amount <= 1:
        raise ConfigError(f"--feel-amount {args.feel_amount:g}: must be from 0 (straight) to 1")
    if not 0 <= args.articulation_amount <= 1:
        raise ConfigError(f"--articulation-amount {args.articulation_amount:g}: must be from 0 (legato) to 1")
    progression = parse_progression(args.chords or DEFAULT_CHANGES)
    bundle = load_bundle(args.model or default_model())
    engine = Engine(Runtime(bundle), np.random.default_rng(args.seed),
                    Settings(mode="solo", temperature=args.temperature, top_p=args.top_p, feel=args.feel,
                             feel_amount=args.feel_amount, articulation=args.articulation,
                             articulation_amount=args.articulation_amount),
                    progression=progression)
    if args.prime:
        _prime(engine.soloist, args.prime)
    notes = render(engine, args.bars, args.tempo)
    write_midi(args.output, notes, progression, args.bars, args.tempo)
    if args.png:
        from jazzd.judge.plots import piano_roll

        piano_roll(args.png, notes, progression, args.bars, title=Path(args.output).name)
    print(f"wrote {args.output}: {len(notes)} notes over {args.bars} bars of "
          f"{progression.text!r} at {args.tempo:g} bpm (seed {args.seed})")
    return 0


def _prime(soloist, path) -> None:
    """Teacher-force the values of a played call (a MIDI file) into the soloist."""
    from jazzd.data.ingest.midi import read
    from jazzd.music.grammar import iter_bar

    piece = read(path)
    for bar in piece.bars:
        for k, (el, chord, value) in enumerate(iter_bar(bar.elements, bar.chords)):
            soloist.hear(value, el.offset - bar.start, k == 0, chord, el.midi)


def _cmd_eval(args) -> int:
    from jazzd.training.evaluate import evaluate_sources

    if not 0 <= args.imitation <= 1:
        raise ConfigError(f"--imitation {args.imitation:g}: must be from 0 (no session memory) to 1")
    result = evaluate_sources(args.model or default_model(), args.sources, fmt=args.format, split=args.split,
                              imitation=args.imitation)
    if args.json:
        print(json.dumps(result))
    else:
        base = result["baseline"]
        print(f"{result['pieces']} pieces, {result['tokens']} tokens")
        print(f"  model    NLL {result['nll']:.4f} nats/token   accuracy {result['accuracy']:.4f}")
        if "memory" in result:
            mem = result["memory"]
            print(f"  + memory NLL {mem['nll']:.4f} nats/token   accuracy {mem['accuracy']:.4f}   "
                  f"(session memory learning each solo as it is scored, imitation {mem['imitation']:g})")
        if base:
            print(f"  trigram  NLL {base['nll']:.4f} nats/token   accuracy {base['accuracy']:.4f}")
        else:
            print("  trigram  (no baseline file beside the bundle)")
    return 0


def _cmd_report(args) -> int:
    from jazzd.judge.report import Options, run_report

    opts = Options(real=args.real, output=args.output, model=str(args.model or default_model()),
                   fmt=args.format, split=args.split, compare=args.compare or [],
                   compare_names=args.compare_name or [], compare_models=args.compare_model or [], bars=args.bars, samples=args.samples, seed=args.seed,
                   temperature=args.temperature, top_p=args.top_p, tempo=args.tempo, calls=args.calls,
                   listen_overrides=_listen_overrides(args.listen_set or []), progress=not args.quiet,
                   feel=args.feel, articulation=args.articulation)
    result = run_report(opts)
    out = Path(args.output)
    print(f"wrote {out / 'report.md'}, {out / 'metrics.json'}, {len(result['plots'])} plots and "
          f"{result['sets']['generated']['pieces']} MIDI files in {out / 'midi'} ({result['runtime_s']:.0f} s)")
    for name, d in result["distances"].items():
        fams = "  ".join(f"{fam} OA {v['oa']:.3f}" for fam, v in d["families"].items())
        print(f"  {name:<24} {fams}")
    for name, t in (result.get("real_or_generated") or {}).get("sets", {}).items():
        if t:
            print(f"  real or {name + '?':<20} balanced accuracy {t['balanced_accuracy']:.3f}  AUC {t['auc']:.3f}")
    if result.get("listening"):
        feats = result["listening"]["features"]
        print("  listening (real / jazzd): " + "  ".join(
            f"{name} {e['real']['mean']:.3f}/{e['jazzd']['mean']:.3f}" for name, e in feats.items()))
    return 0


def _listen_overrides(items: list[str]) -> dict:
    """`--listen-set section.key=value` as {Settings field: engine value}: checked by the
    config's rules (the packaged defaults plus these, no config files), engine keys only."""
    from dataclasses import fields

    from jazzd.errors import ConfigError
    from jazzd.live.config import load_config, parse_overrides
    from jazzd.play.settings import Settings, engine_value

    given = parse_overrides(items, label="--listen-set")
    engine = {f.metadata["key"]: f for f in fields(Settings)}
    for key in given:
        if key not in engine:
            raise ConfigError(f"--listen-set {key}: not an engine setting; use one of {', '.join(engine)}")
    flat = load_config(None, given, system_paths=()).flat()
    return {engine[k].name: engine_value(engine[k], flat[k]) for k in given}


def _overrides(args) -> dict:
    """The settings `jazzd run`'s flags give, as {"section.key": value}: the named flags,
    then each --set section.key=value (so --set wins)."""
    from jazzd.live.config import parse_overrides

    overrides = {}
    for key, value in (("model.path", args.model), ("model.memory", args.memory), ("midi.backend", args.backend),
                       ("midi.input", args.input), ("midi.output", args.output),
                       ("engine.mode", args.mode), ("clock.tempo", args.tempo),
                       ("clock.source", args.clock), ("engine.feel", args.feel),
                       ("engine.articulation", args.articulation)):
        if value is not None:
            overrides[key] = value
    if args.clock_out:
        overrides["clock.send"] = True
    if args.realtime:
        overrides["system.realtime"] = True
    if getattr(args, "start_jack", False):
        overrides["midi.start_jack"] = "auto"
    return {**overrides, **parse_overrides(args.set or [])}


def _cmd_run(args) -> int:
    from jazzd.live.daemon import main as run_daemon

    return run_daemon(args.config, _overrides(args), print_ready=lambda line: print(line, flush=True))


def _cmd_demo(args) -> int:
    from jazzd.demo import SEED, run_demo

    return run_demo(Path(args.output), tempo=args.tempo, seed=SEED if args.seed is None else args.seed,
                    model=args.model)


def _cmd_config(args) -> int:
    """The settings `jazzd run` with the same options would use, and where each came from."""
    from jazzd.live.config import default_config_text, dump, load_config

    if args.default:
        print(default_config_text(), end="")
        return 0
    print(dump(load_config(args.config, _overrides(args)), args.keys), end="")
    return 0


def _cmd_ports(args) -> int:
    from jazzd.live.ports import list_ports

    ports = list_ports(args.backend)
    for kind in ("inputs", "outputs"):
        print(f"{kind}:")
        for i, name in enumerate(ports[kind]):
            print(f"  [{i}] {name}")
        if not ports[kind]:
            print("  (none)")
    return 0


def _cmd_panic(args) -> int:
    """All notes off on every channel of a port: what ExecStopPost runs after a crash."""
    from jazzd.live.config import load_config
    from jazzd.live.midi import panic_messages
    from jazzd.live.ports import open_ports

    # What the daemon's unit runs after any stop (ExecStopPost): the configured output,
    # so that a crashed daemon's synth is reached.  A virtual output's peers cannot be:
    # their connections went with the dead process's port.
    midi = load_config(args.config).midi
    out = args.out if args.out is not None else (midi.output or None)
    with open_ports(args.backend or midi.backend, args.client_name, None, out) as ports:
        messages = panic_messages(reset_controllers=False)
        ports.send_all(messages)
        print(f"panic: {len(messages)} messages to {ports.output_name}")
    return 0


def _control_client(args):
    """A client of the running daemon's control socket: --socket, else the config's
    [system] control_socket, else the default places (`jazzd.live.control.client_paths`)."""
    from jazzd.live.config import load_config
    from jazzd.live.control import Client, client_paths

    setting = args.socket if args.socket else load_config(args.config).system.control_socket
    return Client(client_paths(setting), start_hint="`jazzd run` (or `systemctl start jazzd`)")


def status_lines(st: dict) -> list[str]:
    """`jazzd status`'s text: the STATUS line, then the beat, the chord, the settings."""
    where = "before the first beat" if st["beat"] is None else \
        f"beat {st['beat']:g} (bar {st['bar']}, beat {st['beat_in_bar']})"
    c, t = st["counters"], st["timing"]
    engine = {k: v for k, v in st["settings"].items() if k.split(".")[0] in ("engine", "call", "duet")}
    late = t.get("oversleep_ms") or {}
    return [
        f"jazzd: {st['text']}",
        f"  {st['tempo']:g} bpm, {where}, transport {st['transport']}; {st['clock']}",
        f"  mode {st['mode']} ({st['state']}), chord heard {st['chord'] or 'none'}, model {st['model']}, "
        f"memory {st['memory_values']} values",
        f"  ports {st['ports']}" + ("" if st["port_state"] == "ok" else f" ({st['port_state']})"),
        "  settings: " + ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in engine.items()),
        f"  received {c['received']}, sent {c['sent']}, unsent {c['unsent']}, dropped {c['dropped']}"
        + (f" {c['drops']}" if c["drops"] else "") + f", queue full {c['queue_full']}"
        + (f", clock: {c['clock_faults']}" if c["clock_faults"] else ""),
        f"  timing: polls every {t['poll_ms']:g} ms, spins the last {t['spin_ms']:g} ms"
        + (f"; sleeps woke late by {late['median']:g} ms (median), {late['p98']:g} (p98), "
           f"{late['max']:g} (max)" if late else ""),
    ]


def _cmd_status(args) -> int:
    """One look at the running daemon."""
    with _control_client(args) as client:
        st = client.request("status")["status"]
    print(json.dumps(st, indent=2) if args.json else "\n".join(status_lines(st)))
    return 0


def _cmd_ctl(args) -> int:
    """Steer the running daemon: set, mode, panic, reload, forget; memory and subscribe print JSON."""
    with _control_client(args) as client:
        if args.action == "set":
            reply = client.request("set", key=args.key, value=args.value)
            print(f"{reply['key']} = {json.dumps(reply['value'])}")
        elif args.action == "mode":
            client.request("mode", mode=args.mode)
            print(f"mode {args.mode}")
        elif args.action == "memory":
            print(json.dumps(client.request("memory", top=args.top)["memory"], indent=2))
        elif args.action == "subscribe":
            client.request("subscribe")
            client.sock.settimeout(None)
            while True:
                print(json.dumps(client.read()), flush=True)
        else:
            reply = client.request(args.action)
            print(f"{args.action}: done" + (f" ({reply['status']['text']})" if "status" in reply else ""))
    return 0


def _cmd_monitor(args) -> int:
    """The terminal view of the running daemon (the monitor extra: Rich)."""
    from jazzd.live.config import load_config
    from jazzd.live.control import client_paths

    try:
        from jazzd import monitor
    except ImportError as err:
        raise JazzdError(f"jazzd monitor needs the monitor extra ({err.name} is missing): "
                         "pip install 'jazzd[monitor]'") from None
    setting = args.socket if args.socket else load_config(args.config).system.control_socket
    return monitor.run(client_paths(setting))


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

    p = sub.add_parser("train", help="train a model on a corpus and write a weights bundle (needs the train extra)")
    p.add_argument("corpus", metavar="CORPUS", help="corpus file from `jazzd ingest`")
    p.add_argument("-o", "--output", required=True, metavar="BUNDLE", help="bundle to write (.npz)")
    p.add_argument("--preset", default="default", choices=["seed", "default"])
    p.add_argument("--layers", type=int, metavar="N", help="number of LSTM layers")
    p.add_argument("--hidden", type=int, metavar="N", help="units per LSTM layer")
    p.add_argument("--seq-len", type=int, metavar="N", help="training window length")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--batch", type=int, metavar="N")
    p.add_argument("--lr", type=float, metavar="X", help="learning rate")
    p.add_argument("--max-vocab", type=int, metavar="N", help="model vocabulary size")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--strategy", default="none", choices=["none", "mirrored", "multiworker"],
                   help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("pitch-tables", help="add the pitch chooser's tables to a trained bundle, counted "
                                            "from its training solos; the weights stay as they are")
    p.add_argument("corpus", metavar="CORPUS", help="corpus file from `jazzd ingest` holding the bundle's "
                                                    "training solos")
    p.add_argument("model", metavar="BUNDLE", help="bundle to add the tables to (rewritten in place "
                                                   "unless -o is given)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the bundle with tables here instead")
    p.set_defaults(func=_cmd_pitch_tables)

    p = sub.add_parser("articulation", help="count how long WJD players hold notes (held share of each "
                                            "note's span) into the table shipped beside a bundle")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="WJD folders or melody CSVs")
    p.add_argument("--model", metavar="BUNDLE", help="the bundle whose training solos are counted "
                                                     "(default: the bundled model)")
    p.add_argument("--split", default="train", choices=["train", "all"],
                   help="train: only the bundle's training solos (default); all: every solo given")
    p.add_argument("-o", "--output", metavar="OUT.json",
                   help="table to write (default: beside the bundle, BUNDLE.articulation.json)")
    p.set_defaults(func=_cmd_articulation)

    p = sub.add_parser("feel-model", help="fit the feel model (swing and downbeat delay by tempo) from "
                                          "the WJD solos a bundle was trained on")
    p.add_argument("wjd", metavar="WJD", help="WJD folder (csv_melody/ and csv_beats/ with onset times)")
    p.add_argument("--model", metavar="BUNDLE", help="bundle whose training solos are fitted "
                                                     "(default: the bundled model)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.feel.json")
    p.set_defaults(func=_cmd_feel_model)

    p = sub.add_parser("generate", help="improvise a solo over chords into a MIDI file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mid")
    p.add_argument("--model", metavar="BUNDLE", help="weights bundle (default: the bundled model)")
    p.add_argument("--chords", metavar="TEXT", help='chord progression, e.g. "Dm7 G7 | Cmaj7 %%"')
    p.add_argument("--bars", type=int, default=16, metavar="N")
    p.add_argument("--tempo", type=float, default=140.0, metavar="BPM")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T")
    p.add_argument("--top-p", type=float, default=0.95, metavar="P")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--feel", default="wjd", choices=["wjd", "straight"],
                   help="time feel: wjd = swung eighths and laid-back downbeats as the WJD soloists played "
                        "at this tempo (default), straight = on the beat grid")
    p.add_argument("--feel-amount", type=float, default=1.0, metavar="X", help="how much of the feel, 0-1")
    p.add_argument("--articulation", default="wjd", choices=["wjd", "legato"],
                   help="note lengths: wjd = each note held for the share of its span the WJD soloists hold "
                        "such a note (default), legato = for its whole value")
    p.add_argument("--articulation-amount", type=float, default=1.0, metavar="X",
                   help="how much of the articulation, 0 (legato) to 1")
    p.add_argument("--prime", metavar="CALL.mid", help="a played phrase to continue from")
    p.add_argument("--png", metavar="OUT.png", help="also draw a piano roll (needs matplotlib)")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("eval", help="NLL and accuracy of a model on solos, next to a trigram baseline")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--model", metavar="BUNDLE", help="weights bundle (default: the bundled model)")
    p.add_argument("--format", default="auto", choices=["auto", "seed", "wjazzd", "midi"])
    p.add_argument("--split", choices=["train", "validation"],
                   help="only the pieces of the bundle's training or validation split")
    p.add_argument("--imitation", type=float, default=0.5, metavar="X",
                   help="also score with a session memory that learns each solo as it is scored, "
                        "mixed in as engine.imitation X does (default 0.5; 0 = plain model only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("report", help="judge a model musically: its solos next to real ones and others "
                                      "(report.md, metrics.json, plots, MIDI)")
    p.add_argument("--real", nargs="+", required=True, metavar="SOURCE",
                   help="real solos (WJD folder or CSVs, MIDI files or folders)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the report into")
    p.add_argument("--model", metavar="BUNDLE", help="weights bundle (default: the bundled model)")
    p.add_argument("--format", default="auto", choices=["auto", "seed", "wjazzd", "midi"],
                   help="format of the --real sources")
    p.add_argument("--split", default="auto", choices=["auto", "validation", "train", "all"],
                   help="which real solos (default: the bundle's validation solos when the sources "
                        "hold its training data, else all)")
    p.add_argument("--compare", nargs="+", action="append", metavar="MIDI",
                   help="a set of other solos to compare (MIDI files or folders); repeat for more sets")
    p.add_argument("--compare-name", action="append", metavar="NAME",
                   help="name of the first, second, ... --compare set (default: their folder)")
    p.add_argument("--compare-model", action="append", metavar="BUNDLE",
                   help="another model to render over the same changes and compare (e.g. the seed's "
                        "recipe); repeatable; measured, its MIDI not written")
    p.add_argument("--bars", type=int, metavar="N", help="only the first N bars of every piece")
    p.add_argument("--samples", type=int, metavar="N", help="solos to generate (default: one per real solo)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the first solo (then S+1, ...)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T")
    p.add_argument("--top-p", type=float, default=0.95, metavar="P")
    p.add_argument("--tempo", type=float, default=140.0, metavar="BPM",
                   help="tempo of the MIDI files and of the listening measure's calls")
    p.add_argument("--calls", type=int, default=600, metavar="N",
                   help="call-and-answer pairs of the listening measure, spread over the solos "
                        "(default 600: all of the WJD validation solos' 480; 0: no listening measure)")
    p.add_argument("--listen-set", action="append", metavar="SECTION.KEY=VALUE",
                   help="an engine setting for the listening measure's calls, e.g. call.silence_beats=0.5; "
                        "repeatable")
    p.add_argument("--feel", default="wjd", choices=["wjd", "straight"],
                   help="time feel of the generated solos and answers (default wjd; straight = on the grid)")
    p.add_argument("--articulation", default="wjd", choices=["wjd", "legato"],
                   help="note lengths of the generated solos (default wjd: held as the WJD soloists hold "
                        "notes; legato = whole values)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_report)

    # The options that choose settings: `run` takes them, `config` shows what they give.
    settings = argparse.ArgumentParser(add_help=False)
    settings.add_argument("--model", metavar="BUNDLE", help="weights bundle (default: the bundled model)")
    settings.add_argument("--config", metavar="FILE", help="configuration file (after /etc and the user's)")
    settings.add_argument("--memory", metavar="PATH",
                          help='session memory file, loaded at start and saved on stop ("off": none; '
                               "default: memory.json in $STATE_DIRECTORY when set)")
    settings.add_argument("--backend", choices=["auto", "alsa", "jack", "coremidi", "winmm"])
    settings.add_argument("--start-jack", action="store_true",
                          help="with no MIDI system running, start jazzd's own JACK server (dummy driver; "
                               "needs jackd2) and play on it ([midi] start_jack = \"auto\")")
    settings.add_argument("--in", dest="input", metavar="NAME", help="connect to this input port (index or name)")
    settings.add_argument("--out", dest="output", metavar="NAME", help="connect to this output port (index or name)")
    settings.add_argument("--mode", choices=["call", "duet", "solo"])
    settings.add_argument("--tempo", type=float, metavar="BPM")
    settings.add_argument("--clock", choices=["internal", "midi", "link"],
                          help="keep time, follow MIDI clock, or join an Ableton Link session (the link extra)")
    settings.add_argument("--feel", choices=["wjd", "player", "straight"],
                          help="time feel: swing as the WJD soloists (wjd), as the player (player), or none")
    settings.add_argument("--articulation", choices=["wjd", "player", "legato"],
                          help="note lengths: held as the WJD soloists (wjd), as the player (player), or whole "
                               "values (legato)")
    settings.add_argument("--clock-out", action="store_true", help="send MIDI clock (jazzd is the master)")
    settings.add_argument("--realtime", action="store_true", help="ask for SCHED_FIFO")
    settings.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                          help="any setting of default.toml, e.g. engine.temperature=0.8; repeatable")

    p = sub.add_parser("run", parents=[settings], help="run the live improviser on MIDI ports")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="the live path in half a minute with no keyboard: a built-in player calls, "
                                    "jazzd answers on real MIDI ports (its own JACK server if none runs)")
    p.add_argument("-o", "--output", default="demo", metavar="DIR", help="folder for demo.mid and demo.png (default: demo)")
    p.add_argument("--tempo", type=float, default=160.0, metavar="BPM")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="jazzd's engine.seed (default: the show's, 3)")
    p.add_argument("--model", metavar="BUNDLE", help="weights bundle (default: the bundled model)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("config", parents=[settings],
                       help="print the settings in effect (TOML), with where each came from")
    p.add_argument("keys", nargs="*", metavar="SECTION.KEY", help="only these settings")
    p.add_argument("--default", action="store_true", help="print the commented default configuration")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("ports", help="list MIDI input and output ports")
    p.add_argument("--backend", default="auto", choices=["auto", "alsa", "jack", "coremidi", "winmm"])
    p.set_defaults(func=_cmd_ports)

    p = sub.add_parser("panic", help="send all notes off (and sustain off) on all 16 channels")
    p.add_argument("--out", metavar="NAME",
                   help="output port (index or name); default: [midi] output of the config, else a virtual port")
    p.add_argument("--backend", choices=["auto", "alsa", "jack", "coremidi", "winmm"],
                   help="default: [midi] backend of the config")
    p.add_argument("--config", metavar="FILE", help="config file to read [midi] from")
    p.add_argument("--client-name", default="jazzd-panic")
    p.set_defaults(func=_cmd_panic)

    # The running daemon, through its control socket.
    control = argparse.ArgumentParser(add_help=False)
    control.add_argument("--socket", metavar="PATH", help="the daemon's control socket (default: "
                         "[system] control_socket, else the default places)")
    control.add_argument("--config", metavar="FILE", help="config file to read [system] control_socket from")

    p = sub.add_parser("status", parents=[control], help="what the running daemon hears, plays and is set to")
    p.add_argument("--json", action="store_true", help="print the whole status as one JSON object")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("ctl", parents=[control], help="steer the running daemon: set, mode, panic, reload, "
                                                      "forget, subscribe")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("set", help="change one setting now, e.g. `set temperature 0.8` (checked as "
                                       "the config checks it)")
    a.add_argument("key", metavar="KEY", help="section.key, or a key name found in one section")
    a.add_argument("value", metavar="VALUE")
    a = actions.add_parser("mode", help="switch mode")
    a.add_argument("mode", choices=["call", "duet", "solo"])
    actions.add_parser("panic", help="silence jazzd at once (as the panic CC)")
    actions.add_parser("reload", help="re-read the config and model (as SIGHUP)")
    actions.add_parser("forget", help="clear the session memory (as SIGUSR1)")
    a = actions.add_parser("memory", help="the allocation sites whose memory grew most since the last "
                                          "`memory` (jazzd started with PYTHONTRACEMALLOC=1)")
    a.add_argument("--top", type=int, default=10, metavar="N", help="how many sites (1-100; default 10)")
    actions.add_parser("subscribe", help="print the daemon's events as JSON lines (beats, notes, chords, "
                                         "answers, settings) until interrupted")
    p.set_defaults(func=_cmd_ctl)

    p = sub.add_parser("monitor", parents=[control], help="a terminal view of the running daemon: beat, chord, "
                                                          "mode, settings, a piano roll; keys steer it (the monitor extra)")
    p.set_defaults(func=_cmd_monitor)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "train":
        # One BLAS thread: OpenBLAS's worker threads fight the real-time loop for the cores
        # (a step went from 0.19 ms to 8 ms on a busy 2-core machine).  Must precede numpy.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except JazzdError as err:
        if os.environ.get("JAZZD_DEBUG"):
            raise
        for line in str(err).splitlines() or [""]:  # one line per problem (e.g. bad bundles)
            print(f"jazzd {args.command}: {line}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
