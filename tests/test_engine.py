"""The engine with a manual clock: golden event logs, properties over random input,
and the chord tracker / listener it is built from."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jazzd.model.bundle import load_bundle
from jazzd.model.runtime import Runtime
from jazzd.music.chords import parse_chord
from jazzd.play.engine import OPENING_REST, Engine, Settings
from jazzd.play.events import Control, NoteOff, NoteOn
from jazzd.play.listener import Listener, snap
from jazzd.play.offline import ManualClock
from jazzd.play.soloist import Soloist
from jazzd.play.tracker import ChordTracker

from .tinymodel import make_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("tiny") / "tiny.npz"))


def make_engine(bundle, seed=1, **kw):
    # feel = straight, articulation = legato: these tests (and the golden log) hold notes on the beat grid
    return Engine(Runtime(bundle), np.random.default_rng(seed), Settings(**{"feel": "straight", "articulation": "legato", **kw}))


def log(sent):
    return [(round(e.t, 3), e.kind, e.number, e.value) for e in sent]


def play_call(clock, pitches, start=0.0, step=0.5, gate=0.4, velocity=100):
    for i, p in enumerate(pitches):
        clock.feed(NoteOn(start + i * step + 0.01, p, velocity))
        clock.feed(NoteOff(start + i * step + gate, p))


def hold_chord(clock, t, notes, release=()):
    for n in release:
        clock.feed(NoteOff(t, n))
    for n in notes:
        clock.feed(NoteOn(t, n, 70))


# --- golden scenarios (120 bpm: a beat is 0.5 s) ----------------------------------------

CALL = [60, 62, 64, 65, 67, 65, 64, 62]  # two bars of quarter notes over C

# The answer's line keeps the beat: its notes at 9.83 and 14.83 (an eighth and a triplet
# eighth after the beat) end on the next beat (4.917-5.0 and 7.417-7.5 s).  Before the
# fix, the one at 9.83 was held for a whole beat and the rest of the answer sat a sixth
# of a beat off the grid (10.83, 11.33, 11.83, ...).
GOLDEN_TWO_BAR_CALL = [
    (4.5, "on", 59, 113), (4.75, "off", 59, 0), (4.75, "on", 64, 105), (4.917, "off", 64, 0),
    (4.917, "on", 67, 104), (5.0, "off", 67, 0), (5.0, "on", 65, 104), (5.25, "off", 65, 0),
    (5.25, "on", 59, 94), (5.75, "off", 59, 0), (5.75, "on", 56, 93), (6.0, "off", 56, 0),
    (6.0, "on", 57, 111), (6.5, "off", 57, 0), (6.5, "on", 56, 105), (6.75, "off", 56, 0),
    (6.75, "on", 55, 98), (7.25, "off", 55, 0), (7.25, "on", 60, 97), (7.417, "off", 60, 0),
    (7.417, "on", 64, 98), (7.5, "off", 64, 0), (7.5, "on", 60, 101), (8.0, "off", 60, 0),
    (8.0, "on", 64, 110), (8.5, "off", 64, 0),
]


def test_a_two_bar_call_is_answered_from_the_next_beat(bundle):
    # (the model's turn-taking: see below; the register the call sets: tests/test_register.py)
    engine = make_engine(bundle, turn_taking="silence", follow_register=False, imitation=0.0)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, CALL)
    sent = clock.run_until(12.0)
    # The call's last note ends at beat 7.83; a beat of silence later (8.83) the call is
    # over, and the answer starts on the next beat, 9 (4.5 s), for 8 beats (as long as the call).
    assert list(engine.answers) == [(9, 17)]
    assert log(sent) == GOLDEN_TWO_BAR_CALL
    assert all(chord == "C" for _, _, _, chord in engine.trace)


def test_a_chord_change_mid_answer_is_used_from_the_next_planned_beat(bundle):
    engine = make_engine(bundle)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, CALL)
    hold_chord(clock, 6.02, [53, 57, 51], release=[48, 52, 55])  # F7 (F A Eb) at beat 12.04
    clock.run_until(12.0)
    chords = [(round(beat, 3), chord) for beat, _, _, chord in engine.trace]
    # Beats up to 13 were planned before the change (look-ahead: one beat); after it, F7.
    assert [c for b, c in chords if b < 13] == ["C"] * sum(1 for b, _ in chords if b < 13)
    assert {c for b, c in chords if b >= 14} == {"F7"}


def test_the_player_coming_back_ends_the_answer_at_once(bundle):
    engine = make_engine(bundle)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, CALL)
    clock.feed(NoteOn(5.3, 72, 90))  # beat 10.6, inside the answer (beats 9 to 17)
    sent = clock.run_until(8.0)
    answer = [e for e in sent if e.t < 5.3 + 1e-9 or e.kind == "off"]
    assert [e for e in sent if e.kind == "on" and e.t >= 5.3] == []
    assert engine.stats.interrupted == 1
    ons = [e for e in answer if e.kind == "on"]
    offs = [e for e in answer if e.kind == "off"]
    assert len(ons) == len(offs)  # the note sounding at 5.3 s was released then
    assert max(e.t for e in offs) == pytest.approx(5.3)


def test_tempo_changes_are_followed_from_the_next_beat(bundle):
    engine = make_engine(bundle, mode="solo")
    clock = ManualClock(engine, tempo=120)
    clock.run_until(4.0)  # 8 beats at 120
    clock.set_tempo(4.0, 160)
    sent = clock.run_until(7.0)
    ons = [round(e.t, 6) for e in sent if e.kind == "on"]
    # Beat 9 was planned (and committed) at beat 8, at the old tempo; from beat 10 on,
    # notes are planned at 160 bpm: 0.375 s beats counted from beat 9 at 4.5 s.
    def expected_time(beat):
        return beat * 0.5 if beat < 10 else 4.5 + (beat - 9) * 0.375
    planned = {round(expected_time(b), 6) for b, _, midi, _ in engine.trace if midi is not None}
    assert ons and set(ons) <= planned
    assert any(t >= 5.0 for t in ons)


# --- properties over random input --------------------------------------------------------

events = st.lists(st.tuples(st.floats(0, 20), st.integers(36, 96), st.integers(1, 127),
                            st.floats(0.05, 2.0)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events, st.sampled_from(["call", "duet", "solo"]), st.integers(0, 1000),
       st.sampled_from([90, 120, 200]), st.booleans())
def test_every_note_on_gets_exactly_one_off_in_range_and_on_time(bundle, notes, mode, seed, tempo, pedal):
    engine = make_engine(bundle, seed=seed, mode=mode, range_low=55, range_high=84)
    clock = ManualClock(engine, tempo=tempo)
    script = []
    for t, note, vel, length in notes:
        script += [NoteOn(t, note, vel), NoteOff(t + length, note)]
    if pedal:
        script += [Control(3.0, 64, 127), Control(9.0, 64, 0)]
    for ev in sorted(script, key=lambda e: e.t):
        clock.feed(ev)  # ManualClock asserts nothing is planned in the past
    sent = clock.stop(25.0)
    sounding = {}
    for e in sent:
        if e.kind == "on":
            assert 55 <= e.number <= 84
            assert e.number not in sounding  # no overlapping notes on one pitch
            sounding[e.number] = e.t
        elif e.kind == "off":
            assert e.number in sounding, f"note off without note on: {e}"
            assert e.t >= sounding.pop(e.number)
    assert sounding == {}  # every note on got its note off


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(60, 84), min_size=2, max_size=12), st.floats(0.2, 0.9),
       st.floats(0.0, 0.49), st.integers(0, 1000))
def test_the_answer_starts_within_a_beat_of_the_end_of_call_silence(bundle, pitches, step, offset, seed):
    assume((offset + len(pitches) * step) * 2 < 15)  # within the 4-bar maximum: ended by silence
    engine = make_engine(bundle, seed=seed, turn_taking="silence")
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [50, 53, 57])
    play_call(clock, pitches, start=offset, step=step, gate=step * 0.8)
    clock.run_until(offset + len(pitches) * step + 6.0)
    last_end_beat = engine.listener.last_end
    # (the call's start as the engine heard it: an onset halfway between grid points,
    # 0.125 beat, snaps by the last bit of its arithmetic; and its length within the
    # engine's tolerance: a call from 8/12 to 1 + 8/12 is one beat, 0.9999999999999999
    # as floats, and answered)
    if last_end_beat - engine.heard[0][0] < 1.0 - 1e-6:
        assert not engine.answers  # shorter than the minimum call: ignored
        return
    (start, _end), = engine.answers
    silence_over = last_end_beat + 1.0
    assert silence_over <= start <= silence_over + 1.0 + 1e-9


# --- parts ----------------------------------------------------------------------------

def test_listener_snaps_to_quarters_and_thirds_and_cuts_overlaps():
    assert [snap(b) for b in (0.02, 0.26, 0.31, 0.49, 0.70, 0.97)] == [0, 0.25, 1 / 3, 0.5, 2 / 3, 1.0]
    lis = Listener()
    lis.note_on(0.02, 60, 90, None)
    lis.note_on(0.51, 62, 90, None)  # legato: cuts the first note at 0.5
    lis.note_off(1.2, 62)
    done = lis.take_completed()
    assert [(n.onset, n.end, n.pitch) for n in done] == [(0, 0.5, 60), (0.5, 1.25, 62)]
    assert lis.take_completed() == []


def test_a_detached_note_in_a_run_is_heard_to_the_next_onset_and_a_real_rest_stays_a_rest():
    """In a run (onsets at most half a beat apart) a note held for more than half the
    time to the next onset is heard to it, as ingest rounds a note to its tatum step; it
    waits for the next onset until none could run on from it.  A sixteenth held for half
    of an eighth's time leaves a sixteenth's rest."""
    lis = Listener()
    for k in range(4):  # sixteenths held for 80% of their length: the third ends at 0.7 -> 2/3
        lis.note_on(k * 0.25 + 0.01, 60 + k, 90, None)
        lis.note_off(k * 0.25 + 0.2, 60 + k)
    done = lis.take_completed(now=1.0)
    assert [(n.onset, n.end, n.value_end) for n in done] == [(0.0, 0.25, 0.25), (0.25, 0.5, 0.5),
                                                             (0.5, 2 / 3, 0.75)]
    assert lis.waiting_beats == 0.25  # (it sounded, and counts so, while it waits)
    assert lis.take_completed(now=1.1) == []  # the last (0.76 -> 0.95) waits: a note by 1.14 would run on
    assert [(n.onset, n.value_end) for n in lis.take_completed(now=1.15)] == [(0.75, 1.0)]
    lis.note_on(1.5, 70, 90, None)
    lis.note_off(1.74, 70)  # a sixteenth ...
    lis.note_on(2.0, 72, 90, None)  # ... and a sixteenth's rest
    lis.note_off(2.4, 72)  # an eighth held 80% from the beat: ends at 2.4 -> 7/3
    lis.note_on(2.5, 74, 90, None)
    done = lis.take_completed(now=2.5)
    assert [(n.onset, n.value_end) for n in done] == [(1.5, 1.75), (2.0, 2.5)]
    assert done[1].end == 7 / 3
    for k in range(4):  # eighths held 65%, judged as played: on the beat (ends snap to 1/3)
        lis.note_on(3 + k * 0.5, 60, 90, None)  # and off it (ends snap to 3/4) alike
        lis.note_off(3 + k * 0.5 + 0.325, 60)
    lis.note_on(5.0, 62, 90, None)
    assert [(n.onset, n.value_end) for n in lis.take_completed(now=5.0)] == \
        [(2.5, 3.0), (3.0, 3.5), (3.5, 4.0), (4.0, 4.5), (4.5, 5.0)]


def test_the_engine_hears_a_staccato_sixteenth_run_as_sixteenths(bundle):
    """A run of sixteenths played detached (80% of their length) reaches the model as
    sixteenths; before, every fourth one was heard as a sixth and a twelfth's rest."""
    engine = make_engine(bundle)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, [60, 62, 64, 65, 67, 69, 71, 72], start=0.0, step=0.125, gate=0.1)
    clock.run_until(1.5)
    heard = list(engine.heard)
    assert [round(onset, 3) for onset, _, _ in heard] == [k * 0.25 for k in range(8)]
    assert [v.split(",")[1] for _, v, _ in heard[:-1]] == ["0.250"] * 7
    assert engine.stats.heard_values == 8  # no rest between them


