"""The session memory: what it predicts (back-off, gating, views), the verbatim cap, what
the engine teaches it, that imitation 0 changes nothing, clearing, saving and loading."""

from __future__ import annotations

import json
import logging
import signal
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon, _request_forget
from jazzd.live.notify import Notifier
from jazzd.model.bundle import load_bundle
from jazzd.model.memory import (
    FIGURE,
    MAX_FILE_BYTES,
    ORDER,
    RECENT,
    VERBATIM_CAP,
    VIEWS,
    Hint,
    SessionMemory,
    hinted_pitch,
    load_memory,
    memory_path,
)
from jazzd.model.runtime import Runtime
from jazzd.music.chords import parse_chord
from jazzd.music.grammar import encode_value, parse_value
from jazzd.music.vocab import Vocabulary
from jazzd.play.engine import Engine, Settings
from jazzd.play.offline import ManualClock
from jazzd.play.soloist import Soloist
from jazzd.training.evaluate import evaluate_ids

from .test_engine import hold_chord, play_call
from .test_fuzz import Wire
from .tinymodel import make_bundle

# A figure of distinct values of the tiny vocabulary (tests/tinymodel.py).
RUN = ["C,0.250", "S,0.250,<m2,P-4>", "A,0.250,<P4,m-2>", "C,0.500,<d5,P1>", "R,0.250",
       "S,0.333,<P1,d-5>", "C,0.333,<M3,d-3>", "A,0.333,<m2,P-4>", "S,1.000,<P4,m-2>", "R,1.000",
       "C,0.250,<M3,d-3>", "A,0.500", "S,0.500,<d5,P1>", "C,1.000,<P1,d-5>", "R,0.500", "A,1.000,<M3,d-3>"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("tiny") / "tiny.npz"))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("daemon") / "tiny.npz")


def memory_of(bundle, values=(), capacity=None):
    memory = SessionMemory(capacity) if capacity else SessionMemory()
    memory.bind(bundle.vocab)
    for v in values:
        memory.learn(v)
    return memory


def ids(bundle, values):
    return [bundle.vocab.index(v) for v in values]


def flat_probs(bundle):
    """A model that has no opinion: every value equally likely."""
    return np.full(len(bundle.vocab), 1 / len(bundle.vocab), dtype=np.float32)


# --- what it predicts --------------------------------------------------------------------


def test_with_nothing_learned_or_nothing_matching_the_model_is_untouched(bundle):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(bundle.vocab))).astype(np.float32)
    memory = memory_of(bundle)
    assert np.array_equal(memory.mix(probs, ids(bundle, RUN[:3]), 0, 1.0), probs)
    memory = memory_of(bundle, RUN[:6])
    unseen = ids(bundle, ["A,0.333,<P1,d-5>"])  # in no view like anything learned
    assert np.array_equal(memory.mix(probs, unseen, 0, 1.0), probs)
    assert np.array_equal(memory.mix(probs, ids(bundle, RUN[:3]), 0, 0.0), probs)  # imitation 0


def test_a_longer_matching_context_weighs_the_memory_more(bundle):
    memory = memory_of(bundle, RUN)
    probs = flat_probs(bundle)
    target = bundle.vocab.index(RUN[8])
    shares = [memory.mix(probs, ids(bundle, RUN[8 - k:8]), 0, 0.5)[target] for k in range(1, 8)]
    assert all(b > a for a, b in pairwise(shares)), shares
    assert shares[-1] > 10 * shares[0]  # one matched value barely counts, seven a lot
    longest, _ = memory.predict(ids(bundle, RUN[4:8]))
    assert longest[0] == 4


def test_stronger_imitation_weighs_the_memory_more(bundle):
    memory = memory_of(bundle, RUN)
    probs, target = flat_probs(bundle), bundle.vocab.index(RUN[6])
    shares = [memory.mix(probs, ids(bundle, RUN[2:6]), 0, x)[target] for x in (0.1, 0.5, 1.0)]
    assert shares[0] < shares[1] < shares[2]
    assert np.isclose(memory.mix(probs, ids(bundle, RUN[2:6]), 0, 1.0).sum(), 1.0)


