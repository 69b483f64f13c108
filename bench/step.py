"""Time one model step: the numpy runtime against three ways of stepping Keras, as JSON.

    python bench/step.py [--model PATH]

Times, for the shipped model `models/jazzd-wjd.npz` (or PATH; without either, a randomly
initialised model of the default size, and the output says so), one step of:
(a) the numpy runtime, step alone and step + sample (what the engine does);
(b) Keras `model.predict` on one step;  (c) a direct Keras call `model(x, training=False)`;
(d) a `tf.function` around the same call.
All Keras paths use a stateful batch-1 copy, so each call is one step with carried state,
and include turning the result into numpy.  Each path is warmed up first; times come from
`time.perf_counter_ns` and are reported as median and p99 in microseconds.  numpy's BLAS
threads follow the environment: compare with OPENBLAS_NUM_THREADS=1 (what the daemon
should run with).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from jazzd.errors import JazzdError  # noqa: E402
from jazzd.model.bundle import FEATURE_SIZES, load_bundle, save_bundle  # noqa: E402
from jazzd.model.runtime import Runtime  # noqa: E402
from jazzd.music.vocab import Vocabulary  # noqa: E402

SHIPPED = REPO / "models" / "jazzd-wjd.npz"
DEFAULT_CFG = {"input": "embedding", "vocab_size": 1000, "embed_dim": 64,
               "features": ["position", "chord"], "feature_sizes": dict(FEATURE_SIZES),
               "layers": [256, 256], "dropout": 0.0, "seq_len": 64, "gate_order": "ifco",
               "activation": "tanh", "recurrent_activation": "sigmoid"}
# (warm-up calls, timed calls) per path: the slow paths get fewer
COUNTS = {"runtime_step": (500, 5000), "runtime_step_sample": (500, 5000),
          "keras_predict": (10, 100), "keras_call": (20, 300), "tf_function": (100, 3000)}


def timed(fn, warmup: int, runs: int) -> dict:
    for _ in range(warmup):
        fn()
    ns = np.empty(runs, dtype=np.int64)
    for k in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        ns[k] = time.perf_counter_ns() - t0
    return {"median_us": round(float(np.median(ns)) / 1e3, 2),
            "p99_us": round(float(np.percentile(ns, 99)) / 1e3, 2), "runs": runs}


def random_bundle(folder: Path):
    """A bundle of DEFAULT_CFG with Keras's initial weights and a made-up vocabulary."""
    from jazzd.training import keras_model

    n = DEFAULT_CFG["vocab_size"]
    vocab = Vocabulary([f"{t},{k / 48:.3f}" for k in range(1, n // 5 + 1) for t in "CSAXR"])
    model = keras_model.build(DEFAULT_CFG)
    arrays = keras_model.export_arrays(model, DEFAULT_CFG)
    return load_bundle(save_bundle(folder / "random.npz", arrays, DEFAULT_CFG, vocab))


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import tensorflow as tf

    return {"cpu": cpu, "cpus": os.cpu_count(), "machine": platform.machine(),
            "system": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "tensorflow": tf.__version__,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help=f"a bundle (default: {SHIPPED.relative_to(REPO)})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model or SHIPPED.exists():
            bundle = load_bundle(args.model or SHIPPED)
            source = str(bundle.path)
        else:
            bundle = random_bundle(Path(tmp))
            source = f"random initialisation ({SHIPPED.relative_to(REPO)} not found)"
    cfg = bundle.cfg
    features = tuple(FEATURE_SIZES[f] // 2 for f in cfg.get("features") or [])
    results = {}

    # (a) the numpy runtime, fed its own samples
    runtime, rng = Runtime(bundle), np.random.default_rng(0)
    token = [runtime.bos]
    results["runtime_step"] = timed(lambda: runtime.step(token[0], features), *COUNTS["runtime_step"])

    def step_and_sample():
        token[0] = runtime.sample(runtime.step(token[0], features), rng, temperature=1.0, top_p=0.95)

    results["runtime_step_sample"] = timed(step_and_sample, *COUNTS["runtime_step_sample"])

    # (b), (c), (d): Keras, one step of a stateful batch-1 copy
    import tensorflow as tf

    from jazzd.training import keras_model

    model = keras_model.build(cfg, stateful=True)
    keras_model.load_arrays(model, bundle.arrays)
    inputs = {"tokens": np.array([[3]], np.int32),
              **{f: np.array([[v]], np.int32) for f, v in zip(cfg.get("features") or [], features, strict=True)}}
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    graph_step = tf.function(lambda x: model(x, training=False))
    results["keras_predict"] = timed(lambda: model.predict(inputs, verbose=0), *COUNTS["keras_predict"])
    results["keras_call"] = timed(lambda: np.asarray(model(inputs, training=False)), *COUNTS["keras_call"])
    results["tf_function"] = timed(lambda: graph_step(tensors).numpy(), *COUNTS["tf_function"])

    base = results["runtime_step_sample"]["median_us"]
    ratios = {f"{name}/runtime_step_sample": round(results[name]["median_us"] / base, 1)
              for name in ("keras_predict", "keras_call", "tf_function")}
    print(json.dumps({"bench": "step", "model": source, "cfg": cfg, "times": results,
                      "median_ratios": ratios, "machine": machine()}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except JazzdError as err:
        sys.exit(f"bench/step.py: {err}")
