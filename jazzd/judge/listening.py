"""Does jazzd listen?  Call and response measured on real solos (`jazzd report`'s
"Listening" section, metrics.json's "listening").

numpy only (the engine through `jazzd.play.offline.answer_call`); offline.

1. Phrases.  Each real solo is cut into phrases at rests of `PHRASE_REST` (1) beat or
   more (`segment`): the 41 WJD validation solos give 784 phrases, of 13 notes and 6.5
   beats (medians); 5% of the gaps between notes are a beat or longer.  A pair is two
   consecutive phrases of one solo that both have at least `MIN_NOTES` (4) notes: four
   notes make three intervals, the least for one 3-interval motif and an interval
   histogram of more than one step, while the 12% of phrases with fewer are mostly
   pickups and single fills (a short fragment in between breaks the pair: "next" is
   always the very next phrase).  The call must also be one the default engine hears
   whole: at least `min_beats` long, and over before `max_bars` cuts it (4 bars less
   the beat of silence: 15 beats in 4/4).  Chosen with the default settings whatever
   the overrides, so settings compare on the same calls.  Validation split: 480 pairs
   (148 left out for a short phrase, 115 for a call that is too long).
2. Answers.  Phrase i is played into the engine as a call over its own changes, with the
   chords in the left hand (`answer_call`: a fresh engine per call, seeded by
   (seed, call), the solo's bar length); the real answer is what the soloist played
   next, phrase i+1.  The melody and chord hands are on two channels (melody 1, chords
   2), so that a call keeps its register even below the split (tenors and trombones
   live there); `overrides` (Settings fields) and `configure` (a function changing a
   `Settings`) set up the engine, so that later settings can be compared.
3. Relatedness, per feature: similarity(answer, its own call) minus the mean similarity
   of that answer to every other call, per pair; its mean over the pairs, with a
   bootstrap 95% interval (`BOOTSTRAP` resamples of the pairs, seeded), for the real and
   jazzd's answers and their difference (jazzd minus real, on the same resamples).
   0 = the answer is no closer to its call than to anyone's.  The features (`FEATURES`):
   - rhythm: onset positions inside the beat on a grid of 12 per beat (16ths and
     triplets, `metrics.GROOVE_GRID`) as a histogram; similarity = overlap (the sum of
     the minima of two normalised histograms, 0..1);
   - density: notes per beat, first onset to the last note's end; 1 - |a - b| / (a + b);
   - intervals: the interval histogram (`metrics.interval_counts`, -12..12); overlap;
   - motifs: the share of the answer's 3-interval figures (exact semitones, so a
     transposed figure counts) that are figures of the call;
   - contour: the pitch line resampled to 16 points by note index and centred; the
     correlation of two such lines (0 for a flat one);
   - pitch class: pitch-class histograms (`metrics.pitch_class_counts`); overlap;
   - register: the correlation, over the pairs, of the call's and the answer's mean
     pitch (a property of the set, not a relatedness; as the issue measured it).
   An answer with no notes is 0 on every feature (it relates to nothing) and is left
   out of the register correlation.
4. Verbatim: the longest run of the call's grammar values (notes and rests, each line
   encoded on its own against the solo's chords, as ingest encodes bars) that the answer
   plays again in a row (`copying.CopyIndex` over the one call); the issue's cap for an
   engine that imitates is `VERBATIM_CAP` (8).
5. Turn-taking: the gap from the call's last note off to the answer's first note (beats,
   and ms at `tempo`), next to the soloist's own gap between the two phrases (a beat or
   more, by the cut).  False triggers: every phrase of two notes or more (sampled at the
   calls' rate) is played in whole and an answer the engine began before the phrase's
   last note on is counted (`CallAnswer.early`): a rest inside the phrase, or its
   length, taken for the end of the call.  This drives the engine rather than restating
   its rule, so a new end-of-call rule is measured as it is.  Counted apart: phrases
   within `max_bars` (there only a rest can be taken for the end; under today's rule,
   a beat of silence on the listener's grid, none is: a rest inside a phrase is shorter
   than a beat) and longer phrases (cut by the length cap).

Speed (shipped model, 2 cores): all 480 calls and 751 phrases of the 41 validation solos
in 5 s, about 4 ms per played phrase; `--calls` caps the pairs (default 600).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from jazzd.data.ingest.common import Piece
from jazzd.data.progress import Progress
from jazzd.errors import ConfigError
from jazzd.judge.copying import CopyIndex
from jazzd.judge.metrics import (
    GROOVE_GRID,
    Note,
    Solo,
    interval_counts,
    normalized,
    pitch_class_counts,
)
from jazzd.music.grammar import Element, chord_at, iter_bar
from jazzd.music.timeline import rests

PHRASE_REST = 1.0   # beats of rest that end a phrase
MIN_NOTES = 4       # notes of a phrase in a call-and-answer pair
MOTIF = 3           # intervals in a motif
CONTOUR_POINTS = 16
BOOTSTRAP = 1000
VERBATIM_CAP = 8    # the cap on consecutive values copied from the player
FEATURES = ("rhythm", "density", "intervals", "motifs", "contour", "pitch_class", "register")
_EPS = 1e-6


# --- phrases ------------------------------------------------------------------------------

def segment(notes: Sequence[Note], rest: float = PHRASE_REST) -> list[tuple[Note, ...]]:
    """The notes (in time order) cut into phrases wherever the rest from one note's end
    to the next onset is `rest` beats or more."""
    phrases: list[list[Note]] = []
    for n in notes:
        if phrases and n.onset - (phrases[-1][-1].onset + phrases[-1][-1].dur) < rest - _EPS:
            phrases[-1].append(n)
        else:
            phrases.append([n])
    return [tuple(p) for p in phrases]


def phrase_end(phrase: Sequence) -> float:
    return phrase[-1].onset + phrase[-1].dur


class _Context:
    """A solo's bars, for reading a line (the solo's own, or an answer) against them."""

    def __init__(self, piece: Piece):
        self.piece = piece
        self.bars = piece.bars
        self.starts = [b.start for b in piece.bars]
        self.changes = [c for b in piece.bars for c in b.chords]
        lengths = Counter(round(b.length) for b in piece.bars)
        self.bpb = max(lengths.most_common(1)[0][0], 1) if lengths else 4

    def bar_of(self, beat: float) -> int:
        return min(max(bisect_right(self.starts, beat + _EPS) - 1, 0), len(self.bars) - 1)

    def solo(self, name: str, line: Sequence[tuple[float, float, int]]) -> Solo:
        """A line of (onset, dur, midi), absolute beats, as a `metrics.Solo`: its notes
        with the chords under them, and its values (notes and the rests between them,
        split at bar lines, encoded bar by bar as ingest does; nothing before the first
        note or after the last)."""
        per_bar: dict[int, list[Element]] = {}
        t = line[0][0] if line else 0.0
        for onset, dur, midi in line:
            for a, b in rests(t, onset, self.starts):
                per_bar.setdefault(self.bar_of(a), []).append(Element(a, b - a, None))
            per_bar.setdefault(self.bar_of(onset), []).append(Element(onset, dur, midi))
            t = max(t, onset + dur)
        notes, values = [], []
        for k in sorted(per_bar):
            bar = self.bars[k]
            chords = bar.chords or [(bar.start, chord_at(self.changes, bar.start))]
            for el, chord, value in iter_bar(per_bar[k], chords):
                values.append(value)
                if el.midi is not None:
                    notes.append(Note(el.offset, el.dur, el.midi, chord, k, el.offset - bar.start))
        return Solo(name, tuple(notes), (), tuple(values))


@dataclass(frozen=True)
class Pair:
    """Two consecutive phrases of one solo: the call and what the soloist played next."""

    piece: int   # index into the pieces
    index: int   # the call's phrase number in its solo
    call: tuple[Note, ...]
    real: tuple[Note, ...]


def find_pairs(solos: Sequence[Solo], settings, rest: float = PHRASE_REST,
               min_notes: int = MIN_NOTES) -> tuple[list[Pair], list[tuple[int, tuple[Note, ...]]], dict]:
    """The call-and-answer pairs of the solos (see the module docstring), every phrase
    of two notes or more as (piece, phrase) for the turn-taking count, and how many
    pairs were left out, by reason.  `settings`: the engine's (its `min_beats`,
    `max_bars`, `silence_beats` and `beats_per_bar` decide which calls it hears whole),
    one for all solos or one per solo."""
    pairs, phrases = [], []
    skipped = Counter()
    for k, solo in enumerate(solos):
        s = settings[k] if isinstance(settings, Sequence) else settings
        longest = s.max_bars * s.beats_per_bar - s.silence_beats
        cut = segment(solo.notes, rest)
        phrases += [(k, p) for p in cut if len(p) >= 2]
        for i in range(len(cut) - 1):
            call, real = cut[i], cut[i + 1]
            length = phrase_end(call) - call[0].onset
            if len(call) < min_notes or len(real) < min_notes:
                skipped["fewer notes than min_notes"] += 1
            elif length < s.min_beats - _EPS:
                skipped["call shorter than min_beats"] += 1
            elif length > longest + _EPS:
                skipped["call too long for max_bars"] += 1
            else:
                pairs.append(Pair(k, i, call, real))
    return pairs, phrases, dict(skipped)


def spread(n: int, cap: int | None) -> list[int]:
    """`cap` indices spread evenly over range(n) (all of them without a cap)."""
    if cap is None or cap >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, cap).round()})


# --- features and similarities -------------------------------------------------------------

@dataclass(frozen=True)
class Features:
    """What the similarities compare, for a set of lines (one row each)."""

    rhythm: np.ndarray      # lines x GROOVE_GRID, shares
    density: np.ndarray     # lines, notes per beat
    intervals: np.ndarray   # lines x 25, shares
    motifs: list[Counter]   # per line: its 3-interval figures, counted
    contour: np.ndarray     # lines x CONTOUR_POINTS, centred, unit length (or 0)
    pitch_class: np.ndarray  # lines x 12, shares
    mean_pitch: np.ndarray  # lines
    values: list[tuple[str, ...]]


def features(solos: Sequence[Solo]) -> Features:
    """The features of lines (each a `Solo` of one phrase or answer)."""
    rhythm, density, ivs, motifs, contour, pcs, mean = [], [], [], [], [], [], []
    for s in solos:
        onsets = np.array([n.onset for n in s.notes])
        pitches = np.array([n.midi for n in s.notes], dtype=float)
        phase = np.round(onsets * GROOVE_GRID).astype(int) % GROOVE_GRID
        rhythm.append(normalized(np.bincount(phase, minlength=GROOVE_GRID)))
        span = phrase_end(s.notes) - s.notes[0].onset if s.notes else 0.0
        density.append(len(s.notes) / span if span > 0 else 0.0)
        ivs.append(normalized(interval_counts(s)))
        steps = np.diff(pitches).astype(int)
        motifs.append(Counter(tuple(steps[i:i + MOTIF]) for i in range(len(steps) - MOTIF + 1)))
        line = np.zeros(CONTOUR_POINTS)
        if len(pitches) >= 2:
            line = np.interp(np.linspace(0, len(pitches) - 1, CONTOUR_POINTS), np.arange(len(pitches)), pitches)
            line = line - line.mean()
            norm = np.linalg.norm(line)
            line = line / norm if norm > _EPS else np.zeros(CONTOUR_POINTS)
        contour.append(line)
        pcs.append(normalized(pitch_class_counts(s)))
        mean.append(pitches.mean() if len(pitches) else float("nan"))
    return Features(np.array(rhythm).reshape(len(solos), GROOVE_GRID), np.array(density),
                    np.array(ivs).reshape(len(solos), -1), motifs,
                    np.array(contour).reshape(len(solos), CONTOUR_POINTS),
                    np.array(pcs).reshape(len(solos), 12), np.array(mean), [s.values for s in solos])


def overlap(a: np.ndarray, b: np.ndarray, chunk: int = 128) -> np.ndarray:
    """Histogram overlap of every row of `a` with every row of `b` (sum of minima),
    `chunk` rows of `a` at a time (memory: chunk x len(b) x bins)."""
    out = np.empty((len(a), len(b)))
    for i in range(0, len(a), chunk):
        out[i:i + chunk] = np.minimum(a[i:i + chunk, None, :], b[None, :, :]).sum(axis=2)
    return out


def motif_shares(answers: Sequence[Counter], calls: Sequence[Counter]) -> np.ndarray:
    """[i, j]: the share of answer i's 3-interval figures (counted) that are figures of call j."""
    holders: dict[tuple, list[int]] = {}
    for j, figs in enumerate(calls):
        for fig in figs:
            holders.setdefault(fig, []).append(j)
    out = np.zeros((len(answers), len(calls)))
    for i, figs in enumerate(answers):
        total = sum(figs.values())
        for fig, count in figs.items():
            if fig in holders:
                out[i, holders[fig]] += count / total
    return out


