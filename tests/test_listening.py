"""The listening measure (`jazzd.judge.listening`) and its call-mode driver
(`jazzd.play.offline.answer_call`): phrases, relatedness, bootstrap, the driver on the
tiny model, and the measure on real WJD solos."""

from __future__ import annotations

import numpy as np
import pytest

from jazzd.errors import ConfigError
from jazzd.judge import listening as L
from jazzd.judge.metrics import Note, Solo
from jazzd.model.bundle import load_bundle
from jazzd.model.runtime import Runtime
from jazzd.music.chords import parse_chord
from jazzd.play.engine import Engine
from jazzd.play.offline import answer_call, hands, left_hand
from jazzd.play.render import Note as PlayNote
from jazzd.play.settings import Settings
from jazzd.play.tracker import ChordTracker

from .conftest import WJD, need
from .tinymodel import make_bundle

C7, F7, G7 = parse_chord("C7"), parse_chord("F7"), parse_chord("G7")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("tiny") / "tiny.npz"))


def line(pitches, start=0.0, step=0.5, dur=0.5):
    """A metrics line: eighth notes from `start` (beats) over C7."""
    return tuple(Note(start + k * step, dur, p, C7, int((start + k * step) // 4), (start + k * step) % 4)
                 for k, p in enumerate(pitches))


def solo(notes) -> Solo:
    return Solo("s", tuple(notes), ())


# --- phrases --------------------------------------------------------------------------

def test_phrases_end_at_a_rest_of_a_beat_or_more():
    notes = list(line([60, 62, 64]))                      # ends at beat 1.5
    notes += list(line([65, 67], start=2.45))             # rest 0.95: same phrase
    notes += list(line([69, 71, 72, 74], start=4.45))     # rest exactly 1.0: a new phrase
    notes += list(line([76], start=8.0))                  # rest 2.5
    phrases = L.segment(notes)
    assert [[n.midi for n in p] for p in phrases] == [[60, 62, 64, 65, 67], [69, 71, 72, 74], [76]]
    assert [len(p) for p in L.segment(notes, rest=3.0)] == [10]
    assert L.segment([]) == []


def test_pairs_need_enough_notes_and_a_call_the_engine_hears_whole():
    s = Settings()  # 4 bars of 4: a call may last 16 - 1 beats
    short = line([60, 62, 64])                                    # 3 notes
    call = line([60, 62, 64, 65], start=4.0)                      # 2 beats
    long_ = line(list(range(60, 92)), start=8.0)                  # 32 eighths: 16 beats
    nxt = line([67, 65, 64, 62], start=26.0)
    after = line([60, 62, 64, 65], start=30.0)
    pairs, phrases, skipped = L.find_pairs([solo(short + call + long_ + nxt + after)], s)
    # the long phrase may answer a call, but is no call itself
    assert [(p.index, p.call[0].onset, p.real[0].onset) for p in pairs] == [(1, 4.0, 8.0), (3, 26.0, 30.0)]
    assert skipped == {"fewer notes than min_notes": 1, "call too long for max_bars": 1}
    assert len(phrases) == 5
    s.max_bars = 5
    pairs, _, _ = L.find_pairs([solo(short + call + long_ + nxt + after)], s)
    assert [p.index for p in pairs] == [1, 2, 3]


def test_spread_takes_evenly_spaced_indices():
    assert L.spread(5, None) == [0, 1, 2, 3, 4]
    assert L.spread(10, 4) == [0, 3, 6, 9]
    assert L.spread(3, 10) == [0, 1, 2]


# --- relatedness ------------------------------------------------------------------------

def random_lines(rng, n, transpose=0, start=0.0):
    out = []
    for _ in range(n):
        pitches = 60 + np.cumsum(rng.integers(-4, 5, size=int(rng.integers(6, 14))))
        steps = rng.choice([1 / 3, 0.5, 2 / 3, 1.0], size=len(pitches))
        onsets = start + np.concatenate([[0], np.cumsum(steps[:-1])])
        out.append(solo(Note(float(t), float(d), int(p) + transpose, C7, 0, float(t))
                        for t, d, p in zip(onsets, steps, pitches, strict=True)))
    return out


def test_an_answer_that_repeats_its_call_transposed_relates_strongly_and_an_unrelated_one_does_not():
    rng = np.random.default_rng(3)
    calls = random_lines(rng, 120)
    echoes = [solo(Note(n.onset + 8, n.dur, n.midi + 5, C7, 2, n.pos) for n in c.notes) for c in calls]
    strangers = random_lines(rng, 120, start=8.0)
    cf = L.features(calls)
    sim_echo, sim_none = L.similarities(L.features(echoes), cf), L.similarities(L.features(strangers), cf)
    # a scalar (density) tells lines apart less than a histogram or a line does
    for feat, least in (("intervals", 0.25), ("motifs", 0.25), ("contour", 0.25), ("rhythm", 0.25),
                        ("density", 0.05)):
        echo = L.relatedness(sim_echo[feat]).mean()
        none = L.relatedness(sim_none[feat]).mean()
        assert echo > least, (feat, echo)
        assert abs(none) < 0.03, (feat, none)
    # transposed by a fourth: the pitch classes move, the motifs stay
    assert L.relatedness(sim_echo["motifs"]).mean() > 0.9
    assert L.relatedness(sim_echo["pitch_class"]).mean() < L.relatedness(sim_echo["intervals"]).mean()


def test_relatedness_is_own_similarity_minus_the_mean_over_the_other_calls():
    sim = np.array([[1.0, 0.2, 0.4], [0.0, 0.5, 0.5], [0.3, 0.3, 0.3]])
    assert L.relatedness(sim) == pytest.approx([0.7, 0.25, 0.0])
    assert np.isnan(L.relatedness(np.ones((1, 1)))).all()


def test_an_answer_without_notes_relates_to_nothing():
    calls = random_lines(np.random.default_rng(1), 5)
    empty = L.features([solo([])] * 5)
    for feat, sim in L.similarities(empty, L.features(calls)).items():
        assert (sim == 0).all(), feat


def test_weighted_correlation_is_the_correlation_of_the_resample():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(size=30)
    idx = rng.integers(0, 30, size=(5, 30))
    weights = L.resample_counts(idx, 30)
    got = L.correlation(x, y, weights)
    want = [np.corrcoef(x[row], y[row])[0, 1] for row in idx]
    assert got == pytest.approx(want)
    assert L.correlation(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_the_bootstrap_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(5)
    calls = random_lines(rng, 40)
    real = [solo(Note(n.onset + 8, n.dur, n.midi + 2, C7, 2, n.pos) for n in c.notes[:5]) for c in calls]
    other = random_lines(rng, 40, start=8.0)
    cf, sides = L.features(calls), {"real": L.features(real), "jazzd": L.features(other)}

    def run(seed):
        idx = np.random.default_rng(seed).integers(0, 40, size=(200, 40))
        return L.compare(cf, sides, idx)

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    assert list(a) == list(L.FEATURES)
    for feat, e in a.items():
        for side in ("real", "jazzd", "difference"):
            assert e[side]["lo"] <= e[side]["mean"] <= e[side]["hi"], (feat, side)
    assert a["motifs"]["difference"]["hi"] < 0  # the stranger relates less than the echo, surely
    assert a["register"]["real"]["mean"] > 0.9  # transposed by a step: the same register


def test_verbatim_finds_the_longest_run_of_the_call_in_the_answer():
    call = ["C,0.500", "S,0.500,<m2,P-4>", "R,0.250", "C,0.250", "A,1.000"]
    got = L.verbatim([call, call], [["X,0.500", *call[1:4], "C,0.500"], ["X,0.500"]])
    assert got == {"longest": 3, "median": 1.5, "mean": 1.5, "over_cap": 0}


def test_a_line_is_read_against_the_solos_bars_as_ingest_reads_it():
    from jazzd.data.ingest.common import Bar, Piece
    from jazzd.music.grammar import Element

    piece = Piece("p", [Bar(0.0, [Element(0.0, 4.0, None)], [(0.0, C7)]),
                        Bar(4.0, [Element(4.0, 4.0, None)], [(4.0, F7), (6.0, G7)])])
    ctx = L._Context(piece)
    s = ctx.solo("x", [(3.0, 0.5, 64), (4.5, 0.5, 65), (6.0, 1.0, 67)])
    assert [(n.midi, n.chord.symbol, n.bar, n.pos) for n in s.notes] == [
        (64, "C7", 0, 3.0), (65, "F7", 1, 0.5), (67, "G7", 1, 2.0)]
    # rests between notes, split at the bar line; the first note of a bar has no window
    assert [v.split(",")[0] for v in s.values] == ["C", "R", "R", "C", "R", "C"]
    assert s.values[3] == "C,0.500" and s.values[5].startswith("C,1.000,<")


# --- the call-mode driver ------------------------------------------------------------------

CALL = [PlayNote(k * 0.5, 0.45, p, 90) for k, p in enumerate([72, 74, 76, 77, 79, 77, 76, 74])]
CHANGES = [(0.0, C7), (4.0, F7), (8.0, C7), (12.0, G7)]


def engine(bundle, seed=1, **kw):
    return Engine(Runtime(bundle), np.random.default_rng(seed), Settings(**kw))


def test_a_call_is_answered_after_its_silence_from_the_next_beat(bundle):
    got = answer_call(engine(bundle), CALL, CHANGES, 120)
    assert got.call_end == pytest.approx(3.95)
    # heard on the grid the call ends at 4.0; a beat of silence, then the next beat: 6
    assert got.span == (6.0, 10.0)  # as long as the call (4 beats)
    assert got.notes and got.notes[0].onset >= 6.0 - 1e-9 and got.notes[-1].onset < 10.0
    assert got.gap == pytest.approx(got.notes[0].onset - 3.95)
    assert got.early == 0
    again = answer_call(engine(bundle), CALL, CHANGES, 120)
    assert again == got  # deterministic
    assert answer_call(engine(bundle, seed=2), CALL, CHANGES, 120).notes != got.notes


def test_the_left_hand_plays_the_changes_under_the_call_and_the_answer(bundle):
    e = engine(bundle)
    answer_call(e, CALL, CHANGES, 120)
    # the changes went on under the answer (each beat planned a beat ahead, with the chord known then)
    assert {chord for beat, _, _, chord in e.trace if 6 <= beat < 8} == {"F7"}
    assert {chord for beat, _, _, chord in e.trace if 9 <= beat < 10} == {"C7"}
    for chord in (C7, F7, G7, parse_chord("Bbj7"), parse_chord("Am7b5")):
        voiced = left_hand(chord, 60)
        assert max(voiced) < 60 and min(voiced) >= 36
        tracker = ChordTracker()
        for p in voiced:
            tracker.note_on(p)
        assert tracker.chord().root == chord.root and tracker.chord().pcs == chord.pcs


def test_the_hands_follow_the_split_or_the_channels(bundle):
    assert hands(Settings()) == (0, 0)
    assert hands(Settings(melody_channel=0, chord_channel=1)) == (0, 1)
    assert hands(Settings(chord_channel=0)) == (1, 0)
    assert hands(Settings(melody_channel=3)) == (3, 4)
    by_split = answer_call(engine(bundle), CALL, CHANGES, 120)
    by_channel = answer_call(engine(bundle, melody_channel=0, chord_channel=1), CALL, CHANGES, 120)
    assert by_split == by_channel  # the same call, heard the same way
    low = [PlayNote(n.onset, n.dur, n.midi - 24, 90) for n in CALL]  # below middle C
    with pytest.raises(ValueError, match="chord hand"):
        answer_call(engine(bundle), low, CHANGES, 120)
    assert answer_call(engine(bundle, melody_channel=0, chord_channel=1), low, CHANGES, 120).span == (6.0, 10.0)


def test_a_rest_the_engine_takes_for_the_end_of_the_call_counts_as_early(bundle):
    # a rest of 2 beats inside the call (2.0 to 4.0): the engine answers at beat 4 (1 beat
    # of silence heard at 3.0), the player's next note at 4.0 cuts that answer short
    split_call = CALL[:4] + [PlayNote(n.onset + 2.0, n.dur, n.midi, 90) for n in CALL[4:]]
    e = engine(bundle)
    got = answer_call(e, split_call, CHANGES, 120)
    assert got.early == 1 and e.stats.interrupted == 1
    assert got.span is not None and got.span[0] > got.call_end  # the answer to the rest of the call
    # a rest of half a beat is not the end
    tight = CALL[:4] + [PlayNote(n.onset + 0.5, n.dur, n.midi, 90) for n in CALL[4:]]
    assert answer_call(engine(bundle), tight, CHANGES, 120).early == 0
    # without the answer: the same count, no notes
    quiet = answer_call(engine(bundle), split_call, CHANGES, 120, play_answer=False)
    assert quiet.early == 1 and quiet.notes == [] and quiet.gap is None


def test_a_call_shorter_than_min_beats_gets_no_answer(bundle):
    got = answer_call(engine(bundle, min_beats=4.0), CALL[:3], CHANGES, 120)
    assert got.span is None and got.notes == [] and got.gap is None
    with pytest.raises(ValueError, match="no notes"):
        answer_call(engine(bundle), [], CHANGES, 120)


def test_engine_settings_can_be_overridden_by_field_or_function():
    s = L.call_settings(3, overrides={"silence_beats": 0.5}, configure=lambda s: setattr(s, "max_bars", 2))
    assert (s.mode, s.beats_per_bar, s.silence_beats, s.max_bars) == ("call", 3, 0.5, 2)
    assert (s.melody_channel, s.chord_channel) == (0, 1)
    with pytest.raises(ConfigError, match="memory_strenght"):
        L.call_settings(4, overrides={"memory_strenght": 1})


def test_listen_set_takes_config_keys_checked_by_the_config_rules():
    from jazzd.cli import _listen_overrides

    assert _listen_overrides(["call.silence_beats=0.5", "engine.chord_channel=3"]) == {
        "silence_beats": 0.5, "chord_channel": 2}
    with pytest.raises(ConfigError, match="silence_beats"):
        _listen_overrides(["call.silence_beats=0"])
    with pytest.raises(ConfigError, match="not an engine setting"):
        _listen_overrides(["clock.tempo=100"])


# --- on real solos -----------------------------------------------------------------------

@pytest.mark.shared
def test_the_measure_on_real_wjd_solos(bundle):
    from jazzd.data.ingest.wjazzd import read

    folder = need(WJD)
    pieces = [read(p) for p in sorted((folder / "csv_melody").glob("*.csv"))[:3]]
    r = L.measure(bundle, pieces, calls=30, seed=4)
    again = L.measure(bundle, pieces, calls=30, seed=4)
    assert r.pop("runtime_s") >= 0 and again.pop("runtime_s") >= 0
    assert r == again  # deterministic
    assert r["pairs"]["used"] == 30 <= r["pairs"]["available"]
    assert list(r["features"]) == list(L.FEATURES)
    for feat, e in r["features"].items():
        for side in ("real", "jazzd"):
            assert -1 <= e[side]["lo"] <= e[side]["mean"] <= e[side]["hi"] <= 1, (feat, side)
    tt = r["turn_taking"]
    # today's rule: a beat of silence (on the grid), then the next beat
    assert 1 <= tt["gap"]["median_beats"] <= 2.5
    assert tt["real_gap"]["p10_beats"] >= L.PHRASE_REST
    ft = tt["false_triggers"]
    assert ft["phrases"] >= 30 and ft["answered_early_within_max_bars"] <= ft["phrases_within_max_bars"]
    # a real phrase longer than the engine's 4 bars is always cut by the length cap
    assert ft["answered_early_past_max_bars"] >= 0.5 * ft["phrases_past_max_bars"]
    assert r["verbatim"]["real"]["longest"] >= 1
    md = "\n".join(L.markdown(r))
    assert "| motifs" not in md and "3-interval motifs of the call" in md