def test_a_figure_jazzd_has_taken_up_is_followed_more(bundle):
    """Once jazzd's own last value continues a figure of the player's (a match of
    `FIGURE` values or more), the gate trusts the match more: the figure goes on.  One
    matched value, or the player's own line (`own` 0, as `jazzd eval` scores it), as before."""
    memory = memory_of(bundle, RUN)
    probs, target = flat_probs(bundle), bundle.vocab.index(RUN[6])
    for k in (FIGURE, 4):
        context = ids(bundle, RUN[6 - k:6])
        assert memory.mix(probs, context, 1, 0.9)[target] > memory.mix(probs, context, 0, 0.9)[target] + 0.01
    one = ids(bundle, RUN[5:6])
    assert memory.mix(probs, one, 1, 0.9)[target] == memory.mix(probs, one, 0, 0.9)[target]


def test_when_the_exact_value_never_recurs_a_coarser_view_still_predicts(bundle):
    # Learned: a C sixteenth with one window, then a whole-note rest.
    memory = memory_of(bundle, ["C,0.250,<m2,P-4>", "R,1.000", "S,0.500", "C,0.250,<m2,P-4>", "R,1.000"])
    probs = flat_probs(bundle)
    # The context's value is a C sixteenth with another window: never played as such.
    context = ids(bundle, ["C,0.250,<P4,m-2>"])
    longest, _ = memory.predict(context)
    names = [v.name for v in VIEWS]
    assert longest[names.index("value")] == 0 and longest[names.index("cell")] == 1
    mixed = memory.mix(probs, context, 0, 1.0)
    rest = bundle.vocab.index("R,1.000")
    assert mixed[rest] > 1.5 * probs[rest]  # the rhythm that followed, over any window
    # The coarse share goes to the values of the class as the model shares it among them.
    other_rests = [bundle.vocab.index(v) for v in ("R,0.250", "R,0.500")]
    assert all(mixed[i] < probs[i] for i in other_rests)


def reference_view(seq, context, order=ORDER):
    """Witten-Bell over orders 1..m, the plain way, over the latest RECENT moments of the
    context's last class: {class: p}, m (None: no match)."""
    context = context[-order:]
    matches = []
    latest = [j for j in range(len(seq)) if seq[j] is not None and seq[j] == context[-1]][-RECENT:]
    for j in latest:
        if j + 1 == len(seq) or seq[j + 1] is None:
            continue
        length = 1
        while (length < len(context) and j - length >= 0 and seq[j - length] is not None
               and seq[j - length] == context[-1 - length]):
            length += 1
        matches.append((length, seq[j + 1]))
    if not matches:
        return None, 0
    m = max(length for length, _ in matches)
    q: dict = {}
    for k in range(1, m + 1):
        follow = Counter(c for length, c in matches if length >= k)
        n, d = sum(follow.values()), len(follow)
        trust = 1.0 if k == 1 else n / (n + d)
        q = {c: trust * follow.get(c, 0) / n + (1 - trust) * q.get(c, 0.0) for c in set(q) | set(follow)}
    return q, m


@pytest.mark.parametrize("seed", range(5))
def test_each_view_predicts_as_a_plain_witten_bell_over_its_matches(bundle, seed):
    rng = np.random.default_rng(seed)
    pool = list(bundle.vocab.values[:12])  # few values: long matches happen
    memory = memory_of(bundle)
    texts = []
    for _ in range(600):
        if rng.random() < 0.03:
            memory.cut()
            texts.append(None)
        else:
            texts.append(pool[int(rng.integers(len(pool)))])
            memory.learn(texts[-1])
    cls = memory._cls
    for _ in range(20):
        context = [pool[int(i)] for i in rng.integers(len(pool), size=int(rng.integers(1, ORDER + 1)))]
        found = memory.predict(ids(bundle, context))
        for v in range(len(VIEWS)):
            seq = [None if t is None else int(cls.table[v][bundle.vocab.index(t)]) for t in texts]
            want, m = reference_view(seq, [int(cls.table[v][i]) for i in ids(bundle, context)])
            if want is None:
                assert found is None or found[0][v] == 0
                continue
            longest, q = found
            assert longest[v] == m
            got = q[cls.offsets[v]:cls.offsets[v + 1]]
            assert np.allclose([got[c] for c in want], list(want.values()))
            assert np.isclose(got.sum(), 1.0)


