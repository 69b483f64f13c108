"""The feel stage (`jazzd.play.feel`): where planned notes are played.  Straight is the
grid; wjd swings eighths and lays the downbeats back as its model asks at the tempo
(read back by the meter over 200 bars), keeps triplets and sixteenths even, never
plays a short eighth under 100 ms, keeps notes in order and tiling, and never changes
which notes are played; with feel = player, jazzd's answers take the player's swing."""

import itertools
import math

import numpy as np
import pytest

from jazzd.model.bundle import load_bundle
from jazzd.model.feel import FeelModel, shipped_feel
from jazzd.model.runtime import Runtime
from jazzd.model.shipped import default_model
from jazzd.music.chords import parse_chord
from jazzd.music.feel import beat_feels, summarize, swing_position
from jazzd.play.engine import Engine
from jazzd.play.feel import MIN_SHORT_S, Feel
from jazzd.play.offline import answer_call, render
from jazzd.play.render import Note, on_grid
from jazzd.play.settings import Settings

MODEL = FeelModel(3.0, -0.3, 0.2, 100.0, -18.0, 8.0, 16.0, (100.0, 320.0))


def feel(bur=1.5, delay_ms=20.0, spread_ms=0.0, tempo=150.0, seed=0, amount=1.0):
    """A Feel asked for exactly `bur` and `delay_ms` (its model is flat in tempo)."""
    m = FeelModel(bur, 0.0, 0.0, delay_ms, 0.0, 0.0, spread_ms / 0.5)
    f = Feel(m, np.random.default_rng(seed))
    f.set("wjd", amount, tempo)
    return f


def tile(bounds):
    return list(itertools.pairwise(bounds))


def test_straight_is_the_grid_exactly():
    f = Feel(MODEL, np.random.default_rng(0))
    f.set("straight", 1.0, 150)
    notes = tile([0, 0.5, 1, 1.25, 1.5, 2 + 1 / 3, 3])
    assert f.place(notes, 0.0) == notes
    f.set("wjd", 0.0, 150)  # amount 0
    assert f.place(notes, 0.0) == notes


def test_swung_eighths_and_delayed_downbeats():
    spb = 60 / 150
    f = feel(1.5, 20.0)
    d = 0.020 / spb
    played = f.place(tile([0, 0.5, 1, 1.5, 2]), -1.0)
    assert played[0][0] == pytest.approx(d)
    assert played[0][1] == pytest.approx(d + swing_position(1.5))   # off-beat at BUR/(1+BUR)
    assert played[1] == (played[0][1], pytest.approx(1 + d))          # tiles: off = next on
    onsets = [p[0] * spb for p in played] + [played[-1][1] * spb]
    s = summarize(onsets, [k * spb for k in range(4)])
    assert s.beats == 2 and s.bur == pytest.approx(1.5) and s.delay_ms == pytest.approx(20.0)


def test_triplets_and_sixteenths_stay_even_and_lay_back_with_the_beat():
    f = feel(1.8, 30.0)
    d = 0.030 / (60 / 150)
    trip = f.place(tile([0, 1 / 3, 2 / 3, 1]), -1.0)
    six = f.place(tile([1, 1.25, 1.5, 1.75, 2]), -1.0)
    for played, _n in ((trip, 3), (six, 4)):
        lengths = [b - a for a, b in played]
        assert max(lengths) - min(lengths) < 1e-9 and sum(lengths) == pytest.approx(1.0)
        assert played[0][0] == pytest.approx(math.floor(played[0][0]) + d)


def test_the_short_eighth_is_never_under_100_ms():
    for tempo in (200, 260, 300, 340):
        f = feel(3.0, 0.0, tempo=tempo)
        spb = 60 / tempo
        played = f.place(tile([0, 0.5, 1]), -1.0)
        short = (played[1][1] - played[1][0]) * spb
        assert short >= min(MIN_SHORT_S, spb / 2) - 1e-9
        assert played[0][1] - played[0][0] >= played[1][1] - played[1][0] - 1e-9  # long first


