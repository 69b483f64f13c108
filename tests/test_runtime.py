"""The numpy runtime: its step against hand maths and a plain reference LSTM, sampling,
state snapshots, and the real-time promises (no new arrays per step).  No tensorflow."""

import math
import tracemalloc

import numpy as np
import pytest

from jazzd.model.bundle import FEATURE_SIZES, load_bundle, save_bundle
from jazzd.model.runtime import Runtime

from .test_bundle import CFG, ONEHOT, fake_vocab, random_arrays


def runtime_of(tmp_path, cfg, arrays=None, seed=0) -> Runtime:
    arrays = random_arrays(cfg, seed) if arrays is None else arrays
    path = save_bundle(tmp_path / "m.npz", arrays, cfg, fake_vocab(cfg["vocab_size"]))
    return Runtime(load_bundle(path))


def reference_lstm(arrays, cfg, tokens, features_seq):
    """The model written out the long way, in float64: one-hot or embedding sum, then
    per layer z = x K + h U + b, i = sig(z_i), f = sig(z_f), g = tanh(z_c), o = sig(z_o),
    c = f c + i g, h = o tanh(c); softmax(h W + b)."""
    a = {k: v.astype(np.float64) for k, v in arrays.items()}
    vocab_size, sizes = cfg["vocab_size"], cfg["layers"]
    h = [np.zeros(n) for n in sizes]
    c = [np.zeros(n) for n in sizes]
    out = []
    for token, features in zip(tokens, features_seq, strict=True):
        if cfg["input"] == "onehot":
            x = np.zeros(vocab_size)
            if token < vocab_size:  # BOS (= V) is the all-zero vector
                x[token] = 1.0
        else:
            x = a["embed_token"][token].copy()
            for name, value in zip(cfg["features"], features, strict=True):
                x += a[f"embed_{name}"][value]
        for layer, n in enumerate(sizes):
            z = x @ a[f"lstm{layer}_kernel"] + h[layer] @ a[f"lstm{layer}_recurrent"] + a[f"lstm{layer}_bias"]
            i, f = 1 / (1 + np.exp(-z[:n])), 1 / (1 + np.exp(-z[n:2 * n]))
            g, o = np.tanh(z[2 * n:3 * n]), 1 / (1 + np.exp(-z[3 * n:]))
            c[layer] = f * c[layer] + i * g
            h[layer] = o * np.tanh(c[layer])
            x = h[layer]
        logits = x @ a["dense_kernel"] + a["dense_bias"]
        e = np.exp(logits - logits.max())
        out.append(e / e.sum())
    return np.array(out)


def random_sequence(cfg, n, seed=1):
    rng = np.random.default_rng(seed)
    tokens = [cfg["vocab_size"], *rng.integers(0, cfg["vocab_size"], n - 1).tolist()]
    features = [tuple(int(rng.integers(0, FEATURE_SIZES[f])) for f in cfg["features"]) for _ in range(n)]
    return tokens, features


# --- the step ---------------------------------------------------------------------------

def test_one_step_by_hand(tmp_path):
    """One unit, two values, only biases and the output layer non-zero: from a zero state,
    i = f = sig(0.5), g = tanh(0.2), o = sig(-1); c = i g; h = o tanh(c)."""
    cfg = {"input": "onehot", "vocab_size": 2, "features": [], "feature_sizes": {}, "layers": [1]}
    arrays = {"lstm0_kernel": np.zeros((2, 4), np.float32),
              "lstm0_recurrent": np.zeros((1, 4), np.float32),
              "lstm0_bias": np.array([0.5, 0.5, 0.2, -1.0], np.float32),  # i, f, c, o
              "dense_kernel": np.array([[2.0, -1.0]], np.float32),
              "dense_bias": np.array([0.1, 0.0], np.float32)}
    rt = runtime_of(tmp_path, cfg, arrays)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    c = sig(0.5) * math.tanh(0.2)
    h = sig(-1.0) * math.tanh(c)
    p0 = 1 / (1 + math.exp(-3.0 * h - 0.1))  # softmax of [2h + 0.1, -h]
    np.testing.assert_allclose(rt.step(rt.bos), [p0, 1 - p0], rtol=1e-6)
    # second step: c carries over through the forget gate
    c2 = sig(0.5) * c + sig(0.5) * math.tanh(0.2)
    h2 = sig(-1.0) * math.tanh(c2)
    p0 = 1 / (1 + math.exp(-3.0 * h2 - 0.1))
    np.testing.assert_allclose(rt.step(0), [p0, 1 - p0], rtol=1e-6)


@pytest.mark.parametrize("cfg", [ONEHOT, CFG], ids=["onehot", "embedding-2-layers"])
def test_steps_match_a_reference_lstm(tmp_path, cfg):
    arrays = random_arrays(cfg, seed=5)
    rt = runtime_of(tmp_path, cfg, arrays)
    tokens, features = random_sequence(cfg, 60)
    expected = reference_lstm(arrays, cfg, tokens, features)
    got = np.array([rt.step(t, f).copy() for t, f in zip(tokens, features, strict=True)])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert expected.max() > 0.3  # the weights make a real, peaked distribution


