"""Duet mode with a manual clock: jazzd hears the player's melody and the two take turns
in one timeline (jazzd.play.engine, "Duet").  Golden event log of an exchange, the
overlap budget, gaps filled from the next beat, and the model's place after a cut."""

from __future__ import annotations

import numpy as np
import pytest

from jazzd.model.bundle import load_bundle
from jazzd.model.runtime import Runtime
from jazzd.model.shipped import default_model
from jazzd.music.timeline import on_grid, snap
from jazzd.play.engine import ASIDE_MIN_BEATS, Engine, Settings
from jazzd.play.events import NoteOff, NoteOn
from jazzd.play.offline import ManualClock

from .tinymodel import make_bundle

SPB = 0.5  # 120 bpm


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("duet") / "tiny.npz"))


def duet(bundle, seed=1, **kw):
    engine = Engine(Runtime(bundle), np.random.default_rng(seed), Settings(mode="duet", **{"feel": "straight", "articulation": "legato", **kw}))  # on the grid
    clock = ManualClock(engine, tempo=120)
    for n in (48, 52, 55):  # C in the left hand from the start, held
        clock.feed(NoteOn(0.0, n, 70))
    return engine, clock


def phrase(first_beat, pitches, step=0.5, gate=0.45, late=0.02):
    """(on beat, off beat, pitch) of a line of notes `step` apart, each `late` after its
    grid point (a player is never exactly on it) and held for `gate` beats."""
    return [(first_beat + i * step + late, first_beat + i * step + gate, p) for i, p in enumerate(pitches)]


def play(clock, notes):
    for on, off, pitch in notes:
        clock.feed(NoteOn(on * SPB, pitch, 100))
        clock.feed(NoteOff(off * SPB, pitch))


def log(sent):
    return [(round(e.t, 3), e.kind, e.number, e.value) for e in sent]


def intervals(sent):
    """jazzd's sounding notes as (on, off) times."""
    out, open_ = [], {}
    for e in sent:
        if e.kind == "on":
            open_[e.number] = e.t
        elif e.kind == "off" and e.number in open_:
            out.append((open_.pop(e.number), e.t))
    assert open_ == {}, f"notes left sounding: {open_}"
    return out


