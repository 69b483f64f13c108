"""`jazzd run` end to end: a real process on a private JACK server, a real notify socket,
real signals; a test client plays into jazzd:in and records jazzd's output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .tinymodel import make_bundle

pytestmark = pytest.mark.jack
TEMPO = 120.0
SPB = 60.0 / TEMPO


class Session:
    """A jazzd process plus a keyboard (into jazzd:in) and a recorder (from jazzd's out)."""

    def __init__(self, jack_server, tmp_path, *args, model_flag=True):
        self.tmp = tmp_path
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / "notify"))
        self.notify.settimeout(0.2)
        self.model = make_bundle(tmp_path / "tiny.npz")
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "JACK_NO_START_SERVER": "1",
               "JACK_DEFAULT_SERVER": jack_server.name, "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
               "OPENBLAS_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "jazzd", "run", "--backend", "jack", "--tempo", str(TEMPO),
               *(["--model", str(self.model)] if model_flag else []), *args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.messages: list[str] = []
        self.wait_for("READY=1", 15.0)
        self.ready_line = self.proc.stdout.readline()
        self.kbd = jack_server.client("out", "kbd")
        self.rec = jack_server.client("in", "rec")
        self.rec.ignore_types(sysex=True, timing=False, active_sense=True)
        self.kbd.open_port(_index(self.kbd.get_ports(), "jazzd:in"))
        self.rec.open_port(_index(self.rec.get_ports(), ":out", "jazzd"))
        self.received: list[tuple[float, bytes]] = []

    def wait_for(self, text: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                msg = self.notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:  # nothing more will come
                    pytest.fail(f"jazzd exited {self.proc.returncode} before {text!r}: {self.proc.stderr.read()}")
                continue
            self.messages.append(msg)
            if text in msg:
                return msg
        pytest.fail(f"no {text!r} from jazzd within {timeout} s; got {self.messages}")

    def drain(self) -> list[str]:
        """Every notification that arrived and was not read yet."""
        self.notify.setblocking(False)
        try:
            while True:
                self.messages.append(self.notify.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.notify.settimeout(0.2)
        return self.messages

    def play(self, sends: list[tuple[float, list[int]]], duration: float) -> None:
        """Send each message at its time (seconds from now) and record for `duration`."""
        start = time.monotonic()
        pending = sorted(sends, key=lambda s: s[0])
        self.sent_at = []
        while (now := time.monotonic()) - start < duration:
            while pending and pending[0][0] <= now - start:
                self.kbd.send_message(pending.pop(0)[1])
                self.sent_at.append(time.monotonic() - start)
            while (item := self.rec.get_message()) is not None:
                self.received.append((time.monotonic() - start, bytes(item[0])))
            time.sleep(0.0005)

    def notes(self):
        """(time, on?, note) of the note messages received."""
        out = []
        for t, m in self.received:
            if m[0] & 0xF0 in (0x80, 0x90):
                out.append((t, m[0] & 0xF0 == 0x90 and m[2] > 0, m[1]))
        return out

    def stop(self, sig=signal.SIGTERM) -> int:
        """Signal jazzd and record until it exits; `stop_received` holds (seconds after the
        signal, message) of what came after it."""
        self.proc.send_signal(sig)
        t0 = time.monotonic()
        self.stop_received: list[tuple[float, bytes]] = []
        while self.proc.poll() is None and time.monotonic() - t0 < 10:
            while (item := self.rec.get_message()) is not None:
                self.stop_received.append((time.monotonic() - t0, bytes(item[0])))
            time.sleep(0.0005)
        time.sleep(0.1)
        while (item := self.rec.get_message()) is not None:
            self.stop_received.append((time.monotonic() - t0, bytes(item[0])))
        self.received += self.stop_received
        return self.proc.wait(5)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


def _index(ports: list[str], *parts: str) -> int:
    hits = [i for i, p in enumerate(ports) if all(x in p for x in parts)]
    assert hits, f"no port with {parts} in {ports}"
    return hits[0]


def hanging(notes) -> set[int]:
    sounding: dict[int, int] = {}
    for _t, on, note in notes:
        sounding[note] = sounding.get(note, 0) + (1 if on else -1)
        sounding[note] = max(sounding[note], 0)
    return {n for n, c in sounding.items() if c}


@pytest.fixture
def session(jack_server, tmp_path):
    made = []

    def start(*args, **kwargs):
        s = Session(jack_server, tmp_path, *args, **kwargs)
        made.append(s)
        return s
    yield start
    for s in made:
        s.close()


CALL = [60, 62, 64, 65, 67, 65, 64, 62]


def call_messages(start: float = 0.3):
    sends = [(0.05, [0x90, 48, 70]), (0.05, [0x90, 52, 70]), (0.05, [0x90, 55, 70])]  # C major below the split
    for i, p in enumerate(CALL):
        sends += [(start + i * SPB, [0x90, p, 100]), (start + i * SPB + 0.8 * SPB, [0x80, p, 0])]
    return sends


def test_it_answers_a_played_call_from_the_next_beat_and_stops_cleanly(session):
    s = session()
    assert s.ready_line.startswith("jazzd ready: MIDI on JACK") and "jazzd:in" in s.ready_line
    s.play(call_messages(), 9.0)
    notes = s.notes()
    ons = [t for t, on, _ in notes if on]
    call_end = 0.3 + 7 * SPB + 0.8 * SPB
    assert ons, f"no answer; stderr: {s.proc.stderr}"
    # The answer starts within one beat after the beat of silence that ends the call
    # (plus JACK's period and scheduling slack).
    assert call_end + SPB - 0.05 <= ons[0] <= call_end + 2 * SPB + 0.05
    assert s.stop() == 0
    assert hanging(s.notes()) == set()
    assert any("STOPPING=1" in m for m in s.messages) or s.wait_for("STOPPING=1", 2.0)


def test_duet_keeps_playing_and_sigterm_silences_everything(session):
    s = session("--mode", "duet")
    sends = [(0.05, [0x90, 50, 70]), (0.05, [0x90, 53, 70]), (0.05, [0x90, 57, 70])]
    s.play(sends, 6.0)
    ons = [t for t, on, _ in s.notes() if on]
    assert len(ons) > 8 and ons[-1] > 4.5  # still playing after several bars
    maps = Path(f"/proc/{s.proc.pid}/maps").read_text()
    assert "tensorflow" not in maps and "music21" not in maps  # the daemon stays light
    assert s.stop() == 0
    assert hanging(s.notes()) == set()
    assert s.stop_received and max(t for t, _ in s.stop_received) < 0.1  # silenced within 100 ms
    ccs = {(m[1], m[2]) for _, m in s.received if m[0] & 0xF0 == 0xB0}
    assert {(64, 0), (123, 0), (120, 0)} <= ccs  # sustain off, all notes off, all sound off


def test_sighup_with_a_bad_model_keeps_the_old_one_playing(session, tmp_path):
    config = tmp_path / "jazzd.toml"
    good = make_bundle(tmp_path / "good.npz")
    config.write_text(f'[engine]\nmode = "duet"\n[model]\npath = "{good}"\n')
    s = session("--config", str(config), model_flag=False)
    s.play([(0.05, [0x90, 50, 70]), (0.05, [0x90, 53, 70]), (0.05, [0x90, 57, 70])], 2.0)
    (tmp_path / "broken.npz").write_bytes(b"not a bundle")
    config.write_text(f'[engine]\nmode = "duet"\n[model]\npath = "{tmp_path / "broken.npz"}"\n')
    s.proc.send_signal(signal.SIGHUP)
    reloading = s.wait_for("RELOADING=1", 5.0)
    assert "MONOTONIC_USEC=" in reloading
    s.wait_for("READY=1", 5.0)
    before = len([1 for _, on, _ in s.notes() if on])
    s.play([], 2.0)
    assert len([1 for _, on, _ in s.notes() if on]) > before  # the old model still plays
    assert s.proc.poll() is None
    assert s.stop() == 0
    assert "reload rejected" in s.proc.stderr.read()


def test_an_external_midi_clock_sets_the_tempo(session):
    s = session("--mode", "solo", "--clock", "midi")
    bpm = 150.0
    pulse = 60.0 / bpm / 24
    sends = [(0.1, [0xFA])] + [(0.1 + k * pulse, [0xF8]) for k in range(24 * 12)]  # 12 beats
    s.play(sends, 0.1 + 24 * 12 * pulse + 0.3)
    ons = [t for t, on, _ in s.notes() if on]
    assert len(ons) > 6
    # Onsets lie on the grid of the clock as it was actually sent (a line fitted to the
    # pulses' send times: this test's own sending jitters by a millisecond or two), in
    # twelfths of a 150 bpm beat: all within 1/24 beat.
    k = np.arange(len(s.sent_at))
    spp, origin = np.polyfit(k[1:], np.array(s.sent_at[1:]), 1)  # skip the Start byte
    assert 60.0 / (spp * 24) == pytest.approx(bpm, rel=0.01)
    beats = (np.array(ons) - (origin + spp)) / (spp * 24)  # the first pulse (k = 1) is beat 0
    off_ms = np.abs(beats * 12 - np.round(beats * 12)) / 12 * spp * 24 * 1000
    # Two JACK hops (keyboard -> jazzd -> recorder, 1.33 ms periods) make a constant
    # latency of about 3 ms; around it the notes are steady.
    assert np.median(off_ms) < 6.0 and np.percentile(off_ms, 90) - np.median(off_ms) < 4.0
    assert off_ms.max() < 60.0 / bpm / 24 * 1000
    s.play([(0.0, [0xFC])], 0.5)  # transport Stop: every note is released
    assert hanging(s.notes()) == set()
    assert s.stop() == 0


def test_a_cc_changes_the_temperature_and_a_program_change_switches_model(session, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    make_bundle(folder / "a.npz", seed=1)
    make_bundle(folder / "b.npz", seed=2)
    config = tmp_path / "jazzd.toml"
    config.write_text(f'[engine]\nmode = "duet"\n[model]\nfolder = "{folder}"\n')
    s = session("--config", str(config))
    sends = [(0.05, [0x90, 50, 70]), (0.05, [0x90, 53, 70]), (0.05, [0x90, 57, 70]),
             (1.0, [0xB0, 71, 0]),      # temperature CC -> 0
             (2.5, [0xC0, 1])]          # program change 1 -> b.npz
    s.play(sends, 4.0)
    assert s.stop() == 0
    statuses = [m for m in s.drain() if "STATUS=" in m]
    assert any("temperature 0.0," in m for m in statuses), statuses
    assert any("model b.npz" in m for m in statuses), statuses
    played_after_switch = [t for t, on, _ in s.notes() if on and t > 2.6]
    assert played_after_switch  # the new model plays on
    assert hanging(s.notes()) == set()  # and the switch cut no note without its note off


def test_bad_configuration_stops_start_up_with_one_line_and_exit_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[engine]\nmode = "jam"\n')
    out = subprocess.run([sys.executable, "-m", "jazzd", "run", "--config", str(config)],
                         capture_output=True, text=True, env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "engine.mode" in out.stderr and "call, duet, solo" in out.stderr


def test_ports_lists_jazzd_and_panic_silences_a_port(jack_server, tmp_path, capsys):
    from jazzd.cli import main

    rec = jack_server.client("in", "synth")
    rec.open_virtual_port("midi-in")
    assert main(["ports", "--backend", "jack"]) == 0
    listing = capsys.readouterr().out
    assert "synth:midi-in" in listing and listing.startswith("inputs:")
    assert main(["panic", "--backend", "jack", "--out", "synth:midi-in"]) == 0
    time.sleep(0.3)
    got = []
    while (item := rec.get_message()) is not None:
        got.append(bytes(item[0]))
    offs = {(m[0] & 0x0F, m[1]) for m in got if m[0] & 0xF0 == 0x80}
    assert len(offs) == 16 * 128
    assert {(m[0] & 0x0F, m[1], m[2]) for m in got if m[0] & 0xF0 == 0xB0} >= {(ch, cc, 0) for ch in range(16) for cc in (64, 120, 123)}