def test_random_lines_keep_order_and_tiling_and_are_deterministic():
    rng = np.random.default_rng(5)
    steps = [0.25, 0.5, 1 / 3, 2 / 3, 1.0, 1.5, 0.2]
    for trial in range(30):
        bounds = [0.0]
        while bounds[-1] < 32:
            bounds.append(bounds[-1] + float(rng.choice(steps)))
        notes = tile(bounds)
        a = feel(1.6, 25.0, spread_ms=8.0, seed=trial).place(notes, -1.0)
        b = feel(1.6, 25.0, spread_ms=8.0, seed=trial).place(notes, -1.0)
        assert a == b
        for (on, off), (on2, _) in itertools.pairwise(a):
            assert on < off and off == pytest.approx(on2, abs=1e-12)


def test_an_onset_is_never_before_the_time_it_is_planned():
    f = feel(1.0, -40.0)  # a rushing feel
    played = f.place(tile([4, 4.5, 5]), 3.99)
    assert played[0][0] >= 3.99


# --- the engine ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    path = default_model()
    if not path.is_file():
        pytest.skip(f"needs the shipped model {path}")
    return load_bundle(path)


def solo(bundle, tempo, feel_name, bars=200, seed=1, articulation="legato"):
    engine = Engine(Runtime(bundle), np.random.default_rng(seed),
                    Settings(mode="solo", feel=feel_name, articulation=articulation))
    return render(engine, bars, tempo)


@pytest.mark.parametrize("tempo", [100, 150, 220])
def test_rendered_solos_read_back_the_feel_the_model_asks_for(shipped, tempo):
    engine = Engine(Runtime(shipped), np.random.default_rng(1), Settings(mode="solo"))
    notes = render(engine, 200, tempo)
    bur, delay_ms = engine.feel.target("wjd", tempo)  # the model's, off the median by the performance's own
    m = shipped_feel()
    assert bur == pytest.approx(max(m.bur(tempo) + engine.feel.personal[0], 1))
    assert delay_ms == pytest.approx(m.delay_ms(tempo) + engine.feel.personal[1])
    spb = 60 / tempo
    got = summarize([n.onset * spb for n in notes], [k * spb for k in range(200 * 4 + 1)])
    assert got.beats >= 100
    assert abs(got.bur - bur) <= 0.05
    assert abs(got.delay_ms - delay_ms) <= 3
    straight = summarize([n.onset * spb for n in solo(shipped, tempo, "straight")], [k * spb for k in range(801)])
    assert straight.bur == pytest.approx(1.0) and abs(straight.delay_ms) < 1e-6


def test_the_feel_never_changes_which_notes_are_played_and_nothing_overlaps(shipped):
    swung, straight = solo(shipped, 180, "wjd", bars=32), solo(shipped, 180, "straight", bars=32)
    grid = on_grid(swung)
    assert [(n.midi, n.velocity, n.value) for n in grid] == [(n.midi, n.velocity, n.value) for n in straight]
    # The same grid times, to float rounding: both come back from seconds at 180 bpm by
    # different sums (1e-13 beat apart where they differ).
    for a, b in zip(grid, straight, strict=True):
        assert a.onset == pytest.approx(b.onset, abs=1e-9) and a.dur == pytest.approx(b.dur, abs=1e-9)
        assert a.grid == b.grid is None
    assert any(abs(a.onset - b.onset) > 1e-3 for a, b in zip(swung, straight, strict=False))
    for a, b in itertools.pairwise(swung):
        assert a.dur > 0 and a.onset + a.dur <= b.onset + 1e-9  # a monophonic line stays one


def swung_call(bars, bur, delay_ms, tempo, pitches=(72, 74, 76, 77, 79, 77, 76, 74)):
    """Eighths for `bars` bars as a player swings them: downbeats `delay_ms` late, the
    off-beat at `bur` between them; each note held to 90% of the way to the next."""
    d = delay_ms / 1000 / (60 / tempo)
    onsets = []
    for b in range(bars * 4):
        onsets += [b + d, b + d + swing_position(bur)]
    onsets.append(bars * 4 + d)
    return [Note(a, 0.9 * (b - a), pitches[k % len(pitches)], 90) for k, (a, b) in enumerate(itertools.pairwise(onsets))]