def test_a_figure_over_one_chord_is_offered_again_over_another(bundle):
    """Chord-relative values: the player's figure over Cmaj7, transposed over Fmaj7,
    is the same values there, so having heard it over C raises its continuation over F."""
    figure = [60, 62, 64, 67, 69, 67, 64, 62]  # a line over C
    c, f = parse_chord("Cmaj7"), parse_chord("Fmaj7")

    def encode(pitches, chord):
        out, prev = [], None
        for p in pitches:
            out.append(encode_value(p, 0.5, chord, prev))
            prev = p
        return out

    over_c, over_f = encode(figure, c), encode([p + 5 for p in figure], f)
    assert over_c == over_f  # the grammar is chord-relative
    memory = memory_of(bundle, over_c)
    probs = flat_probs(bundle)
    mixed = memory.mix(probs, ids(bundle, over_f[:4]), 0, 0.5)
    nxt = bundle.vocab.index(over_f[4])
    assert mixed[nxt] > 5 * probs[nxt]


# --- the verbatim cap ------------------------------------------------------------------------


def test_the_ninth_consecutive_value_of_the_players_is_masked(bundle):
    memory = memory_of(bundle, RUN)
    probs = flat_probs(bundle)
    context = ids(bundle, RUN[:VERBATIM_CAP])
    ninth = bundle.vocab.index(RUN[VERBATIM_CAP])
    assert memory.mix(probs, context, VERBATIM_CAP, 1.0)[ninth] == 0.0  # all 8 were jazzd's
    assert memory.mix(probs, context, VERBATIM_CAP - 1, 1.0)[ninth] > 0.3  # one was the player's
    shorter = ids(bundle, RUN[1:VERBATIM_CAP])  # a run of 7: the 8th may come
    assert memory.mix(probs, shorter, VERBATIM_CAP, 1.0)[ninth] > 0.3


def test_the_cap_holds_beyond_the_latest_moments(bundle):
    memory = memory_of(bundle, RUN[:VERBATIM_CAP + 1])
    for _ in range(RECENT + 5):  # the 8th value, many times since, each time the line broke
        memory.learn(RUN[VERBATIM_CAP - 1])
        memory.cut()
    context = ids(bundle, RUN[:VERBATIM_CAP])
    assert memory.predict(context) is None  # the latest moments of it continued nothing
    mixed = memory.mix(flat_probs(bundle), context, VERBATIM_CAP, 1.0)
    assert mixed[bundle.vocab.index(RUN[VERBATIM_CAP])] == 0.0 and np.isclose(mixed.sum(), 1.0)


def longest_common_run(a, b):
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def copies(bundle, memory, imitation):
    """The longest run of RUN that a greedy soloist plays after hearing its first 4 values."""
    chord = parse_chord("C")
    soloist = Soloist(Runtime(bundle), np.random.default_rng(0), memory=memory)
    soloist.sampling.temperature = 0.0  # the likeliest value: copying if anything does
    soloist.imitation = imitation
    for k, v in enumerate(RUN[:4]):  # the player starts the figure
        soloist.hear(v, k * 0.25, k == 0, chord)
    played = [soloist.next_value((4 + k) * 0.25 % 4, False, chord) for k in range(12)]
    return longest_common_run(played, RUN[4:])


def test_a_soloist_imitating_strongly_copies_no_more_than_eight_values(bundle, monkeypatch):
    memory = memory_of(bundle)
    for _ in range(3):
        for v in RUN:
            memory.learn(v)
        memory.cut()
    assert copies(bundle, memory, 1.0) == VERBATIM_CAP > copies(bundle, memory, 0.0)
    monkeypatch.setattr("jazzd.model.memory.VERBATIM_CAP", 100)
    assert copies(bundle, memory, 1.0) > VERBATIM_CAP  # what the cap held back


# --- what the engine teaches it; imitation 0 ---------------------------------------------------


