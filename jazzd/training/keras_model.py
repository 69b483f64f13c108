"""The Keras side of the model: build it from a config, and move its weights to and from
the arrays of a bundle.

Offline only (the trainer, tests, benchmarks); imports keras/tensorflow, so the daemon
and every module it imports must never import this one.

`build(cfg)` makes the training model: inputs "tokens" (B, T) int32 -- the previous
value's id, or BOS = V at the first step -- and one (B, T) int32 input per feature named
after it (the features of the value being predicted); output (B, T, V) probabilities
for `sparse_categorical_crossentropy`.  Layer names match the bundle's array names, so
`export_arrays` / `load_arrays` are plain get/set_weights.  The caller builds inside
`strategy.scope()` when it uses a `tf.distribute` strategy.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from jazzd.model.bundle import array_shapes


@keras.saving.register_keras_serializable(package="jazzd")
class OneHot(keras.layers.Layer):
    """one_hot(token, depth); an id outside 0..depth-1 (BOS = depth) gives all zeros."""

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, x):
        return keras.ops.one_hot(x, self.depth)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def build(cfg: Mapping, *, stateful: bool = False) -> keras.Model:
    """The model `cfg` describes (see `jazzd.model.bundle`), with Keras's initial weights.

    Any sequence length works.  `stateful=True` gives the batch-1 copy that carries its
    state from call to call (Keras 3 needs a static batch for that); clear it with
    `reset_states(model)`.  Dropout (cfg["dropout"]) follows every LSTM layer and acts
    only in training.
    """
    array_shapes(cfg)  # validates cfg
    vocab_size, features = cfg["vocab_size"], list(cfg.get("features") or [])
    batch = 1 if stateful else None
    tokens = keras.Input(batch_shape=(batch, None), dtype="int32", name="tokens")
    inputs = {"tokens": tokens}
    if cfg["input"] == "onehot":
        x = OneHot(vocab_size, name="onehot")(tokens)
    else:
        dim = cfg["embed_dim"]
        parts = [keras.layers.Embedding(vocab_size + 1, dim, name="embed_token")(tokens)]
        for f in features:
            inputs[f] = keras.Input(batch_shape=(batch, None), dtype="int32", name=f)
            size = cfg["feature_sizes"][f]
            parts.append(keras.layers.Embedding(size, dim, name=f"embed_{f}")(inputs[f]))
        x = keras.layers.Add(name="embed_sum")(parts) if len(parts) > 1 else parts[0]
    dropout = float(cfg.get("dropout") or 0.0)
    for i, units in enumerate(cfg["layers"]):
        x = keras.layers.LSTM(units, return_sequences=True, stateful=stateful, name=f"lstm{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{i}")(x)
    probs = keras.layers.Dense(vocab_size, activation="softmax", name="dense")(x)
    return keras.Model(inputs, probs, name="jazzd")


def _array_names(layer) -> list[str]:
    """The bundle arrays a layer's get_weights() holds, in order ([] for none)."""
    if isinstance(layer, keras.layers.Embedding):
        return [layer.name]
    if isinstance(layer, keras.layers.LSTM):
        return [f"{layer.name}_kernel", f"{layer.name}_recurrent", f"{layer.name}_bias"]
    if isinstance(layer, keras.layers.Dense):
        return ["dense_kernel", "dense_bias"]
    return []


def export_arrays(model: keras.Model, cfg: Mapping) -> dict[str, np.ndarray]:
    """The model's weights as the bundle's float32 arrays (checked against cfg)."""
    arrays = {}
    for layer in model.layers:
        names = _array_names(layer)
        if names:
            weights = layer.get_weights()
            arrays.update({n: np.asarray(w, dtype=np.float32)
                           for n, w in zip(names, weights, strict=True)})
    want = array_shapes(cfg)
    got = {n: a.shape for n, a in arrays.items()}
    if got != want:
        raise ValueError(f"the model's weights {got} do not fit the config {want}")
    return arrays


def load_arrays(model: keras.Model, arrays: Mapping[str, np.ndarray]) -> None:
    """Set the model's weights from bundle arrays (the inverse of `export_arrays`)."""
    layers = [(layer, _array_names(layer)) for layer in model.layers if _array_names(layer)]
    wanted = {n for _, names in layers for n in names}
    if set(arrays) != wanted:
        raise ValueError(f"arrays {sorted(set(arrays) ^ wanted)} do not match the model's layers")
    for layer, names in layers:
        layer.set_weights([np.asarray(arrays[n], dtype=np.float32) for n in names])
