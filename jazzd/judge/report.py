"""`jazzd report`: does it sound like jazz?  Generated solos measured side by side with
real solos and with other sets (the seed's deepjazz outputs), as numbers and plots.

numpy + mido (matplotlib, lazily, for the plots); offline.  Never imports tensorflow or
music21.

1. The real set: the solos of `--real` (with `--split`, only the bundle's validation or
   training solos; by default its validation solos when the sources hold its training
   data, so the model is never judged on what it learned from).
2. The generated set: one solo per real solo (cycling when `--samples` asks for more),
   rendered by the engine in solo mode over that solo's own changes, for as many bars
   (`offline.render`, the path live play takes), seeds seed, seed+1, ...
3. Comparison sets: MIDI files (each `--compare`, named by `--compare-name` in order),
   read with chords recognised like any MIDI; and other models (`--compare-model`, e.g.
   one trained by the seed's recipe) rendered over the same changes with the same seeds
   (measured only: their MIDI is not written, since such a model may be trained on
   material that must not be shipped).
4. Real or generated (`jazzd.judge.realfake`): a classifier on 8-bar windows, every set
   against the real solos and real half against half, cross-validated by solo.
5. Listening (`jazzd.judge.listening`): phrases of the real solos played into the engine
   as calls, its answers next to what the soloist played next (relatedness per
   feature, verbatim runs, turn-taking); `--calls` caps the pairs (0: skipped), and
   `listen_overrides` sets the engine up (`--listen-set`).
Every set becomes `metrics.Solo`s through one path (a `Piece`, encoded by the grammar),
with `--bars` capping every piece alike.  The real solos are read once and the bundle
loaded once.  Then: the model's likelihood on the real set as measured (so within
`--bars`; `evaluate.evaluate_pieces`, next to the trigram baseline), the metrics of
`jazzd.judge.metrics` per piece (mean and sd per set), the longest run of values copied from
the training solos (`jazzd.judge.copying`), and the MGEval distances of each set to the real
set (`jazzd.judge.mgeval`), with the real set split in two halves as the floor of what "as
close as real solos are to each other" looks like.
The note-length histogram and the real-or-generated test hear lengths as they sound
(`played_set`): the real WJD solos' as played (`as_played`), the rendered sets' as the
engine played them after its feel and articulation (`as_rendered`); every other metric
counts the notes as planned on the grid, as the grammar encodes them.

Writes into the output folder: report.md, metrics.json, plots/*.png, midi/*.mid.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from jazzd import __version__
from jazzd.data.ingest.common import Bar, Piece
from jazzd.data.progress import Progress
from jazzd.errors import ConfigError, InputError
from jazzd.judge.metrics import FAMILIES, FEATURES, Solo, features, solo_of_piece
from jazzd.music.grammar import TYPES, Element
from jazzd.music.progression import Progression
from jazzd.music.timeline import rests

SPLITS = ("auto", "validation", "train", "all")
_EPS = 1e-6


@dataclass
class Options:
    """What `jazzd report` was asked for (the command line's options, one to one)."""

    real: list[str]
    output: str
    model: str
    fmt: str = "auto"
    split: str = "auto"
    compare: list[list[str]] = field(default_factory=list)   # one list of MIDI sources per set
    compare_names: list[str] = field(default_factory=list)   # in order; default: their folder
    compare_models: list[str] = field(default_factory=list)  # bundles, named by their stem
    bars: int | None = None
    samples: int | None = None
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 0.95
    tempo: float = 140.0
    calls: int = 600  # call-and-answer pairs for the listening measure (0: none)
    listen_overrides: dict = field(default_factory=dict)  # {Settings field: value} for it
    feel: str = "wjd"     # the generated solos' time feel (engine.feel)
    articulation: str = "wjd"  # their note lengths (engine.articulation)
    progress: bool = True


@dataclass
class SoloSet:
    """A named set of solos (and, for the generated set, what to draw and write)."""

    name: str
    kind: str  # real | generated | compare (MIDI) | model (another bundle)
    solos: list[Solo]
    rendered: list = field(default_factory=list)  # (notes, progression, bars) per generated solo


# --- from real solos to changes, and from rendered notes back to a piece ----------------

def progression_of_piece(piece: Piece, bars: int | None = None) -> Progression:
    """The changes of a solo as a progression of its length (up to `bars`), in its most
    common bar length (an odd pickup or short bar becomes a full bar)."""
    lengths = Counter(round(b.length) for b in piece.bars)
    bpb = max(lengths.most_common(1)[0][0], 1) if lengths else 4
    kept = piece.bars[:bars] if bars else piece.bars
    return Progression.from_bars([[(t - b.start, c) for t, c in b.chords] for b in kept], bpb, piece.name)


def piece_of_notes(name: str, notes, progression: Progression, bars: int) -> Piece:
    """Rendered notes (`render.Note`, beats from 0) as a `Piece` over the progression:
    notes stay whole in the bar they start in, gaps become rests split at bar lines,
    as the ingest readers do."""
    bpb = progression.beats_per_bar
    out = [Bar(float(k * bpb), [], [(k * bpb + pos, c) for pos, c in progression.chords_in_bar(k)], float(bpb))
           for k in range(bars)]
    t = 0.0
    for n in sorted(notes, key=lambda n: n.onset):
        if n.onset >= bars * bpb - _EPS:
            break
        for a, b in rests(t, n.onset, bpb):  # the gap before the note
            out[min(int(a // bpb), bars - 1)].elements.append(Element(a, b - a, None))
            t = b
        start = max(n.onset, t)
        out[min(int(start // bpb + _EPS), bars - 1)].elements.append(Element(start, n.dur, n.midi))
        t = start + n.dur
    return Piece(name, out, {"format": "generated"})


def as_played(solo: Solo, path) -> Solo:
    """A WJD solo with each note's length as it sounded (the transcription's seconds over
    the local beat, at most up to the next onset) instead of as ingest encodes it
    (rounded to the note's tatum grid, which holds 77% of the notes to the next onset
    against 20% as played): what the real-or-generated test and the note-length
    histogram hear."""
    from jazzd.data.ingest.wjazzd import played_notes

    return with_lengths(solo, {round(n.onset, 6): n.length for n in played_notes(path)})


def as_rendered(solo: Solo, notes) -> Solo:
    """A generated solo (its notes on the grid, as planned) with each note's length as
    the engine played it (`render.Note.dur`: after the feel and the articulation, in
    beats), at most up to the next onset: the generated side of `as_played`."""
    return with_lengths(solo, {round(n.grid[0] if n.grid else n.onset, 6): n.dur for n in notes})


def with_lengths(solo: Solo, sounded: dict[float, float]) -> Solo:
    """The solo with the lengths of `sounded` ({onset rounded to 6 places: length in
    beats}) for the notes it names, each at most up to the next onset."""
    from dataclasses import replace

    notes = list(solo.notes)
    for k, n in enumerate(notes):
        length = sounded.get(round(n.onset, 6))
        if length is not None and length > 0:
            nxt = notes[k + 1].onset - n.onset if k + 1 < len(notes) else math.inf
            notes[k] = replace(n, dur=min(length, nxt))
    return replace(solo, notes=tuple(notes))


def _cap(piece: Piece, bars: int | None) -> Piece:
    return Piece(piece.name, piece.bars[:bars], piece.meta) if bars else piece


# --- the sets ---------------------------------------------------------------------------

def select_real(bundle, jobs, split: str) -> tuple[list, str]:
    """The real solos to judge against, and the split actually used."""
    training = bundle.manifest.get("training", {})
    names = {s: set(training.get(f"{s}_pieces", [])) for s in ("validation", "train")}
    if split == "auto":
        in_training = any(Path(p).stem in names["train"] for p, _ in jobs)
        split = "validation" if in_training and names["validation"] else "all"
    if split != "all":
        if not names[split]:
            raise ConfigError(f"--split {split}: the bundle does not list its {split} solos; use --split all")
        jobs = [j for j in jobs if Path(j[0]).stem in names[split]]
        if not jobs:
            raise InputError(f"none of the --real sources is among the bundle's {split} solos; "
                             "give the corpus it was trained on, or --split all")
    return jobs, split


def read_compare_set(name: str, jobs, bars: int | None) -> SoloSet:
    """MIDI files to compare, with block chords left out of a line that shares its part
    with them (the seed's deepjazz outputs; see `ingest.midi.read`)."""
    from jazzd.data.ingest.midi import read

    solos = []
    for path, _fmt in jobs:
        piece = _cap(read(path, drop_blocks=True), bars)
        if not any(el.midi is not None for b in piece.bars for el in b.elements):
            raise InputError(f"{path}: no notes in it (within --bars)")
        solos.append(solo_of_piece(piece))
    return SoloSet(name, "compare", solos)


def render_set(bundle, real_pieces: list[Piece], opts: Options, midi_dir: Path | None,
               name: str = "generated", kind: str = "generated") -> SoloSet:
    """One solo per real solo's changes (cycling), through the engine; written as MIDI
    into `midi_dir` unless it is None."""
    from jazzd.model.runtime import Runtime
    from jazzd.play.engine import Engine, Settings
    from jazzd.play.offline import render
    from jazzd.play.render import on_grid, write_midi

    n = opts.samples or len(real_pieces)
    out = SoloSet(name, kind, [])
    progress = Progress(n, f"render {name}") if opts.progress else None
    for k in range(n):
        real = real_pieces[k % len(real_pieces)]
        progression = progression_of_piece(real, opts.bars)
        bars = len(progression)
        engine = Engine(Runtime(bundle), np.random.default_rng(opts.seed + k),
                        Settings(mode="solo", beats_per_bar=progression.beats_per_bar,
                                 temperature=opts.temperature, top_p=opts.top_p, feel=opts.feel,
                                 articulation=opts.articulation),
                        progression=progression)
        notes = render(engine, bars, opts.tempo)
        title = f"{name}-{k + 1:03d}-{real.name}"
        if midi_dir is not None:
            write_midi(midi_dir / f"{title}.mid", notes, progression, bars, opts.tempo)
        out.solos.append(solo_of_piece(piece_of_notes(title, on_grid(notes), progression, bars)))
        out.rendered.append((notes, progression, bars))
        if progress:
            progress.update()
    if progress:
        progress.close()
    return out


def played_set(s: SoloSet, real_jobs) -> list[Solo]:
    """A set's solos with their lengths as they sound: the real WJD solos as played, the
    rendered sets as rendered, MIDI sets as they are."""
    if s.kind == "real":
        return [as_played(solo, path) if fmt == "wjazzd" else solo
                for solo, (path, fmt) in zip(s.solos, real_jobs, strict=True)]
    if s.rendered:
        return [as_rendered(solo, notes) for solo, (notes, _, _) in zip(s.solos, s.rendered, strict=True)]
    return list(s.solos)


def training_index(bundle, jobs, fmt: str, progress: bool, read: dict | None = None):
    """The bundle's training solos among the real sources, as a `CopyIndex` of values
    (None when they are not there).  Whole solos, whatever `--bars` says; taken from
    `read` ({path: Piece}) when it holds them all (--split all: they are the real set)."""
    from jazzd.data.ingest.run import ingest
    from jazzd.judge.copying import CopyIndex

    names = set(bundle.manifest.get("training", {}).get("train_pieces", []))
    paths = [p for p, _ in jobs if Path(p).stem in names]
    if not paths:
        return None
    if read and all(p in read for p in paths):
        return CopyIndex(read[p].encode()[0] for p in paths)
    result = ingest([str(p) for p in paths], fmt=fmt, show_progress=progress)
    offsets, values = result.corpus.offsets, result.raw_values
    return CopyIndex(values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1))


# --- numbers ----------------------------------------------------------------------------

def _finite_mean(rows: np.ndarray) -> list[float]:
    rows = rows[~np.isnan(rows).any(axis=1)]
    return rows.mean(axis=0).tolist() if len(rows) else [float("nan")] * rows.shape[1]


def set_summary(solos: list[Solo], feats: dict[str, np.ndarray]) -> dict:
    """Per feature: the mean (and sd for numbers) over the set's pieces."""
    out = {"pieces": len(solos), "bars": sum(len(s.bar_lengths) for s in solos),
           "notes": sum(len(s.notes) for s in solos), "values": sum(len(s.values) for s in solos),
           "features": {}}
    for name, rows in feats.items():
        finite = rows[~np.isnan(rows).any(axis=1)]
        entry = {"mean": _finite_mean(rows)}
        if rows.shape[1] == 1:
            entry = {"mean": entry["mean"][0],
                     "sd": float(finite[:, 0].std(ddof=1)) if len(finite) > 1 else float("nan")}
        out["features"][name] = entry
    return out


# The features read from note lengths as they sound (the rest, rhythm included, count
# the notes as planned on the grid, as the grammar encodes them).
PLAYED = ("duration_histogram",)


def feature_table(solos: list[Solo], played: list[Solo] | None = None) -> dict[str, np.ndarray]:
    """pieces x values, per feature; the note-length histogram (`PLAYED`) from `played`
    (the same solos with their lengths as played or rendered: `as_played`,
    `as_rendered`) when given, so real and generated lengths are compared like with like."""
    per_piece = [features(s) for s in solos]
    table = {name: np.array([f[name] for f in per_piece]) for name in FEATURES}
    if played is not None:
        for name in PLAYED:
            table[name] = np.array([np.atleast_1d(np.asarray(FEATURES[name][1](s), dtype=float)) for s in played])
    return table


def distances(real: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict:
    from jazzd.judge.mgeval import compare

    per = {name: compare(real[name], other[name]) for name in FEATURES}
    fams = {}
    for fam in FAMILIES:
        oas = [per[n]["oa"] for n, (f, _) in FEATURES.items() if f == fam and not math.isnan(per[n]["oa"])]
        kls = [per[n]["kl"] for n, (f, _) in FEATURES.items() if f == fam and not math.isnan(per[n]["kl"])]
        fams[fam] = {"oa": float(np.mean(oas)) if oas else float("nan"),
                     "kl": float(np.mean(kls)) if kls else float("nan")}
    return {"features": per, "families": fams}


def feel_of_sets(real_jobs, generated: SoloSet, opts: Options) -> dict | None:
    """The time-feel section (`jazzd.judge.feel`): the real solos' feel against the
    generated solos' played with the report's feel and straight."""
    from jazzd.judge import feel

    real = [feel.measure_real(p) for p, _ in real_jobs]
    played = {}
    for name in dict.fromkeys((f"generated ({opts.feel})", "generated (straight)")):
        fl = name[len("generated ("):-1]
        played[name] = []
        for k, (notes, progression, bars) in enumerate(generated.rendered):
            m = real[k % len(real)]
            tempo = m["tempo"] if m and m.get("tempo") else opts.tempo
            played[name].append(feel.measure_rendered(notes, tempo, fl, opts.seed + k, bars,
                                                      progression.beats_per_bar))
    return feel.section(real, played)


def copying_summary(index, solos: list[Solo]) -> dict | None:
    if index is None:
        return None
    runs = [index.longest(s.values)[0] for s in solos]
    worst = int(np.argmax(runs))
    return {"longest": int(max(runs)), "median": float(np.median(runs)), "mean": float(np.mean(runs)),
            "longest_piece": solos[worst].name}


# --- the command ------------------------------------------------------------------------

def run_report(opts: Options) -> dict:
    """Everything `jazzd report` does; returns what it wrote into metrics.json."""
    from jazzd.data.ingest.run import expand, read_source
    from jazzd.model.bundle import load_bundle
    from jazzd.training.evaluate import evaluate_pieces

    if opts.split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}")
    if (opts.bars is not None and opts.bars < 1) or (opts.samples is not None and opts.samples < 1):
        raise ConfigError("--bars and --samples must be at least 1")
    if opts.calls < 0 or opts.calls == 1:
        raise ConfigError("--calls must be 0 (no listening measure) or at least 2")
    if opts.tempo <= 0 or opts.temperature < 0 or not 0 < opts.top_p <= 1:
        raise ConfigError("--tempo must be positive, --temperature at least 0, --top-p in (0, 1]")
    started = time.monotonic()
    bundle = load_bundle(opts.model)
    all_jobs = expand(opts.real, opts.fmt)
    real_jobs, split = select_real(bundle, all_jobs, opts.split)
    compare_jobs = [expand(sources, "midi") for sources in opts.compare]
    compare_bundles = [load_bundle(p) for p in opts.compare_models]
    out = Path(opts.output)
    (out / "midi").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(parents=True, exist_ok=True)

    read = {p: read_source(p, f) for p, f in real_jobs}
    real_pieces = [_cap(read[p], opts.bars) for p, _ in real_jobs]
    sets = [SoloSet("real", "real", [solo_of_piece(p) for p in real_pieces])]
    sets.append(render_set(bundle, real_pieces, opts, out / "midi"))
    for k, jobs in enumerate(compare_jobs):
        name = opts.compare_names[k] if k < len(opts.compare_names) else _common_name(p for p, _ in jobs)
        sets.append(read_compare_set(name, jobs, opts.bars))
    for path, other in zip(opts.compare_models, compare_bundles, strict=True):
        sets.append(render_set(other, real_pieces, opts, None, Path(path).stem, "model"))
    if len({s.name for s in sets}) < len(sets):
        raise ConfigError("two sets have the same name ({}); name them with --compare-name".format(
            ", ".join(s.name for s in sets)))

    likelihood = evaluate_pieces(bundle, real_pieces)
    index = training_index(bundle, all_jobs, opts.fmt, opts.progress, read) if split != "train" else None

    played = {s.name: played_set(s, real_jobs) for s in sets}
    tables = {s.name: feature_table(s.solos, played[s.name]) for s in sets}
    real = tables["real"]
    result = {
        "jazzd": __version__,
        "model": _shown(opts.model),
        "settings": {**{k: v for k, v in asdict(opts).items()
                        if k not in ("progress", "output", "model", "compare", "compare_models")},
                     "real": [_shown(p) for p in opts.real],
                     "compare": [[_shown(p) for p in sources] for sources in opts.compare],
                     "compare_models": [_shown(p) for p in opts.compare_models],
                     "split_used": split},
        "likelihood": likelihood,
        "sets": {},
        "distances": {},
        "copying_reference": None if index is None else {"training_solos_values": index.tokens},
    }
    if opts.calls:
        from jazzd.judge.listening import measure

        result["listening"] = measure(bundle, real_pieces, calls=opts.calls, seed=opts.seed, tempo=opts.tempo,
                                      temperature=opts.temperature, top_p=opts.top_p,
                                      overrides=opts.listen_overrides, progress=opts.progress)
    result["feel"] = feel_of_sets(real_jobs, sets[1], opts)
    for s in sets:
        result["sets"][s.name] = {"kind": s.kind, **set_summary(s.solos, tables[s.name]),
                                  "copying": copying_summary(index, s.solos)}
        if s.kind != "real":
            result["distances"][s.name] = distances(real, tables[s.name])
    if len(sets[0].solos) >= 6:  # the floor: one half of the real solos against the other
        halves = {n: (rows[0::2], rows[1::2]) for n, rows in real.items()}
        result["distances"]["real (half vs half)"] = distances({n: h[0] for n, h in halves.items()},
                                                               {n: h[1] for n, h in halves.items()})
    from jazzd.judge.realfake import measure as real_or_generated

    result["real_or_generated"] = real_or_generated(played, seed=opts.seed)
    result["real_or_generated"]["real_durations"] = (
        "as played" if any(fmt == "wjazzd" for _, fmt in real_jobs) else "as encoded")
    result["runtime_s"] = round(time.monotonic() - started, 1)

    from jazzd.judge.plots import draw_all

    plots = draw_all(out / "plots", sets, tables, result)
    result["plots"] = [str(p.relative_to(out)) for p in plots]
    result["runtime_s"] = round(time.monotonic() - started, 1)
    (out / "metrics.json").write_text(json.dumps(_clean(result), indent=1) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(result), encoding="utf-8")
    return result


def _shown(path) -> str:
    """A path as given, or relative to the working folder when it lies inside it (so a
    committed report names no one's home)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _common_name(paths) -> str:
    parents = {Path(p).parent.name for p in paths}
    return parents.pop() if len(parents) == 1 and parents != {""} else "compare"


def _clean(x):
    """NaN -> None, numpy -> Python, for strict JSON."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


# --- report.md --------------------------------------------------------------------------

LABELS = {
    "chord_tone_ratio": "chord-tone ratio (all notes)",
    "strong_beat_chord_tone_ratio": "chord-tone ratio (beats 1 and 3)",
    "scale_tone_ratio": "scale-tone ratio (chord or its scale)",
    "pc_entropy_1bar": "pitch-class entropy, 1 bar (bits)",
    "pc_entropy_4bar": "pitch-class entropy, 4 bars (bits)",
    "groove_consistency": "groove consistency",
    "notes_per_bar": "notes per bar",
    "rest_ratio": "rest ratio (share of time)",
    "mean_abs_interval": "mean absolute interval (semitones)",
    "pitch_range": "pitch range (semitones)",
    "repeated_note_rate": "repeated-note rate",
    "distinct_4grams": "distinct 4-grams of values",
    "type_shares": "value types C/S/A/X/R",
    "pitch_class_histogram": "pitch-class histogram",
    "chord_relative_histogram": "pitch above the chord root",
    "duration_histogram": "note-length histogram",
    "ioi_histogram": "inter-onset histogram",
    "interval_histogram": "interval histogram",
}


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def markdown(r: dict) -> str:
    sets = r["sets"]
    names = list(sets)
    st = r["settings"]
    head = "| | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names) + "\n"
    lines = [
        "# Listening by numbers",
        "",
        f"`jazzd report` (jazzd {r['jazzd']}), model `{Path(r['model']).name}`: {sets['generated']['pieces']} "
        f"solos generated over the changes of the real solos (split: {st['split_used']}), seeds "
        f"{st['seed']}..{st['seed'] + sets['generated']['pieces'] - 1}, temperature {st['temperature']:g}, "
        f"top-p {st['top_p']:g}" + (f", first {st['bars']} bars of every piece" if st["bars"] else "")
        + f". Generated solos played with feel {st.get('feel', 'wjd')} and articulation "
        f"{st.get('articulation', 'wjd')}; their metrics count the notes as planned on the grid, but for the "
        "note-length histogram, which hears lengths as they sound (the real WJD solos' as played, the "
        "generated as rendered). "
        f"Ran in {r['runtime_s']:.0f} s. Every number is the mean over the pieces of a set "
        "(± the standard deviation across pieces); `metrics.json` has them all.",
        "",
        *_headline(r),
        "## The sets",
        "",
        head.rstrip("\n"),
    ]
    kinds = {"real": "real solos", "generated": "this model", "compare": "MIDI files", "model": "another model"}
    lines.append("| what | " + " | ".join(kinds.get(sets[n]["kind"], sets[n]["kind"]) for n in names) + " |")
    for key in ("pieces", "bars", "notes"):
        lines.append(f"| {key} | " + " | ".join(str(sets[n][key]) for n in names) + " |")
    lik = r["likelihood"]
    base = lik.get("baseline") or {}
    lines += [
        "",
        "## Likelihood of the real solos",
        "",
        f"{lik['pieces']} solos, {lik['tokens']} values, each from a fresh state (`jazzd eval`).",
        "",
        "| | NLL per value (nats) | perplexity | top-1 accuracy |",
        "|---|---:|---:|---:|",
        f"| model | {_fmt(lik['nll'])} | {math.exp(lik['nll']):.0f} | {_fmt(lik['accuracy'])} |",
    ]
    if base:
        lines.append(f"| trigram baseline | {_fmt(base['nll'])} | {math.exp(base['nll']):.0f} | {_fmt(base['accuracy'])} |")
    lines += ["", "## Harmony", "", head.rstrip("\n")]
    for t_index, t in enumerate(TYPES):
        lines.append(f"| share of {t} values | " + " | ".join(
            _fmt(sets[n]["features"]["type_shares"]["mean"][t_index]) for n in names) + " |")
    lines += _rows(sets, names, ("chord_tone_ratio", "strong_beat_chord_tone_ratio", "scale_tone_ratio",
                                 "pc_entropy_1bar", "pc_entropy_4bar"))
    lines += ["", "## Rhythm and line", "", head.rstrip("\n")]
    lines += _rows(sets, names, ("notes_per_bar", "rest_ratio", "groove_consistency", "mean_abs_interval",
                                 "pitch_range", "repeated_note_rate", "distinct_4grams"))
    lines += ["", "![histograms](plots/histograms.png)", ""]
    if any(sets[n]["copying"] for n in names):
        lines += ["## Copying from the training solos", "",
                  f"The longest run of consecutive values that also occurs in one of the model's training "
                  f"solos ({r['copying_reference']['training_solos_values']} values). Real solos quote "
                  "each other too: their row is the yardstick; for sets never trained on these "
                  "solos the number is what chance and the grammar give.", "",
                  "| | longest | median per piece | piece with the longest |", "|---|---:|---:|---|"]
        for n in names:
            c = sets[n]["copying"]
            lines.append(f"| {n} | {c['longest']} | {c['median']:.1f} | {c['longest_piece']} |")
        lines.append("")
    if r.get("real_or_generated"):
        from jazzd.judge.realfake import markdown as realfake_markdown

        lines += realfake_markdown(r["real_or_generated"])
    if r.get("listening"):
        from jazzd.judge.listening import markdown as listening_markdown

        lines += listening_markdown(r["listening"])
    dist = r["distances"]
    dnames = list(dist)
    if r.get("feel"):
        from jazzd.judge.feel import markdown as feel_markdown

        lines += feel_markdown(r["feel"])
    lines += ["## Distance to the real solos (MGEval)", "",
              "Per feature, the distances between pairs of real solos (intra-set) against the "
              "distances from each real solo to each solo of the other set (inter-set), smoothed "
              "by a Gaussian KDE: overlapping area OA (1 = as close to the real solos as they are "
              "to each other) and KL(intra || inter) in nats (0 = the same). "
              "`real (half vs half)` compares one half of the real solos with the other: the "
              "best a set can expect.", "",
              "| feature | " + " | ".join(f"{n} OA | {n} KL" for n in dnames) + " |",
              "|---|" + "---:|---:|" * len(dnames)]
    for fam in FAMILIES:
        lines.append(f"| **{fam} (mean)** | " + " | ".join(
            f"**{_fmt(dist[n]['families'][fam]['oa'])}** | **{_fmt(dist[n]['families'][fam]['kl'])}**"
            for n in dnames) + " |")
        for feat, (f, _) in FEATURES.items():
            if f == fam:
                lines.append(f"| {LABELS.get(feat, feat)} | " + " | ".join(
                    f"{_fmt(dist[n]['features'][feat]['oa'])} | {_fmt(dist[n]['features'][feat]['kl'])}"
                    for n in dnames) + " |")
    lines += ["", "![overlap](plots/overlap.png)", "", "## Generated solos", "",
              "Piano rolls of the first generated solos (first bars, with the real solo's chords); "
              "every generated solo is in `midi/`.", ""]
    lines += [f"![{Path(p).stem}]({p})" for p in r.get("plots", []) if Path(p).name.startswith("roll-")]
    return "\n".join(lines) + "\n"


def _headline(r: dict) -> list[str]:
    """The real-or-generated test in one sentence (see `jazzd.judge.realfake`)."""
    tests = {k: v for k, v in (r.get("real_or_generated") or {}).get("sets", {}).items() if v}
    if "generated" not in tests:
        return []
    gen, floor = tests["generated"], tests.get("real (half vs half)")
    others = ", ".join(f"{n} {v['balanced_accuracy']:.2f}" for n, v in tests.items()
                       if n not in ("generated", "real (half vs half)"))
    return [f"**Real or generated:** a classifier tells this model's 8-bar windows from the real solos' "
            f"with balanced accuracy **{gen['balanced_accuracy']:.3f}** (AUC {gen['auc']:.3f}; 0.5 = it cannot)"
            + (f", against {floor['balanced_accuracy']:.3f} for one half of the real solos against the other"
               if floor else "") + (f"; {others}" if others else "") + " (section \"Real or generated?\").", ""]


def _rows(sets, names, keys) -> list[str]:
    out = []
    for key in keys:
        cells = []
        for n in names:
            f = sets[n]["features"][key]
            cells.append(f"{_fmt(f['mean'])} ± {_fmt(f['sd'])}" if f["sd"] is not None else _fmt(f["mean"]))
        out.append(f"| {LABELS[key]} | " + " | ".join(cells) + " |")
    return out