def test_the_engine_teaches_it_the_players_values_and_breaks_the_line_where_it_answers(bundle):
    engine = Engine(Runtime(bundle), np.random.default_rng(1), Settings())
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, [60, 62, 64, 65, 67, 65, 64, 62])
    clock.run_until(12.0)
    memory = engine.memory
    assert engine.answers, "no answer to break the line"
    notes = [t for t in memory.texts if t is not None and t[0] != "R"]
    assert len(notes) == 8  # the call's notes; none of the answer's
    assert [i for i in memory.intervals if i is not None] == [2, 2, 1, 2, -2, -1, -2]
    play_call(clock, [67, 65, 64], start=12.0)
    clock.run_until(20.0)
    assert None in memory.texts  # the answer between the calls broke the player's line
    assert len([t for t in memory.texts if t is not None and t[0] != "R"]) == 11


@pytest.mark.parametrize("imitation", [0.0, 1.0])
def test_the_line_under_the_player_neither_breaks_nor_joins_the_players_line(bundle, imitation):
    """In a duet, jazzd's line under the player's (overlap) is jazzd's: the memory learns
    the player's phrase whole, no break where jazzd's line played and none of its rests
    (before, each of its values cut the player's line and its rests were learned)."""
    engine = Engine(Runtime(bundle), np.random.default_rng(2),
                    Settings(mode="duet", overlap=1.0, imitation=imitation))
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    pitches = [60 + (5 * k) % 12 for k in range(48)]  # 12 beats of eighths, held 80%: no rest between
    play_call(clock, pitches, start=1.0, step=0.25, gate=0.2)
    clock.run_until(8.0)  # (the phrase is still going on: jazzd has not taken the lead)
    assert engine.stats.aside_notes > 0, "jazzd's line played nothing under the player's"
    memory = engine.memory
    assert [t for t in memory.texts if t is None or t[0] == "R"] == []
    heard = [v for _, v, _ in engine.heard]
    assert memory.texts == heard


def render(bundle, memory, imitation, seed=3):
    engine = Engine(Runtime(bundle), np.random.default_rng(seed), Settings(mode="call", imitation=imitation),
                    memory=memory)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, [60, 62, 64, 65, 67, 65, 64, 62])
    sent = clock.run_until(12.0)
    return [(round(e.t, 6), e.kind, e.number, e.value) for e in sent], list(engine.trace)


def test_at_imitation_0_a_full_memory_changes_nothing(bundle):
    full = memory_of(bundle, RUN * 20)
    assert render(bundle, full, 0.0) == render(bundle, None, 0.0)
    assert render(bundle, memory_of(bundle, RUN * 20), 1.0) != render(bundle, None, 0.0)


def test_same_inputs_same_output(bundle):
    assert render(bundle, memory_of(bundle, RUN * 3), 1.0) == render(bundle, memory_of(bundle, RUN * 3), 1.0)
    memory, probs = memory_of(bundle, RUN * 3), flat_probs(bundle)
    first = memory.mix(probs, ids(bundle, RUN[2:6]), 0, 0.7).copy()
    memory.mix(probs, ids(bundle, RUN[9:12]), 8, 1.0)  # scratch state must not leak
    assert np.array_equal(memory.mix(probs, ids(bundle, RUN[2:6]), 0, 0.7), first)