def test_a_restored_soloist_plays_the_same_line_again(bundle):
    soloist = Soloist(Runtime(bundle), np.random.default_rng(3))
    chord = parse_chord("C7")
    for k in range(5):
        soloist.play(k * 0.5, k == 0, chord)
    snapshot, rng = soloist.snapshot(), soloist.rng.bit_generator.state

    def line():
        return [soloist.play(k * 0.5, False, chord) for k in range(8)]

    first = line()
    for _ in range(2):  # the snapshot is not used up
        soloist.restore(snapshot)
        soloist.rng.bit_generator.state = rng
        assert line() == first


@pytest.mark.parametrize(("notes", "symbol"), [
    ((48, 52, 55), "C"), ((52, 55, 60), "C"), ((55, 60, 64), "C"),  # inversions
    ((50, 53, 57, 48), "Dm7"), ((43, 47, 50, 53), "G7"), ((41, 45, 48, 52), "Fj7"),
])
def test_tracker_names_chords_in_any_inversion_and_holds_them(notes, symbol):
    tracker = ChordTracker(split=60)
    for n in notes:
        tracker.note_on(n)
    assert tracker.chord().symbol == symbol
    for n in notes:
        tracker.note_off(n)
    assert tracker.chord().symbol == symbol  # the hand lifted: the chord holds


