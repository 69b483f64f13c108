"""The weights bundle: one self-describing `.npz` file that carries a trained model.

numpy + stdlib only; any thread (the daemon loads a bundle at start and on reload; the
trainer writes one).  Never imports tensorflow/keras and never unpickles anything.

Format (version 1).  A zip archive written by `numpy.savez`, one member per array:

- `manifest`: UTF-8 JSON stored as a 1-D uint8 array::

      {"format": "jazzd-bundle", "version": 1,
       "vocabulary": [...values in Vocabulary order...],
       "model": cfg,                        # see below; the model's whole shape
       "arrays": {name: {"shape": [...], "dtype": "float32"}, ...},
       "sha256": "<hex>",                   # of the arrays, see `arrays_sha256`
       "training": {...}}                   # free: corpus, config, metrics

- every other member is a float32 array named after the weight it holds:
  `embed_token` (V+1, E), `embed_<feature>` (size, E)       -- "embedding" input only
  `lstm<l>_kernel` (in, 4h), `lstm<l>_recurrent` (h, 4h), `lstm<l>_bias` (4h,)
  `dense_kernel` (h_last, V), `dense_bias` (V,)
  where `in` is V ("onehot"), E ("embedding") or the previous layer's h, and the four
  gate blocks of every 4h axis are in Keras order i, f, c (candidate), o;
- optionally, the decoder's pitch tables `pitch_window`, `pitch_open`, `pitch_reach`
  (float32 counts, all three or none) and with them its context tables
  `pitch_open_register`, `pitch_step_register`, `pitch_turn` (all three or none: bundles
  made before them have none; `jazzd.model.pitchtable`), with where they came from in
  the manifest's "pitch_tables".  They are listed in "arrays" and covered by
  "sha256" like the weights.  A bundle without them decodes pitches uniformly inside
  each value's window, exactly as bundles did before they existed.

`cfg` ("model") is `{"input": "onehot"|"embedding", "vocab_size": V, "embed_dim": E,
"features": [...], "feature_sizes": {...}, "layers": [h1, ...], "dropout": p,
"seq_len": T, "gate_order": "ifco", "activation": "tanh", "recurrent_activation":
"sigmoid"}`; `array_shapes(cfg)` says which arrays, of which shapes, it implies.

`load_bundle` checks everything (zip structure, format and version, no object arrays,
the exact set of arrays, shapes against cfg, vocabulary, finiteness, checksum) and
raises `BundleError` with one line naming the file, the defect and the fix.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jazzd.errors import BundleError, JazzdError
from jazzd.model.pitchtable import TABLE_SHAPES, PitchChooser, check_tables
from jazzd.music.features import FEATURE_SIZES
from jazzd.music.vocab import Vocabulary

FORMAT = "jazzd-bundle"
VERSION = 1
MANIFEST = "manifest"
INPUTS = ("onehot", "embedding")
FEATURES = tuple(FEATURE_SIZES)  # the known features, in the order the model sums them
# What the numpy runtime implements; a cfg asking for anything else is refused.
SUPPORTED = {"gate_order": "ifco", "activation": "tanh", "recurrent_activation": "sigmoid"}
_FIX = "retrain it or re-download it"


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle.  `arrays` are the weights, read-only float32 arrays; `cfg` is
    manifest["model"]; `tables` the pitch tables ({} when the bundle has none)."""

    path: Path
    manifest: dict
    cfg: dict
    vocab: Vocabulary
    arrays: dict[str, np.ndarray]
    tables: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def training(self) -> dict:
        return self.manifest.get("training", {})

    def pitch_chooser(self) -> PitchChooser | None:
        """The decoder's pitch chooser from the bundle's tables; None without them."""
        return PitchChooser(self.tables, self.vocab.values) if self.tables else None


def split_tables(arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(weights, pitch tables) of a bundle's arrays, by name."""
    weights = {n: a for n, a in arrays.items() if n not in TABLE_SHAPES}
    return weights, {n: a for n, a in arrays.items() if n in TABLE_SHAPES}


# --- the model's shape ------------------------------------------------------------------

def _positive_int(cfg: Mapping, key: str) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"model config {key!r} must be a positive integer, not {v!r}")
    return v


