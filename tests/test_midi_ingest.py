"""Reading any MIDI file into a Piece: melody choice, quantisation, rests, bars, chords."""

from __future__ import annotations

import os
import time
from pathlib import Path

import mido
import pytest

from jazzd.data.ingest.midi import read
from jazzd.errors import InputError
from jazzd.music.chordrec import recognize

TPB = 480
SHARED = Path(os.environ.get("JAZZD_SHARED") or Path(__file__).resolve().parents[2] / "shared")
WJD = SHARED / "data" / "wjazzd" / "midi"
METHENY = SHARED / "data" / "seed" / "original_metheny.mid"


class T(int):
    """A time in ticks rather than quarter notes."""


def ticks(x) -> int:
    return x if isinstance(x, T) else round(x * TPB)


def track(name, notes, channel=0, extra=()):
    """A track from (start, length, pitch) in quarter notes, or ticks where marked T."""
    events = []
    for start, length, pitch in notes:
        on = ticks(start)
        off = on + ticks(length)
        events += [(on, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=90)),
                   (off, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0))]
    events += [(t, -1, m) for t, m in extra]
    t = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        t.append(msg.copy(time=tick - now))
        now = tick
    return t


def write(tmp_path, *tracks, name="t.mid"):
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    mid.tracks.extend(tracks)
    path = tmp_path / name
    mid.save(path)
    return path


def els(bar):
    return [(pytest.approx(e.offset), pytest.approx(e.dur), e.midi) for e in bar.elements]


def syms(bar):
    return [(o, c.symbol) for o, c in bar.chords]


def test_melody_and_chord_track(tmp_path):
    lead = track("Lead", [(0, 1, 72), (1, 0.5, 76), (1.5, 0.5, 79), (3, 1, 84),
                          (T(4 * TPB + 7), T(2 * TPB - 12), 81), (T(6 * TPB - 5), 2, 77)])
    piano = track("Piano", [(0, 4, p) for p in (48, 52, 55, 58)]
                  + [(4, 2, p) for p in (53, 57, 60, 63)]
                  + [(6, 2, p) for p in (46, 50, 53, 56)], channel=1)
    piece = read(write(tmp_path, piano, lead))
    assert piece.name == "t"
    assert piece.meta["melody_track"] == "1 'Lead' channel 1"
    assert piece.meta["chords_from"] == "0 'Piano' channel 2"
    assert [(b.start, b.length) for b in piece.bars] == [(0.0, 4.0), (4.0, 4.0)]
    assert els(piece.bars[0]) == [(0, 1, 72), (1, 0.5, 76), (1.5, 0.5, 79), (2, 1, None), (3, 1, 84)]
    assert els(piece.bars[1]) == [(4, 2, 81), (6, 2, 77)]
    assert syms(piece.bars[0]) == [(0.0, "C7")]
    assert syms(piece.bars[1]) == [(4.0, "F7"), (6.0, "Bb7")]
    values, onsets, chords = piece.encode()
    assert values[0] == "C,1.000"  # the first note of a bar has no interval window
    assert values[3] == "R,1.000"
    assert values[5] == "C,2.000"  # first of bar 2: no window
    assert [v.split(",")[0] for v in values] == ["C", "C", "C", "R", "C", "C", "C"]
    assert all(v.count("<") == 1 for v in values[1:3] + values[4:5] + values[6:])
    assert onsets == [0, 1, 1.5, 2, 3, 4, 6]
    assert [c.symbol for c in chords] == ["C7"] * 5 + ["F7", "Bb7"]


def test_melody_only_infers_chords(tmp_path):
    notes = [(k, 1, p) for k, p in enumerate([60, 64, 67, 72, 65, 69, 72, 77, 67, 71, 74, 77])]
    piece = read(write(tmp_path, track("Sax", notes)))
    assert piece.meta["chords_from"] == "melody"
    assert [syms(b) for b in piece.bars] == [[(0.0, "C")], [(4.0, "F")], [(8.0, "G7")]]
    assert els(piece.bars[2]) == [(8, 1, 67), (9, 1, 71), (10, 1, 74), (11, 1, 77)]
    assert [v.split(",")[0] for v in piece.encode()[0]] == ["C"] * 12


def test_overlaps_keep_the_highest_and_cut_at_the_next_onset(tmp_path):
    notes = [(0, 1, 60), (0, 1, 64), (1, 2, 67), (2, 1.5, 65), (T(2 * TPB + 20), 1, 62)]
    piece = read(write(tmp_path, track("Keys", notes)))
    # 62 starts with 65 after quantising (20 ticks late): the higher 65 wins
    assert els(piece.bars[0]) == [(0, 1, 64), (1, 1, 67), (2, 1.5, 65)]


