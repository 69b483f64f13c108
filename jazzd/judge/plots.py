"""Every picture jazzd draws: the report's histograms overlaid, the MGEval overlap per
feature, and piano rolls of solos with their chords (`jazzd report`, `generate --png`).

matplotlib (imported here, lazily, only when drawing: the `train` extra); offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jazzd.errors import ConfigError
from jazzd.judge.metrics import FAMILIES, FEATURES, LENGTH_LABELS, MAX_INTERVAL
from jazzd.music.grammar import TYPES
from jazzd.music.progression import Progression
from jazzd.play.render import Note

PC_LABELS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
REL_LABELS = ("1", "b2", "2", "b3", "3", "4", "#4", "5", "b6", "6", "b7", "7")
PANELS = (  # feature, title, x labels
    ("type_shares", "value types", TYPES),
    ("pitch_class_histogram", "pitch classes", PC_LABELS),
    ("chord_relative_histogram", "pitch above the chord root", REL_LABELS),
    ("duration_histogram", "note lengths (beats)", LENGTH_LABELS),
    ("ioi_histogram", "inter-onset intervals", LENGTH_LABELS),
    ("interval_histogram", "intervals (semitones)",
     tuple(str(i) if i % 3 == 0 else "" for i in range(-MAX_INTERVAL, MAX_INTERVAL + 1))),
)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("drawing plots (jazzd report, generate --png) needs matplotlib; install "
                          "the train extra: pip install 'jazzd[train]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def histograms(path: Path, sets, tables) -> Path:
    """Each set's mean histogram per panel, side by side as grouped bars."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 2, figsize=(13, 10))
    width = 0.8 / len(sets)
    for ax, (feat, title, labels) in zip(axes.ravel(), PANELS, strict=True):
        x = np.arange(len(labels))
        for k, s in enumerate(sets):
            rows = tables[s.name][feat]
            rows = rows[~np.isnan(rows).any(axis=1)]
            mean = rows.mean(axis=0) if len(rows) else np.zeros(len(labels))
            ax.bar(x + (k - (len(sets) - 1) / 2) * width, mean, width, label=f"{s.name} ({len(s.solos)})")
        ax.set_xticks(x, labels, fontsize=8)
        ax.set(title=title, ylabel="share")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Mean per-piece histograms")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def overlap(path: Path, result: dict) -> Path:
    """The MGEval overlapping area of every feature, one bar per compared set."""
    plt = _pyplot()
    feats = [f for fam in FAMILIES for f, (g, _) in FEATURES.items() if g == fam]
    dist = result["distances"]
    fig, ax = plt.subplots(figsize=(13, 4.5))
    width = 0.8 / max(len(dist), 1)
    x = np.arange(len(feats))
    for k, (name, d) in enumerate(dist.items()):
        oa = [d["features"][f]["oa"] for f in feats]
        ax.bar(x + (k - (len(dist) - 1) / 2) * width, oa, width, label=name)
    ax.set_xticks(x, [f.replace("_", " ") for f in feats], rotation=35, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="overlapping area with the real solos",
           title="MGEval: closeness to the real solos, per feature (1 = as close as real solos are to each other)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw_all(folder: Path, sets, tables, result: dict) -> list[Path]:

    paths = [histograms(folder / "histograms.png", sets, tables), overlap(folder / "overlap.png", result)]
    generated = next((s for s in sets if s.kind == "generated"), None)
    if generated is not None:
        for k, (notes, progression, bars) in enumerate(generated.rendered[:3]):
            shown = min(bars, 16)
            notes = [n for n in notes if n.onset < shown * progression.beats_per_bar]
            paths.append(piano_roll(folder / f"roll-{k + 1}.png", notes, progression, shown,
                                    title=f"{generated.solos[k].name} (first {shown} bars)"))
    return paths


def piano_roll(path, notes: list[Note], progression: Progression, bars: int, title: str = "",
               others: dict[str, list[Note]] | None = None, label: str = "") -> Path:
    """A PNG piano roll with the chord symbols over their bars (needs matplotlib); with
    `others` ({voice: notes}) those voices too, each in its colour, and a legend naming
    `label` (the first voice) and theirs."""
    plt = _pyplot()
    from matplotlib.patches import Patch, Rectangle

    bpb = progression.beats_per_bar
    fig, ax = plt.subplots(figsize=(max(8, bars * 1.2), 4))
    voices = [(label, notes, "tab:blue"), *((name, ns, colour) for (name, ns), colour
                                            in zip((others or {}).items(), ("tab:orange", "tab:green", "tab:red"), strict=False))]
    for _name, ns, colour in voices:
        for n in ns:
            ax.add_patch(Rectangle((n.onset, n.midi - 0.4), n.dur, 0.8, color=colour, alpha=0.4 + n.velocity / 250))
    every = [n.midi for _name, ns, _c in voices for n in ns]
    low = min(every, default=60) - 3
    high = max(every, default=72) + 3
    for bar in range(bars + 1):
        ax.axvline(bar * bpb, color="grey", lw=0.8 if bar % 4 else 1.5)
    for bar in range(bars):
        for pos, chord in progression.chords_in_bar(bar):
            ax.text(bar * bpb + pos + 0.05, high + 0.5, chord.symbol, fontsize=8, va="bottom")
    ax.set(xlim=(0, bars * bpb), ylim=(low, high + 2.5), xlabel="beats", ylabel="MIDI pitch", title=title)
    if others:
        ax.legend(handles=[Patch(color=c, label=name) for name, _ns, c in voices], loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