def array_shapes(cfg: Mapping) -> dict[str, tuple[int, ...]]:
    """The arrays a model config implies, name -> shape.  ValueError for a bad cfg."""
    if not isinstance(cfg, Mapping):
        raise ValueError("the model config is not a JSON object")
    kind = cfg.get("input")
    if kind not in INPUTS:
        raise ValueError(f"model config 'input' must be one of {INPUTS}, not {kind!r}")
    for key, want in SUPPORTED.items():
        if cfg.get(key, want) != want:
            raise ValueError(f"model config {key!r} is {cfg[key]!r}; this jazzd runs {want!r} only")
    vocab_size = _positive_int(cfg, "vocab_size")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"model config 'layers' must be a non-empty list of sizes, not {layers!r}")
    if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in layers):
        raise ValueError(f"model config 'layers' must hold positive integers, not {layers!r}")
    features = cfg.get("features") or []
    shapes: dict[str, tuple[int, ...]] = {}
    if kind == "onehot":
        if features:
            raise ValueError(f"model config: 'onehot' input takes no features, got {features!r}")
        width = vocab_size
    else:
        width = _positive_int(cfg, "embed_dim")
        if not isinstance(features, list) or [f for f in FEATURES if f in features] != features:
            raise ValueError(f"model config 'features' must be a subset of {list(FEATURES)} "
                             f"in that order, not {features!r}")
        sizes = cfg.get("feature_sizes")
        shapes["embed_token"] = (vocab_size + 1, width)
        for f in features:
            if not isinstance(sizes, Mapping):
                raise ValueError("model config 'feature_sizes' is missing")
            shapes[f"embed_{f}"] = (_positive_int(sizes, f), width)
    for i, h in enumerate(layers):
        shapes[f"lstm{i}_kernel"] = (width, 4 * h)
        shapes[f"lstm{i}_recurrent"] = (h, 4 * h)
        shapes[f"lstm{i}_bias"] = (4 * h,)
        width = h
    shapes["dense_kernel"] = (width, vocab_size)
    shapes["dense_bias"] = (vocab_size,)
    return shapes


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the arrays: for each name in sorted order, the UTF-8 bytes of
    "name\\0dtype\\0shape\\0" (shape as comma-separated ints), then the raw little-endian
    C-order bytes of the array."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        dtype = a.dtype.newbyteorder("<")
        digest.update(f"{name}\0{dtype.name}\0{','.join(map(str, a.shape))}\0".encode())
        digest.update(np.ascontiguousarray(a, dtype=dtype).tobytes())
    return digest.hexdigest()


# --- writing ----------------------------------------------------------------------------

def make_bundle(path, arrays: Mapping[str, np.ndarray], cfg: Mapping,
                vocab: Vocabulary | Sequence[str], training: Mapping | None = None,
                tables: Mapping[str, np.ndarray] | None = None,
                tables_info: Mapping | None = None) -> Bundle:
    """The bundle `save_bundle` would write to `path`, in memory (the trainer scores it
    before writing).  BundleError if the arrays, cfg and vocabulary do not fit together:
    the same checks `load_bundle` makes.  `tables` are the optional pitch tables and
    `tables_info` where they came from (manifest "pitch_tables")."""
    path = Path(path)
    vocab = vocab if isinstance(vocab, Vocabulary) else _checked_vocab(path, list(vocab))
    cfg = dict(cfg)
    out = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in arrays.items()}
    extra = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in (tables or {}).items()}
    if MANIFEST in out:
        raise BundleError(f"{path}: {MANIFEST!r} is reserved for the manifest, not a weight name")
    _check_model(path, cfg, vocab, out)
    _check_tables(path, extra)
    every = {**out, **extra}
    manifest = {
        "format": FORMAT, "version": VERSION, "vocabulary": list(vocab.values), "model": cfg,
        "arrays": {n: {"shape": list(a.shape), "dtype": "float32"} for n, a in sorted(every.items())},
        "sha256": arrays_sha256(every), "training": dict(training or {}),
    }
    if extra:
        manifest["pitch_tables"] = dict(tables_info or {})
    return Bundle(path, manifest, cfg, vocab, out, extra)


def save_bundle(path, arrays: Mapping[str, np.ndarray], cfg: Mapping,
                vocab: Vocabulary | Sequence[str], training: Mapping | None = None,
                tables: Mapping[str, np.ndarray] | None = None,
                tables_info: Mapping | None = None) -> Path:
    """Write a bundle atomically (temporary file + rename); checked as `make_bundle` says."""
    bundle = make_bundle(path, arrays, cfg, vocab, training, tables, tables_info)
    path = bundle.path
    text = json.dumps(bundle.manifest, indent=1, default=str)  # default: Paths etc. in "training"
    blob = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **{MANIFEST: blob}, **bundle.arrays, **bundle.tables)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --- reading ----------------------------------------------------------------------------

