"""`jazzd train`: fit the LSTM on a corpus and write a weights bundle.  Offline only.

Imports TensorFlow/Keras (inside `train()`, so `jazzd --help` stays light); never
imported by the daemon.  Reads top to bottom: presets, data, model, fit, write.

Two presets:
- `seed` reproduces the original exercise on its 275-value Metheny corpus: 60 random
  windows of 30 (legacy numpy seed 0), one-hot input, LSTM(64), Adam(0.01, 0.9, 0.999)
  with Keras' old time-based decay 0.01 as an InverseTimeDecay schedule, 100 epochs,
  batch 32, no validation (the seed had none).  It prints the seed's summed loss (the
  per-step losses of the 29 non-empty steps added up: 129.86 at epoch 1, 8.81 at 100).
- `default` trains on real solos: embedding input plus bar-position and chord-family
  features, stacked LSTMs, validation split by piece, early stopping on validation loss
  with the best weights restored.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from jazzd.data.corpus import Corpus
from jazzd.errors import ConfigError, InputError
from jazzd.music.features import FEATURE_SIZES
from jazzd.music.vocab import Vocabulary
from jazzd.training.windows import seed_windows

PRESETS = {
    "seed": {
        "input": "onehot", "layers": [64], "seq_len": 30, "epochs": 100, "batch": 32,
        "lr": 0.01, "decay": 0.01, "windows": 60, "val_fraction": 0.0, "patience": 0,
        "max_vocab": None, "features": [], "embed_dim": 0, "dropout": 0.0,
    },
    "default": {
        # 2 x 192 units over the 1,000 most frequent values (95% of WJD tokens) fits the
        # 5 MB budget; seq 64 covers about 12 bars of context in training.
        "input": "embedding", "layers": [192, 192], "seq_len": 64, "epochs": 40, "batch": 64,
        "lr": 0.002, "decay": 0.0, "windows": None, "val_fraction": 0.1, "patience": 3,
        "max_vocab": 1000, "features": ["position", "chord"], "embed_dim": 64, "dropout": 0.2,
    },
}
STRATEGIES = ("none", "mirrored", "multiworker")


def resolve_config(preset: str = "default", **overrides) -> dict:
    """The preset's settings with the command line's non-None overrides applied."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    cfg = {"preset": preset, "seed": 0, "strategy": "none", **PRESETS[preset]}
    if overrides.get("hidden") is not None or overrides.get("layers") is not None:
        n = overrides.pop("layers", None) or len(cfg["layers"])
        h = overrides.pop("hidden", None) or cfg["layers"][0]
        cfg["layers"] = [h] * n
    overrides.pop("layers", None), overrides.pop("hidden", None)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if cfg["strategy"] not in STRATEGIES:
        raise ConfigError(f"unknown strategy {cfg['strategy']!r}; use one of {', '.join(STRATEGIES)}")
    for key in ("seq_len", "epochs", "batch"):
        if int(cfg[key]) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be at least 1, got {cfg[key]}")
    if not cfg["lr"] > 0:
        raise ConfigError(f"--lr must be positive, got {cfg['lr']}")
    return cfg


# --- data ------------------------------------------------------------------------------

def model_vocabulary(corpus: Corpus, pieces, max_vocab) -> Vocabulary:
    """The model's vocabulary: the most frequent values of the training pieces."""
    counts = Counter(v for i in pieces for v in corpus.piece_values(i))
    return Vocabulary.from_counts(counts, max_vocab)


def piece_arrays(corpus: Corpus, vocab: Vocabulary, i: int):
    """(token ids in the model's vocabulary, position classes, chord classes) of piece i."""
    lo, hi = corpus.offsets[i], corpus.offsets[i + 1]
    ids = np.array(vocab.encode(corpus.piece_values(i)), dtype=np.int32)
    return ids, corpus.positions[lo:hi].astype(np.int32), corpus.chord_classes()[lo:hi]


