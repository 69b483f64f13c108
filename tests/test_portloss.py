"""Ports that come and go under a running `jazzd run`, on real JACK servers: a keyboard
jazzd connected to by name vanishes and returns, so does the synth it plays into, the
peers of its virtual ports come and go, and the JACK server itself is stopped and
started again.  jazzd must keep running, say so (log and STATUS), release what it can,
and reconnect by name within 2 s of the port's return."""

from __future__ import annotations

import os
import time

import pytest

from jazzd.live import rtjack
from jazzd.live.ports import open_ports

from .daemonsession import SPB, Session, call_messages, hanging
from .jackserver import start_server
from .test_fuzz import is_note_on

pytestmark = pytest.mark.jack
BACK_WITHIN_S = 2.0


def status_after(s: Session, text: str, timeout: float, absent: bool = False) -> float:
    """Wait for a STATUS that contains `text` (or, with absent, one that does not);
    return the monotonic time it arrived."""
    def wanted(msg: str) -> bool:
        return (text not in msg) if absent else (text in msg)
    got = s.statuses(timeout, until=wanted)
    if not got or not wanted(got[-1][1]):
        pytest.fail(f"no STATUS {'without' if absent else 'with'} {text!r} within {timeout} s: {s.messages[-5:]}")
    return got[-1][0]


def keyboard(jack_server):
    kbd = jack_server.client("out", "kbd")
    kbd.open_virtual_port("out")
    return kbd


def recorder(jack_server):
    rec = jack_server.client("in", "synth")
    rec.ignore_types(sysex=True, timing=False, active_sense=True)
    rec.open_virtual_port("in")
    return rec


def drop(jack_server, client) -> None:
    """Close a test client: its port vanishes from the JACK graph."""
    jack_server._clients.remove(client)
    rtjack.close(client)


def collect(rec, seconds: float, kbd=None, sends=()) -> list[tuple[float, bytes]]:
    got, start, pending = [], time.monotonic(), sorted(sends, key=lambda x: x[0])
    while (now := time.monotonic()) - start < seconds:
        while pending and pending[0][0] <= now - start:
            kbd.send_message(pending.pop(0)[1])
        while (item := rec.get_message()) is not None:
            got.append((time.monotonic() - start, bytes(item[0])))
        time.sleep(0.0005)
    return got


def note_ons(got) -> list[float]:
    return [t for t, m in got if is_note_on(m)]


def test_a_lost_keyboard_releases_its_keys_and_is_reconnected_by_name(jack_server, session):
    kbd = keyboard(jack_server)
    s = session("--in", "kbd:out", wire=False)
    rec = jack_server.client("in", "rec")
    rec.open_port(next(i for i, p in enumerate(rec.get_ports()) if "jazzd" in p and ":out" in p))
    s.rec = rec
    # A call whose last key stays down: jazzd waits for it to end...
    held = [(0.05 + i * SPB, [0x90, p, 100]) for i, p in enumerate((60, 62, 64, 65))]
    got = collect(rec, 3.0, kbd, [*(x for x in held), *((t + 0.8 * SPB, [0x80, m[1], 0]) for t, m in held[:-1])])
    assert note_ons(got) == []
    drop(jack_server, kbd)  # ...until the keyboard is unplugged: the key counts as released
    status_after(s, "input kbd:out lost", 2.0)
    got = collect(rec, 3.0)
    assert note_ons(got), "no answer after the keyboard (holding a key) went away"

    t_back = time.monotonic()
    kbd = keyboard(jack_server)
    assert status_after(s, "lost", 5.0, absent=True) - t_back < BACK_WITHIN_S
    got = collect(rec, 9.0, kbd, [(t, m) for t, m in call_messages() if m[1] >= 60])
    ons = note_ons(got)
    assert [t for t in ons if t > 0.3 + 7 * SPB], "the returned keyboard's call was not answered"
    assert s.stop() == 0
    assert "MIDI input kbd:out disappeared" in s.stderr()


