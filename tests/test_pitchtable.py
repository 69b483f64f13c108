"""The pitch tables: counted from solos, stored in the bundle, drawn from by the decoder."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from jazzd.cli import main
from jazzd.data.corpus import Corpus, build
from jazzd.data.ingest.common import Bar, Piece
from jazzd.data.ingest.run import piece_record
from jazzd.errors import BundleError
from jazzd.model import pitchtable
from jazzd.model.bundle import arrays_sha256, load_bundle, save_bundle
from jazzd.model.pitchtable import (
    AGREE_CACHE,
    BASE_SHAPES,
    MAX_OFFSET,
    MAX_OPEN,
    MAX_STEP,
    REGISTER_NOTES,
    TABLE_SHAPES,
    Line,
    PitchChooser,
)
from jazzd.model.runtime import Runtime
from jazzd.music.chords import NO_CHORD, parse_chord
from jazzd.music.features import CHORD_CLASSES
from jazzd.music.grammar import (
    NOTE_TYPES,
    Element,
    decode_value,
    encode_value,
    parse_value,
    type_reach,
    types_by_pitch_class,
)
from jazzd.music.progression import parse_progression
from jazzd.music.vocab import Vocabulary
from jazzd.play.engine import Engine, Settings
from jazzd.play.offline import render
from jazzd.play.soloist import Soloist
from jazzd.training.pitchtables import estimate

from .tinymodel import make_bundle

C = parse_chord("C")  # a triad: its minor seventh is an X
INTERVALS = {-3: 0.3, 1: 0.5, 2: 0.2}  # the known distribution of the synthetic solos


def synthetic_piece(name: str, seed: int, bars: int = 30) -> tuple[Piece, list[list[int]]]:
    """Bars of eight eighth notes over C (the fifth a rest), the line stepping by
    `INTERVALS`; also the pitches of each bar."""
    rng = np.random.default_rng(seed)
    steps, probs = list(INTERVALS), list(INTERVALS.values())
    pitch, out, played = 64, [], []
    for b in range(bars):
        start, elements, notes = 4.0 * b, [], []
        for k in range(8):
            if k == 4:
                elements.append(Element(start + 2.0, 0.5, None))
                continue
            pitch += int(rng.choice(steps, p=probs))
            if not 48 <= pitch <= 84:
                pitch = 64
            elements.append(Element(start + 0.5 * k, 0.5, pitch))
            notes.append(pitch)
        out.append(Bar(start, elements, [(start, C)]))
        played.append(notes)
    return Piece(name, out), played


@pytest.fixture(scope="module")
def pieces():
    return [synthetic_piece(f"solo{i}", seed=i) for i in range(4)]


@pytest.fixture(scope="module")
def corpus(pieces):
    return build([piece_record(p) for p, _ in pieces])


def test_type_reach_says_which_types_a_chord_has():
    bits = {t: 1 << i for i, t in enumerate(NOTE_TYPES)}
    for symbol in ("Cmaj7", "Dm7", "C7"):  # seventh chords: C, S and A cover all twelve
        assert type_reach(parse_chord(symbol)) == bits["C"] | bits["S"] | bits["A"], symbol
    assert type_reach(C) & bits["X"]  # B-flat over C
    assert type_reach(NO_CHORD) == bits["X"]


def sized(solos: int) -> dict[str, tuple[int, ...]]:
    """`TABLE_SHAPES` for tables counted from `solos` solos."""
    return {n: (solos, *s[1:]) if s[0] == -1 else s for n, s in TABLE_SHAPES.items()}


def test_counted_tables_give_back_the_known_intervals(corpus, pieces):
    tables, info = estimate(corpus, range(len(corpus)), corpus.vocab)
    assert {n: a.shape for n, a in tables.items()} == sized(len(pieces))
    window, open_, reach = tables["pitch_window"], tables["pitch_open"], tables["pitch_reach"]
    # Every value read through the corpus's own vocabulary is centred on its interval.
    assert window.sum() == window[:, :, MAX_OFFSET].sum() > 0
    inside = Counter(b - a for _, bars in pieces for notes in bars for a, b in pairwise(notes))
    across = Counter(nxt[0] - prev[-1] for _, bars in pieces for prev, nxt in pairwise(bars))
    for step in range(-MAX_STEP, MAX_STEP + 1):
        assert window[:, step + MAX_STEP, MAX_OFFSET].sum() == inside[step]
    for step in range(-MAX_OPEN, MAX_OPEN + 1):
        assert open_[:, step + MAX_OPEN].sum() == across[step]
    # ... and the distribution they were drawn from comes back (4 solos of 30 bars x 6
    # steps: 720 samples, less the few where the line was reset; 4 standard errors of a
    # share are under 0.08).
    n = float(window.sum())
    shares = window[:, :, MAX_OFFSET].sum(axis=0) / n
    assert n > 650
    for step, p in INTERVALS.items():
        assert shares[step + MAX_STEP] == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n))
    notes = sum(len(n) for _, bars in pieces for n in bars)
    assert info == {"pieces": 4, "notes": notes}
    major = CHORD_CLASSES.index("major")
    assert list(reach[:, major]) == [notes] * 5 and reach.sum() == 5 * notes


def test_offsets_count_where_the_real_interval_lies_in_the_models_window(corpus, pieces):
    """A model vocabulary with only unison windows: every windowed note maps to one, and
    its offset is the whole real interval."""
    vocab = Vocabulary(["R,0.500"] + [f"{t},0.500" for t in "CSAX"]
                       + [f"{t},0.500,<m3,m-3>" for t in "CSAX"])
    tables, _ = estimate(corpus, range(len(corpus)), vocab)
    window = tables["pitch_window"]
    assert window.sum() == window[:, MAX_STEP].sum()  # the unison row only
    inside = Counter(b - a for _, bars in pieces for notes in bars for a, b in pairwise(notes))
    near = {step: n for step, n in inside.items() if abs(step) <= MAX_OFFSET}  # the rest fall outside
    assert {o - MAX_OFFSET: int(n) for o, n in enumerate(window[:, MAX_STEP].sum(axis=0)) if n} == near


def test_a_corpus_keeps_its_pitches_and_an_old_one_loads_without(corpus, tmp_path):
    back = Corpus.load(corpus.save(tmp_path / "c.npz"))
    np.testing.assert_array_equal(back.pitches, corpus.pitches)
    np.testing.assert_array_equal(back.reach, corpus.reach)
    assert (back.pitches < 0).sum() == sum(1 for v in back.piece_values(0) if v[0] == "R") * len(back)
    old = build([r[:5] for r in (piece_record(synthetic_piece("x", 0, 2)[0]),)])
    assert old.pitches is None and Corpus.load(old.save(tmp_path / "old.npz")).pitches is None
    with pytest.raises(Exception, match="no pitches"):
        estimate(old, [0], old.vocab)


# --- the bundle -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("tiny") / "tiny.npz"))


def with_tables(bundle, path, tables, training=None):
    return save_bundle(path, bundle.arrays, bundle.cfg, bundle.vocab, training or bundle.training,
                       tables, {"pieces": 4})


def test_tables_round_trip_beside_untouched_weights(tiny, corpus, tmp_path):
    tables, _ = estimate(corpus, range(len(corpus)), tiny.vocab)
    back = load_bundle(with_tables(tiny, tmp_path / "t.npz", tables))
    assert sorted(back.tables) == sorted(TABLE_SHAPES) and sorted(back.arrays) == sorted(tiny.arrays)
    for name, a in tables.items():
        np.testing.assert_array_equal(back.tables[name], a)
    assert arrays_sha256(back.arrays) == tiny.manifest["sha256"]  # the weights, bit for bit
    assert back.manifest["pitch_tables"] == {"pieces": 4}
    assert set(back.manifest["arrays"]) == set(tiny.arrays) | set(TABLE_SHAPES)
    assert back.pitch_chooser() is not None and tiny.pitch_chooser() is None and tiny.tables == {}


@pytest.mark.parametrize("defect, expected", [
    (lambda t: t.pop("pitch_open"), "pitch tables incomplete (missing pitch_open)"),
    (lambda t: t.pop("pitch_turn"), "pitch tables incomplete (missing pitch_turn)"),
    (lambda t: t.__setitem__("pitch_reach", np.zeros((4, 8), np.float32)), "'pitch_reach' is float32 [4, 8]"),
    (lambda t: t["pitch_window"].__setitem__((0, 0, 0), -1), "negative, NaN or Inf"),
    (lambda t: t.__setitem__("lstm9_bias", np.zeros(3, np.float32)), "unexpected lstm9_bias"),
])
def test_bad_tables_are_one_clear_line(tiny, corpus, tmp_path, defect, expected):
    from .test_bundle import read_raw, write_raw

    tables, _ = estimate(corpus, range(len(corpus)), tiny.vocab)
    arrays, manifest = read_raw(with_tables(tiny, tmp_path / "t.npz", tables))
    defect(arrays)
    path = write_raw(tmp_path / "bad.npz", arrays, manifest)
    with pytest.raises(BundleError) as info:
        load_bundle(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


# --- decoding -----------------------------------------------------------------------------

# `jazzd.play.offline.render` of the tiny bundle (no tables), recorded from the code before
# the tables existed: a bundle without them must decode exactly as it did.
GOLDEN_SOLO = [
    (0.0, 63), (0.5, 67), (0.833, 65), (1.0, 64), (1.333, 62), (1.583, 66), (1.833, 67), (2.0, 66),
    (3.0, 64), (3.25, 66), (3.5, 69), (4.0, 63), (5.0, 65), (5.25, 67), (5.75, 65), (6.25, 70),
    (6.5, 69), (6.833, 71), (7.0, 70), (7.5, 67), (7.833, 62), (8.0, 57), (9.0, 56), (9.5, 59),
    (9.75, 60), (10.25, 64), (11.25, 66), (12.25, 67), (13.25, 63), (14.25, 61), (15.25, 65),
    (15.583, 66),
]


def solo(bundle, seed=5):
    engine = Engine(Runtime(bundle), np.random.default_rng(seed), Settings(mode="solo", feel="straight", articulation="legato"),
                    progression=parse_progression("Dm7 G7 | Cmaj7 % | F7 | E7 A7"))
    return [(round(n.onset, 3), n.midi) for n in render(engine, 4, 120)]


def test_a_bundle_without_tables_decodes_as_before_and_tables_change_it(tiny, corpus, tmp_path):
    assert solo(tiny) == GOLDEN_SOLO
    tables, _ = estimate(corpus, range(len(corpus)), tiny.vocab)
    assert solo(load_bundle(with_tables(tiny, tmp_path / "t.npz", tables))) != GOLDEN_SOLO


def table_chooser(window_row=None, reach=None, vocabulary=("R,0.500", "X,0.500")):
    tables = {n: np.zeros(s, np.float32) for n, s in BASE_SHAPES.items()}
    if window_row is not None:
        t, step, counts = window_row
        tables["pitch_window"][NOTE_TYPES.index(t), step + MAX_STEP, MAX_OFFSET - 3:MAX_OFFSET + 4] = counts
    if reach is not None:
        tables["pitch_reach"][:] = reach
    return PitchChooser(tables, vocabulary)


def test_pitches_are_drawn_as_the_table_says():
    counts = np.array([1, 2, 3, 10, 3, 2, 1], np.float32) * 1000
    chooser = table_chooser(("X", 5, counts))
    value = parse_value(encode_value(65, 0.5, NO_CHORD, 60))  # X, a fourth up: window 62..68
    assert value.step_semis == 5
    rng = np.random.default_rng(0)
    n = 6000
    got = Counter(decode_value(value, NO_CHORD, 60, (40, 90), rng, chooser)[0] for _ in range(n))
    assert set(got) <= set(range(62, 69))
    # P(offset | X, a fourth) times P(interval | X), over the window's seven pitches
    want = (chooser.probabilities("X", 5)[MAX_OFFSET - 3:MAX_OFFSET + 4]
            * chooser.interval_probabilities("X")[MAX_STEP + MAX_OFFSET + np.arange(2, 9)])
    want = want / want.sum()
    sigma = np.sqrt(want * (1 - want) / n)
    share = np.array([got[p] for p in range(62, 69)]) / n
    assert np.all(np.abs(share - want) < 4.5 * sigma), (share, want)
    assert abs(1 / 7 - want[3]) > 20 * sigma[3]  # a uniform draw would fail this test


def test_a_repeated_note_only_where_the_value_says_so():
    chooser = table_chooser(("C", 2, np.array([0, 0, 5, 0, 0, 0, 0], np.float32) * 1000))
    value = parse_value("C,0.500,<P4,m-2>")  # a step up: window -1..5 around it
    assert value.step_semis == 2
    rng = np.random.default_rng(1)
    # Over C, from E (64): the window's chord tones are 67 and 64 itself; E again is never
    # chosen, even though the table puts nearly all its weight on it (offset -2).
    assert {decode_value(value, C, 64, (40, 90), rng, chooser)[0] for _ in range(200)} == {67}


def test_the_model_is_told_which_types_the_chord_has():
    families = np.zeros(TABLE_SHAPES["pitch_reach"], np.float32)
    major = CHORD_CLASSES.index("major")
    families[:, major] = [100, 100, 100, 25, 100]  # X under a quarter of major-family notes
    chooser = table_chooser(reach=families, vocabulary=("R,0.500", "C,0.500", "X,0.500"))
    probs = np.array([0.5, 0.3, 0.2], np.float32)
    factors = dict(zip(("R", "C", "X"), chooser.reweight(probs, C) / probs, strict=True))
    assert factors["R"] == 1 and factors["C"] == pytest.approx(102 / 101)
    assert factors["X"] == pytest.approx(102 / 26)  # 1 / (Laplace share of notes with X)
    cmaj7 = parse_chord("Cmaj7")
    assert list(chooser.reweight(probs, cmaj7)) == pytest.approx([0.5, 0.3 * 102 / 101, 0.0])
    assert list(probs) == pytest.approx([0.5, 0.3, 0.2])  # the model's own array untouched


def test_pitch_tables_command_adds_tables_and_keeps_the_weights(tiny, pieces, tmp_path, capsys):
    other, _ = synthetic_piece("held-out", seed=99)
    corpus = build([piece_record(p) for p, _ in pieces] + [piece_record(other)])
    corpus_path = corpus.save(tmp_path / "c.npz")
    training = {"train_pieces": [p.name for p, _ in pieces], "validation_pieces": ["held-out"]}
    bundle_path = save_bundle(tmp_path / "m.npz", tiny.arrays, tiny.cfg, tiny.vocab, training)
    out = tmp_path / "m2.npz"
    assert main(["pitch-tables", str(corpus_path), str(bundle_path), "-o", str(out)]) == 0
    assert "weights unchanged" in capsys.readouterr().out
    back, before = load_bundle(out), load_bundle(bundle_path)
    assert all(back.arrays[n].tobytes() == before.arrays[n].tobytes() for n in before.arrays)
    assert back.training == training and back.vocab == before.vocab and back.cfg == before.cfg
    want, _ = estimate(corpus, range(len(pieces)), tiny.vocab)  # the training solos only
    for name, a in want.items():
        np.testing.assert_array_equal(back.tables[name], a)
    assert back.manifest["pitch_tables"]["pieces"] == len(pieces)


def test_pitch_tables_command_refuses_what_it_cannot_count(tiny, pieces, tmp_path, capsys):
    bundle_path = save_bundle(tmp_path / "m.npz", tiny.arrays, tiny.cfg, tiny.vocab,
                              {"train_pieces": ["solo0", "elsewhere"]})
    corpus_path = build([piece_record(p) for p, _ in pieces]).save(tmp_path / "c.npz")
    assert main(["pitch-tables", str(corpus_path), str(bundle_path)]) == 2
    err = capsys.readouterr().err
    assert "1 of the bundle's 2 training solos are not in this corpus" in err and len(err.splitlines()) == 1
    old = build([piece_record(p)[:5] for p, _ in pieces]).save(tmp_path / "old.npz")
    listed = save_bundle(tmp_path / "m2.npz", tiny.arrays, tiny.cfg, tiny.vocab, {"train_pieces": ["solo0"]})
    assert main(["pitch-tables", str(old), str(listed)]) == 2
    err = capsys.readouterr().err
    assert "the corpus has no pitches" in err and "ingest the sources again" in err
    assert load_bundle(bundle_path).tables == {} and load_bundle(listed).tables == {}  # nothing written


# --- the line's context: the previous pitch, the register, the last interval ---------------

def test_the_line_keeps_its_register_and_its_last_interval():
    line = Line()
    assert line.register_class(90) == 3 and line.turn_class() is None  # nothing known yet
    line = line.then(None, 60, False)
    assert (line.centre, line.step, line.opened) == (60, None, True)
    line = line.then(60, 67, True)
    assert (line.centre, line.step, line.opened, line.turn_class()) == (63.5, 7, False, 4)
    assert [line.register_class(p) for p in (50, 55, 60, 63, 67, 70, 80)] == [0, 1, 2, 3, 4, 5, 6]
    assert [Line(step=d).turn_class() for d in (-5, -4, -1, 0, 1, 4, 5)] == [0, 1, 1, 2, 3, 3, 4]
    for _ in range(2 * REGISTER_NOTES):
        line = line.then(60, 60, True)
    before = line.centre
    line = line.then(60, 90, True)  # past the first notes each weighs 1 / REGISTER_NOTES
    assert line.centre == pytest.approx(before + (90 - before) / REGISTER_NOTES)


def test_context_tables_split_the_counted_notes(corpus):
    tables, _ = estimate(corpus, range(len(corpus)), corpus.vocab)
    np.testing.assert_array_equal(tables["pitch_open_register"].sum(axis=1), tables["pitch_open"])
    # the corpus's own vocabulary: every windowed note on its centre
    np.testing.assert_array_equal(tables["pitch_step_register"].sum(axis=0),
                                  tables["pitch_window"][:, :, MAX_OFFSET].sum(axis=0))
    turn = tables["pitch_turn"]  # every note but each solo's first two has an interval into the one before
    assert turn[0].sum() == tables["pitch_open"].sum() and turn[1:].sum() == tables["pitch_window"].sum() - len(corpus)
    players = tables["pitch_players"]  # each solo's windowed notes by window centre
    assert players.shape[0] == len(corpus)
    np.testing.assert_array_equal(players.sum(axis=0), tables["pitch_step_register"].sum(axis=0))
    for i in range(len(corpus)):
        steps = [parse_value(v).step_semis for v in corpus.piece_values(i)]
        windowed = sum(1 for step in steps if step is not None and abs(step) <= MAX_STEP)
        assert players[i].sum() == windowed > 0


def test_a_bundle_without_context_tables_still_loads(tiny, corpus, tmp_path):
    tables, _ = estimate(corpus, range(len(corpus)), tiny.vocab)
    base = load_bundle(with_tables(tiny, tmp_path / "b.npz", {n: tables[n] for n in BASE_SHAPES}))
    assert sorted(base.tables) == sorted(BASE_SHAPES) and not base.pitch_chooser().context


def test_a_value_weighs_by_the_pitch_it_starts_from():
    cmaj7 = parse_chord("Cmaj7")
    up3 = encode_value(67, 0.5, cmaj7, 64)          # E -> G: a chord tone a minor third up
    assert up3.startswith("C,") and parse_value(up3).step_semis == 3
    up2 = "C" + encode_value(66, 0.5, cmaj7, 64)[1:]  # "a chord tone a step up" from E: F# is none
    vocabulary = ("R,0.500", "C,0.500", up3, up2, "C,0.500,<m3,m-3>")
    chooser = table_chooser(vocabulary=vocabulary)
    probs = np.full(5, 0.2)
    # Chord tones of Cmaj7 a minor third up from a chord tone: only from E, 1 of 4.
    assert list(chooser.fits(probs, cmaj7, 64)) == pytest.approx([0.2, 0.2, 0.8, 0.0, 0.2])
    assert list(chooser.fits(probs, cmaj7, 60)) == pytest.approx([0.2, 0.2, 0.0, 0.0, 0.2])  # C -> E-flat
    only = np.array([0, 0, 0, 1.0, 0])  # nothing but the impossible value: left as it is
    assert list(chooser.fits(only, cmaj7, 64)) == [0, 0, 0, 1.0, 0]
    assert list(probs) == [0.2] * 5


def context_chooser(vocabulary=("R,0.500", "X,0.500")):
    """Uniform base tables; far above the line's register (class 6) real players went
    only down, far below (class 0) only up."""
    tables = {n: np.ones(s, np.float32) for n, s in sized(3).items()}
    for name in ("pitch_open_register", "pitch_step_register"):
        t = tables[name].reshape(-1, *tables[name].shape[-2:])
        t[:, 6, MAX_OPEN:] = 0
        t[:, 6, :MAX_OPEN] = 1000
        t[:, 0, :MAX_OPEN + 1] = 0
        t[:, 0, MAX_OPEN + 1:] = 1000
    return PitchChooser(tables, vocabulary)


def test_a_bar_opens_toward_the_lines_register():
    chooser, rng = context_chooser(), np.random.default_rng(0)
    around = {p: list(range(p - 12, p + 13)) for p in (72, 84)}  # an octave either way
    high, low = Line(centre=60.0, notes=40), Line(centre=95.0, notes=40)
    down = [chooser.pick(around[84], "X", 84, None, rng, high) < 84 for _ in range(400)]
    up = [chooser.pick(around[72], "X", 72, None, rng, low) > 72 for _ in range(400)]
    free = [chooser.pick(around[84], "X", 84, None, rng) < 84 for _ in range(400)]
    assert np.mean(down) > 0.9 and np.mean(up) > 0.9 and 0.3 < np.mean(free) < 0.8


def test_values_lean_toward_the_lines_register():
    vocabulary = ("R,0.500", encode_value(65, 0.5, NO_CHORD, 60), encode_value(55, 0.5, NO_CHORD, 60))
    assert [parse_value(v).step_semis for v in vocabulary[1:]] == [5, -5]
    chooser = context_chooser(vocabulary)
    probs = np.array([0.2, 0.4, 0.4])
    above = chooser.fits(probs, NO_CHORD, 84, Line(centre=60.0, notes=40)).copy()
    below = chooser.fits(probs, NO_CHORD, 60, Line(centre=84.0, notes=40)).copy()
    assert above[2] > 10 * above[1] and below[1] > 10 * below[2] and above[0] == below[0] == 0.2


def test_a_snapshot_keeps_the_line(tiny, corpus, tmp_path):
    tables, _ = estimate(corpus, range(len(corpus)), tiny.vocab)
    soloist = Soloist(Runtime(load_bundle(with_tables(tiny, tmp_path / "s.npz", tables))),
                      np.random.default_rng(3))
    chord = parse_chord("Dm7")
    for k in range(6):
        soloist.play(0.5 * k, k == 0, chord)
    snapshot, line, rng = soloist.snapshot(), soloist.line, soloist.rng.bit_generator.state
    first = [soloist.play(3.0 + 0.5 * k, False, chord) for k in range(6)]
    assert soloist.line != line
    soloist.restore(snapshot)
    soloist.rng.bit_generator.state = rng
    assert soloist.line == line and [soloist.play(3.0 + 0.5 * k, False, chord) for k in range(6)] == first


def test_a_performance_steps_like_the_training_solo_it_drew(tiny, corpus, tmp_path):
    vocabulary = ("R,0.500", encode_value(62, 0.5, NO_CHORD, 60), encode_value(65, 0.5, NO_CHORD, 60))
    tables = {n: np.ones(s, np.float32) for n, s in sized(2).items()}
    tables["pitch_players"][0, MAX_STEP + 2] = 1000  # solo 0 steps by whole tones
    tables["pitch_players"][1, MAX_STEP + 5] = 1000  # solo 1 by fourths
    chooser = PitchChooser(tables, vocabulary)
    probs = np.array([0.2, 0.4, 0.4])
    zero, one = (chooser.fits(probs, NO_CHORD, 60, player=k).copy() for k in (0, 1))
    assert zero[1] > 2 * zero[2] and one[2] > 2 * one[1] and zero[0] == one[0] == 0.2
    assert list(chooser.fits(probs, NO_CHORD, 60)) == pytest.approx(probs)  # no player: no factor
    counted, _ = estimate(corpus, range(len(corpus)), tiny.vocab)
    bundle = load_bundle(with_tables(tiny, tmp_path / "p.npz", counted))
    draws = {Soloist(Runtime(bundle), np.random.default_rng(seed)).player for seed in range(40)}
    assert draws == set(range(len(corpus)))  # every performance draws one, from all of them
    assert Soloist(Runtime(tiny), np.random.default_rng(0)).player is None  # no tables, no draw


def test_the_choosers_caches_are_bounded_and_outlive_the_engines_of_a_runtime(tiny, corpus, tmp_path, monkeypatch):
    """Issue 16: a service plays for weeks and reloads its unchanged model into new
    engines.  The chooser belongs to the runtime (one per model, its caches kept across
    engines); its caches hold at most AGREE_CACHE colours and PLAYER_CACHE rows, the
    least recently used going first; and `agrees` is keyed by the chord's colour seen
    from the pitch class, so that a chord and its transposition from the transposed
    pitch share it, with the same factors as the old formula for each apart."""
    tables, _ = estimate(corpus, range(len(corpus)), tiny.vocab)
    runtime = Runtime(load_bundle(with_tables(tiny, tmp_path / "c.npz", tables)))
    engines = [Engine(runtime, np.random.default_rng(k), Settings(mode="solo")) for k in range(3)]
    chooser = runtime.chooser
    assert chooser is not None and all(e.soloist.chooser is chooser for e in engines)
    # a fresh chooser computes each row apart: the shared rows are the same numbers
    fresh = load_bundle(with_tables(tiny, tmp_path / "d.npz", tables)).pitch_chooser
    for symbol, root in (("Dm7", 2), ("G7", 7), ("Cmaj7", 0), ("F7#11", 5), ("Bbm6", 10)):
        for pc in range(12):
            here = chooser.agrees(parse_chord(symbol), 60 + (root + pc) % 12).copy()
            if symbol in TRANSPOSED:  # (a minor seventh's scale is not the same in every key)
                kept = len(chooser._agrees)
                up = chooser.agrees(parse_chord(TRANSPOSED[symbol]), 60 + (root + 3 + pc) % 12)
                assert len(chooser._agrees) == kept and np.array_equal(up, here)  # one colour for both
            assert np.array_equal(here, fresh().agrees(parse_chord(symbol), 48 + (root + pc) % 12))
            assert np.array_equal(here, agrees_apart(chooser, parse_chord(symbol), 60 + (root + pc) % 12))
    qualities = ("", "m", "7", "m7", "maj7", "m7b5", "o7", "7b9", "7#9", "13", "m6", "6", "sus4", "7alt",
                 "7#11", "9", "m9", "maj9", "7sus4", "+", "mmaj7", "7b13")
    colours = {t[pc:] + t[:pc] for q in qualities for r in ROOTS for t in [types_by_pitch_class(parse_chord(r + q))]
               for pc in range(12)}
    assert len(colours) <= AGREE_CACHE  # every colour of 22 qualities over 12 roots fits (1,308)
    monkeypatch.setattr(pitchtable, "AGREE_CACHE", 40)
    monkeypatch.setattr(pitchtable, "PLAYER_CACHE", 2)
    g7 = parse_chord("G7")
    for quality in ("", "m", "7", "m7", "maj7", "m7b5", "o7"):
        for root in ("C", "D", "E", "F#", "Ab", "Bb"):
            for pc in range(12):
                chooser.agrees(parse_chord(root + quality), 60 + pc)
                chooser.agrees(g7, 67)  # used all along: never the least recent
    assert len(chooser._agrees) == 40
    g7_from_g = types_by_pitch_class(g7)[7:] + types_by_pitch_class(g7)[:7]
    assert g7_from_g in chooser._agrees
    for k in range(chooser.players):
        chooser.player(k)
    assert chooser.players > 2 and len(chooser._player_rows) == 2


TRANSPOSED = {"G7": "Bb7", "Cmaj7": "Ebmaj7"}
ROOTS = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")


def agrees_apart(chooser, chord, prev_midi):
    """`PitchChooser.agrees` as it was written before its rows were shared: in absolute
    pitch classes, for this chord and pitch alone."""
    order = {t: i for i, t in enumerate("CSAXR")}
    pc_type = np.array([order[t] for t in types_by_pitch_class(chord)])
    alike = np.flatnonzero(pc_type == pc_type[prev_midi % 12])
    share = (pc_type[(alike[:, None] + chooser._step_of[None, :]) % 12] == chooser._type_of).mean(axis=0)
    here = pc_type[(prev_midi + chooser._step_of) % 12] == chooser._type_of
    return np.where(~chooser._windowed, 1.0, np.where(here, 1.0 / np.maximum(share, 1e-9), 0.0))