def sequence_windows(corpus: Corpus, vocab: Vocabulary, pieces, seq_len: int, stride: int | None = None):
    """Teacher-forcing windows over whole pieces.

    At step t the model sees the previous token (BOS before a piece's first token) and the
    features of token t, and predicts token t.  Windows overlap by half; the last one of a
    piece is padded and its padding weighted 0.
    """
    stride = stride or max(seq_len // 2, 1)
    bos = len(vocab)
    xs, ps, cs, ys, ws = [], [], [], [], []
    for i in pieces:
        ids, pos, chd = piece_arrays(corpus, vocab, i)
        inputs = np.concatenate([[bos], ids[:-1]])
        for start in range(0, max(len(ids) - seq_len, 0) + stride, stride):
            end = min(start + seq_len, len(ids))
            if end <= start:
                break
            n = end - start
            pad = seq_len - n
            xs.append(np.pad(inputs[start:end], (0, pad)))
            ps.append(np.pad(pos[start:end], (0, pad)))
            cs.append(np.pad(chd[start:end], (0, pad)))
            ys.append(np.pad(ids[start:end], (0, pad)))
            ws.append(np.pad(np.ones(n, np.float32), (0, pad)))
            if end == len(ids):
                break
    stack = (lambda a: np.stack(a).astype(np.int32)) if xs else (lambda a: np.zeros((0, seq_len), np.int32))
    inputs = {"tokens": stack(xs), "position": stack(ps), "chord": stack(cs)}
    weights = np.stack(ws) if ws else np.zeros((0, seq_len), np.float32)
    return inputs, stack(ys), weights


def seed_arrays(corpus: Corpus, vocab: Vocabulary, cfg: dict):
    """The seed's 60 windows as (inputs, targets, weights), from its one-hot X and Y."""
    tokens = np.array(vocab.encode([v for i in range(len(corpus)) for v in corpus.piece_values(i)]))
    x, y, starts = seed_windows(tokens, len(vocab), m=cfg["windows"], tx=cfg["seq_len"], seed=cfg["seed"])
    bos = len(vocab)
    inputs = np.where(x.any(-1), x.argmax(-1), bos).astype(np.int32)  # all-zero step = BOS
    targets = y.argmax(-1).astype(np.int32)
    weights = y.any(-1).astype(np.float32)  # the seed's last step has no target
    return {"tokens": inputs}, targets, weights, starts


# --- training ----------------------------------------------------------------------------

def _strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy multiworker needs TF_CONFIG (cluster and task) in the environment")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """Whether this process writes the results: always, except the non-chief workers of
    a multi-worker cluster (TF_CONFIG task other than chief / worker 0)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task") or {}
    if not task or task.get("type") == "chief":
        return True
    has_chief = "chief" in tf_config.get("cluster", {})
    return task.get("type") == "worker" and task.get("index", 0) == 0 and not has_chief


def _dataset(x, y, w, cfg, shuffle=False):
    """A batched tf.data pipeline, sharded by data across the workers of a strategy."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y, w))
    if shuffle:
        data = data.shuffle(len(y), seed=cfg["seed"], reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.batch(cfg["batch"]).with_options(options)


class _History:
    def __init__(self, history: dict):
        self.history = history


def _fit_multiworker(model, strategy, x, y, w, validation, cfg, log):
    """A plain distributed training loop (strategy.run + all-reduce), for the cluster
    case that Keras 3's `fit` does not support.  Early stopping as in `fit`."""
    import keras
    import tensorflow as tf

    optimizer = model.optimizer
    batches = strategy.experimental_distribute_dataset(_dataset(x, y, w, cfg, shuffle=True))
    val = strategy.experimental_distribute_dataset(_dataset(*validation, cfg)) if validation else None
    loss_fn = keras.losses.sparse_categorical_crossentropy

    def replica_loss(batch, training):
        inputs, targets, weights = batch
        probs = model(inputs, training=training)
        ce = loss_fn(targets, probs) * weights
        return tf.reduce_sum(ce), tf.reduce_sum(weights)

    @tf.function
    def train_step(batch):
        def step(b):
            with tf.GradientTape() as tape:
                total, count = replica_loss(b, True)
                loss = total / tf.maximum(count, 1.0) / strategy.num_replicas_in_sync
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return total, count
        total, count = strategy.run(step, args=(batch,))
        return (strategy.reduce("SUM", total, axis=None), strategy.reduce("SUM", count, axis=None))

    @tf.function
    def eval_step(batch):
        total, count = strategy.run(lambda b: replica_loss(b, False), args=(batch,))
        return (strategy.reduce("SUM", total, axis=None), strategy.reduce("SUM", count, axis=None))

    history: dict[str, list] = {"loss": []}
    if val is not None:
        history["val_loss"] = []
    best, best_weights, waited = math.inf, None, 0
    for epoch in range(cfg["epochs"]):
        sums = [train_step(b) for b in batches]
        history["loss"].append(float(sum(t for t, _ in sums) / max(sum(c for _, c in sums), 1.0)))
        line = f"epoch {epoch + 1}: loss {history['loss'][-1]:.4f}"
        if val is not None:
            sums = [eval_step(b) for b in val]
            history["val_loss"].append(float(sum(t for t, _ in sums) / max(sum(c for _, c in sums), 1.0)))
            line += f", val_loss {history['val_loss'][-1]:.4f}"
            if history["val_loss"][-1] < best:
                best, best_weights, waited = history["val_loss"][-1], model.get_weights(), 0
            else:
                waited += 1
                if cfg["patience"] and waited >= cfg["patience"]:
                    log(line)
                    break
        log(line)
    if best_weights is not None:
        model.set_weights(best_weights)
    return _History(history)


def _summed_loss(model, inputs, targets, weights) -> float:
    """The seed's reported loss: per-step mean cross-entropy, added up over the steps."""
    probs = model.predict(inputs, verbose=0, batch_size=len(targets))
    picked = np.take_along_axis(probs, targets[..., None], -1)[..., 0]
    ce = -np.log(np.clip(picked, 1e-12, None)) * weights
    return float(ce.mean(axis=0).sum())


def train(corpus_path, output, log=print, **options) -> dict:
    """Train and write the bundle, its trigram baseline, config JSON and curves PNG."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep CUDA-probe noise off the terminal
    import keras

    from jazzd.model.bundle import make_bundle, save_bundle
    from jazzd.model.ngram import Trigram
    from jazzd.training import keras_model
    from jazzd.training.evaluate import evaluate_ids
    from jazzd.training.pitchtables import REINGEST, estimate, has_pitches

    cfg = resolve_config(**options)
    corpus = Corpus.load(corpus_path)
    output = Path(output)
    keras.utils.set_random_seed(cfg["seed"])
    strategy = _strategy(cfg["strategy"])

    if cfg["preset"] == "seed":
        train_ids, val_ids = list(range(len(corpus))), []
    else:
        train_ids, val_ids = corpus.split(cfg["val_fraction"], seed=cfg["seed"])
    vocab = model_vocabulary(corpus, train_ids, cfg["max_vocab"])
    model_cfg = {
        "input": cfg["input"], "vocab_size": len(vocab), "embed_dim": cfg["embed_dim"],
        "features": cfg["features"], "feature_sizes": {f: FEATURE_SIZES[f] for f in cfg["features"]},
        "layers": cfg["layers"], "dropout": cfg["dropout"], "seq_len": cfg["seq_len"],
        "gate_order": "ifco", "activation": "tanh", "recurrent_activation": "sigmoid",
    }
    if cfg["preset"] == "seed":
        x, y, w, starts = seed_arrays(corpus, vocab, cfg)
        validation = None
        log(f"seed windows: {len(starts)} of {cfg['seq_len']}, first starts {starts[:5]}, "
            f"X {tuple(x['tokens'].shape)} over {len(vocab)} values")
    else:
        x, y, w = sequence_windows(corpus, vocab, train_ids, cfg["seq_len"])
        vx, vy, vw = sequence_windows(corpus, vocab, val_ids, cfg["seq_len"])
        validation = ({k: vx[k] for k in ["tokens", *cfg["features"]]}, vy, vw) if val_ids else None
        n_tokens = lambda ids: sum(int(corpus.offsets[i + 1] - corpus.offsets[i]) for i in ids)  # noqa: E731
        log(f"training on {len(train_ids)} pieces ({n_tokens(train_ids)} tokens in {len(y)} half-overlapping "
            f"windows), validating on {len(val_ids)} pieces ({n_tokens(val_ids)} tokens); vocabulary {len(vocab)}")
    x = {k: x[k] for k in ["tokens", *cfg["features"]]}
    if len(y) == 0:
        raise InputError(f"{corpus_path}: no training windows; the corpus is too small for --seq-len {cfg['seq_len']}")

    with strategy.scope():
        model = keras_model.build(model_cfg)
        steps = max(1, math.ceil(len(y) / cfg["batch"]))
        lr = (keras.optimizers.schedules.InverseTimeDecay(cfg["lr"], decay_steps=1, decay_rate=cfg["decay"])
              if cfg["decay"] else cfg["lr"])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999),
                      loss="sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
    log(f"model: {model_cfg['input']} input, LSTM {cfg['layers']}, {model.count_params():,} parameters, "
        f"{steps} updates per epoch, {strategy.num_replicas_in_sync} replica(s) with {type(strategy).__name__}")

    history: dict[str, list] = {}
    callbacks = []
    seed_sums: list[float] = []
    if cfg["preset"] == "seed":
        class SeedLoss(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                seed_sums.append(_summed_loss(self.model, x, y, w))
                if epoch in (0, 1) or (epoch + 1) % 10 == 0:
                    log(f"epoch {epoch + 1}: summed loss (seed's measure) {seed_sums[-1]:.3f}")
        callbacks.append(SeedLoss())
        seed_sums.append(_summed_loss(model, x, y, w))
        log(f"before training: summed loss {seed_sums[0]:.3f} (29 x ln {len(vocab)} = {29 * math.log(len(vocab)):.2f})")
    elif validation is not None and cfg["patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"],
                                                       restore_best_weights=True))
    t0 = time.monotonic()
    if cfg["strategy"] == "none":
        fit = model.fit(x, y, sample_weight=w, batch_size=cfg["batch"], epochs=cfg["epochs"],
                        validation_data=validation, callbacks=callbacks, shuffle=True,
                        verbose=1 if sys.stderr.isatty() else 2)
    elif cfg["strategy"] == "mirrored":
        fit = model.fit(_dataset(x, y, w, cfg, shuffle=True), epochs=cfg["epochs"],
                        validation_data=_dataset(*validation, cfg) if validation else None,
                        callbacks=callbacks, verbose=2)
    else:  # Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585)
        fit = _fit_multiworker(model, strategy, x, y, w, validation, cfg, log)
    history = {k: [float(v) for v in vs] for k, vs in fit.history.items()}
    train_s = time.monotonic() - t0

    # Metrics on the validation pieces: the model (in memory, through the numpy runtime,
    # as the daemon will run it) next to the trigram baseline fitted on the training
    # pieces; then the bundle is written once, with them.
    arrays = keras_model.export_arrays(model, model_cfg)
    if not is_chief():
        log("trained as a non-chief worker: the chief writes the bundle")
        return {"bundle": None, "metrics": {}, "history": history}
    trigram = Trigram(len(vocab)).fit(piece_arrays(corpus, vocab, i)[0] for i in train_ids)
    metrics = {"train_seconds": round(train_s, 1), "epochs_run": len(history.get("loss", [])),
               "final": {k: v[-1] for k, v in history.items()}}
    if seed_sums:
        metrics["seed_summed_loss"] = {"epoch_0": seed_sums[0], "epoch_1": seed_sums[1],
                                       "last": seed_sums[-1]}
    if val_ids:
        pieces = [piece_arrays(corpus, vocab, i) for i in val_ids]
        metrics["validation"] = evaluate_ids(make_bundle(output, arrays, model_cfg, vocab), pieces)
        metrics["validation"]["baseline"] = trigram.evaluate(p[0] for p in pieces)
        log(f"validation: NLL {metrics['validation']['nll']:.3f} nats/token, accuracy "
            f"{metrics['validation']['accuracy']:.3f}; trigram NLL "
            f"{metrics['validation']['baseline']['nll']:.3f}, accuracy {metrics['validation']['baseline']['accuracy']:.3f}")
    tables = tables_info = None
    if has_pitches(corpus):
        tables, tables_info = estimate(corpus, train_ids, vocab)
        tables_info["corpus"] = str(corpus_path)
        log(f"pitch tables: counted from {tables_info['notes']} notes of the {len(train_ids)} training pieces")
    else:
        log(f"the corpus has no pitches: the bundle gets no pitch tables and decodes pitches uniformly; "
            f"to add them, {REINGEST} and run `jazzd pitch-tables`")
    trigram_path = output.with_suffix(".trigram.npz")
    training = {"corpus": str(corpus_path), "corpus_meta": corpus.meta, "config": cfg,
                "train_pieces": [corpus.names[i] for i in train_ids],
                "validation_pieces": [corpus.names[i] for i in val_ids], "metrics": metrics,
                "baseline": trigram_path.name}
    output.parent.mkdir(parents=True, exist_ok=True)
    trigram.save(trigram_path)
    save_bundle(output, arrays, model_cfg, vocab, training=training, tables=tables, tables_info=tables_info)
    config_path = output.with_suffix(".config.json")
    config_path.write_text(json.dumps({"config": cfg, "model": model_cfg, "metrics": metrics,
                                       "history": history}, indent=2) + "\n")
    _plot(history, output.with_suffix(".curves.png"), seed_sums)
    log(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB), {config_path.name}, "
        f"{output.with_suffix('.curves.png').name}, {trigram_path.name}")
    return {"bundle": str(output), "metrics": metrics, "history": history}


def _plot(history: dict, path: Path, seed_sums: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if seed_sums:
        ax1.plot(range(len(seed_sums)), seed_sums, label="summed loss (seed's measure)")
    else:
        for key in ("loss", "val_loss"):
            if key in history:
                ax1.plot(range(1, len(history[key]) + 1), history[key], label=key)
    for key in ("accuracy", "val_accuracy"):
        if key in history:
            ax2.plot(range(1, len(history[key]) + 1), history[key], label=key)
    ax1.set(xlabel="epoch", ylabel="loss (nats)", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="next-value accuracy")
    for ax in (ax1, ax2):
        if ax.lines:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