def test_a_lost_synth_is_reconnected_by_name_and_played_again(jack_server, session):
    synth = recorder(jack_server)
    s = session("--mode", "solo", "--out", "synth:in", wire=False)
    assert note_ons(collect(synth, 2.0))
    drop(jack_server, synth)
    status_after(s, "output synth:in lost", 2.0)
    time.sleep(1.0)
    assert s.proc.poll() is None
    t_back = time.monotonic()
    synth = recorder(jack_server)
    assert status_after(s, "lost", 5.0, absent=True) - t_back < BACK_WITHIN_S
    got = collect(synth, 2.0)
    assert note_ons(got), "nothing reached the synth after it came back"
    s.rec = synth
    s.received = [(t, m) for t, m in got]
    assert s.stop() == 0
    assert hanging(s.notes()) == set()  # what it played after the return, it released


def test_peers_of_the_virtual_ports_come_and_go_freely(jack_server, session):
    s = session("--mode", "solo", wire=False)
    for _round in range(4):
        rec = jack_server.client("in", "listener")
        rec.open_port(next(i for i, p in enumerate(rec.get_ports()) if "jazzd" in p and ":out" in p))
        kbd = jack_server.client("out", "player")
        kbd.open_port(next(i for i, p in enumerate(kbd.get_ports()) if p == "jazzd:in"))
        got = collect(rec, 1.0, kbd, [(0.1, [0x90, 60, 90]), (0.3, [0x80, 60, 0])])
        assert note_ons(got)
        drop(jack_server, rec)
        drop(jack_server, kbd)
    time.sleep(0.3)
    assert s.proc.poll() is None
    assert not any("lost" in m for m in s.drain())  # nothing of jazzd's own was lost
    assert s.stop() == 0


def test_jazzd_survives_a_jack_server_restart_and_reopens_its_ports(tmp_path, monkeypatch):
    server = start_server(f"jazzd-restart-{os.getpid()}")
    s = None
    try:
        monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
        s = Session(server, tmp_path, env={"WATCHDOG_USEC": "400000"})
        got = collect(s.rec, 9.0, s.kbd, call_messages())
        assert note_ons(got)
        server.stop()  # closes the test's own clients first, then the server
        status_after(s, "JACK server lost", 3.0)
        s.drain()
        pings_before = sum("WATCHDOG=1" in m for m in s.messages)
        time.sleep(1.0)  # the beat goes on without a server: the watchdog is still fed
        assert s.proc.poll() is None
        assert sum("WATCHDOG=1" in m for m in s.drain()) >= pings_before + 3

        restarted = start_server(server.name)
        server = restarted
        t_back = time.monotonic()
        assert status_after(s, "lost", 5.0, absent=True) - t_back < BACK_WITHIN_S
        s.wire(server)
        got = collect(s.rec, 9.0, s.kbd, call_messages())
        if not note_ons(got):
            s.stop()
            pytest.fail("no answer on the restarted server: " + s.stderr()[-3000:])
        assert s.stop() == 0
        stderr = s.stderr()
        assert "the JACK server stopped" in stderr and "the JACK server is back" in stderr
    finally:
        if s is not None:
            s.close()
        server.stop()


def test_a_named_port_missing_when_the_server_returns_is_connected_once_it_appears(monkeypatch):
    """After a server restart jazzd's input waits on a virtual port for the keyboard it
    follows by name; python-rtmidi never lets that client connect anywhere after, so
    before jazzd replaced it, every check raised and the keyboard was never heard again."""
    server = start_server(f"jazzd-standin-{os.getpid()}")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    ports = None

    def check_until(change: str, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if change in ports.check():
                return
            time.sleep(0.02)
        pytest.fail(f'no "{change}" within {seconds} s')

    try:
        keyboard(server)
        ports = open_ports("jack", "standin", input="kbd:out")
        assert ports.connected[0]
        server.stop()  # the keyboard goes with it
        check_until("server lost")
        server = start_server(server.name)
        check_until("server back")
        assert (ports.connected[0], ports.stand_in[0]) == (False, True)
        kbd = keyboard(server)
        check_until("input back")
        assert (ports.connected[0], ports.stand_in[0]) == (True, False)
        kbd.send_message([0x90, 60, 100])
        deadline, got = time.monotonic() + 2, []
        while not got and time.monotonic() < deadline:
            got = ports.poll()
            time.sleep(0.005)
        assert [message for message, _ in got] == [bytes([0x90, 60, 100])]
    finally:
        if ports is not None:
            ports.close()
        server.stop()