def load_bundle(path) -> Bundle:
    """Read and check a bundle; BundleError (one line: file, defect, fix) on any defect."""
    path = Path(path)
    _check_container(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if MANIFEST not in npz.files:
                raise BundleError(f"{path}: is a zip archive without a {MANIFEST!r} member, not a "
                                  f"model bundle; {_FIX}")
            manifest = _read_manifest(path, _member(path, npz, MANIFEST))
            arrays = {n: _member(path, npz, n) for n in npz.files if n != MANIFEST}
    except JazzdError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise BundleError(f"{path}: cannot be read ({_one_line(err)}); {_FIX}") from None
    cfg = manifest.get("model")
    vocab = _checked_vocab(path, manifest.get("vocabulary"))
    weights, tables = split_tables(arrays)
    _check_model(path, cfg, vocab, weights)
    _check_tables(path, tables)
    listed = manifest.get("arrays")
    actual = {n: {"shape": list(a.shape), "dtype": a.dtype.name} for n, a in arrays.items()}
    if listed != actual:
        raise BundleError(f"{path}: the manifest's array list does not match the arrays inside; "
                          f"{_FIX}")
    for f in cfg.get("features") or []:
        if cfg["feature_sizes"][f] != FEATURE_SIZES[f]:
            raise BundleError(f"{path}: the model was trained with {cfg['feature_sizes'][f]} "
                              f"{f} classes but this jazzd computes {FEATURE_SIZES[f]}; "
                              f"retrain it with this version")
    if arrays_sha256(arrays) != manifest.get("sha256"):
        raise BundleError(f"{path}: checksum mismatch (the weights were altered or damaged "
                          f"after saving); {_FIX}")
    for a in arrays.values():
        a.setflags(write=False)
    return Bundle(path, manifest, dict(cfg), vocab, weights, tables)


def _check_container(path: Path) -> None:
    """Is it there, and is it a whole zip archive?  Names the common wrong files."""
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle; check the path, or train one")
    if not path.is_file():
        raise BundleError(f"{path}: is not a file; pass a model bundle (.npz)")
    try:
        with open(path, "rb") as f:
            head = f.read(512)
        whole = zipfile.is_zipfile(path)
    except OSError as err:
        raise BundleError(f"{path}: cannot be read ({_one_line(err)})") from None
    if whole:
        return
    if not head:
        what = "is empty (0 bytes)"
    elif head.startswith(b"PK\x03\x04"):
        what = "is truncated or damaged (a zip archive without its directory)"
    elif head.startswith(b"MThd"):
        what = "is a MIDI file, not a model bundle"
    elif head.startswith(b"\x93NUMPY"):
        what = "is a single .npy array, not a model bundle (.npz)"
    elif _is_text(head):
        what = "is a text file, not a model bundle (.npz)"
    else:
        what = "is not a model bundle (not an npz archive)"
    raise BundleError(f"{path}: {what}; {_FIX}")


def _member(path: Path, npz, name: str) -> np.ndarray:
    try:
        return npz[name]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise BundleError(f"{path}: member {name!r} is a pickled object array, refused "
                              f"(bundles hold plain float32 arrays); {_FIX}") from None
        raise


def _read_manifest(path: Path, blob: np.ndarray) -> dict:
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise BundleError(f"{path}: the manifest is not a byte array; {_FIX}")
    try:
        manifest = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BundleError(f"{path}: the manifest is not valid UTF-8 JSON; {_FIX}") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: the manifest is not a JSON object; {_FIX}")
    fmt, version = manifest.get("format"), manifest.get("version")
    if fmt != FORMAT:
        raise BundleError(f"{path}: format {fmt!r}, expected {FORMAT!r}: not a model bundle; "
                          f"pass the .npz written by the trainer")
    if version != VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        fix = "upgrade jazzd" if newer else _FIX
        raise BundleError(f"{path}: bundle version {version!r}, this jazzd reads version "
                          f"{VERSION}; {fix}")
    return manifest


def _checked_vocab(path: Path, values) -> Vocabulary:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BundleError(f"{path}: the vocabulary is missing or not a list of values; {_FIX}")
    try:
        vocab = Vocabulary(values)
    except JazzdError as err:
        raise BundleError(f"{path}: bad vocabulary ({_one_line(err)}); {_FIX}") from None
    if list(vocab.values) != values:
        raise BundleError(f"{path}: the vocabulary is not in Vocabulary order or has duplicates; "
                          f"{_FIX}")
    return vocab


def _check_model(path: Path, cfg, vocab: Vocabulary, arrays: Mapping[str, np.ndarray]) -> None:
    try:
        shapes = array_shapes(cfg)
    except ValueError as err:
        raise BundleError(f"{path}: {err}; {_FIX}") from None
    if len(vocab) != cfg["vocab_size"]:
        raise BundleError(f"{path}: the vocabulary has {len(vocab)} values but the model has "
                          f"{cfg['vocab_size']} outputs; {_FIX}")
    missing = sorted(set(shapes) - set(arrays))
    extra = sorted(set(arrays) - set(shapes))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise BundleError(f"{path}: arrays do not fit the model config ({'; '.join(parts)}); {_FIX}")
    for name, shape in shapes.items():
        a = arrays[name]
        if a.dtype != np.float32:
            raise BundleError(f"{path}: array {name!r} is {a.dtype}, expected float32; {_FIX}")
        if a.shape != shape:
            raise BundleError(f"{path}: array {name!r} has shape {list(a.shape)}, the model "
                              f"config implies {list(shape)}; {_FIX}")
        if not np.isfinite(a).all():
            raise BundleError(f"{path}: array {name!r} holds NaN or Inf (a diverged training "
                              f"run?); {_FIX}")


def _check_tables(path: Path, tables: Mapping[str, np.ndarray]) -> None:
    problem = check_tables(tables)
    if problem:
        raise BundleError(f"{path}: {problem}; add them again with `jazzd pitch-tables`, or {_FIX}")


def _is_text(head: bytes) -> bool:
    try:  # an incremental decoder tolerates a character cut at the end of `head`
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
