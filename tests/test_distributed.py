"""`jazzd train --strategy multiworker`: two worker processes on this machine (loopback)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from jazzd.data.corpus import build
from jazzd.music.chords import parse_chord

pytestmark = [pytest.mark.keras, pytest.mark.slow]
pytest.importorskip("tensorflow", reason="the trainer needs the train extra (tensorflow)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_train_one_model_and_the_chief_writes_it(tmp_path):
    rng = __import__("random").Random(0)
    values = ["C,0.500", "S,0.500,<P4,m-2>", "A,0.250,<m2,P-4>", "R,0.500", "C,1.000,<d5,P1>"]
    chord = parse_chord("Dm7")
    pieces = []
    for i in range(10):
        seq = [rng.choice(values) for _ in range(120)]
        pieces.append((f"p{i}", seq, [0.25 * k for k in range(120)], [chord] * 120, [k % 96 for k in range(120)]))
    corpus = build(pieces).save(tmp_path / "c.npz")
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "jazzd", "train", str(corpus), "-o", str(tmp_path / f"m{index}.npz"),
             "--strategy", "multiworker", "--epochs", "2", "--hidden", "16", "--layers", "1",
             "--seq-len", "16", "--batch", "8"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "2 replica(s) with CollectiveAllReduceStrategy" in outs[0]  # MultiWorkerMirrored's class
    assert "epoch 2: loss" in outs[0] and "validation: NLL" in outs[0]
    assert (tmp_path / "m0.npz").exists() and not (tmp_path / "m1.npz").exists()
    assert "non-chief worker" in outs[1]