def test_tracker_sustain_pedal_keeps_released_notes():
    tracker = ChordTracker(split=60)
    tracker.sustain(True)
    tracker.note_on(48)
    tracker.note_off(48)
    tracker.note_on(52)
    tracker.note_on(55)
    assert tracker.chord().symbol == "C"  # C still held by the pedal
    tracker.sustain(False)  # 48 goes now; 52 and 55 are still down
    for n in (52, 55):
        tracker.note_off(n)
    assert tracker.chord().symbol == "C"
    for n in (50, 53, 57):
        tracker.note_on(n)
    assert tracker.chord().symbol == "Dm"  # with 48 still held it would not be plain Dm


def test_answer_on_the_next_bar_and_fixed_length_when_configured(bundle):
    engine = make_engine(bundle, answer_start="bar", answer_beats=3)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, CALL[:5])  # ends at beat 4.83: silence over at 5.83 -> next bar line, 8
    clock.run_until(8.0)
    assert list(engine.answers) == [(8, 11)]
    assert all(8 <= beat < 11 for beat, *_ in engine.trace)


def test_without_interrupt_the_answer_keeps_going(bundle):
    engine = make_engine(bundle, interrupt=False)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, CALL)
    clock.feed(NoteOn(5.3, 72, 90))
    sent = clock.run_until(9.0)
    assert engine.stats.interrupted == 0
    assert max(e.t for e in sent if e.kind == "on") > 7.0  # still answering after 5.3 s


