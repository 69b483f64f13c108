"""The session memory's compiled steps (jazzd/model/_memory.c) give the numpy
formulation's floats bit for bit (tests/memory_reference.py): on what the engine asks
of the shipped model's memory while it plays, on random memories of the tiny model
(breaks, drops of the oldest quarter, unseen values, every context length), and on a
vocabulary whose classes need int32.  Bit for bit, not close: the draws, the golden
logs and the report's figures rest on these floats.  And what the compiled code does
with arrays that disagree with each other (a bug elsewhere): a one-line error, never a
crash of the daemon."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jazzd.model import _memory
from jazzd.model.bundle import load_bundle
from jazzd.model.memory import HINT_MIN_MATCH, ORDER, VERBATIM_CAP, SessionMemory
from jazzd.model.runtime import Runtime
from jazzd.model.shipped import default_model
from jazzd.music.vocab import Vocabulary
from jazzd.play.engine import Engine, Settings
from jazzd.play.events import NoteOff, NoteOn, Tick

from . import memory_reference as reference
from .conftest import REPO
from .tinymodel import make_bundle


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Checked(SessionMemory):
    """A memory that computes every `mix` and `interval_for` the numpy way too, and
    fails at the first bit that differs."""

    checked = hinted = 0

    def mix(self, probs, context, own, imitation):
        want = reference.mix(self, probs, context, own, imitation)
        self._want_found = reference.predict(self, context) if imitation > 0 else None
        got = super().mix(probs, context, own, imitation)
        assert same_bits(got, want), (context, own, imitation)
        if self._want_found is not None:
            longest, q, _ = self._want_found
            assert tuple(longest) == super()._predict(context) and same_bits(self._q, q)
        self.checked += 1
        return got

    def interval_for(self, token):
        got = super().interval_for(token)
        found = None if self._want_found is None else self._want_found[2]
        assert got == reference.interval_for(self, found, token, self._hint_min), token
        self.hinted += got is not None
        return got


def check_all(memory: SessionMemory, rng, probs_of, contexts, owns=(0, 3, VERBATIM_CAP)) -> int:
    """`mix`, `predict` and `interval_for` (for every value) against the reference on
    `contexts`; the number of contexts the memory matched."""
    matched = 0
    values = len(memory._values)
    for context in contexts:
        probs = probs_of(rng)
        for own in owns:
            for imitation in (0.3, 0.5, 0.9, 1.0):
                got = memory.mix(probs, context, own, imitation)
                assert same_bits(got, reference.mix(memory, probs, context, own, imitation)), (context, own, imitation)
        want = reference.predict(memory, context)
        got = memory.predict(context)
        assert (got is None) == (want is None), context
        if want is None:
            continue
        matched += 1
        assert got[0].tolist() == list(want[0]) and same_bits(got[1], want[1])
        memory._predict(context)
        found = want[2]
        assert memory._found == found[0].size
        stored = [a[:memory._found] for a in memory._found_buffers]
        assert all(np.array_equal(a, b) for a, b in zip(stored, found, strict=True))
        for min_match in (1, HINT_MIN_MATCH):
            memory._hint_min = min_match
            for token in range(values):
                assert memory.interval_for(token) == reference.interval_for(memory, found, token, min_match)
    return matched


def random_probs(size: int):
    def probs(rng):
        p = rng.dirichlet(np.full(size, 0.3)).astype(np.float32)
        p[rng.random(size) < 0.1] = 0.0  # values the model rules out
        return p
    return probs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("tiny") / "tiny.npz"))


@pytest.mark.parametrize("seed", range(4))
def test_random_memories_of_the_tiny_model_give_the_numpy_floats(tiny, seed):
    rng = np.random.default_rng(seed)
    vocab = tiny.vocab
    size = len(vocab.values)
    # a player who favours some values (so contexts recur and match long), with breaks,
    # in a small memory whose oldest quarter goes several times
    favourite = rng.choice(size, 12, replace=False)
    memory = SessionMemory(capacity=160)
    memory.bind(vocab)
    midi = 60
    for _ in range(700):
        if rng.random() < 0.06:
            memory.cut()
        value = int(rng.choice(favourite)) if rng.random() < 0.8 else int(rng.integers(size))
        text = vocab.value(value)
        midi = int(np.clip(midi + rng.integers(-5, 6), 40, 90))
        memory.learn(text, None if text.startswith("R,") else midi)
    played = [vocab.index(t) for t in memory.texts if t is not None]
    contexts = []
    for _ in range(60):
        k = int(rng.integers(1, ORDER + 3))
        start = int(rng.integers(0, len(played) - k))
        context = list(played[start:start + k])
        if rng.random() < 0.3:
            context[int(rng.integers(k))] = int(rng.integers(size))  # a value that breaks the match
        contexts.append(context)
    assert check_all(memory, rng, random_probs(size), contexts) > 30


def test_what_the_engine_asks_of_the_shipped_models_memory_gives_the_numpy_floats():
    """A duet on the shipped model with the player's 16ths at 240 bpm (the bench's
    workload) at imitation 0.5, 0.9 and 1, then jazzd's own line drawing on what the
    memory learned: every `mix` and every hint, checked as they are asked."""
    bundle = load_bundle(default_model())
    memory = Checked()
    chords = [[48, 52, 55, 59], [50, 53, 57, 60], [43, 47, 50, 53], [48, 52, 55, 59]]
    for mode, imitation, seed in (("duet", 0.5, 0), ("duet", 0.9, 1), ("duet", 1.0, 2), ("solo", 1.0, 3)):
        engine = Engine(Runtime(bundle), np.random.default_rng(seed), Settings(mode=mode, imitation=imitation),
                        memory=memory)
        held: list[int] = []
        for k in range(160):
            t0 = k * 0.25
            events = [Tick(t0, k, 240.0)]
            if mode == "duet":
                if k % 4 == 0:
                    events += [NoteOff(t0, n) for n in held]
                    held = chords[(k // 4) % len(chords)]
                    events += [NoteOn(t0 + 0.001, n, 70) for n in held]
                if k % 16 < 10:  # phrases of 10 beats, with 6-beat gaps jazzd fills
                    for s in range(4):
                        pitch = 64 + (k * 4 + s) * 5 % 19
                        events += [NoteOn(t0 + s * 0.0625 + 0.002, pitch, 90),
                                   NoteOff(t0 + (s + 0.8) * 0.0625, pitch)]
            for event in events:
                engine.feed(event)
    assert len(memory) > 1000 and memory.checked > 300 and memory.hinted > 50, \
        (len(memory), memory.checked, memory.hinted)


def test_a_vocabulary_whose_classes_need_int32_gives_the_numpy_floats():
    durs = [f"{k / 1000:.3f}" for k in range(1, 4501)]
    vocab = Vocabulary([f"R,{d}" for d in durs] + [f"C,{d},<m2,P-4>" for d in durs])
    memory = SessionMemory()
    memory.bind(vocab)
    assert memory._seq.dtype == np.int32
    rng = np.random.default_rng(5)
    favourite = rng.choice(len(vocab.values), 20, replace=False)
    for _ in range(600):
        if rng.random() < 0.05:
            memory.cut()
        text = vocab.value(int(rng.choice(favourite)))
        memory.learn(text, None if text.startswith("R,") else int(rng.integers(50, 80)))
    played = [vocab.index(t) for t in memory.texts if t is not None]
    contexts = [played[s:s + 4] for s in rng.integers(0, len(played) - 4, 12)]
    # (interval_for over 9,000 values per context: a few contexts are enough)
    assert check_all(memory, rng, random_probs(len(vocab.values)), contexts, owns=(0,)) >= 10


def test_probabilities_of_another_type_are_a_clear_error(tiny):
    memory = SessionMemory()
    memory.bind(tiny.vocab)
    for value in tiny.vocab.values[:20] * 2:
        memory.learn(value)
    probs = np.full(len(tiny.vocab.values), 1 / len(tiny.vocab.values))  # float64, not the runtime's float32
    with pytest.raises(TypeError, match="probs: expected a float array of 4-byte items"):
        memory.mix(probs, [tiny.vocab.index(tiny.vocab.values[3])], 0, 1.0)


def test_an_index_that_disagrees_with_the_memory_is_an_error_not_a_crash(tiny):
    """Places, classes and value ids are read from arrays; one out of range (a bug in
    the index, a corrupt value id) must raise, not read or write outside an array."""
    memory = SessionMemory()
    memory.bind(tiny.vocab)
    for value in tiny.vocab.values[:20] * 2:
        memory.learn(value)
    probs = np.full(len(tiny.vocab.values), 1 / len(tiny.vocab.values), dtype=np.float32)
    context = [tiny.vocab.index(tiny.vocab.values[3])]
    assert memory.mix(probs, context, 0, 1.0) is not None
    for bad in ([len(tiny.vocab.values) + 5, context[0]], [-1]):
        with pytest.raises(IndexError, match="a context value id out of range"):
            memory.mix(probs, bad, 0, 1.0)
    # a bad place in the last view: the moments of the views before it were counted in
    # the scratch `_best` before it was met, and must not be left there
    g = memory._cls.globals[context[0]][-1]
    first = memory._occ.start[g]
    good = int(memory._occ.arena[first])
    memory._occ.arena[first] = memory._flat.size + 10  # a place past the memory's end
    with pytest.raises(IndexError, match="a place out of range"):
        memory.mix(probs, context, 0, 1.0)
    assert not memory._best.any()
    memory._occ.arena[first] = 1  # a place with no room for the context before it
    with pytest.raises(IndexError, match="a place out of range"):
        memory.mix(probs, [context[0]] * 4, 0, 1.0)
    assert not memory._best.any()
    memory._occ.arena[first] = good  # mended: it predicts as the numpy code does again
    assert same_bits(memory.mix(probs, context, 0, 1.0), reference.mix(memory, probs, context, 0, 1.0))
    with pytest.raises(TypeError, match="predict takes 14 arguments"):
        _memory.predict()


def test_a_checkout_whose_compiled_part_was_never_built_says_how_to_build_it():
    script = ("import sys; sys.modules['jazzd.model._memory'] = None  # (as if no build had made it)\n"
              "import jazzd.model.memory")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: jazzd's compiled part is not built"), last
    assert "pip install -e ." in last and "apt install gcc python3-dev" in last, last