def overlap(a, b):
    """Total time two lists of (start, end) intervals sound together (each list's own
    intervals do not overlap)."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


# --- golden exchange ------------------------------------------------------------------------

LINE = [64, 65, 67, 69, 67, 65, 64, 62]
ANSWER = [67, 65, 64, 60]

# jazzd plays from beat 1 (the chord came at 0); the player comes in at 4.02: jazzd's note
# on beat 4 is released at once (2.01 s) and nothing else sounds while the player plays
# 4-8 (overlap 0); the player's last note ends at 7.97 (heard to 8): after half a beat
# of silence jazzd fills the gap from beat 9 (4.5 s) until the player comes back at
# 10.02 (5.01 s), and takes over again from beat 13, after the player's 10-12.
GOLDEN_DUET = [
    (0.5, "on", 71, 104), (0.75, "off", 71, 0), (0.75, "on", 72, 94), (0.917, "off", 72, 0),
    (0.917, "on", 76, 96), (1.0, "off", 76, 0), (1.0, "on", 78, 102), (1.125, "off", 78, 0),
    (1.125, "on", 83, 91), (1.25, "off", 83, 0), (1.25, "on", 84, 95), (1.375, "off", 84, 0),
    (1.375, "on", 83, 94), (1.5, "off", 83, 0), (1.5, "on", 77, 93), (1.75, "off", 77, 0),
    (1.75, "on", 78, 96), (1.917, "off", 78, 0), (1.917, "on", 81, 95), (2.0, "off", 81, 0),
    (2.0, "on", 84, 94), (2.01, "off", 84, 0), (4.5, "on", 61, 108), (4.625, "off", 61, 0),
    (4.625, "on", 60, 102), (5.01, "off", 60, 0), (6.5, "on", 64, 111), (6.625, "off", 64, 0),
    (6.625, "on", 69, 98), (6.875, "off", 69, 0), (6.875, "on", 63, 104), (7.0, "off", 63, 0),
    (7.0, "on", 65, 112), (7.125, "off", 65, 0), (7.125, "on", 63, 101), (7.375, "off", 63, 0),
    (7.375, "on", 62, 106), (7.625, "off", 62, 0), (7.625, "on", 60, 103), (7.792, "off", 60, 0),
    (7.792, "on", 56, 102), (8.0, "off", 56, 0), (8.0, "on", 63, 104),
]


def test_a_duet_exchange_golden_log(bundle):
    engine, clock = duet(bundle, overlap=0.0, imitation=0.0)  # (the session memory: test_memory.py)
    engine.settings.follow_register = False  # the player's register moves it: test_register.py
    player = phrase(4, LINE) + phrase(10, ANSWER)
    play(clock, player)
    sent = clock.run_until(8.0)
    assert log(sent) == GOLDEN_DUET
    # Every note of the player's was heard, where it was played (on the grid), in order.
    assert [(onset, midi) for onset, _, midi in engine.heard] == [(snap(on), p) for on, _, p in player]
    assert engine.stats.heard_notes == len(player) and engine.stats.player_turns == 2
    # jazzd's line picked up where it left off each time: its timeline values from beat
    # 9 and 13 (nothing of its own in between but what was cut).
    assert [onset for onset, *_ in engine.trace if 8 <= onset < 9.5][:1] == [9]
    assert [onset for onset, *_ in engine.trace if 12 <= onset < 13.5][:1] == [13]


# --- the player plays: jazzd rests or thins out ---------------------------------------------

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 1.0])
def test_jazzd_overlaps_the_player_no_more_than_the_overlap_setting(bundle, seed, share):
    engine, clock = duet(bundle, seed=seed, overlap=share)
    rng = np.random.default_rng(seed)
    player, beat = [], 3.0
    for _ in range(3):  # three phrases of 4-10 notes with gaps of 1-3 beats between them
        notes = [int(p) for p in rng.integers(62, 80, int(rng.integers(4, 11)))]
        step = float(rng.choice([0.5, 1.0, 1 / 3]))
        player += phrase(beat, notes, step=step, gate=step * float(rng.choice([0.6, 0.9])))
        beat = round(player[-1][1] + float(rng.choice([1.0, 2.0, 3.0])))
    play(clock, player)
    sent = clock.stop((beat + 4) * SPB)
    mine = intervals(sent)
    theirs = [(on * SPB, off * SPB) for on, off, _ in player]
    sounding = sum(b - a for a, b in theirs)
    # The budget counts the player's notes on the grid (an onset may be heard up to 1/24
    # beat from where it was played): a little slack per note.
    slack = len(player) * SPB / 24
    assert overlap(mine, theirs) <= share * sounding + slack + 1e-9
    if share == 0.0:
        assert engine.stats.aside_notes == 0
    assert mine, "jazzd played between the phrases"


def test_with_overlap_jazzd_thins_out_under_the_player_rather_than_stopping(bundle):
    """Under a long phrase, jazzd's line goes on thinned: some notes, fewer than it plays
    on its own, and more the higher the overlap."""
    counts = {}
    for share in (0.0, 0.3, 1.0):
        _, clock = duet(bundle, seed=3, overlap=share)
        play(clock, phrase(4, [64, 65, 67, 69] * 4, step=1.0, gate=0.95))  # 16 beats of quarter notes
        sent = clock.run_until(19 * SPB)
        counts[share] = sum(1 for e in sent if e.kind == "on" and 4.5 * SPB < e.t < 19 * SPB)
    assert counts[0.0] == 0 < counts[0.3] < counts[1.0]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("share", [0.1, 1.0])
def test_under_the_player_jazzd_moves_in_eighths_and_comes_in_on_a_beat(bundle, seed, share):
    """Under a sixteenth-note phrase jazzd's line is no busier than eighths (no value
    shorter than ASIDE_MIN_BEATS), and after resting until the budget holds an eighth it
    comes in with a note, on the beat it goes on from (at the default share, every note
    it plays under the player), even from a model that would rather rest (every rest
    as likely as the likeliest value)."""
    engine, clock = duet(bundle, seed=seed, overlap=share)
    runtime, (rests, _) = engine.soloist.runtime, engine.soloist._rest_table
    step = runtime.step

    def resting(token, features):
        probs = step(token, features).copy()
        probs[rests] = probs.max()
        return probs / probs.sum()

    runtime.step = resting
    play(clock, phrase(3, [60 + (5 * k) % 12 for k in range(96)], step=0.25, gate=0.2))  # 24 beats, 80% held
    sent = clock.stop(30 * SPB)
    under = [(on / SPB, off / SPB) for on, off in intervals(sent) if 3.5 * SPB < on < 26.5 * SPB]
    assert len(under) >= (3 if share < 0.5 else 12) and engine.stats.aside_notes >= len(under)
    assert all(off - on >= ASIDE_MIN_BEATS - 1e-6 for on, off in under), under
    if share < 0.5:
        assert all(abs(on - round(on)) < 1e-6 for on, _ in under), under


def test_with_the_shipped_model_the_line_under_the_player_keeps_to_eighths_on_the_grid():
    """The shipped vocabulary holds values of 0.583, 0.6, 0.875 beats: drawn under the
    player, the next value would start off the grid and the beat would cut it short.
    So the line draws only values that end on the grid: every note it sounds under the
    player lasts an eighth or more, from a grid point to a grid point."""
    shipped = load_bundle(default_model())
    for seed in range(3):
        _engine, clock = duet(shipped, seed=seed, overlap=1.0)
        play(clock, phrase(3, [60 + (5 * k) % 12 for k in range(160)], step=0.25, gate=0.2))  # 40 beats
        sent = clock.stop(46 * SPB)
        under = [(on / SPB, off / SPB) for on, off in intervals(sent) if 3.5 * SPB < on < 42.5 * SPB]
        assert len(under) >= 20
        assert all(off - on >= ASIDE_MIN_BEATS - 1e-6 and on_grid(on) and on_grid(off) for on, off in under), under


def test_the_budget_counts_a_note_that_waits_to_be_heard(bundle):
    """A note that has ended but waits to be handed over (it may run on to the next)
    still counts as the player's sounding time for the line under the player."""
    engine, clock = duet(bundle, overlap=1.0)
    play(clock, phrase(4, [60, 62], step=0.5, gate=0.3))  # sounding 4.0-4.333 and 4.5-4.75
    clock.run_until(4.9 * SPB)
    assert engine.listener.waiting_beats == pytest.approx(0.25)  # (the second is not handed over yet)
    assert engine._player_time(4.9) == pytest.approx(1 / 3 + 1 / 4)