def test_prime_is_teacher_forcing(tmp_path):
    rt = runtime_of(tmp_path, CFG)
    tokens, features = random_sequence(CFG, 20)
    last = rt.prime(tokens, features).copy()
    rt.reset()
    for t, f in zip(tokens, features, strict=True):
        p = rt.step(t, f)
    np.testing.assert_array_equal(last, p)
    with pytest.raises(ValueError):
        rt.prime([])
    with pytest.raises(ValueError):
        rt.prime(tokens, features[:-1])


def test_advance_is_a_step_whose_output_is_not_read(tmp_path):
    """A heard value's `advance` leaves exactly the state `step` leaves, so what the
    model predicts after it is the same to the bit; and it checks ids as `step` does."""
    stepped, advanced = runtime_of(tmp_path, CFG), runtime_of(tmp_path, CFG)
    tokens, features = random_sequence(CFG, 25)
    for t, f in zip(tokens[:-1], features[:-1], strict=True):
        stepped.step(t, f)
        advanced.advance(t, f)
    np.testing.assert_array_equal(stepped.get_state().h, advanced.get_state().h)
    np.testing.assert_array_equal(stepped.get_state().c, advanced.get_state().c)
    np.testing.assert_array_equal(stepped.step(tokens[-1], features[-1]), advanced.step(tokens[-1], features[-1]))
    with pytest.raises(ValueError):
        advanced.advance(advanced.bos + 1, features[0])


def test_bad_ids_raise_before_touching_state(tmp_path):
    rt = runtime_of(tmp_path, CFG)
    rt.step(rt.bos, (0, 0))
    before = rt.get_state()
    for token, features in [(-1, (0, 0)), (rt.bos + 1, (0, 0)), (0, (96, 0)), (0, (0, -1)),
                            (0, (0,)), (0, ())]:
        with pytest.raises(ValueError):
            rt.step(token, features)
    after = rt.get_state()
    np.testing.assert_array_equal(before.h, after.h)
    np.testing.assert_array_equal(before.c, after.c)


def test_properties(tmp_path):
    rt = runtime_of(tmp_path, CFG)
    assert rt.bos == CFG["vocab_size"] and len(rt.vocab) == CFG["vocab_size"]
    assert rt.cfg == CFG and rt.features == ("position", "chord")


# --- state --------------------------------------------------------------------------------

def test_get_and_set_state_restore_exactly(tmp_path):
    rt = runtime_of(tmp_path, CFG)
    tokens, features = random_sequence(CFG, 30)
    rt.prime(tokens[:10], features[:10])
    snapshot = rt.get_state()
    ahead = [rt.step(t, f).copy() for t, f in zip(tokens[10:], features[10:], strict=True)]
    rt.set_state(snapshot)
    again = [rt.step(t, f).copy() for t, f in zip(tokens[10:], features[10:], strict=True)]
    np.testing.assert_array_equal(ahead, again)
    rt.set_state(snapshot)  # the snapshot is a copy: stepping did not change it
    np.testing.assert_array_equal(rt.step(tokens[10], features[10]), ahead[0])
    with pytest.raises(ValueError):
        rt.set_state((snapshot.h[:-1], snapshot.c))


def test_reset_starts_afresh(tmp_path):
    rt = runtime_of(tmp_path, CFG)
    tokens, features = random_sequence(CFG, 10)
    first = rt.prime(tokens, features).copy()
    rt.prime(tokens, features)
    assert not np.array_equal(rt.prime(tokens, features), first)
    rt.reset()
    np.testing.assert_array_equal(rt.prime(tokens, features), first)


# --- no new arrays per step -------------------------------------------------------------

def test_step_returns_the_same_buffer_every_time(tmp_path):
    rt = runtime_of(tmp_path, CFG)
    a = rt.step(rt.bos, (0, 7))
    b = rt.step(3, (50, 2))
    assert a is b
    assert rt.prime([1, 2], [(0, 0), (1, 1)]) is a


def test_step_and_sample_allocate_no_arrays(tmp_path):
    """Over 500 steps + samples, the peak of traced memory stays far below one probability
    array (8 kB): only numpy's scalars and views come and go.  Nothing accumulates (after
    a warm-up in which numpy fills its own caches)."""
    cfg = {**CFG, "vocab_size": 2000, "layers": [32, 32]}
    rt = runtime_of(tmp_path, cfg)
    rng = np.random.default_rng(0)

    def play(n):
        for i in range(n):
            rt.sample(rt.step(i, (i % 96, i % 8)), rng, temperature=0.9)

    tracemalloc.start()
    try:
        play(100)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        play(500)
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 4 * 2000 / 2, f"{peak - base} bytes at peak: an array per step?"
    assert now - base < 256, f"{now - base} bytes kept after 500 steps"


# --- sampling -----------------------------------------------------------------------------

PROBS = np.array([0.1, 0.5, 0.05, 0.3, 0.05], np.float32)


@pytest.fixture
def rt5(tmp_path):
    cfg = {**ONEHOT, "vocab_size": 5}
    return runtime_of(tmp_path, cfg)