def test_the_players_interval_comes_back_from_jazzds_own_note(bundle):
    memory = memory_of(bundle)
    line = [("C,0.250", 60), ("S,0.250,<m2,P-4>", 62), ("C,0.250,<m2,P-4>", 64), ("C,0.500,<M3,d-3>", 67)]
    for value, midi in line:
        memory.learn(value, midi)
    memory.mix(flat_probs(bundle), ids(bundle, [v for v, _ in line[:3]]), 0, 1.0)
    hint = memory.interval_for(bundle.vocab.index(line[3][0]))
    assert hint == Hint(3, 3)
    # Another value with the same interval window: the figure view (rhythm and interval)
    # knows the player's interval there too.
    assert memory.interval_for(bundle.vocab.index("A,0.500,<M3,d-3>")) == Hint(3, 3)
    assert memory.interval_for(bundle.vocab.index("R,1.000")) is None
    memory.mix(flat_probs(bundle), ids(bundle, [line[2][0]]), 0, 0.5)  # one value matched: too short
    assert memory.interval_for(bundle.vocab.index(line[3][0])) is None
    memory.mix(flat_probs(bundle), ids(bundle, [line[2][0]]), 0, 0.8)  # ... unless imitating eagerly
    assert memory.interval_for(bundle.vocab.index(line[3][0])) == Hint(3, 1)
    fmaj = parse_chord("F")
    assert hinted_pitch(hint, line[3][0], fmaj, 69, (55, 84)) == 72  # A -> C: the same interval
    # The model asked for a scale tone, the player's interval lands on a chord tone: kept.
    assert hinted_pitch(hint, "S,0.500,<M3,d-3>", fmaj, 69, (55, 84)) == 72
    # A step up from A is B, an approach tone over F: for a scale tone the figure is bent
    # to the nearest one (Bb) where it only begins, and runs through B once under way.
    assert hinted_pitch(Hint(2, 1), "S,0.500,<P4,m-2>", fmaj, 69, (55, 84)) == 70
    assert hinted_pitch(Hint(2, 2), "S,0.500,<P4,m-2>", fmaj, 69, (55, 84)) == 71
    # An outside tone (Bb over a C triad) is never kept: bent to the nearest chord tone.
    assert hinted_pitch(Hint(3, 3), "C,0.500,<d5,P1>", parse_chord("C"), 67, (55, 84)) == 72
    assert hinted_pitch(hint, line[3][0], fmaj, 69, (55, 68)) is None  # no chord tone in window and range
    assert hinted_pitch(hint, line[3][0], fmaj, None, (55, 84)) is None
    assert hinted_pitch(None, line[3][0], fmaj, 69, (55, 84)) is None


def test_a_pitch_taken_from_the_player_is_heard_as_played_and_kept_under_the_cap(bundle, monkeypatch):
    """Where the player's interval gives another pitch than the value drawn says (an
    approach tone for a chord tone, a figure under way), the model and the memory's
    context hear the value of the pitch played, so the verbatim cap judges what sounds;
    a pitch whose value the cap masked is not taken."""
    chord = parse_chord("C")
    drawn = bundle.vocab.value(bundle.vocab.index("C,0.500,<d4,M-2>"))  # a chord tone, -2..4 semitones up

    def play_once(masked: bool):
        memory = memory_of(bundle, RUN)
        soloist = Soloist(Runtime(bundle), np.random.default_rng(0), memory=memory)
        soloist.imitation = 1.0
        soloist.hear("C,0.500", 0.0, True, chord, 60)
        monkeypatch.setattr(soloist.runtime, "sample", lambda *a, **k: bundle.vocab.index(drawn))
        monkeypatch.setattr(memory, "interval_for", lambda token: Hint(1, FIGURE))  # C#: an approach tone
        played = bundle.vocab.value(bundle.vocab.index(encode_value(61, 0.5, chord, 60)))
        if masked:
            mix = memory.mix

            def masking(*args):
                out = mix(*args)
                memory.masked = np.array([bundle.vocab.index(played)])
                return out
            monkeypatch.setattr(memory, "mix", masking)
        value, midi, _ = soloist.play(0.5, False, chord)
        return soloist, value, midi, played

    soloist, value, midi, played = play_once(False)
    assert midi == 61 and parse_value(played).type == "A" and value == played
    assert soloist.prev_token == soloist._context[-1] == bundle.vocab.index(played)
    soloist, value, midi, played = play_once(True)
    assert midi != 61 and value == drawn and soloist.prev_token == bundle.vocab.index(drawn)


def test_a_memory_moves_to_another_models_vocabulary(bundle):
    from jazzd.music.vocab import Vocabulary

    memory = memory_of(bundle, RUN)
    smaller = Vocabulary([v for v in bundle.vocab.values if "," not in v[2:]])  # no windows
    memory.bind(smaller)
    assert memory.texts == RUN  # it remembers what was played, not the old model's ids
    probs = np.full(len(smaller), 1 / len(smaller), dtype=np.float32)
    context = [smaller.index(v) for v in RUN[:4]]  # the nearest values of the smaller one
    mixed = memory.mix(probs, context, 0, 1.0)
    assert np.isclose(mixed.sum(), 1.0) and mixed[smaller.index(RUN[4])] > 5 * probs[0]
    memory.bind(bundle.vocab)
    assert np.array_equal(memory.mix(flat_probs(bundle), ids(bundle, RUN[:4]), 0, 1.0),
                          memory_of(bundle, RUN).mix(flat_probs(bundle), ids(bundle, RUN[:4]), 0, 1.0))