def similarities(answers: Features, calls: Features) -> dict[str, np.ndarray]:
    """Per feature (but register), the matrix [answer i, call j] of similarities."""
    da, dc = answers.density[:, None], calls.density[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        density = np.where(da + dc > 0, 1 - np.abs(da - dc) / (da + dc), 0.0)
    density[answers.density == 0] = 0.0
    return {"rhythm": overlap(answers.rhythm, calls.rhythm),
            "density": density,
            "intervals": overlap(answers.intervals, calls.intervals),
            "motifs": motif_shares(answers.motifs, calls.motifs),
            "contour": answers.contour @ calls.contour.T,
            "pitch_class": overlap(answers.pitch_class, calls.pitch_class)}


def relatedness(sim: np.ndarray) -> np.ndarray:
    """Per pair i: sim[i, i] minus the mean of sim[i, j] over the other calls j."""
    n = len(sim)
    own = np.diag(sim)
    if n < 2:
        return own * np.nan
    return own - (sim.sum(axis=1) - own) / (n - 1)


def correlation(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation along the last axis, each element counted `weight` times (a
    bootstrap resample's counts; 0 leaves it out); NaN where either side is constant."""
    w = np.ones_like(x) if weight is None else weight.astype(float)
    x, y = np.where(w > 0, x, 0.0), np.where(w > 0, y, 0.0)
    n = w.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = x - (w * x).sum(axis=-1, keepdims=True) / n
        dy = y - (w * y).sum(axis=-1, keepdims=True) / n
        return (w * dx * dy).sum(axis=-1) / np.sqrt((w * dx * dx).sum(axis=-1) * (w * dy * dy).sum(axis=-1))


def resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """B x n: how often each pair is drawn in each resample of `idx` (B x n indices)."""
    counts = np.zeros((len(idx), n))
    np.add.at(counts, (np.repeat(np.arange(len(idx)), idx.shape[1]), idx.ravel()), 1)
    return counts


def _interval(samples: np.ndarray, mean: float) -> dict:
    finite = samples[np.isfinite(samples)]
    lo, hi = np.percentile(finite, [2.5, 97.5]) if len(finite) else (math.nan, math.nan)
    return {"mean": float(mean), "lo": float(lo), "hi": float(hi)}


def compare(calls: Features, sides: Mapping[str, Features], idx: np.ndarray) -> dict:
    """Per feature: the relatedness of each side's answers to the calls (register: the
    correlation of mean pitches), and the second side minus the first, all with
    bootstrap 95% intervals on the same resamples `idx` (B x pairs)."""
    names = list(sides)
    per = {n: {feat: relatedness(sim) for feat, sim in similarities(sides[n], calls).items()} for n in names}
    out = {}
    for feat in FEATURES:
        if feat == "register":
            ok = np.isfinite(calls.mean_pitch) & np.all([np.isfinite(f.mean_pitch) for f in sides.values()], axis=0)
            weight = resample_counts(idx, len(ok)) * ok  # pairs without an answer note left out
            samples = {n: correlation(calls.mean_pitch, sides[n].mean_pitch, weight) for n in names}
            entry = {"measure": "correlation of the mean pitches of call and answer"}
            for n in names:
                entry[n] = _interval(samples[n], float(correlation(calls.mean_pitch[ok], sides[n].mean_pitch[ok])))
        else:
            samples = {n: per[n][feat][idx].mean(axis=1) for n in names}
            entry = {"measure": "relatedness"}
            for n in names:
                entry[n] = _interval(samples[n], float(per[n][feat].mean()))
        if len(names) == 2:
            a, b = names
            entry["difference"] = _interval(samples[b] - samples[a], entry[b]["mean"] - entry[a]["mean"])
        out[feat] = entry
    return out


def verbatim(calls: Sequence[Sequence[str]], answers: Sequence[Sequence[str]]) -> dict:
    """The longest run of each call's values its answer repeats in a row: the longest
    over the pairs, the median, and how many runs exceed `VERBATIM_CAP`."""
    runs = np.array([CopyIndex([c]).longest(a)[0] for c, a in zip(calls, answers, strict=True)])
    if not len(runs):
        return {"longest": 0, "median": math.nan, "mean": math.nan, "over_cap": 0}
    return {"longest": int(runs.max()), "median": float(np.median(runs)), "mean": float(runs.mean()),
            "over_cap": int((runs > VERBATIM_CAP).sum())}


def _quantiles(x: Sequence[float], tempo: float) -> dict:
    x = np.asarray(x, dtype=float)
    if not len(x):
        return {"n": 0}
    q10, med, q90 = np.percentile(x, [10, 50, 90])
    return {"n": len(x), "median_beats": float(med), "p10_beats": float(q10), "p90_beats": float(q90),
            "median_ms": float(med * 60000 / tempo)}


# --- the measure ---------------------------------------------------------------------------

def call_settings(bpb: int, temperature: float = 1.0, top_p: float = 0.95,
                  overrides: Mapping[str, Any] | None = None,
                  configure: Callable[[Any], None] | None = None):
    """The engine's settings for a call: call mode, the solo's bar, the sampling asked
    for, melody on channel 1 and chords on channel 2 (0 and 1 counted from 0), then
    `overrides` ({Settings field: engine value}) and `configure(settings)`."""
    from jazzd.play.settings import Settings

    # feel = straight: the answers are compared with real phrases on the beat grid (the
    # feel moves when notes sound, never which notes: `--listen-set engine.feel=...`); articulation =
    # legato: their lengths as planned, as the real phrases are encoded.
    s = Settings(mode="call", beats_per_bar=bpb, temperature=temperature, top_p=top_p,
                 melody_channel=0, chord_channel=1, feel="straight", articulation="legato")
    if overrides:
        names = {f.name for f in fields(Settings)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"unknown engine setting(s) {', '.join(unknown)}; "
                              f"use Settings fields: {', '.join(sorted(names))}")
        s = replace(s, **overrides)
    if configure is not None:
        configure(s)
    return s


def measure(bundle, pieces: Sequence[Piece], *, calls: int | None = None, seed: int = 0,
            tempo: float = 140.0, temperature: float = 1.0, top_p: float = 0.95,
            overrides: Mapping[str, Any] | None = None, configure: Callable[[Any], None] | None = None,
            rest: float = PHRASE_REST, min_notes: int = MIN_NOTES, bootstrap: int = BOOTSTRAP,
            progress: bool = False) -> dict:
    """The listening measure of a model (`bundle`) on real solos (`pieces`): see the
    module docstring.  `calls` caps the pairs played (spread evenly over the solos; the
    turn-taking phrases are sampled at the same rate); `overrides` ({Settings field:
    value}) and `configure` (a function that changes a `Settings` in place) set the
    engine up, so settings can be compared.  Deterministic in `seed`.  Returns a dict
    (JSON-ready but for NaN) for metrics.json's "listening"."""
    from jazzd.judge.metrics import solo_of_piece
    from jazzd.model.runtime import Runtime
    from jazzd.play.engine import Engine
    from jazzd.play.offline import answer_call
    from jazzd.play.render import Note as PlayNote

    if calls is not None and calls < 2:
        raise ConfigError("--calls must be at least 2 (relatedness compares a call with the others)")
    started = time.monotonic()
    contexts = [_Context(p) for p in pieces]
    solos = [solo_of_piece(p) for p in pieces]
    base = [call_settings(c.bpb, temperature, top_p, overrides, configure) for c in contexts]
    probe = base[0] if base else call_settings(4, temperature, top_p, overrides, configure)
    # The calls are those the default engine hears whole, whatever the overrides: settings compare on the same calls.
    all_pairs, phrases, skipped = find_pairs(solos, [call_settings(c.bpb) for c in contexts], rest, min_notes)
    pairs = [all_pairs[i] for i in spread(len(all_pairs), calls)]
    if len(pairs) < 2:
        raise ConfigError(f"listening: only {len(pairs)} call-and-answer pair(s) in the real solos; "
                          "give more solos (or a lower --bars cap)")
    rate = len(pairs) / len(all_pairs)
    heard = [phrases[i] for i in spread(len(phrases), math.ceil(rate * len(phrases)))]
    runtime = Runtime(bundle)
    call_ids = {(p.piece, p.call[0].onset): k for k, p in enumerate(pairs)}
    results: dict[int, Any] = {}
    early_per_phrase, long_phrase = [], []
    bar = Progress(len(pairs) + len(heard), "listen") if progress else None

    def play(piece: int, phrase: Sequence[Note], key: int, answer: bool):
        ctx = contexts[piece]
        origin = ctx.bars[phrase[0].bar].start
        start_chord = chord_at(ctx.changes, origin)
        changes = [(0.0, start_chord)] + [(t - origin, c) for t, c in ctx.changes if t > origin + _EPS]
        runtime.reset()
        engine = Engine(runtime, np.random.default_rng([seed, key]), replace(base[piece]))
        call = [PlayNote(n.onset - origin, n.dur, n.midi, 0) for n in phrase]
        return origin, answer_call(engine, call, changes, tempo, play_answer=answer)

    for k, p in enumerate(pairs):
        results[k] = play(p.piece, p.call, k, True)
        if bar:
            bar.update()
    for piece, phrase in heard:
        cap = base[piece].max_bars * base[piece].beats_per_bar
        long_phrase.append(phrase_end(phrase) - phrase[0].onset > cap - _EPS)
        k = call_ids.get((piece, phrase[0].onset))
        if k is not None:
            early_per_phrase.append(results[k][1].early)
        else:
            early_per_phrase.append(play(piece, phrase, len(pairs) + len(early_per_phrase), False)[1].early)
        if bar:
            bar.update()
    if bar:
        bar.close()

    call_solos, real_solos, jazzd_solos, gaps, real_gaps = [], [], [], [], []
    unanswered = {"no answer": 0, "only rests": 0}
    for k, p in enumerate(pairs):
        ctx = contexts[p.piece]
        origin, got = results[k]
        call_solos.append(ctx.solo("call", [(n.onset, n.dur, n.midi) for n in p.call]))
        real_solos.append(ctx.solo("real", [(n.onset, n.dur, n.midi) for n in p.real]))
        jazzd_solos.append(ctx.solo("jazzd", [(origin + n.onset, n.dur, n.midi) for n in got.notes]))
        real_gaps.append(p.real[0].onset - phrase_end(p.call))
        if got.span is None:
            unanswered["no answer"] += 1
        elif got.gap is None:
            unanswered["only rests"] += 1
        else:
            gaps.append(got.gap)
    cf = features(call_solos)
    sides = {"real": features(real_solos), "jazzd": features(jazzd_solos)}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pairs), size=(bootstrap, len(pairs)))
    early, long_phrase = np.array(early_per_phrase, dtype=int), np.array(long_phrase, dtype=bool)
    return {
        "settings": {"phrase_rest_beats": rest, "min_notes": min_notes, "calls_cap": calls, "seed": seed,
                     "tempo": tempo, "temperature": temperature, "top_p": top_p, "bootstrap": bootstrap,
                     "overrides": dict(overrides or {}), "configured": configure is not None,
                     "silence_beats": probe.silence_beats, "max_bars": probe.max_bars},
        "solos": len(pieces),
        "phrases": sum(len(segment(s.notes, rest)) for s in solos),
        "pairs": {"available": len(all_pairs), "used": len(pairs), "skipped": skipped},
        "features": compare(cf, sides, idx),
        "verbatim": {name: verbatim(cf.values, f.values) for name, f in sides.items()},
        "turn_taking": {
            "gap": _quantiles(gaps, tempo),
            "real_gap": _quantiles(real_gaps, tempo),
            "unanswered": unanswered,
            "false_triggers": {
                "phrases": len(early), "phrases_answered_early": int((early > 0).sum()),
                "share": float((early > 0).mean()) if len(early) else math.nan,
                "early_answers": int(early.sum()),
                "phrases_within_max_bars": int((~long_phrase).sum()),
                "answered_early_within_max_bars": int(((early > 0) & ~long_phrase).sum()),
                "phrases_past_max_bars": int(long_phrase.sum()),
                "answered_early_past_max_bars": int(((early > 0) & long_phrase).sum())},
        },
        "runtime_s": round(time.monotonic() - started, 1),
    }


# --- report.md ------------------------------------------------------------------------------

LABELS = {
    "rhythm": "rhythm (onsets in the beat, 12 per beat)",
    "density": "note density",
    "intervals": "interval histogram",
    "motifs": "3-interval motifs of the call",
    "contour": "contour",
    "pitch_class": "pitch classes",
    "register": "register (correlation of mean pitches)",
}


def _cell(e: dict) -> str:
    if any(e[k] is None or math.isnan(e[k]) for k in ("mean", "lo", "hi")):
        return "–" if e["mean"] is None or math.isnan(e["mean"]) else f"{e['mean']:.3f}"
    return f"{e['mean']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


def markdown(r: dict) -> list[str]:
    """The "Listening" section of report.md, as lines."""
    st, pairs, tt = r["settings"], r["pairs"], r["turn_taking"]
    over = ", ".join(f"{k} = {v}" for k, v in st["overrides"].items())
    skipped = ", ".join(f"{n} {why}" for why, n in pairs["skipped"].items()) or "none"
    lines = [
        "## Listening: call and response", "",
        f"Every real solo cut into phrases at rests of {st['phrase_rest_beats']:g} beat or more "
        f"({r['phrases']} phrases); {pairs['used']} of {pairs['available']} pairs of consecutive phrases "
        f"of {st['min_notes']} notes or more (left out: {skipped}). Phrase i is played into the engine in "
        "call mode over its own changes (chords in the left hand); the real answer is what the soloist "
        "played next. Relatedness = similarity(answer, its own call) − mean similarity(answer, the "
        "other calls): 0 means the answer is no closer to its call than to anyone's. Bootstrap 95% "
        f"intervals over the calls ({st['bootstrap']} resamples, seed {st['seed']})"
        + (f"; engine settings changed: {over}" if over else "") + ". `jazzd.judge.listening` defines "
        "every feature.", "",
        "| feature | real next phrase | jazzd's answer | jazzd − real |",
        "|---|---:|---:|---:|",
    ]
    for feat, e in r["features"].items():
        lines.append(f"| {LABELS.get(feat, feat)} | {_cell(e['real'])} | {_cell(e['jazzd'])} | "
                     f"{_cell(e['difference'])} |")
    v, gap, real_gap, ft = r["verbatim"], tt["gap"], tt["real_gap"], tt["false_triggers"]
    lines += [
        "",
        f"Longest run of the call's values repeated in a row in the answer: real {v['real']['longest']} "
        f"(median {v['real']['median']:g}), jazzd {v['jazzd']['longest']} (median {v['jazzd']['median']:g}); "
        f"answers over {VERBATIM_CAP}: real {v['real']['over_cap']}, jazzd {v['jazzd']['over_cap']}.",
        "",
    ]
    if gap.get("n"):
        lines.append(
            f"Turn-taking at {st['tempo']:g} bpm: jazzd's first answer note comes a median "
            f"{gap['median_beats']:.2f} beats ({gap['median_ms']:.0f} ms) after the call's last note off "
            f"(10–90%: {gap['p10_beats']:.2f}–{gap['p90_beats']:.2f} beats); the soloists' own gap between "
            f"these phrases: median {real_gap['median_beats']:.2f} beats (at least "
            f"{st['phrase_rest_beats']:g}, by the cut). "
            + f"Answers without a note: {tt['unanswered']['only rests']}; calls never answered: "
              f"{tt['unanswered']['no answer']}.")
    lines += [
        "",
        f"False triggers: of {ft['phrases']} real phrases played in whole, {ft['phrases_answered_early']} "
        f"({100 * ft['share']:.1f}%) got an answer before their last note: "
        f"{ft['answered_early_within_max_bars']} of the {ft['phrases_within_max_bars']} within "
        f"{st['max_bars']} bars (a rest inside the phrase taken for its end, silence "
        f"{st['silence_beats']:g} beat), {ft['answered_early_past_max_bars']} of the "
        f"{ft['phrases_past_max_bars']} longer ones (the call's length cap).",
        "",
    ]
    return lines
