"""Keras and the numpy runtime compute the same model (after minGPT's Hugging Face parity
test): same weights through both, allclose probabilities at every step and identical
greedy tokens.  Keras -> export_arrays -> save_bundle -> load_bundle -> Runtime."""

import numpy as np
import pytest

from jazzd.model.bundle import FEATURE_SIZES, load_bundle, save_bundle
from jazzd.model.runtime import Runtime

from .test_bundle import fake_vocab, random_arrays

pytestmark = pytest.mark.keras
tf = pytest.importorskip("tensorflow")
keras_model = pytest.importorskip("jazzd.training.keras_model")
keras = pytest.importorskip("keras")

STEPS = 200
CONFIGS = {
    # the seed's shape: one-hot input, one LSTM of 64 units, 90 values
    "onehot-64": {"input": "onehot", "vocab_size": 90, "features": [],
                  "feature_sizes": dict(FEATURE_SIZES), "layers": [64], "dropout": 0.0,
                  "seq_len": 30, "gate_order": "ifco", "activation": "tanh",
                  "recurrent_activation": "sigmoid"},
    "embedding-features-2-layers": {
        "input": "embedding", "vocab_size": 90, "embed_dim": 32, "features": ["position", "chord"],
        "feature_sizes": dict(FEATURE_SIZES), "layers": [64, 48], "dropout": 0.2, "seq_len": 32,
        "gate_order": "ifco", "activation": "tanh", "recurrent_activation": "sigmoid"},
}


def to_runtime(model, cfg, path) -> Runtime:
    arrays = keras_model.export_arrays(model, cfg)
    save_bundle(path, arrays, cfg, fake_vocab(cfg["vocab_size"]), training={"test": "parity"})
    return Runtime(load_bundle(path))


def sequence(cfg, seed=2):
    rng = np.random.default_rng(seed)
    tokens = np.array([cfg["vocab_size"], *rng.integers(0, cfg["vocab_size"], STEPS - 1)], np.int32)
    features = {f: rng.integers(0, FEATURE_SIZES[f], STEPS).astype(np.int32) for f in cfg["features"]}
    return tokens, features


def keras_inputs(tokens, features):
    return {"tokens": np.asarray(tokens, np.int32)[None], **{f: v[None] for f, v in features.items()}}


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    cfg = CONFIGS[request.param]
    weights = random_arrays(cfg, seed=42)
    model = keras_model.build(cfg)
    keras_model.load_arrays(model, weights)
    exported = keras_model.export_arrays(model, cfg)
    assert sorted(exported) == sorted(weights)
    for name, a in weights.items():
        np.testing.assert_array_equal(exported[name], a)
    runtime = to_runtime(model, cfg, tmp_path_factory.mktemp("parity") / "m.npz")
    return cfg, model, runtime


def test_probabilities_match_at_every_step(pair, record_property):
    cfg, model, runtime = pair
    tokens, features = sequence(cfg)
    expected = np.asarray(model(keras_inputs(tokens, features), training=False))[0]
    runtime.reset()
    got = np.array([runtime.step(int(t), tuple(int(features[f][i]) for f in cfg["features"])).copy()
                    for i, t in enumerate(tokens)])
    diff = float(np.abs(got - expected).max())
    record_property("max_abs_diff", diff)
    print(f"{cfg['input']} {cfg['layers']}: max abs diff {diff:.3g} over {STEPS} steps")
    assert expected.max(axis=1).mean() > 5 / cfg["vocab_size"]  # peaked, far from uniform
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_greedy_decoding_gives_identical_tokens(pair):
    cfg, model, runtime = pair
    _, features = sequence(cfg, seed=3)
    stateful = keras_model.build(cfg, stateful=True)
    keras_model.load_arrays(stateful, keras_model.export_arrays(model, cfg))
    for layer in stateful.layers:  # start from zero state, as runtime.reset() does
        if isinstance(layer, keras.layers.LSTM):
            layer.reset_state()
    keras_step = tf.function(lambda inputs: stateful(inputs, training=False))  # 1 trace, fast calls
    runtime.reset()
    keras_tokens, runtime_tokens = [runtime.bos], [runtime.bos]
    for i in range(STEPS):
        step_features = {f: v[i:i + 1] for f, v in features.items()}
        p = np.asarray(keras_step(keras_inputs([keras_tokens[-1]], step_features)))[0, 0]
        keras_tokens.append(int(p.argmax()))
        q = runtime.step(runtime_tokens[-1], tuple(int(v[i]) for v in features.values()))
        runtime_tokens.append(int(q.argmax()))
        np.testing.assert_allclose(q, p, atol=1e-5, rtol=0)
    assert runtime_tokens == keras_tokens
    assert len(set(keras_tokens)) > 5  # the greedy walk does not collapse to one value


def test_trains_under_a_distribution_strategy_and_still_matches(tmp_path):
    """The trainer's path: build inside strategy.scope(), fit with sparse categorical
    cross-entropy (dropout on), then the trained weights run the same in the runtime."""
    cfg = CONFIGS["embedding-features-2-layers"]
    rng = np.random.default_rng(0)
    n, steps = 32, cfg["seq_len"]
    targets = rng.integers(0, cfg["vocab_size"], (n, steps)).astype(np.int32)
    x = {"tokens": np.concatenate([np.full((n, 1), cfg["vocab_size"], np.int32), targets[:, :-1]], axis=1),
         **{f: rng.integers(0, FEATURE_SIZES[f], (n, steps)).astype(np.int32) for f in cfg["features"]}}
    strategy = tf.distribute.MirroredStrategy(devices=["/cpu:0"])
    with strategy.scope():
        model = keras_model.build(cfg)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = keras_model.export_arrays(model, cfg)
    history = model.fit(x, targets, batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    after = keras_model.export_arrays(model, cfg)
    assert not np.array_equal(before["lstm1_recurrent"], after["lstm1_recurrent"])
    runtime = to_runtime(model, cfg, tmp_path / "trained.npz")
    expected = np.asarray(model({k: v[:1] for k, v in x.items()}, training=False))[0]
    got = np.array([runtime.step(int(x["tokens"][0, i]),
                                 tuple(int(x[f][0, i]) for f in cfg["features"])).copy()
                    for i in range(steps)])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