def test_with_feel_player_the_answers_take_the_players_swing(shipped):
    """A player swinging at BUR 1.6, downbeats 25 ms late, plays 4 bars; jazzd's answers
    (4 bars: 8 bars in all) read back within 0.1 BUR and 5 ms (over 12 seeds); a player
    playing straight eighths on the beat gets straight answers."""
    tempo, spb = 160.0, 60 / 160
    chords = [(float(b), parse_chord(c)) for b, c in zip(range(0, 64, 4), ["Dm7", "G7", "Cmaj7", "A7"] * 4,
                                                          strict=True)]
    for bur, delay in ((1.6, 25.0), (1.0, 0.0)):
        call = swung_call(4, bur, delay, tempo)
        burs, delays = [], []
        for seed in range(12):
            engine = Engine(Runtime(shipped), np.random.default_rng(seed),
                            Settings(feel="player", melody_channel=0, chord_channel=1))
            ans = answer_call(engine, call, chords, tempo)
            assert ans.span is not None and ans.span[1] - ans.span[0] <= 17
            start = math.floor(ans.span[0])
            per = beat_feels([n.onset * spb for n in ans.notes], [k * spb for k in range(start, start + 18)])
            burs += [p.bur for p in per]
            delays += [p.delay * 1000 for p in per]
        assert len(burs) >= 20
        assert abs(np.median(burs) - bur) <= 0.1 and abs(np.median(delays) - delay) <= 5, (bur, delay)


def test_the_listener_keeps_the_players_raw_onsets():
    from jazzd.play.listener import Listener

    lis = Listener()
    for beat in (0.03, 0.05, 0.68, 1.02, 1.66):  # 0.05: a second key of the same note
        lis.note_on(beat, 72, 90, None)
    assert lis.raw_onsets(16) == [0.03, 0.68, 1.02, 1.66]
    assert lis.raw_onsets(1.0) == [0.68, 1.02, 1.66]  # within a beat of the last
    lis.reset()
    assert lis.raw_onsets(16) == []


def test_the_run_flag_sets_the_feel():
    from jazzd.cli import _overrides, build_parser

    args = build_parser().parse_args(["run", "--feel", "player"])
    assert _overrides(args)["engine.feel"] == "player"


def test_the_reports_feel_section_tells_a_swinging_set_from_a_straight_one():
    from jazzd.judge.feel import section

    rng = np.random.default_rng(3)
    def solos(bur, sd_bur, delay, sd_delay, n=40):
        return [{"beats": 30, "bur": float(rng.normal(bur, sd_bur)), "delay_ms": float(rng.normal(delay, sd_delay))}
                for _ in range(n)]
    real = [*solos(1.35, 0.2, 8, 7), None, {"beats": 3, "bur": 9.0, "delay_ms": 300.0}]  # unmeasured, too few
    r = section(real, {"swung": solos(1.35, 0.2, 8, 7), "straight": solos(1.0, 0.0, 0.0, 0.0)})
    assert r["sets"]["real"]["bur"]["solos"] == 40
    assert r["distances"]["swung"]["bur"]["oa"] > 0.8 and r["distances"]["swung"]["delay_ms"]["oa"] > 0.8
    assert r["distances"]["straight"]["bur"]["oa"] < 0.1 and r["distances"]["straight"]["delay_ms"]["oa"] < 0.1
    assert section([None, None], {"x": solos(1, 0, 0, 0)}) is None


def test_each_wjd_performance_has_a_feel_of_its_own_around_the_model():
    m = shipped_feel()
    personal = np.array([Feel(m, np.random.default_rng(s)).personal for s in range(400)])
    assert abs(personal[:, 0].std() - m.bur_spread) < 0.25 * m.bur_spread
    assert abs(personal[:, 1].std() - m.delay_spread) < 0.25 * m.delay_spread
    assert np.abs(personal[:, 0]).max() <= 2 * m.bur_spread + 1e-12
