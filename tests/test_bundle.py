"""The weights bundle: round trip, and one clear BundleError per kind of damaged file."""

import json
import pickle

import numpy as np
import pytest

from jazzd.errors import BundleError
from jazzd.model.bundle import (
    FEATURE_SIZES,
    MANIFEST,
    Bundle,
    array_shapes,
    arrays_sha256,
    load_bundle,
    make_bundle,
    save_bundle,
)
from jazzd.music.vocab import Vocabulary


def fake_vocab(n: int) -> Vocabulary:
    """n valid values (five types x durations on the 1/48 grid)."""
    values = [f"{t},{k / 48:.3f}" for k in range(1, n // 5 + 2) for t in "CSAXR"][:n]
    return Vocabulary(values)


def random_arrays(cfg, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights of the shapes cfg implies, scaled so the LSTM is lively but not chaotic and
    the output distribution is far from uniform."""
    rng = np.random.default_rng(seed)

    def scale(name, shape):
        if name.endswith("_bias"):
            return 0.3
        if name.startswith("embed") or name == "lstm0_kernel":
            return 0.7
        return (6.0 if name == "dense_kernel" else 1.2) / np.sqrt(shape[0])

    return {n: rng.normal(0, scale(n, s), s).astype(np.float32)
            for n, s in array_shapes(cfg).items()}


V = 12
CFG = {"input": "embedding", "vocab_size": V, "embed_dim": 5, "features": ["position", "chord"],
       "feature_sizes": dict(FEATURE_SIZES), "layers": [4, 3], "dropout": 0.1, "seq_len": 16,
       "gate_order": "ifco", "activation": "tanh", "recurrent_activation": "sigmoid"}
ONEHOT = {"input": "onehot", "vocab_size": V, "features": [], "feature_sizes": dict(FEATURE_SIZES),
          "layers": [6], "seq_len": 16}


@pytest.fixture(autouse=True)
def no_unpickling(monkeypatch):
    """Nothing in this module may ever unpickle."""
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.fixture
def good(tmp_path):
    return save_bundle(tmp_path / "good.npz", random_arrays(CFG), CFG, fake_vocab(V),
                       training={"corpus": "wjd.npz", "metrics": {"loss": 1.5}})


def read_raw(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files if n != MANIFEST}
        manifest = json.loads(bytes(z[MANIFEST]).decode())
    return arrays, manifest


def write_raw(path, arrays, manifest, *, resign=True, pickles=False):
    """Write an npz as-is (no checks), re-signing the checksum unless told not to."""
    manifest = dict(manifest)
    if resign:
        manifest["arrays"] = {n: {"shape": list(a.shape), "dtype": a.dtype.name}
                              for n, a in sorted(arrays.items())}
        manifest["sha256"] = arrays_sha256(arrays)
    blob = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, allow_pickle=pickles, **{MANIFEST: blob}, **arrays)
    return path


# --- round trip -------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [CFG, ONEHOT], ids=["embedding", "onehot"])
def test_round_trip(tmp_path, cfg):
    arrays, vocab = random_arrays(cfg, seed=3), fake_vocab(V)
    path = save_bundle(tmp_path / "m.npz", arrays, cfg, vocab, training={"epochs": 3})
    bundle = load_bundle(path)
    assert isinstance(bundle, Bundle)
    assert bundle.path == path and bundle.cfg == cfg and bundle.vocab == vocab
    assert bundle.training == {"epochs": 3}
    assert bundle.manifest["format"] == "jazzd-bundle" and bundle.manifest["version"] == 1
    assert sorted(bundle.arrays) == sorted(arrays)
    for name, a in arrays.items():
        assert bundle.arrays[name].dtype == np.float32
        np.testing.assert_array_equal(bundle.arrays[name], a)
        assert not bundle.arrays[name].flags.writeable
    # what the trainer scores in memory is what it writes
    made = make_bundle(path, arrays, cfg, vocab, training={"epochs": 3})
    assert (made.path, made.manifest, made.cfg, made.vocab) == (path, bundle.manifest, bundle.cfg, bundle.vocab)
    for name, a in bundle.arrays.items():
        np.testing.assert_array_equal(made.arrays[name], a)


def test_save_writes_exactly_the_path_given_and_no_temporary(tmp_path):
    path = save_bundle(tmp_path / "model.bundle", random_arrays(ONEHOT), ONEHOT, fake_vocab(V))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bundle"]
    assert load_bundle(path).cfg == ONEHOT


def test_save_refuses_arrays_that_do_not_fit(tmp_path):
    arrays = random_arrays(CFG)
    arrays["lstm1_bias"] = np.zeros(5, np.float32)
    with pytest.raises(BundleError, match="lstm1_bias"):
        save_bundle(tmp_path / "m.npz", arrays, CFG, fake_vocab(V))
    with pytest.raises(BundleError, match="vocabulary has 11 values"):
        save_bundle(tmp_path / "m.npz", random_arrays(CFG), CFG, fake_vocab(V - 1))
    assert list(tmp_path.iterdir()) == []


# --- every defect: one line naming the file and what is wrong ---------------------------

SPRUNG: list[str] = []


def spring(note: str) -> None:
    SPRUNG.append(note)


class Trap:
    """Unpickling one of these calls `spring`, which leaves a trace in SPRUNG."""

    def __reduce__(self):
        return (spring, ("unpickled!",))


def _mutate(good, tmp_path, change, **kw):
    arrays, manifest = read_raw(good)
    change(arrays, manifest)
    return write_raw(tmp_path / "bad.npz", arrays, manifest, **kw)


def _set(key, value):
    return lambda arrays, manifest: manifest.__setitem__(key, value)


def _model(**changes):
    return lambda arrays, manifest: manifest.__setitem__("model", {**manifest["model"], **changes})


def _arrays(fn):
    return lambda arrays, manifest: fn(arrays)


DEFECTS = {
    "missing": (lambda good, tmp: tmp / "nowhere.npz", "no such model bundle"),
    "directory": (lambda good, tmp: tmp, "not a file"),
    "empty": (lambda good, tmp: _write(tmp / "bad.npz", b""), "empty"),
    "truncated": (lambda good, tmp: _write(tmp / "bad.npz", good.read_bytes()[: good.stat().st_size // 2]),
                  "truncated"),
    "text": (lambda good, tmp: _write(tmp / "bad.npz", "# modèle\nweights = [0.1, 0.2]\n".encode()), "text file"),
    "midi": (lambda good, tmp: _write(tmp / "bad.npz", b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0"),
             "MIDI file"),
    "npy": (lambda good, tmp: _npy(tmp / "bad.npz"), "single .npy"),
    "other zip": (lambda good, tmp: _other_zip(tmp / "bad.npz"), "without a 'manifest'"),
    "wrong format": (lambda good, tmp: _mutate(good, tmp, _set("format", "jazzd-corpus")),
                     "format 'jazzd-corpus'"),
    "no format": (lambda good, tmp: _mutate(good, tmp, lambda a, m: m.pop("format")), "format None"),
    "newer version": (lambda good, tmp: _mutate(good, tmp, _set("version", 2)), "upgrade jazzd"),
    "no version": (lambda good, tmp: _mutate(good, tmp, lambda a, m: m.pop("version")),
                   "bundle version None"),
    "object array": (lambda good, tmp: _mutate(
        good, tmp, _arrays(lambda a: a.__setitem__("lstm0_bias", np.array([Trap()], dtype=object))),
        resign=False, pickles=True), "pickled object array"),
    "missing array": (lambda good, tmp: _mutate(good, tmp, _arrays(lambda a: a.pop("dense_bias"))),
                      "missing dense_bias"),
    "extra array": (lambda good, tmp: _mutate(
        good, tmp, _arrays(lambda a: a.__setitem__("lstm2_bias", np.zeros(8, np.float32)))),
        "unexpected lstm2_bias"),
    "shape": (lambda good, tmp: _mutate(good, tmp, _model(layers=[4, 5])), "'lstm1_kernel' has shape"),
    "dtype": (lambda good, tmp: _mutate(
        good, tmp, _arrays(lambda a: a.__setitem__("dense_bias", a["dense_bias"].astype(np.float64)))),
        "float64, expected float32"),
    "NaN": (lambda good, tmp: _mutate(good, tmp, _arrays(lambda a: a["lstm0_kernel"].__setitem__((1, 2), np.nan))),
            "NaN or Inf"),
    "Inf": (lambda good, tmp: _mutate(good, tmp, _arrays(lambda a: a["dense_bias"].__setitem__(0, -np.inf))),
            "NaN or Inf"),
    "vocabulary size": (lambda good, tmp: _mutate(good, tmp, lambda a, m: m["vocabulary"].pop()),
                        "vocabulary has 11 values but the model has 12"),
    "vocabulary order": (lambda good, tmp: _mutate(good, tmp, lambda a, m: m["vocabulary"].reverse()),
                         "not in Vocabulary order"),
    "vocabulary value": (lambda good, tmp: _mutate(good, tmp, lambda a, m: m["vocabulary"].__setitem__(0, "Q,1")),
                         "bad vocabulary"),
    "no model": (lambda good, tmp: _mutate(good, tmp, lambda a, m: m.pop("model")), "not a JSON object"),
    "bad input kind": (lambda good, tmp: _mutate(good, tmp, _model(input="conv")), "'input' must be"),
    "gate order": (lambda good, tmp: _mutate(good, tmp, _model(gate_order="icfo")), "runs 'ifco' only"),
    "feature classes": (lambda good, tmp: _mutate(
        good, tmp, lambda a, m: (_model(feature_sizes={"position": 64, "chord": 8})(a, m),
                                 a.__setitem__("embed_position", a["embed_position"][:64]))),
        "64 position classes"),
    "manifest array list": (lambda good, tmp: _mutate(good, tmp, lambda a, m: m["arrays"].pop("dense_bias"),
                                                      resign=False), "array list"),
    "sha mismatch": (lambda good, tmp: _mutate(
        good, tmp, _arrays(lambda a: a["lstm1_recurrent"].__setitem__((0, 0), 0.5)), resign=False),
        "checksum mismatch"),
    "manifest not json": (lambda good, tmp: _bad_manifest(good, tmp, b"{not json"), "not valid UTF-8 JSON"),
    "manifest not bytes": (lambda good, tmp: _bad_manifest(good, tmp, None), "not a byte array"),
}


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    return path


def _other_zip(path):
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("model.weights.h5", b"\x89HDF\r\n")
    return path


def _bad_manifest(good, tmp_path, blob):
    arrays, _ = read_raw(good)
    blob = np.zeros((2, 2), np.float32) if blob is None else np.frombuffer(blob, np.uint8)
    path = tmp_path / "bad.npz"
    with open(path, "wb") as f:
        np.savez(f, **{MANIFEST: blob}, **arrays)
    return path


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_defect_is_one_clear_line(good, tmp_path, defect):
    make, expected = DEFECTS[defect]
    path = make(good, tmp_path)
    with pytest.raises(BundleError) as info:
        load_bundle(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message, message
    assert SPRUNG == []
    assert info.value.exit_code == 2


def test_the_pickle_trap_works_when_pickles_are_allowed(good, tmp_path, monkeypatch):
    """Guard the guard: the object array really would run code if it were unpickled."""
    monkeypatch.undo()
    path = DEFECTS["object array"][0](good, tmp_path)
    with np.load(path, allow_pickle=True) as z:
        z["lstm0_bias"]
    assert SPRUNG == ["unpickled!"]
    SPRUNG.clear()


def test_checksum_covers_names_shapes_and_dtypes():
    a = {"x": np.arange(6, dtype=np.float32)}
    base = arrays_sha256(a)
    assert arrays_sha256({"y": a["x"]}) != base
    assert arrays_sha256({"x": a["x"].reshape(2, 3)}) != base
    assert arrays_sha256({"x": a["x"].astype(np.float64)}) != base
    assert arrays_sha256({"x": a["x"].astype(">f4")}) == base  # byte order is normalised
