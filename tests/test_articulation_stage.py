"""The articulation step of the rendition (`jazzd.play.articulation`): jazzd's notes sound
for the WJD held share of their span.  Legato is the grid's lengths exactly; wjd never
changes which notes are played or when they start, only shortens them (never past the
value's end, never under 30 ms); every note on keeps its note off, in every mode, with
the player cutting in and with a stop; with articulation = player, jazzd holds its notes
as the player holds theirs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jazzd.judge.metrics import Note as SoloNote
from jazzd.judge.metrics import Solo
from jazzd.judge.report import as_rendered
from jazzd.model.articulation import cumulative, draw, shipped_articulation
from jazzd.model.bundle import load_bundle
from jazzd.model.runtime import Runtime
from jazzd.music.chords import parse_chord
from jazzd.play.articulation import MIN_AUDIBLE_S, Articulate, tatum
from jazzd.play.engine import Engine, Settings
from jazzd.play.events import NoteOff, NoteOn
from jazzd.play.listener import Listener
from jazzd.play.offline import ManualClock, answer_call, render
from jazzd.play.render import Note, on_grid

from .tinymodel import make_bundle


@pytest.fixture(scope="module")
def table():
    t = shipped_articulation()
    if t is None:
        pytest.skip("needs models/jazzd-wjd.articulation.json")
    return t


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("tiny") / "tiny.npz"))


def engine(bundle, table, seed=1, **kw):
    return Engine(Runtime(bundle), np.random.default_rng(seed), Settings(**kw), articulation=table)


def solo(bundle, table, articulation, seed=1, bars=16, tempo=140, **kw):
    return render(engine(bundle, table, seed, mode="solo", articulation=articulation, **kw), bars, tempo)


# --- the table's truncated draw ---------------------------------------------------------------

def test_cumulative_inverts_draw_and_a_truncated_draw_stays_inside(table):
    q = table.cell(0.5, 0.0, 140, False)[2]
    for u in (0.07, 0.3, 0.5, 0.9):
        assert cumulative(q, draw(q, u)) == pytest.approx(u, abs=1e-9)
    rng = np.random.default_rng(0)
    shares = [table.held_share(1.0, 0.0, 140, False, rng, 0.75, 1.0) for _ in range(400)]
    assert min(shares) >= 0.75 and max(shares) <= 1.0
    full = [table.held_share(1.0, 0.0, 140, False, rng) for _ in range(400)]
    assert min(full) < 0.75  # the cut is doing something
    assert tatum(0.0, 1.0) == 0.5 and tatum(0.25, 0.5) == 0.25 and tatum(1 / 3, 2 / 3) == pytest.approx(1 / 3)


# --- legato and wjd -------------------------------------------------------------------------

def test_legato_is_the_grid_and_wjd_only_shortens(bundle, table):
    legato = solo(bundle, table, "legato", feel="straight")
    assert all(n.grid is None for n in legato)  # nothing moved: as jazzd played before
    wjd = solo(bundle, table, "wjd", feel="straight")
    assert on_grid(wjd) == legato  # the same notes, values and onsets
    assert [n.onset for n in wjd] == [n.onset for n in legato]
    spb = 60 / 140
    shorter = 0
    for w, g in zip(wjd, legato, strict=True):
        assert w.dur <= g.dur + 1e-9
        assert w.dur >= min(MIN_AUDIBLE_S / spb, g.dur) - 1e-9
        shorter += w.dur < g.dur - 1e-6
    assert shorter > len(wjd) / 2
    none = solo(bundle, table, "wjd", feel="straight", articulation_amount=0.0)
    assert [(n.onset, n.dur) for n in none] == [(n.onset, n.dur) for n in legato]


def test_the_engines_choices_and_the_feel_do_not_change_with_the_articulation(bundle, table):
    a = solo(bundle, table, "legato", seed=3)  # feel wjd: its spread from its own stream too
    b = solo(bundle, table, "wjd", seed=3)
    assert [(n.onset, n.midi, n.velocity, n.value) for n in a] == [(n.onset, n.midi, n.velocity, n.value) for n in b]


def test_tiling_eighths_are_held_as_the_players_hold_them(bundle, table):
    shares = []
    for seed in range(6):
        notes = solo(bundle, table, "wjd", seed=seed, bars=32, feel="straight")
        for (a, b), (ga, gb) in zip(itertools.pairwise(notes), itertools.pairwise(on_grid(notes)), strict=True):
            if abs(ga.dur - 0.5) < 1e-9 and abs(gb.onset - ga.onset - 0.5) < 1e-9:
                shares.append(a.dur / (b.onset - a.onset))
    assert len(shares) >= 30
    median = table.median(0.5, 0.0, 140, False)  # about 0.87
    assert abs(np.median(shares) - median) <= 0.05
    assert np.mean(np.array(shares) >= 0.95) < 0.5  # legato: all of them


def test_without_a_table_every_note_sounds_its_value():
    a = Articulate(None, np.random.default_rng(0))
    notes = [(0.0, 0.5), (0.5, 1.0)]
    assert a.offs(notes, notes, 1.0, False, "wjd", 1.0, 120) == notes


# --- no hanging notes, no wrong overlaps ------------------------------------------------------

events = st.lists(st.tuples(st.floats(0, 20), st.integers(36, 96), st.integers(1, 127),
                            st.floats(0.05, 2.0)), max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events, st.sampled_from(["call", "duet", "solo"]), st.integers(0, 1000), st.sampled_from([90, 160, 280]),
       st.sampled_from(["wjd", "player"]), st.sampled_from(["wjd", "straight"]))
def test_every_note_on_gets_its_off_before_the_next_note_and_after_30_ms(bundle, table, notes, mode, seed,
                                                                         tempo, articulation, feel):
    """Random playing (calls cut by the player, duets taken over): every note on gets
    exactly one note off, never after a note on of the same pitch, jazzd's line never
    sounds two notes at once, and a note off the articulation placed comes at least
    30 ms after its note on (or at its value's end, if that is sooner)."""
    eng = engine(bundle, table, seed, mode=mode, articulation=articulation, feel=feel)
    clock = ManualClock(eng, tempo=tempo)
    script = [NoteOn(0.0, n, 70) for n in (48, 52, 55)]  # a chord to play over
    for t, note, vel, length in notes:
        script += [NoteOn(t, note, vel), NoteOff(t + length, note)]
    for ev in sorted(script, key=lambda e: e.t):
        clock.feed(ev)
    sent = clock.stop(24.0)  # stops mid-line: the sounding note is released
    sounding: dict[int, object] = {}
    for e in sent:
        if e.kind == "on":
            assert e.number not in sounding  # never struck again before its off
            assert not sounding  # one line: the note before has ended
            sounding[e.number] = e
        elif e.kind == "off":
            on = sounding.pop(e.number)
            assert e.t >= on.t
            if e.grid is not None and on.grid is not None and e.t < 24.0 - 1e-9:  # placed, not cut
                assert e.t - on.t >= min(MIN_AUDIBLE_S, 0.5 * (e.grid - on.grid)) - 1e-6
    assert sounding == {}


def test_the_player_cutting_in_releases_a_shortened_note_once(bundle, table):
    eng = engine(bundle, table, 2, mode="duet", articulation="wjd")
    clock = ManualClock(eng, tempo=120)
    for n in (48, 52, 55):
        clock.feed(NoteOn(0.0, n, 70))
    clock.run_until(6.13)
    clock.feed(NoteOn(6.13, 72, 90))  # the player takes over mid-note
    clock.feed(NoteOff(7.0, 72))
    sent = clock.stop(8.0)
    ons = [e for e in sent if e.kind == "on"]  # jazzd's (the player's notes are not echoed)
    offs = [e for e in sent if e.kind == "off"]
    assert ons and len(offs) == len(ons)
    assert not [e for e in ons if 6.13 <= e.t < 7.0]
    cut = [e for e in offs if e.t == pytest.approx(6.13)]
    assert len(cut) == 1 and cut[0].grid is None  # the note sounding then, released once, there


# --- the player's articulation -----------------------------------------------------------------

def test_the_listener_keeps_the_players_raw_note_lengths():
    lis = Listener()
    lis.note_on(0.02, 72, 90, None)
    lis.note_off(0.31, 72)
    lis.note_on(0.52, 74, 90, None)
    lis.note_on(1.03, 76, 90, None)  # cuts the one before: legato
    assert lis.raw_notes(16) == [(0.02, 0.31), (0.52, 1.03), (1.03, None)]
    lis.reset()
    assert lis.raw_notes(16) == []


def call(held, bars=4, pitches=(72, 74, 76, 77, 79, 77, 76, 74)):
    return [Note(k * 0.5, held * 0.5, pitches[k % len(pitches)], 90) for k in range(bars * 8)]


def test_with_articulation_player_jazzd_holds_its_notes_as_the_player_does(table):
    """A player playing eighths staccato (40% of the gap) or legato (100%): jazzd's
    answers hold their notes shorter after the staccato call than after the legato one,
    and shorter than under wjd, which ignores the player."""
    from jazzd.model.shipped import default_model

    path = default_model()
    if not path.is_file():
        pytest.skip(f"needs the shipped model {path}")
    shipped = load_bundle(path)
    chords = [(float(b), parse_chord(c)) for b, c in zip(range(0, 64, 4), ["Dm7", "G7", "Cmaj7", "A7"] * 4,
                                                          strict=True)]
    mean = {}
    for held, articulation in ((0.4, "player"), (1.0, "player"), (0.4, "wjd")):
        shares = []
        for seed in range(6):
            eng = Engine(Runtime(shipped), np.random.default_rng(seed),
                         Settings(articulation=articulation, feel="straight", melody_channel=0, chord_channel=1),
                         articulation=table)
            ans = answer_call(eng, call(held), chords, 160.0)
            if articulation == "player":
                assert eng.articulate.player is not None and eng.articulate.player[0] >= 8
                assert eng.articulate.player[1] == pytest.approx(held, abs=0.02)
            for a, b in itertools.pairwise(ans.notes):
                if b.onset - a.onset > 0:
                    shares.append(min(a.dur / (b.onset - a.onset), 1.0))
        mean[(held, articulation)] = float(np.mean(shares))
    assert mean[(0.4, "player")] < mean[(0.4, "wjd")] - 0.1
    assert mean[(0.4, "player")] < mean[(1.0, "player")] - 0.2


def test_the_run_flag_sets_the_articulation():
    from jazzd.cli import _overrides, build_parser

    args = build_parser().parse_args(["run", "--articulation", "player"])
    assert _overrides(args)["engine.articulation"] == "player"


# --- the report hears rendered lengths ------------------------------------------------------

def test_as_rendered_gives_the_notes_their_played_lengths():
    ch = parse_chord("C7")
    grid = Solo("g", (SoloNote(0.0, 0.5, 60, ch, 0, 0.0), SoloNote(0.5, 0.5, 62, ch, 0, 0.5),
                      SoloNote(1.0, 1.0, 64, ch, 0, 1.0)), (4.0,))
    played = [Note(0.0, 0.41, 60, 90, "", (0.0, 0.5)), Note(0.58, 0.9, 62, 90, "", (0.5, 0.5)),
              Note(1.0, 0.7, 64, 90)]
    out = as_rendered(grid, played)
    assert [n.onset for n in out.notes] == [0.0, 0.5, 1.0]      # onsets stay on the grid
    assert [n.dur for n in out.notes] == pytest.approx([0.41, 0.5, 0.7])  # played, at most to the next onset