def test_a_full_memory_drops_its_oldest_quarter_and_stays_consistent(bundle):
    rng = np.random.default_rng(4)
    values = [bundle.vocab.values[int(i)] for i in rng.integers(len(bundle.vocab), size=300)]
    memory = memory_of(bundle, values, capacity=64)
    assert 48 <= len(memory.texts) <= 64 and memory.texts == values[-len(memory.texts):]
    rebuilt = memory_of(bundle, memory.texts, capacity=64)
    probs = flat_probs(bundle)
    for k in range(5):
        context = ids(bundle, values[-10 - k:-2 - k])
        assert np.array_equal(memory.mix(probs, context, 0, 1.0), rebuilt.mix(probs, context, 0, 1.0))


def test_dropping_the_oldest_quarter_leaves_the_index_a_re_index_would_make(bundle):
    """When full, the memory moves its index back instead of building it again from the
    texts (issue 16: half the stall): the arrays, the occurrences, the runs, and so every
    mix and hint, are those of a re-index from scratch, with intervals and breaks too."""
    import copy

    rng = np.random.default_rng(9)
    memory = SessionMemory(64)
    memory.bind(bundle.vocab)
    drops = 0
    for k in range(400):
        if rng.random() < 0.05:
            memory.cut()
        drops += len(memory.texts) >= 64
        memory.learn(bundle.vocab.values[int(rng.integers(len(bundle.vocab)))], int(rng.integers(48, 84)))
        if k % 37 == 36 or k == 399:
            fresh = copy.deepcopy(memory)
            fresh._reindex()
            assert np.array_equal(memory._seq, fresh._seq) and np.array_equal(memory._has_ivl, fresh._has_ivl)
            assert np.array_equal(memory._ivl[memory._has_ivl], fresh._ivl[fresh._has_ivl])
            assert memory._occ.count == fresh._occ.count and np.array_equal(memory._runs, fresh._runs)
            assert all(np.array_equal(memory._occ.latest(g, n), fresh._occ.latest(g, n))
                       for g, n in enumerate(memory._occ.count))
            probs = flat_probs(bundle)
            for own in (0, VERBATIM_CAP):
                context = [bundle.vocab.index(v) for v in memory.texts[-9:-1] if v is not None]
                assert np.array_equal(memory.mix(probs, context, own, 1.0), fresh.mix(probs, context, own, 1.0))
                token = int(np.argmax(memory.mix(probs, context, own, 1.0)))
                fresh.mix(probs, context, own, 1.0)
                assert memory.interval_for(token) == fresh.interval_for(token)
    assert drops >= 20


def test_the_verbatim_cap_forgets_runs_that_left_a_full_memory(bundle):
    rng = np.random.default_rng(5)
    filler = [bundle.vocab.values[int(i)] for i in rng.integers(len(bundle.vocab), size=60)]
    memory = memory_of(bundle, RUN, capacity=64)
    probs, context = flat_probs(bundle), ids(bundle, RUN[:VERBATIM_CAP])
    ninth = bundle.vocab.index(RUN[VERBATIM_CAP])
    assert memory.mix(probs, context, VERBATIM_CAP, 1.0)[ninth] == 0.0
    for v in filler:  # the first quarter, RUN, goes when the memory is full
        memory.learn(v)
    assert memory.texts == filler[-len(memory.texts):]
    assert memory.mix(probs, context, VERBATIM_CAP, 1.0)[ninth] > 0.0
    tail = ids(bundle, filler[-12:-4])  # a run still held is still capped
    assert memory.mix(probs, tail, VERBATIM_CAP, 1.0)[bundle.vocab.index(filler[-4])] == 0.0


def test_eval_scores_the_model_with_a_memory_learning_each_piece(bundle):
    piece = np.array(ids(bundle, RUN * 6), dtype=np.int32)
    pieces = [(piece, np.zeros(piece.size, np.int32), np.zeros(piece.size, np.int32))]
    plain = evaluate_ids(bundle, pieces)
    both = evaluate_ids(bundle, pieces, imitation=0.5)
    assert "memory" not in plain and both["nll"] == plain["nll"]
    assert both["memory"]["nll"] < plain["nll"] - 1.0  # a repeated figure: the memory knows it