# --- gaps ----------------------------------------------------------------------------------

@pytest.mark.parametrize("end", [8.0, 7.75, 7.5])
def test_a_two_beat_gap_is_filled_from_the_next_beat(bundle, end):
    """The player's phrase ends at `end` and comes back 2 beats later: jazzd's line
    resumes on the next beat after half a beat of silence, and is cut when the player
    comes back."""
    engine, clock = duet(bundle, overlap=0.0)
    line = [(4 + i * 0.5 + 0.02, min(4 + i * 0.5 + 0.45, end - 0.03), p)
            for i, p in enumerate(LINE) if 4 + i * 0.5 < end]
    back = end + 2
    play(clock, line + phrase(back, ANSWER))
    sent = clock.run_until((back + 3) * SPB)
    fill = int(np.floor(end + 0.5)) + 1  # 9 after 8.0 and 7.75, 8 after 7.5
    assert [onset for onset, *_ in engine.trace if end <= onset < back][:1] == [fill]
    ons = [e.t / SPB for e in sent if e.kind == "on" and end * SPB < e.t < (back + 0.02) * SPB]
    assert ons and min(ons) >= fill - 1e-9
    released = [e.t / SPB for e in sent if e.kind == "off" and fill * SPB < e.t <= (back + 0.02) * SPB]
    assert released and max(released) <= back + 0.02 + 1e-9   # nothing of the fill sounds on
    assert not [e for e in sent if e.kind == "on" and (back + 0.02) * SPB <= e.t < (back + 2) * SPB]


