"""Issue 14 item 3: `jazzd monitor`.  Its `View` fed events and drawn without a terminal,
its keys; then the real thing in tmux against a daemon in memory (a Wire for ports,
the real clock, the loop in a thread): the pane shows the chord heard, the mode and both
voices' notes in their colours, and a key press switches the daemon's mode."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("rich", reason="the monitor extra (Rich) is not installed")

from rich.console import Console

from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.notify import Notifier
from jazzd.monitor import JAZZD, PLAYER, View, command

from .test_fuzz import Wire
from .tinymodel import make_bundle


def status(**over) -> dict:
    st = {"text": "", "tempo": 120.0, "beat": 5.0, "bar": 2, "beat_in_bar": 2, "transport": "playing",
          "clock": "internal clock 120 bpm", "mode": "duet", "state": "play", "chord": "Dm7", "model": "m.npz",
          "memory_values": 3, "ports": "MIDI in memory", "port_state": "ok",
          "settings": {"engine.temperature": 1.0, "engine.density": 1.0, "engine.imitation": 0.9,
                       "engine.feel": "wjd", "engine.feel_amount": 1.0, "engine.articulation": "wjd",
                       "clock.beats_per_bar": 4},
          "counters": {"received": 1, "sent": 2, "unsent": 0, "dropped": 0, "drops": {}, "queue_full": 0,
                       "clock_faults": ""},
          "timing": {"poll_ms": 5.0, "spin_ms": 0.2, "oversleep_ms": {"median": 0.1, "p98": 0.3, "max": 1.0}}}
    return {**st, **over}


def draw(view: View, now: float) -> str:
    console = Console(width=100, record=True, color_system="truecolor", force_terminal=True, file=io.StringIO())
    console.print(view.render(now))
    return console.export_text(styles=False)


def test_the_view_places_both_voices_and_the_chords_on_the_beat_grid():
    view = View()
    view.status = status()
    view.event({"event": "beat", "t": 10.0, "beat": 4, "bar": 2, "beat_in_bar": 1, "tempo": 120.0})
    view.event({"event": "heard", "t": 10.0, "kind": "on", "note": 62, "velocity": 90, "channel": 0})
    view.event({"event": "heard", "t": 10.5, "kind": "off", "note": 62, "velocity": 0, "channel": 0})
    view.event({"event": "played", "t": 11.0, "kind": "on", "note": 69, "velocity": 80, "channel": 0})
    view.event({"event": "chord", "t": 10.0, "chord": "G7"})
    view.event({"event": "heard", "t": 10.0, "kind": "on", "note": 43, "velocity": 90, "channel": 0, "hand": "chord"})
    assert [(n.who, n.pitch, n.start, n.end) for n in view.notes] == [("player", 62, 4.0, 5.0), ("jazzd", 69, 6.0, None)]
    assert view.status["chord"] == "G7" and view.chords[-1] == (4.0, "G7")
    text = draw(view, 7.0)
    assert "120 bpm" in text and "mode duet" in text and "chord G7" in text
    rows = {}
    for line in text.splitlines():
        body = line.strip().strip("│")  # inside the panel's border: "  D4 |   ·   ..."
        if body.split() and body.split()[0] in ("D4", "A4"):
            name = body.split()[0]
            rows[name] = body[body.index(name) + len(name) + 1:]
    # bars 1-4 from beat 0, 4 columns a beat: the player's D4 from column 16 to 20, jazzd's A4 from 24 to now (28)
    d4, a4 = rows["D4"], rows["A4"]
    assert d4[16] == "█" and d4[17:20] == "▬▬▬" and d4[20] != "▬" and "█" not in d4[:16]
    assert a4[24] == "█" and a4[25:28] == "▬▬▬" and a4[28] != "▬"
    view.event({"event": "silence", "t": 11.5, "released": [69]})
    assert view.notes[-1].end == 7.0


def test_keys_ask_for_modes_nudges_within_range_and_panic():
    view = View()
    assert command(view, "+") is None  # no status yet: nothing to nudge from
    view.status = status()
    assert command(view, "d") == ("mode", {"mode": "duet"})
    assert command(view, "+") == ("set", {"key": "engine.temperature", "value": 1.1})
    view.status["settings"]["engine.density"] = 1.0
    assert command(view, "]") == ("set", {"key": "engine.density", "value": 1.0})  # at its top
    assert command(view, "[") == ("set", {"key": "engine.density", "value": 0.9})
    assert command(view, "p") == ("panic", {}) and command(view, "x") is None


TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_the_monitor_in_a_real_terminal_shows_the_chord_mode_and_both_voices_and_keys_steer(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="jzm", dir="/tmp"))
    cfg = load_config(overrides={"model.path": str(make_bundle(tmp_path / "tiny.npz")), "engine.seed": 3,
                                 "engine.mode": "solo", "engine.articulation": "legato",
                                 "system.control_socket": str(folder / "c.sock")}, system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    wire = Wire()
    daemon.start(ports=wire)
    daemon.open_control()
    stop = threading.Event()

    def loop():  # the daemon's loop on the real clock, its waits cut short
        while not stop.is_set():
            now = time.monotonic()
            daemon.step(now)
            daemon.serve_control(now)
            time.sleep(0.003)

    thread = threading.Thread(target=loop)
    tmux = [TMUX, "-L", f"jzmon{os.getpid()}"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TERM": "xterm-256color"}
    thread.start()
    try:
        subprocess.run([*tmux, "new-session", "-d", "-x", "110", "-y", "45",
                        f"{sys.executable} -m jazzd monitor --socket {folder / 'c.sock'}"], check=True, env=env)
        time.sleep(1.5)
        wire.inbox += [bytes([0x90, 48, 70]), bytes([0x90, 52, 70]), bytes([0x90, 55, 70]), bytes([0x90, 58, 70]),
                       bytes([0x90, 72, 100])]  # C7 in the left hand, a C5 in the right
        pane = ""
        end = time.monotonic() + 8.0
        while time.monotonic() < end:
            time.sleep(0.5)
            pane = subprocess.run([*tmux, "capture-pane", "-p", "-e"], capture_output=True, text=True).stdout
            if "chord C7" in _plain(pane) and _has_colour(pane, PLAYER) and _has_colour(pane, JAZZD):
                break
        plain = _plain(pane)
        assert "chord C7" in plain and "mode solo" in plain, plain
        assert _has_colour(pane, PLAYER) and _has_colour(pane, JAZZD), pane
        subprocess.run([*tmux, "send-keys", "d"], check=True)
        end = time.monotonic() + 5.0
        while time.monotonic() < end and daemon.engine.settings.mode != "duet":
            time.sleep(0.1)
        assert daemon.engine.settings.mode == "duet"
        time.sleep(1.5)
        assert "mode duet" in _plain(subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                                                    text=True).stdout)
        subprocess.run([*tmux, "send-keys", "q"], check=True)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        stop.set()
        thread.join()
        daemon.shutdown(time.monotonic())
        shutil.rmtree(folder, ignore_errors=True)


def _plain(pane: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", pane)


def _has_colour(pane: str, style: str) -> bool:
    """Whether the pane holds a note block (█) in the style's colour (cyan 36, yellow 33)."""
    code = {"bold cyan": "36", "bold yellow": "33"}[style]
    import re

    return re.search(rf"\x1b\[[0-9;]*\b{code}(?:;[0-9;]*)?m[█▬]", pane) is not None