# --- saving and loading ---------------------------------------------------------------------------


def test_saved_and_loaded_it_predicts_the_same(bundle, tmp_path):
    memory = memory_of(bundle)
    for k, v in enumerate(RUN * 2):
        memory.learn(v, None if v[0] == "R" else 60 + k % 7)
        if k == 10:
            memory.cut()
    memory.save(tmp_path / "m.json")
    warnings = []
    loaded = load_memory(tmp_path / "m.json", warnings.append)
    assert warnings == [] and loaded.texts == memory.texts and loaded.intervals == memory.intervals
    loaded.bind(bundle.vocab)
    probs = flat_probs(bundle)
    context = ids(bundle, RUN[3:9])
    assert np.array_equal(loaded.mix(probs, context, 0, 1.0), memory.mix(probs, context, 0, 1.0))
    assert json.loads((tmp_path / "m.json").read_text())["version"] == 1


BAD_FILES = {
    "garbage": b"\x00\x01not json at all",
    "not utf-8": b"\xff\xfe\x00",
    "other json": b'{"hello": 1}',
    "other version": b'{"format": "jazzd-session-memory", "version": 99, "values": [], "intervals": []}',
    "lengths": b'{"format": "jazzd-session-memory", "version": 1, "values": ["R,1.000"], "intervals": []}',
    "bad value": b'{"format": "jazzd-session-memory", "version": 1, "values": ["Q,1"], "intervals": [null]}',
    "bad interval": b'{"format": "jazzd-session-memory", "version": 1, "values": ["C,1.000"], "intervals": [1.5]}',
    "pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00]\x94.",
    "deep": b"[" * 100000,
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_file_that_is_not_a_memory_is_one_warning_and_an_empty_memory(tmp_path, kind):
    path = tmp_path / "memory.json"
    path.write_bytes(BAD_FILES[kind])
    warnings = []
    memory = load_memory(path, warnings.append)
    assert len(memory) == 0 and memory.texts == []
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"{path}: not a jazzd session memory") and "move it away" in warnings[0]


def test_a_huge_file_or_a_folder_is_not_read(tmp_path):
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    for path in (huge, folder):
        warnings = []
        assert len(load_memory(path, warnings.append)) == 0 and len(warnings) == 1
    warnings = []
    assert len(load_memory(tmp_path / "absent.json", warnings.append)) == 0 and warnings == []  # first run


def test_where_the_memory_is_kept():
    assert memory_path("", {"STATE_DIRECTORY": "/var/lib/jazzd"}).as_posix() == "/var/lib/jazzd/memory.json"
    assert memory_path("", {"STATE_DIRECTORY": "/a:/b"}).as_posix() == "/a/memory.json"
    assert memory_path("", {}) is None
    assert memory_path("off", {"STATE_DIRECTORY": "/var/lib/jazzd"}) is None
    assert memory_path("/x/m.json", {}).as_posix() == "/x/m.json"


# --- the daemon: CCs, SIGUSR1, start and stop --------------------------------------------------------