def test_a_rest_shorter_than_gap_beats_is_not_filled(bundle):
    _, clock = duet(bundle, overlap=0.0)
    play(clock, phrase(4, LINE[:4]) + phrase(6.4, LINE[4:]))  # a rest of 0.4 beats at 5.95-6.42
    sent = clock.run_until(8.0 * SPB)
    assert not [e for e in sent if e.kind == "on" and 2.01 < e.t < 8.0 * SPB]


# --- what jazzd plays after continues from what it heard ------------------------------------

def test_the_model_hears_the_player_and_jazzd_continues_from_it(bundle):
    """Two duets alike but for the player's notes: jazzd's line before the player is the
    same, after the player it differs (it continues from what the model heard); and the
    model heard each of the player's values, encoded over the chord, where they were
    played."""
    def run(pitches):
        engine, clock = duet(bundle, seed=5, overlap=0.0)
        play(clock, phrase(4, pitches))
        return engine, log(clock.run_until(12 * SPB))

    a, sent_a = run(LINE)
    b, sent_b = run([p + 3 for p in LINE])
    before = [e for e in sent_a if e[0] < 2.0]
    assert before and before == [e for e in sent_b if e[0] < 2.0]
    assert [e for e in sent_a if e[0] > 4.0] != [e for e in sent_b if e[0] > 4.0]
    assert [v for _, v, _ in a.heard] != [v for _, v, _ in b.heard]
    assert [v.split(",")[1] for _, v, _ in a.heard] == ["0.500"] * len(LINE)  # heard to the next note
    assert all(v[0] in "CSAX" for _, v, _ in a.heard)


def test_the_player_coming_in_rolls_the_model_back_to_the_players_onset(bundle):
    """The player comes in halfway through a long note of jazzd's: that note is released
    at once, the model hears it as cut short there, and the player's note from its own
    onset, not from where jazzd's note would have ended."""
    for seed in range(40):  # the first seed whose line has a note of a beat or more after beat 8
        engine, clock = duet(bundle, seed=seed, overlap=0.0)
        clock.run_until(7.9 * SPB)
        long = [(b, v, m) for b, v, m, _ in engine.trace
                if m is not None and b >= 8 and float(v.split(",")[1]) >= 1.0]
        if long:
            break
    else:
        pytest.fail("no seed planned a long note")
    onset, value, midi = long[0]
    at = onset + 0.5
    heard = []
    hear = engine.soloist.hear
    engine.soloist.hear = lambda v, *a, **k: (heard.append(v), hear(v, *a, **k))[1]
    play(clock, [(at, at + 0.45, 72)])
    sent = clock.run_until((at + 3) * SPB)
    offs = [e for e in sent if e.kind == "off" and e.number == midi and e.t > onset * SPB]
    assert offs and offs[0].t == pytest.approx(at * SPB)
    assert heard[0] == value.replace(value.split(",")[1], "0.500", 1)  # jazzd's note, cut short
    assert engine.heard[0][0] == at and engine.heard[0][2] == 72


