"""The MIDI byte codec (jazzd.live.midi): every status byte, message lengths, what is
malformed (running status, data bytes above 0x7F, wrong lengths), SysEx, the encoder of
the engine's output, and the panic sequence.  Pure and fast: no ports."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jazzd.live import midi
from jazzd.live.midi import Program, System, encode, panic_messages, parse
from jazzd.play.events import Control, NoteOff, NoteOn, Out

# The MIDI 1.0 channel messages, written out from the spec: status -> whole length.
SPEC_LENGTH = {0x8: 3, 0x9: 3, 0xA: 3, 0xB: 3, 0xC: 2, 0xD: 2, 0xE: 3}


def test_the_length_table_is_the_spec():
    assert {hi << 4: n for hi, n in SPEC_LENGTH.items()} == midi.LENGTH


@pytest.mark.parametrize("status", range(0x80, 0xF0))
def test_every_channel_status_byte_takes_exactly_its_length(status):
    want = SPEC_LENGTH[status >> 4]
    channel = status & 0x0F
    message = bytes([status, 60, 100][:want])
    event = parse(message, 1.5)
    assert not isinstance(event, str)
    if event is not None:
        assert event.t == 1.5 and event.channel == channel
    for n in range(1, 6):
        if n != want:
            assert parse(bytes([status, 60, 100, 1, 2][:n]), 0.0) == "malformed"


@pytest.mark.parametrize("status", range(0xF0, 0x100))
def test_every_system_status_byte_is_passed_on_whole(status):
    for message in (bytes([status]), bytes([status, 1]), bytes([status, 1, 2]), bytes([status, 0x7F, 0, 0, 5])):
        assert parse(message, 2.0) == System(2.0, message)


@pytest.mark.parametrize(("message", "event"), [
    (b"\x90\x3c\x64", NoteOn(0.5, 60, 100, 0)),
    (b"\x9f\x00\x01", NoteOn(0.5, 0, 1, 15)),
    (b"\x93\x3c\x00", NoteOff(0.5, 60, 3)),      # velocity 0: a note off
    (b"\x80\x3c\x40", NoteOff(0.5, 60, 0)),      # release velocity is not kept
    (b"\xb2\x40\x7f", Control(0.5, 64, 127, 2)),
    (b"\xc9\x05", Program(0.5, 5, 9)),
    (b"\xa0\x3c\x10", None),                     # poly pressure: valid, unused
    (b"\xd0\x10", None),                         # channel pressure
    (b"\xe0\x00\x40", None),                     # pitch bend
])
def test_channel_messages_become_engine_events(message, event):
    assert parse(message, 0.5) == event


@pytest.mark.parametrize("message", [
    b"\x3c\x64",            # running status: a note without its status byte
    b"\x00",
    b"\x7f\x7f\x7f",
    b"\x90\x80\x40",        # a data byte above 0x7F
    b"\x90\x3c\xff",
    b"\xb0\x40\x80",
    b"\xc0\x80",
    b"\xf8\x80",            # also in a system message other than SysEx
    b"\x90\x3c\x40\x3e\x40",  # two notes in one message (running status after the first)
    b"\x90\x3c",
    b"\x90",
])
def test_running_status_stray_data_and_high_data_bytes_are_malformed(message):
    assert parse(message, 0.0) == "malformed"


def test_empty_is_its_own_reason():
    assert parse(b"", 0.0) == "empty"


def test_sysex_of_any_content_and_size_is_passed_on():
    for message in (b"\xf0\xf7", b"\xf0\x7e\x7f\x06\x01\xf7", bytes([0xF0, *range(128)] * 40),
                    b"\xf0\x01\x02",            # unterminated
                    b"\xf0\x01\x90\x02\xf7"):   # a status byte inside
        assert parse(message, 3.0) == System(3.0, message)


def test_the_channel_filter_drops_other_channels_after_the_length_check():
    assert parse(b"\x91\x3c\x40", 0.0, channel=1) == NoteOn(0.0, 60, 64, 1)
    assert parse(b"\x90\x3c\x40", 0.0, channel=1) == "other channel"
    assert parse(b"\xc0\x01", 0.0, channel=1) == "other channel"
    assert parse(b"\x90\x3c", 0.0, channel=1) == "malformed"  # malformed first
    assert parse(b"\xf8", 0.0, channel=1) == System(0.0, b"\xf8")  # system: no channel


@given(st.binary(max_size=8), st.sampled_from([None, 0, 5, 15]))
def test_parse_never_raises_and_its_events_encode_back(data, channel):
    event = parse(data, 0.0, channel)
    assert event is None or isinstance(event, str | NoteOn | NoteOff | Control | Program | System)
    if isinstance(event, NoteOn):
        assert encode(Out(0.0, "on", event.note, event.velocity, event.channel)) == data
    elif isinstance(event, Control):
        assert encode(Out(0.0, "cc", event.control, event.value, event.channel)) == data
    elif isinstance(event, NoteOff):
        assert parse(encode(Out(0.0, "off", event.note, 0, event.channel)), 0.0) == event


def test_output_events_encode_to_their_messages():
    assert encode(Out(0.0, "on", 60, 100, 0)) == b"\x90\x3c\x64"
    assert encode(Out(0.0, "off", 60, 0, 9)) == b"\x89\x3c\x00"
    assert encode(Out(0.0, "off", 60, 55, 9)) == b"\x89\x3c\x00"  # offs always velocity 0
    assert encode(Out(0.0, "cc", 64, 0, 15)) == b"\xbf\x40\x00"
    assert encode(Out(0.0, "on", 60, 100, 16 + 2)) == b"\x92\x3c\x64"  # the channel's low nibble


# --- the panic sequence (moved from test_ports.py) ------------------------------------

def test_panic_messages_default_is_every_note_then_pedal_and_mode_messages():
    msgs = panic_messages()
    assert len(msgs) == 16 * 128 + 16 * 3 == 2096
    assert all(len(m) == 3 for m in msgs)
    assert msgs[:3] == [b"\x80\x00\x00", b"\x80\x01\x00", b"\x80\x02\x00"]
    assert msgs[:2048] == [bytes((0x80 | ch, n, 0)) for ch in range(16) for n in range(128)]
    assert msgs[2047] == b"\x8f\x7f\x00"
    assert msgs[2048:2054] == [b"\xb0\x40\x00", b"\xb0\x7b\x00", b"\xb0\x78\x00",
                               b"\xb1\x40\x00", b"\xb1\x7b\x00", b"\xb1\x78\x00"]
    assert msgs[-1] == b"\xbf\x78\x00"


def test_panic_messages_for_the_notes_we_opened():
    msgs = panic_messages(channels=[0, 9], notes=[(0, 60), (9, 36), (0, 60)],
                          reset_controllers=True)
    assert msgs == [b"\x80\x3c\x00", b"\x89\x24\x00",
                    b"\xb0\x40\x00", b"\xb0\x7b\x00", b"\xb0\x78\x00", b"\xb0\x79\x00",
                    b"\xb9\x40\x00", b"\xb9\x7b\x00", b"\xb9\x78\x00", b"\xb9\x79\x00"]
    assert len(panic_messages(reset_controllers=True)) == 2048 + 64
    assert panic_messages(channels=[], notes=[]) == []


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"channels": [16]}, "channel must be in range 0..15, not 16"),
    ({"notes": [(0, 128)]}, "note must be in range 0..127, not 128"),
    ({"notes": [(-1, 60)]}, "channel must be in range 0..15, not -1"),
])
def test_panic_messages_reject_out_of_range_values(kwargs, error):
    with pytest.raises(ValueError, match=error):
        panic_messages(**kwargs)