def test_a_call_shorter_than_the_minimum_is_ignored(bundle):
    engine = make_engine(bundle, min_beats=2.0)
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, [60, 62])  # 1.8 beats
    assert clock.run_until(6.0) == [] and engine.stats.ignored_calls == 1


def test_duet_plays_on_over_the_chords_it_hears_and_mode_switches_release_notes(bundle):
    engine = make_engine(bundle, mode="duet")
    clock = ManualClock(engine, tempo=120)
    assert clock.run_until(2.0) == []  # no chord heard yet: nothing to play over
    hold_chord(clock, 2.0, [50, 53, 57, 48])  # Dm7
    sent = clock.run_until(10.0)
    ons = [e for e in sent if e.kind == "on"]
    assert ons and ons[0].t == pytest.approx(2.5) and ons[-1].t > 9.0
    clock._apply(engine.set_mode("call", 10.0))
    sent = clock.run_until(12.0)
    sounding = {}
    for e in sent:
        if e.kind == "on":
            sounding[e.number] = e
        else:
            sounding.pop(e.number, None)
    assert sounding == {} and not [e for e in sent if e.kind == "on" and e.t >= 10.0]


def test_settings_change_between_beats(bundle):
    engine = make_engine(bundle, mode="solo", range_low=60, range_high=72)
    clock = ManualClock(engine, tempo=120)
    clock.run_until(4.0)
    engine.settings.range_low, engine.settings.range_high = 74, 86
    engine.settings.temperature = 0.0  # greedy from now on
    sent = clock.run_until(8.0)
    ons = [e for e in sent if e.kind == "on"]
    assert {e.number for e in ons if e.t < 4.4} <= set(range(60, 73))
    assert ons[-1].number >= 74 and {e.number for e in ons if e.t > 5.0} <= set(range(74, 87))
    assert engine.soloist.sampling.temperature == 0.0


@pytest.mark.parametrize("call, length, density", [(CALL, 8, 1.0), (CALL[:2], 2, 1.0), (CALL, 8, 0.3)])
def test_an_answer_opens_with_a_note_however_much_the_model_wants_to_rest(bundle, call, length, density):
    """A model that, after a call, would rest on and on (every rest 20 times as likely
    as the likeliest value) still answers: its first note comes within OPENING_REST
    beats of the answer's start, and in the answer's first half (a short call's answer
    is short).  Seed 7 of `jazzd demo` once answered a call with two bars of rests, and
    15 of the report's 480 answers had no note.  A note the density setting drops does
    not open the turn, and density never drops the note that does."""
    engine = make_engine(bundle, turn_taking="silence", follow_register=False, imitation=0.0, density=density)
    runtime = engine.soloist.runtime
    rests, _ = engine.soloist._rest_table
    step = runtime.step

    def resting(token, features):  # the model's distribution, its rests boosted
        probs = step(token, features).copy()
        probs[rests] = 20 * probs.max()
        return probs / probs.sum()

    runtime.step = resting
    clock = ManualClock(engine, tempo=120)
    hold_chord(clock, 0.0, [48, 52, 55])
    play_call(clock, call)
    sent = clock.run_until(24.0)
    (start, end), = engine.answers
    assert end - start == length
    sounded = [e.t / 0.5 for e in sent if e.kind == "on" and e.t / 0.5 >= start - 1e-9]  # (120 bpm)
    assert sounded and sounded[0] - start <= min(OPENING_REST, length / 2) + 1e-9
    assert any(midi is None for beat, _, midi, _ in engine.trace if beat >= sounded[0])  # (it rests after)