@pytest.mark.shared
@pytest.mark.slow
def test_every_validation_solo_played_in_a_duet_runs_through_on_the_beat():
    """The shipped model's 41 validation solos (WJD), each played into a duet as a
    keyboard player would (the melody, its changes in the left hand), at 140 bpm: the
    engine hears every note and never raises, and jazzd's notes keep the beat.  Real
    phrases come in right after jazzd's tuplets: in BranfordMarsalis_TheNearnessOfYou
    (seed 0) three 0.111s left jazzd's line 1/3000 beat short of the triplet the player
    came in on, and the engine raised on the rest of length 0.000 it tried to hear."""
    from jazzd.data.ingest.run import expand, read_source
    from jazzd.judge.report import select_real
    from jazzd.play.offline import hands, left_hand
    from jazzd.play.schedule import time_key

    from .conftest import WJD, need

    shipped = load_bundle(default_model())
    jobs, _ = select_real(shipped, expand([str(need(WJD))], "auto"), "validation")
    assert len(jobs) == 41
    tempo = 140.0
    spb = 60.0 / tempo
    played = heard = 0
    for path, fmt in jobs:
        piece = read_source(path, fmt)
        engine = Engine(Runtime(shipped), np.random.default_rng(0), Settings(mode="duet"))
        melody, chords = hands(engine.settings)
        line = sorted((e.offset, e.dur, e.midi) for b in piece.bars for e in b.elements if e.midi is not None)
        line = [n for n in line if not engine.is_chord_hand(n[2], melody)]
        events = []
        for k, (onset, dur, midi) in enumerate(line):
            end = max(min(onset + dur, line[k + 1][0]) if k + 1 < len(line) else onset + dur, onset + 1e-3)
            events += [(NoteOn(onset * spb, midi, 80, melody), 2), (NoteOff(end * spb, midi, melody), 0)]
        held: list[int] = []
        for beat, chord in (c for b in piece.bars for c in b.chords):
            voiced = [p for p in left_hand(chord, engine.settings.split) if engine.is_chord_hand(p, chords)]
            events += [(NoteOff(beat * spb, p, chords), 0) for p in held if p not in voiced]
            events += [(NoteOn(beat * spb, p, 60, chords), 1) for p in voiced if p not in held]
            held = voiced
        events.sort(key=lambda e: (time_key(e[0].t), e[1]))
        first = int(np.floor(piece.bars[0].start)) - 1
        clock = ManualClock(engine, tempo=tempo, start=first * spb, first_beat=first)
        for event, _order in events:
            clock.feed(event)
        end = piece.bars[-1].start + piece.bars[-1].length
        sent = clock.stop(end * spb)
        # on the grid as planned (the feel moves the notes as played: `Out.grid` is where from)
        onsets, across = {}, []
        for e in sent:
            beat = (e.t if e.grid is None else e.grid) / spb
            if e.kind == "on":
                onsets[e.number] = beat
            elif e.number in onsets:
                onset = onsets.pop(e.number)
                played += 1
                if not on_grid(onset) and beat > np.floor(onset + 1e-6) + 1 + 1e-6:
                    across.append(onset)
        assert across == [], (piece.name, across[:5])
        heard += engine.stats.heard_notes
    assert played > 2_500 and heard > 10_000


def test_a_silence_too_short_to_write_is_passed_over_not_heard(bundle):
    """A sliver of silence between the line and the player's note (float error that no
    grid point absorbs) would be written "R,0.000", which is no value: hearing it raised,
    and the daemon dropped the player's note with it.  It is passed over: the cursor
    moves on and the model hears nothing; a real short rest is still heard."""
    engine, _clock = duet(bundle)
    solo = engine.soloist
    engine._cursor = 3.0 - 0.0003
    engine._hear_rest(3.0)
    assert engine._cursor == 3.0 and solo.prev_token == solo.runtime.bos
    engine._cursor = 3.0 - 1 / 48
    engine._hear_rest(3.0)
    assert engine._cursor == 3.0 and solo.vocab.value(solo.prev_token).startswith("R,")