def test_triplets_and_sixteenths_snap_per_beat(tmp_path):
    trip = [(T(0), T(150), 60), (T(170), T(150), 62), (T(315), T(150), 64)]  # jittered
    six = [(T(480 + 120 * i + (-8, 6, -3, 9)[i]), T(100), 65 + i) for i in range(4)]
    piece = read(write(tmp_path, track("Flute", trip + six)))
    third = 1 / 3
    assert els(piece.bars[0]) == [(0, third, 60), (third, third, 62), (2 * third, third, 64),
                                  (1, 0.25, 65), (1.25, 0.25, 66), (1.5, 0.25, 67), (1.75, 0.25, 68)]
    assert [v.split(",")[1] for v in piece.encode()[0]] == ["0.333"] * 3 + ["0.250"] * 4


def test_short_notes_last_one_grid_step_and_gaps_become_rests(tmp_path):
    notes = [(0, T(10), 60), (1, 0.2, 62), (9, 1, 64)]  # a 10-tick blip, a gap across two bars
    piece = read(write(tmp_path, track("Tpt", notes)))
    assert [b.start for b in piece.bars] == [0.0, 4.0, 8.0]
    assert els(piece.bars[0]) == [(0, 0.25, 60), (0.25, 0.75, None), (1, 0.25, 62), (1.25, 2.75, None)]
    assert els(piece.bars[1]) == [(4, 4, None)]  # a whole bar of rest is kept
    assert els(piece.bars[2]) == [(8, 1, None), (9, 1, 64)]


def test_leading_bars_skipped_and_first_chord_holds_backwards(tmp_path):
    lead = track("Lead", [(5, 1, 76), (6, 1, 79), (8, 2, 81)])
    piano = track("Piano", [(8, 4, p) for p in (41, 45, 48, 52)], channel=1)  # Fmaj7 from bar 3
    piece = read(write(tmp_path, lead, piano))
    assert [b.start for b in piece.bars] == [4.0, 8.0]
    assert els(piece.bars[0]) == [(4, 1, None), (5, 1, 76), (6, 1, 79), (7, 1, None)]
    assert syms(piece.bars[0]) == [(4.0, "Fj7")] and syms(piece.bars[1]) == [(8.0, "Fj7")]