def test_temperature_zero_is_argmax_and_draws_nothing(rt5):
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    assert rt5.sample(PROBS, rng, temperature=0) == 1
    assert rng.bit_generator.state == state


def test_top_k_one_is_argmax(rt5):
    rng = np.random.default_rng(0)
    assert {rt5.sample(PROBS, rng, temperature=2.0, top_k=1) for _ in range(200)} == {1}
    assert {rt5.sample(PROBS, rng, top_k=2) for _ in range(500)} == {1, 3}


@pytest.mark.parametrize(("top_p", "kept"), [(0.45, {1}), (0.75, {1, 3}), (0.85, {0, 1, 3}),
                                             (0.97, {0, 1, 2, 3, 4}), (1.0, {0, 1, 2, 3, 4})])
def test_top_p_keeps_the_smallest_set_reaching_p(rt5, top_p, kept):
    rng = np.random.default_rng(0)
    assert {rt5.sample(PROBS, rng, top_p=top_p) for _ in range(2000)} == kept


def test_same_seed_same_samples_and_different_seeds_differ(rt5):
    def draw(seed):
        rng = np.random.default_rng(seed)
        return [rt5.sample(PROBS, rng, temperature=1.3, top_p=0.95) for _ in range(100)]
    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def _chi_square(samples, expected_probs):
    counts = np.bincount(samples, minlength=len(expected_probs))
    expected = expected_probs * len(samples)
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_sample_frequencies_match_the_tempered_distribution(tmp_path, temperature):
    cfg = {**ONEHOT, "vocab_size": 8}
    rt = runtime_of(tmp_path, cfg)
    probs = np.random.default_rng(3).dirichlet(np.ones(8)).astype(np.float32)
    tempered = probs.astype(np.float64) ** (1 / temperature)
    tempered /= tempered.sum()
    rng = np.random.default_rng(11)
    samples = [rt.sample(probs, rng, temperature=temperature) for _ in range(20000)]
    # chi-square with 7 degrees of freedom: 24.3 is the 0.1% tail
    assert _chi_square(samples, tempered) < 24.3


def test_bad_sampling_settings_raise(rt5):
    rng = np.random.default_rng(0)
    for kwargs in [{"temperature": -1}, {"top_k": -1}, {"top_p": 0}, {"top_p": 1.5}]:
        with pytest.raises(ValueError):
            rt5.sample(PROBS, rng, **kwargs)


def test_very_low_temperature_still_samples(rt5):
    rng = np.random.default_rng(0)
    tiny = np.array([1e-30, 0.4, 0.6, 0.0, 0.0], np.float32)
    assert rt5.sample(tiny, rng, temperature=0.01) == 2


def reference_sample(probs, rng, temperature=1.0, top_k=0, top_p=1.0) -> int:
    """The sampler as defined, the plain way: every weight sorted for the nucleus, the
    dropped ids zeroed, one running sum over all ids (the runtime's code before it
    sorted only the weights that can be the nucleus's edge)."""
    w = probs.astype(np.float64)
    n = w.size
    if temperature != 1:
        w = (w / w.max()) ** (1.0 / temperature)
    if 0 < top_k < n:
        w[np.argpartition(w, n - top_k)[: n - top_k]] = 0.0
    if top_p < 1:
        ranked = np.sort(w)
        cum = ranked.cumsum()
        cut = int(cum.searchsorted((1.0 - top_p) * cum[-1], side="right"))
        w[w < ranked[min(cut, n - 1)]] = 0.0
    cum = w.cumsum()
    return min(int(cum.searchsorted(rng.random() * cum[-1], side="right")), n - 1)


@pytest.mark.parametrize("size", [5, 64, 1000])
def test_sample_draws_exactly_what_the_plain_sampler_draws(tmp_path, size):
    """The runtime sorts only the weights at or above 1/n of the mass top-p drops (all
    below weigh less than that mass together) and draws among the kept ids: the same
    ids as sorting every weight, draw for draw, on peaked, flat, tied and sparse
    distributions."""
    rt = runtime_of(tmp_path, {**ONEHOT, "vocab_size": size})
    gen = np.random.default_rng(size)
    shapes = [gen.dirichlet(np.full(size, 0.05)), gen.dirichlet(np.ones(size)), np.full(size, 1.0 / size),
              np.where(np.arange(size) % 3 == 0, 0.0, gen.random(size)),
              np.round(gen.dirichlet(np.full(size, 0.3)), 3)]  # (rounded: many equal weights)
    settings = [(1.0, 0, 0.95), (1.0, 0, 0.5), (0.7, 0, 0.9), (1.6, 0, 0.99), (1.0, 3, 0.8), (1.0, 0, 1.0)]
    draws = 0
    for probs in shapes:
        probs = (probs / probs.sum()).astype(np.float32)
        for temperature, top_k, top_p in settings:
            a, b = np.random.default_rng(draws), np.random.default_rng(draws)
            got = [rt.sample(probs, a, temperature, top_k, top_p) for _ in range(200)]
            want = [reference_sample(probs, b, temperature, top_k, top_p) for _ in range(200)]
            assert got == want, (temperature, top_k, top_p)
            draws += 200
