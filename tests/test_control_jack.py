"""Issue 14 end to end: a real `jazzd run` on a private JACK server, seen and steered
through its control socket by `jazzd status` and `jazzd ctl` (separate processes) and by
a subscriber: the chord played into it, the tempo of the MIDI clock it follows, a
setting changed (in the status and in STATUS=), its events, and a panic that silences
the note it holds."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from jazzd.live.control import Client

from .daemonsession import hanging

pytestmark = pytest.mark.jack


def jazzd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jazzd", *args], capture_output=True, text=True, timeout=30)


def test_status_ctl_and_subscribe_on_a_running_daemon(session):
    s = session("--mode", "solo", "--clock", "midi")
    sock = str(s.control_path)
    bpm = 150.0
    pulse = 60.0 / bpm / 24
    chord = [(0.05, [0x90, 48, 70]), (0.05, [0x90, 52, 70]), (0.05, [0x90, 55, 70]), (0.05, [0x90, 58, 70])]
    clock = [(0.1, [0xFA])] + [(0.1 + k * pulse, [0xF8]) for k in range(24 * 8)]  # 8 beats
    with Client([s.control_path]) as sub:
        sub.request("subscribe")
        s.play(chord + clock, 0.1 + 24 * 8 * pulse + 0.1)

        st = json.loads(jazzd("status", "--json", "--socket", sock).stdout)
        assert abs(st["tempo"] - bpm) < 1.0 and st["transport"] == "playing", st
        assert st["chord"] == "C7", st
        assert st["counters"]["received"] >= len(chord) + len(clock)

        done = jazzd("ctl", "--socket", sock, "set", "temperature", "0.7")
        assert done.returncode == 0 and done.stdout == "engine.temperature = 0.7\n", done
        assert json.loads(jazzd("status", "--json", "--socket", sock).stdout)["settings"]["engine.temperature"] == 0.7
        assert s.statuses(3.0, until=lambda m: "temperature 0.7," in m)
        bad = jazzd("ctl", "--socket", sock, "set", "temperature", "7")
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "must be a number from 0 to 3" in bad.stderr

        sub.sock.settimeout(0.5)
        events = []
        try:
            while True:
                events.append(sub.read())
        except Exception:  # quiet for half a second: all read
            pass
    kinds = {e.get("event") for e in events}
    assert {"beat", "played", "heard", "chord", "settings"} <= kinds, kinds
    assert [e["note"] for e in events if e.get("event") == "heard" and e["kind"] == "on"] == [48, 52, 55, 58]
    assert any(e.get("event") == "chord" and e["chord"] == "C7" for e in events)

    # Panic while a note of jazzd's sounds: the subscriber waits for a note on, then panics.
    panicked = {}

    def panic_on_the_next_note():
        with Client([s.control_path]) as watcher, Client([s.control_path]) as steer:
            watcher.request("subscribe")
            end = time.monotonic() + 4.0
            while time.monotonic() < end:
                event = watcher.read()
                if event.get("event") == "played" and event["kind"] == "on":
                    steer.request("panic")
                    panicked.update(note=event["note"], at=time.monotonic() - s.started)
                    return

    thread = threading.Thread(target=panic_on_the_next_note)
    more = [(0.0, [0xFB])] + [(k * pulse, [0xF8]) for k in range(24 * 6)]  # Continue, 6 beats more
    s.received = []  # the times of what play() records count from its own start
    s.started = time.monotonic()
    thread.start()
    s.play(more, 6 * 24 * pulse + 0.2)
    thread.join(5)
    assert panicked, "no note of jazzd's to panic on"
    notes = [(t, on, n) for t, on, n in s.notes() if n == panicked["note"]]
    offs = [t for t, on, _ in notes if not on and t >= panicked["at"] - 0.2]
    assert offs and offs[0] <= panicked["at"] + 0.1, (panicked, notes[-6:])
    assert s.stop() == 0
    assert hanging(s.notes()) == set()