def test_time_signatures_and_drums(tmp_path):
    sigs = [(0, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
            (6 * TPB, mido.MetaMessage("time_signature", numerator=2, denominator=4))]
    melody = track("Voice", [(k, 1, 60 + k) for k in range(10)], extra=sigs)
    drums = track("Drums", [(k / 2, 0.25, 81) for k in range(20)], channel=9)
    piece = read(write(tmp_path, drums, melody))
    assert piece.meta["melody_track"] == "1 'Voice' channel 1"
    assert [(b.start, b.length) for b in piece.bars] == [(0, 3), (3, 3), (6, 2), (8, 2)]
    # performed files: a signature before the first note holds from the start, a later
    # change moves to the nearest beat and cuts the bar it falls in short
    late = [(T(100), mido.MetaMessage("time_signature", numerator=3, denominator=4)),
            (T(7 * TPB - 30), mido.MetaMessage("time_signature", numerator=4, denominator=4))]
    melody = track("Voice", [(k + 0.5, 1, 60 + k) for k in range(12)], extra=late)
    piece = read(write(tmp_path, melody, name="late.mid"))
    assert [(b.start, b.length) for b in piece.bars] == [(0, 3), (3, 3), (6, 1), (7, 4), (11, 4)]
    assert piece.meta["time_signatures"] == [(0.0, 3, 4), (7.0, 4, 4)]


def test_a_single_polyphonic_track_gives_both_melody_and_chords(tmp_path):
    notes = [(k, 1, p) for k in range(4) for p in (48, 52, 55)] + [(k, 1, 72 + k % 2) for k in range(4)]
    piece = read(write(tmp_path, track("Piano", notes)))
    assert piece.meta["chords_from"] == piece.meta["melody_track"]
    assert els(piece.bars[0]) == [(0, 1, 72), (1, 1, 73), (2, 1, 72), (3, 1, 73)]
    assert syms(piece.bars[0]) == [(0.0, "C")]


def test_type0_file_splits_channels(tmp_path):
    both = track("All", [(k, 1, 72 + k) for k in range(4)])
    chords = track("", [(0, 4, p) for p in (50, 53, 57, 60)], channel=1)
    merged = mido.merge_tracks([both, chords])
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    mid.tracks.append(merged)
    mid.save(tmp_path / "zero.mid")
    piece = read(tmp_path / "zero.mid")
    assert (piece.meta["melody_track"], piece.meta["chords_from"]) == (
        "0 'All' channel 1", "0 'All' channel 2")
    assert syms(piece.bars[0]) == [(0.0, "Dm7")]
    assert [e.midi for e in piece.bars[0].elements] == [72, 73, 74, 75]


def test_chosen_tracks(tmp_path):
    low = track("Tenor sax", [(k, 1, 50 + k) for k in range(8)])
    high = track("Flute", [(k, 1, 80 - k) for k in range(8)], channel=1)
    path = write(tmp_path, high, low)
    assert read(path).meta["melody_track"].startswith("0 'Flute'")
    assert read(path, melody_track="tenor").meta["melody_track"] == "1 'Tenor sax'"
    assert read(path, melody_track=1).bars[0].elements[0].midi == 50
    assert read(path, melody_track="1").bars[0].elements[0].midi == 50
    with pytest.raises(InputError, match=r"no track 'Piano'; the tracks are: 0 'Flute', 1 'Tenor sax'"):
        read(path, melody_track="Piano")
    with pytest.raises(InputError, match="no track 7"):
        read(path, chord_track=7)


def test_no_chord_anywhere_falls_back_to_the_commonest_pitch_classes(tmp_path):
    piece = read(write(tmp_path, track("Horn", [(k, 1, 62) for k in range(6)])))
    chord = piece.bars[0].chords[0][1]
    assert chord.root == 2 and chord.pcs == frozenset({2})
    assert len(piece.encode()[0]) == 6
    fifths = read(write(tmp_path, track("Horn", [(k, 1, (60, 55)[k % 2]) for k in range(6)]), name="b.mid"))
    assert fifths.bars[0].chords[0][1] == recognize([0, 7])


@pytest.mark.parametrize(("content", "problem"), [
    (b"this is not a midi file at all", "not a MIDI file"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01", "not a MIDI file"),  # truncated
])
def test_junk_files(tmp_path, content, problem):
    path = tmp_path / "junk.mid"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as err:
        read(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_empty_files_no_notes_and_missing_files(tmp_path):
    empty = tmp_path / "empty.mid"
    mido.MidiFile(type=1).save(empty)
    with pytest.raises(InputError, match="empty MIDI file"):
        read(empty)
    meta = write(tmp_path, mido.MidiTrack([mido.MetaMessage("track_name", name="x"),
                                           mido.MetaMessage("set_tempo", tempo=500000)]),
                 name="meta.mid")
    with pytest.raises(InputError, match="no notes"):
        read(meta)
    drums = write(tmp_path, track("Kit", [(0, 1, 36)], channel=9), name="drums.mid")
    with pytest.raises(InputError, match="only drum notes"):
        read(drums)
    with pytest.raises(InputError, match="no such file"):
        read(tmp_path / "missing.mid")


@pytest.mark.shared
@pytest.mark.slow
def test_all_wjd_midi_files():
    files = sorted(WJD.glob("*.mid")) if WJD.is_dir() else []
    if not files:
        pytest.skip(f"no WJD MIDI files under {WJD} (set JAZZD_SHARED)")
    t0 = time.perf_counter()
    counts = {}
    for path in files:
        piece = read(path)
        counts[path.name] = len(piece.encode()[0])
        assert piece.meta["chords_from"] == "melody"
    dt = time.perf_counter() - t0
    print(f"\n{len(files)} WJD MIDI files read and encoded in {dt:.2f} s "
          f"({sum(counts.values())} values, fewest {min(counts.values())})")
    assert all(n > 50 for n in counts.values()), {k: n for k, n in counts.items() if n <= 50}


@pytest.mark.shared
def test_metheny_multitrack():
    if not METHENY.is_file():
        pytest.skip(f"{METHENY} is absent (set JAZZD_SHARED)")
    piece = read(METHENY)
    print(f"\nmelody {piece.meta['melody_track']}, chords {piece.meta['chords_from']}")
    assert piece.meta["chords_from"] != "melody"
    assert not any(word in piece.meta["melody_track"] for word in ("Piano", "Bass", "String", "Organ"))
    assert "Piano" in piece.meta["chords_from"]
    values = piece.encode()[0]
    assert len(values) > 500
    assert len({c.symbol for b in piece.bars for _, c in b.chords}) > 5


def test_block_chords_can_be_left_out_of_a_line_that_shares_their_part(tmp_path):
    """The seed's deepjazz outputs: line and accompaniment on one channel, where the
    accompaniment's top note would otherwise pass for the melody."""
    block = [(0, 2, p) for p in (55, 58, 62, 65)] + [(2, 2, p) for p in (53, 57, 60, 64)]
    melody = [(0.5, 0.5, 63), (1, 0.5, 61), (2.5, 1, 59)]
    path = write(tmp_path, track("All", block + melody))
    assert els(read(path).bars[0])[0] == (0, 0.5, 65)  # by default the block's top note
    piece = read(path, drop_blocks=True)
    assert els(piece.bars[0]) == [(0, 0.5, None), (0.5, 0.5, 63), (1, 0.5, 61), (1.5, 1, None), (2.5, 1, 59)]
    assert syms(piece.bars[0]) == syms(read(path).bars[0])  # the chords still come from the blocks
    assert read(write(tmp_path, track("All", block), name="b.mid"), drop_blocks=True).bars  # all blocks: kept
