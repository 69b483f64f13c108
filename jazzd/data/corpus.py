"""A corpus file: token arrays per piece + vocabulary + statistics, as npz + JSON.

Pure numpy; offline (ingest writes it, the trainer and `eval` read it).  Never pickle:
the JSON manifest is stored as bytes inside the npz and everything loads with
`allow_pickle=False`.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jazzd import __version__
from jazzd.errors import InputError
from jazzd.music.chords import Chord
from jazzd.music.features import chord_class_of
from jazzd.music.vocab import Vocabulary

FORMAT = "jazzd-corpus"
VERSION = 1
ARRAYS = ("tokens", "offsets", "onsets", "chords", "positions")
# Optional, parallel to `tokens` (corpora ingested before they existed lack them).
NOTE_ARRAYS = ("pitches", "reach")


@dataclass
class Corpus:
    """Tokens of several pieces over one vocabulary.

    `tokens` holds every piece end to end; piece i is tokens[offsets[i]:offsets[i+1]].
    `onsets` (quarter notes from the piece's start), `chords` (index into
    `chord_table`) and `positions` (position class, `jazzd.music.features`) run parallel to
    `tokens`; so do, when the corpus has them, `pitches` (the MIDI pitch played, -1 for a
    rest) and `reach` (`jazzd.music.grammar.type_reach` of the token's chord): what the
    pitch tables (`jazzd.model.pitchtable`) are counted from, since a value holds the
    pitch only relative to the previous note.
    """

    vocab: Vocabulary
    tokens: np.ndarray
    offsets: np.ndarray
    names: list[str]
    onsets: np.ndarray
    chords: np.ndarray
    chord_table: list[dict]
    positions: np.ndarray
    stats: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    pitches: np.ndarray | None = None
    reach: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)

    def piece(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def piece_values(self, i: int) -> list[str]:
        return self.vocab.decode(self.piece(i))

    def save(self, path) -> Path:
        path = Path(path)
        manifest = {
            "format": FORMAT, "version": VERSION, "created_by": f"jazzd {__version__}",
            "vocabulary": list(self.vocab.values), "names": self.names,
            "chord_table": self.chord_table, "stats": self.stats, "meta": self.meta,
        }
        blob = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        notes = {k: getattr(self, k) for k in NOTE_ARRAYS if getattr(self, k) is not None}
        with open(path, "wb") as f:
            np.savez_compressed(f, manifest=blob, tokens=self.tokens, offsets=self.offsets,
                                onsets=self.onsets, chords=self.chords, positions=self.positions, **notes)
        return path

    @classmethod
    def load(cls, path) -> Corpus:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                manifest = json.loads(bytes(z["manifest"]).decode())
                arrays = {k: z[k] for k in ARRAYS + NOTE_ARRAYS if k in ARRAYS or k in z.files}
        except FileNotFoundError:
            raise InputError(f"{path}: no such corpus file; make one with `jazzd ingest`") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
            raise InputError(f"{path}: not a jazzd corpus ({err}); make one with `jazzd ingest`") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise InputError(f"{path}: corpus format {manifest.get('format')} v{manifest.get('version')}, "
                             f"expected {FORMAT} v{VERSION}; ingest the sources again")
        vocab = Vocabulary(manifest["vocabulary"])
        if list(vocab.values) != manifest["vocabulary"]:
            raise InputError(f"{path}: vocabulary is not in sorted order; ingest the sources again")
        tokens, offsets = arrays["tokens"], arrays["offsets"]
        if (len(offsets) != len(manifest["names"]) + 1 or offsets[-1] != len(tokens)
                or (len(tokens) and (tokens.min() < 0 or tokens.max() >= len(vocab)))):
            raise InputError(f"{path}: token arrays do not fit the manifest; ingest the sources again")
        if any(len(arrays[k]) != len(tokens) for k in ("onsets", "chords", "positions", *NOTE_ARRAYS)
               if k in arrays):
            raise InputError(f"{path}: per-token arrays differ in length; ingest the sources again")
        return cls(vocab, tokens, offsets, manifest["names"], arrays["onsets"], arrays["chords"],
                   manifest["chord_table"], arrays["positions"], manifest["stats"], manifest["meta"],
                   arrays.get("pitches"), arrays.get("reach"))

    def chord_classes(self) -> np.ndarray:
        """The chord class (`jazzd.music.features.CHORD_CLASSES`) of every token (computed once)."""
        cached = self.__dict__.get("_chord_classes")
        if cached is None:
            table = np.array([chord_class_of(c["root"], c["mask"]) for c in self.chord_table] or [0],
                             dtype=np.int32)
            cached = self.__dict__["_chord_classes"] = table[self.chords]
        return cached

    def split(self, fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
        """Piece indices (train, validation): a seeded shuffle by piece, never by window."""
        order = np.random.default_rng(seed).permutation(len(self.names))
        n_val = max(1, round(len(order) * fraction)) if len(order) > 1 and fraction > 0 else 0
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


CHORD_FIELDS = ("symbol", "root", "mask", "quality")


def chord_key(chord: Chord) -> tuple:
    """A chord as a small tuple (symbol, root, mask, quality): cheap to send and store."""
    return (chord.symbol, chord.root, chord.mask, chord.quality)


def build(pieces_values: list[tuple[str, list[str], list[float], list[Chord]]],
          max_vocab: int | None = None, meta: dict | None = None) -> Corpus:
    """A corpus from encoded pieces: (name, values, onsets, chords[, positions[, pitches,
    reach]]) each; chords are `Chord`s or their `chord_key` tuples; pitches are MIDI
    numbers or None for rests.  The corpus has `pitches` and `reach` when every piece
    gives them."""
    counts = Counter(v for _, values, *_ in pieces_values for v in values)
    vocab = Vocabulary.from_counts(counts, max_vocab)
    chord_ids: dict[tuple, int] = {}
    chord_table: list[dict] = []
    tokens, onsets, chords, positions, offsets, names = [], [], [], [], [0], []
    pitches, reach = [], []
    with_notes = all(len(p) >= 7 for p in pieces_values)
    for name, values, piece_onsets, piece_chords, *rest in pieces_values:
        names.append(name)
        positions.extend(rest[0] if rest else [0] * len(values))
        if with_notes:
            pitches.extend(-1 if m is None else m for m in rest[1])
            reach.extend(rest[2])
        tokens.extend(vocab.encode(values))
        onsets.extend(piece_onsets)
        for c in piece_chords:
            key = c if isinstance(c, tuple) else chord_key(c)
            if key not in chord_ids:
                chord_ids[key] = len(chord_table)
                chord_table.append(dict(zip(CHORD_FIELDS, key, strict=True)))
            chords.append(chord_ids[key])
        offsets.append(len(tokens))
    type_counts = Counter()
    for v, c in counts.items():
        type_counts[v[0]] += c
    stats = {
        "pieces": len(names), "tokens": len(tokens),
        "notes": sum(c for t, c in type_counts.items() if t != "R"),
        "vocabulary": len(vocab), **vocab.coverage(counts),
        "tokens_per_type": dict(sorted(type_counts.items())),
    }
    return Corpus(vocab, np.asarray(tokens, np.int32), np.asarray(offsets, np.int64), names,
                  np.asarray(onsets, np.float32), np.asarray(chords, np.int32), chord_table,
                  np.asarray(positions, np.uint8), stats, meta or {},
                  np.asarray(pitches, np.int16) if with_notes else None,
                  np.asarray(reach, np.uint8) if with_notes else None)