def start_daemon(model_path, **overrides):
    cfg = load_config(overrides={"model.path": str(model_path), **overrides}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    daemon.monotonic = lambda: 0.0
    return daemon


def test_ccs_set_the_imitation_and_clear_the_memory(model_path, monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    daemon = start_daemon(model_path)
    for v in RUN:
        daemon.memory.learn(v)
    assert daemon.engine.memory is daemon.memory
    daemon.handle(bytes([0xB0, 85, 127]), 0.0)
    assert daemon.engine.settings.imitation == 1.0 and f"imitation 1.0 (memory {len(RUN)} values)" in daemon.status_text()
    daemon.handle(bytes([0xB0, 86, 10]), 0.0)  # below 64: nothing
    assert len(daemon.memory) == len(RUN)
    daemon.handle(bytes([0xB0, 86, 127]), 0.0)
    assert len(daemon.memory) == 0 and daemon.memory.texts == []
    for v in RUN:
        daemon.memory.learn(v)
    _request_forget(daemon)(signal.SIGUSR1, None)
    daemon.requests(0.0)
    assert len(daemon.memory) == 0
    daemon.shutdown(0.0)


def test_the_memory_is_loaded_at_start_kept_across_a_reload_and_saved_on_stop(model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    saved = memory_of(load_bundle(model_path), RUN)
    saved.save(tmp_path / "memory.json")
    daemon = start_daemon(model_path)
    assert daemon.memory.texts == RUN and daemon.engine.memory is daemon.memory
    daemon.memory.learn("C,1.000")
    assert daemon.reload(0.0)
    assert daemon.engine.memory is daemon.memory and len(daemon.memory) == len(RUN) + 1
    daemon.shutdown(0.0)
    data = json.loads((tmp_path / "memory.json").read_text())
    assert data["values"] == [*RUN, None, "C,1.000"]  # a new run, a new line
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "other"))
    off = start_daemon(model_path, **{"model.memory": "off"})
    assert len(off.memory) == 0 and off.memory_file is None
    off.shutdown(0.0)


def test_a_corrupt_memory_file_is_a_warning_and_the_daemon_plays_on(model_path, tmp_path, caplog):
    path = tmp_path / "memory.json"
    path.write_bytes(b"\x80\x04 not a memory")
    with caplog.at_level(logging.WARNING, logger="jazzd"):
        daemon = start_daemon(model_path, **{"model.memory": str(path)})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}: not a jazzd session memory")
    assert len(daemon.memory) == 0
    daemon.memory.learn("C,0.500")
    daemon.shutdown(0.0)
    assert json.loads(path.read_text())["values"] == ["C,0.500"]


def test_a_memory_that_cannot_be_saved_is_a_warning(model_path, tmp_path, caplog):
    daemon = start_daemon(model_path, **{"model.memory": str(tmp_path / "no" / "such" / "m.json")})
    with caplog.at_level(logging.WARNING, logger="jazzd"):
        daemon.shutdown(0.0)
    assert "cannot save the session memory" in caplog.text


def test_bad_values_are_refused_at_learning(bundle):
    memory = memory_of(bundle)
    with pytest.raises(Exception, match="bad value"):
        memory.learn("Q,1")
    assert all(parse_value(v) for v in RUN)


def test_a_bound_memory_learns_without_allocating_its_index(bundle):
    """Issue 16: what the index needs is made at bind, written at once (the occurrences'
    arena); learning then adds only the two lists' slots (16 bytes a value, plus their
    over-allocation: 19 bytes a value here), not arrays that grow by doubling (77 here,
    each growth a new allocation: the heap fragmented and the private memory crept
    while the memory filled)."""
    import tracemalloc

    memory = SessionMemory(capacity=8192)
    memory.bind(bundle.vocab)
    arena = memory._occ.arena
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(6000):
            memory.learn(RUN[(k * 7) % len(RUN)] if k % 3 else RUN[k % len(RUN)], 60 + k % 12)
            if k % 40 == 39:
                memory.cut()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert memory._occ.arena is arena and len(memory) == 6000  # (no quarter dropped: the same index)
    assert grown / 6000 < 30, f"{grown / 6000:.1f} bytes a value learned"


def test_a_vocabulary_with_more_classes_than_int16_holds_is_matched_in_every_view():
    """The memory's array holds class numbers of all five views together (about 4x the
    values for a vocabulary of many lengths): past 32,767 they must not wrap, or a
    coarse view's classes turn negative, read as breaks, and that view never matches."""
    durs = [f"{k / 1000:.3f}" for k in range(1, 4501)]
    vocab = Vocabulary([f"R,{d}" for d in durs] + [f"C,{d},<m2,P-4>" for d in durs])
    memory = SessionMemory()
    memory.bind(vocab)
    assert memory._cls.total > np.iinfo(np.int16).max
    # a rest's classes come last in every view: R,4.4xx the highest numbers of all
    figure = ["C,4.497,<m2,P-4>", "R,4.333", "C,4.499,<m2,P-4>", "R,4.498"]
    for _ in range(3):
        for value in figure:
            memory.learn(value, 60 if value.startswith("C") else None)
        memory.cut()
    context = [vocab.index(v) for v in figure[:3]]
    longest, q = memory.predict(context)
    assert longest.tolist() == [3, 3, 3, 3, 3]
    assert int(np.argmax(q[:len(vocab.values)])) == vocab.index(figure[3])
