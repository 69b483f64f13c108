"""The engine's cost per beat, offline render speed, and chord tones on strong beats, as JSON.

    OPENBLAS_NUM_THREADS=1 python bench/engine.py [--model PATH] [--beats N]

Every per-beat figure is the run with the median p99 of 3 (`median_run`).

1. Cost per beat: duet mode at 240 bpm with dense input (the player's 16th notes above
   the split and a new chord every bar below it), timing everything the engine does in
   each beat (hearing, encoding, model steps, decoding, planning, the feel): median and p99,
   also with feel = straight and feel = player (the meter on the player's onsets).
   Then the same with the session memory on (imitation 1, then 0.5) and full
   (`CAPACITY` values of a player's line: phrases the model itself plays, the worst
   case for its search), with the memory's own cost per step: `mix` per value jazzd
   plays, `learn` per value heard.  And jazzd's own line at 240 bpm (solo mode: what a
   beat costs when it leads), without and with the full memory at imitation 1, with
   how many values it draws a beat.
2. Offline render: 32 bars of solo mode through the manual clock (what `jazzd generate`
   does), wall time.
3. Chord tones on strong beats (beats 1 and 3 of a bar): the share of rendered notes that
   are chord tones, over standard changes, next to the same share in the real WJD solos
   (the corpus, if ../shared is here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from jazzd.model.bundle import load_bundle  # noqa: E402
from jazzd.model.memory import CAPACITY, SessionMemory  # noqa: E402
from jazzd.model.runtime import Runtime  # noqa: E402
from jazzd.model.shipped import default_model  # noqa: E402
from jazzd.music.grammar import classify  # noqa: E402
from jazzd.music.progression import parse_progression  # noqa: E402
from jazzd.play.engine import Engine, Settings  # noqa: E402
from jazzd.play.events import NoteOff, NoteOn, Tick  # noqa: E402
from jazzd.play.offline import render  # noqa: E402
from jazzd.play.render import on_grid  # noqa: E402
from jazzd.play.soloist import Soloist  # noqa: E402

CHANGES = {
    "ii-V-I": "Dm7 G7 | Cmaj7 % | Em7b5 A7 | Dm7 % | Dm7 G7 | Cmaj7 A7 | Dm7 G7 | Cmaj7 %",
    "Bb blues": "Bb7 | Eb7 | Bb7 | Fm7 Bb7 | Eb7 | Eo7 | Bb7 G7 | Cm7 F7 | Bb7 G7 | Cm7 F7",
    "minor": "Cm7 | Fm7 | Dm7b5 G7 | Cm7 % | Abmaj7 | Dm7b5 G7 | Cm7 | G7alt",
}
CHORD_HAND = [[50, 53, 57, 48], [43, 47, 50, 53], [48, 52, 55, 59], [45, 49, 52, 55]]


def player_memory(bundle, values: int = CAPACITY, phrase: int = 24) -> SessionMemory:
    """A session memory holding `values` of a player's line: phrases of `phrase` values
    that the model plays over changing chords (so its figures recur as a player's do)."""
    memory = SessionMemory()
    soloist = Soloist(Runtime(bundle), np.random.default_rng(1))
    prog = parse_progression(CHANGES["Bb blues"])
    beat = 0.0
    while len(memory.texts) < values:
        if len(memory.texts) % (phrase + 1) == phrase:
            memory.cut()
        bar_pos = beat % prog.beats_per_bar
        value, midi, dur = soloist.play(bar_pos, bar_pos < 1e-6, prog.chord_at(beat))
        memory.learn(value, midi)
        beat += max(dur, 1 / 12)
    return memory


def _copy(memory: SessionMemory) -> SessionMemory:
    """A memory holding what `memory` holds (each run starts from the same one)."""
    return SessionMemory.from_json(memory.to_json())


def _timed(fn, times: list):
    def timed(*args):
        start = time.perf_counter_ns()
        out = fn(*args)
        times.append((time.perf_counter_ns() - start) / 1000)
        return out
    return timed


def _times(us) -> dict:
    us = np.asarray(us)
    return {"median_us": round(float(np.median(us)), 1), "p99_us": round(float(np.percentile(us, 99)), 1),
            "max_us": round(float(us.max()), 1)}


def _stats(us) -> dict:
    return {"calls": len(us), **_times(us)}


def memory_learn_cost(memory: SessionMemory, bundle, values: int = 8000) -> dict:
    """`learn` on a full memory bound to the model's vocabulary, as the engine's is (so
    each value is indexed, and the oldest quarter goes now and then)."""
    memory.bind(bundle.vocab)
    texts = [t for t in memory.texts if t is not None][:values]
    times = []
    learn = _timed(memory.learn, times)
    for k, text in enumerate(texts):
        learn(text, 60 + k % 12)
    return _stats(times)


def cost_per_beat(bundle, beats: int, tempo: float = 240.0, memory: SessionMemory | None = None,
                  imitation: float = 1.0, feel: str = "wjd") -> dict:
    """Per beat, in duet mode; with a `memory`, at `imitation` (and the memory's own
    cost per `mix` under "memory_mix"); `feel` as engine.feel (the default's)."""
    settings = Settings(mode="duet", imitation=imitation if memory is not None else 0.0, feel=feel)
    engine = Engine(Runtime(bundle), np.random.default_rng(0), settings, memory=memory)
    mixes: list[float] = []
    if memory is not None:
        memory.mix = _timed(memory.mix, mixes)
    spb = 60.0 / tempo
    per_beat = []
    held: list[int] = []
    for k in range(beats):
        t0 = k * spb
        events = [Tick(t0, k, tempo)]
        if k % 4 == 0:  # a new chord every bar
            events += [NoteOff(t0, n) for n in held]
            held = CHORD_HAND[(k // 4) % len(CHORD_HAND)]
            events += [NoteOn(t0 + 0.001, n, 70) for n in held]
        for s in range(4):  # the player's 16ths
            pitch = 64 + (k * 4 + s) * 5 % 19
            events += [NoteOn(t0 + s * spb / 4 + 0.002, pitch, 80 + s * 5),
                       NoteOff(t0 + (s + 0.8) * spb / 4, pitch)]
        start = time.perf_counter_ns()
        for ev in events:
            engine.feed(ev)
        per_beat.append((time.perf_counter_ns() - start) / 1000)
    warm = np.array(per_beat[8:])
    out = {"tempo_bpm": tempo, "beats": len(warm), "input_events_per_beat": 9,
           "notes_played": engine.stats.played_notes,
           **_times(warm), "budget_us_per_beat": round(spb * 1e6), "_per_beat": warm}
    if memory is not None:
        del memory.mix  # the class's again
        out["imitation"] = imitation
        out["memory_values"] = len(memory)
        out["memory_mix"] = _stats(mixes)
    return out


def lead_line_cost(bundle, beats: int, tempo: float = 240.0, memory: SessionMemory | None = None) -> dict:
    """Per beat of jazzd's own line (solo mode, nothing heard) at `tempo`; with a
    `memory`, at imitation 1: what a beat costs when jazzd leads (a duet's fill, an
    answer), where every value it plays is a model step, a draw and, with the memory,
    a mix, and a beat can hold a run of them."""
    settings = Settings(mode="solo", imitation=1.0 if memory is not None else 0.0)
    engine = Engine(Runtime(bundle), np.random.default_rng(0), settings, memory=memory)
    spb, per_beat, values = 60.0 / tempo, [], []
    drawn = 0
    play = engine.soloist.play

    def counted(*args, **kw):
        nonlocal drawn
        drawn += 1
        return play(*args, **kw)

    engine.soloist.play = counted
    for k in range(beats):
        drawn = 0
        start = time.perf_counter_ns()
        engine.feed(Tick(k * spb, k, tempo))
        per_beat.append((time.perf_counter_ns() - start) / 1000)
        values.append(drawn)
    warm, drawn_per_beat = np.array(per_beat[8:]), np.array(values[8:])
    return {"tempo_bpm": tempo, "beats": len(warm), "memory_values": len(memory) if memory is not None else 0,
            "values_per_beat_mean": round(float(drawn_per_beat.mean()), 2),
            "values_per_beat_p99": float(np.percentile(drawn_per_beat, 99)), "values_per_beat_max": int(drawn_per_beat.max()),
            **_times(warm), "_per_beat": warm}


def offline_render(bundle, bars: int = 32) -> dict:
    prog = parse_progression(CHANGES["ii-V-I"])
    engine = Engine(Runtime(bundle), np.random.default_rng(0), Settings(mode="solo"), progression=prog)
    start = time.perf_counter()
    notes = render(engine, bars, 140.0)
    return {"bars": bars, "notes": len(notes), "wall_s": round(time.perf_counter() - start, 4)}


def strong_beat_chord_tones(bundle, bars: int = 64, seeds: int = 4) -> dict:
    hits = total = 0
    for name, text in CHANGES.items():
        prog = parse_progression(text)
        for seed in range(seeds):
            engine = Engine(Runtime(bundle), np.random.default_rng(seed), Settings(mode="solo"), progression=prog)
            for note in on_grid(render(engine, bars, 140.0)):  # as planned: the feel moves the onsets
                pos = note.onset % prog.beats_per_bar
                if abs(pos - round(pos)) < 1e-6 and round(pos) in (0, 2):
                    total += 1
                    hits += classify(note.midi, prog.chord_at(note.onset)) == "C"
        del name
    return {"generated": round(hits / total, 4) if total else None, "generated_notes": total}


def wjd_strong_beat_chord_tones() -> dict | None:
    shared = Path(os.environ.get("JAZZD_SHARED") or REPO.parent / "shared") / "data" / "wjazzd"
    if not shared.exists():
        return None
    from jazzd.data.ingest.run import ingest

    corpus = ingest([shared], fmt="wjazzd", show_progress=False).corpus
    values = corpus.vocab.decode(corpus.tokens)
    strong = np.isin(corpus.positions % 48, [0, 24])  # beat 1 or 3, on the beat
    notes = [v for v, s in zip(values, strong, strict=True) if s and v[0] != "R"]
    return {"real": round(sum(v[0] == "C" for v in notes) / len(notes), 4), "real_notes": len(notes)}


def median_run(measure, repeats: int = 3) -> dict:
    """`measure()` (a dict with "p99_us", and the beats' times under "_per_beat") run
    `repeats` times: the run with the median p99, with every run's p99 under
    "p99_us_runs".  This shared machine has slow spells of seconds (one section's
    median beat 1.9x another's in the same run); one run's tail would be the spell's,
    not the engine's.  The runs do the same work beat for beat (the engine is seeded,
    each starts from a copy of the same memory), so each beat's least time over the
    runs is its cost with the machine's spells left out (as `timeit` takes the best of
    its repeats): its median and p99 are "median_us_best" and "p99_us_best"."""
    runs = [measure() for _ in range(repeats)]
    best = _times(np.min([r.pop("_per_beat") for r in runs], axis=0))
    runs.sort(key=lambda r: r["p99_us"])
    return {**runs[len(runs) // 2], "p99_us_runs": [r["p99_us"] for r in runs],
            "median_us_best": best["median_us"], "p99_us_best": best["p99_us"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--beats", type=int, default=2000)
    args = parser.parse_args()
    path = args.model or default_model()
    bundle = load_bundle(path)
    out = {"bench": "engine", "model": str(path), "model_cfg": {k: bundle.cfg[k] for k in ("layers", "vocab_size")},
           "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
           "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
           "cost_per_beat": median_run(lambda: cost_per_beat(bundle, args.beats))}
    # the feel stage's share: the same beats with feel = straight (no feel stage at work)
    # and feel = player (the meter reading the player's onsets as well)
    out["cost_per_beat_feel"] = {feel: {k: v for k, v in cost_per_beat(bundle, args.beats, feel=feel).items()
                                        if k.endswith("_us")}
                                 for feel in ("straight", "player")}
    memory = player_memory(bundle)
    out["cost_per_beat_with_memory_half"] = median_run(
        lambda: cost_per_beat(bundle, args.beats, memory=_copy(memory), imitation=0.5))
    out["cost_per_beat_with_memory"] = median_run(lambda: cost_per_beat(bundle, args.beats, memory=_copy(memory)))
    out["memory_learn"] = memory_learn_cost(_copy(memory), bundle)
    out["lead_line"] = median_run(lambda: lead_line_cost(bundle, args.beats))
    out["lead_line_with_memory"] = median_run(lambda: lead_line_cost(bundle, args.beats, memory=_copy(memory)))
    out["render_32_bars"] = offline_render(bundle)
    chord_tones = strong_beat_chord_tones(bundle)
    real = wjd_strong_beat_chord_tones()
    out["strong_beat_chord_tone_ratio"] = {**chord_tones, **(real or {"real": None})}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
