"""jazzd's own JACK server (`[midi] start_jack`) without a JACK server: naming, the pid
file and a stale server, the daemon's choice to start one, the flag, and the demo's script
and judging.  The real servers are in test_embedded_jack.py."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jazzd import demo
from jazzd.cli import main
from jazzd.errors import NoMidiSystem, PortError
from jazzd.live import daemon as daemon_module
from jazzd.live import jackserver
from jazzd.live.config import load_config
from jazzd.live.ports import process_alive
from jazzd.play.render import Note

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()


@pytest.mark.parametrize(("env", "name"), [(None, "jazzd-jack"), ("default", "jazzd-jack"), ("studio", "studio")])
def test_the_server_is_named_after_jack_default_server_but_never_default(monkeypatch, env, name):
    if env is None:
        monkeypatch.delenv("JACK_DEFAULT_SERVER", raising=False)
    else:
        monkeypatch.setenv("JACK_DEFAULT_SERVER", env)
    assert jackserver.server_name() == name


def fake_jackd(name: str) -> subprocess.Popen:
    """A process that looks like `jackd -n NAME` in /proc (argv[0] "jackd") but only sleeps."""
    proc = subprocess.Popen(["jackd", "-c", "sleep 30; :", "-n", name], executable="/bin/sh",
                            start_new_session=True)
    end = time.monotonic() + 5
    while not jackserver.is_jackd(proc.pid, name) and time.monotonic() < end:  # until it has exec'd
        time.sleep(0.01)
    return proc


def end(fake: subprocess.Popen) -> None:
    """Its sleep too: the fake is the leader of its own process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(fake.pid, signal.SIGKILL)
    fake.wait()


def dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while process_alive(pid) and time.monotonic() < end:
        time.sleep(0.02)
    return not process_alive(pid)


def test_a_server_left_by_a_killed_jazzd_is_stopped_and_its_pid_file_removed():
    fake = fake_jackd("stale-1")
    try:
        assert jackserver.is_jackd(fake.pid, "stale-1") and not jackserver.is_jackd(fake.pid, "other")
        assert not jackserver.is_jackd(os.getpid(), "stale-1")
        path = jackserver.pid_file("stale-1")
        path.write_text(f"{fake.pid} {dead_pid()}\n")
        said = []
        assert jackserver.clean_stale("stale-1", said.append) is None
        fake.wait(5)
        assert not path.exists() and said and "stale-1" in said[0]
    finally:
        end(fake)


def test_a_server_whose_jazzd_still_runs_is_left_alone():
    fake = fake_jackd("owned-1")
    try:
        jackserver.pid_file("owned-1").write_text(f"{fake.pid} {os.getppid()}\n")
        assert jackserver.clean_stale("owned-1") == os.getppid()
        assert process_alive(fake.pid) and jackserver.pid_file("owned-1").exists()
    finally:
        end(fake)


def test_a_pid_file_naming_a_process_that_is_no_jackd_is_forgotten_and_the_process_spared():
    path = jackserver.pid_file("reused")
    path.write_text(f"{os.getpid()} {dead_pid()}\n")  # the pid went to another program since
    assert jackserver.clean_stale("reused") is None
    assert not path.exists() and process_alive(os.getpid())


def test_without_jackd_the_error_names_the_package(monkeypatch):
    monkeypatch.setattr(jackserver.shutil, "which", lambda name: None)
    monkeypatch.setattr(jackserver, "jack_server_pid", lambda path: None)
    with pytest.raises(PortError, match=r"No MIDI system.*jackd is not installed: `sudo apt-get install "
                                        r"--no-install-recommends jackd2`"):
        jackserver.start("nojackd", why="No MIDI system could be opened")


class FakePorts:
    input_name, output_name = "jazzd:in", "jazzd-01:out"

    def close(self):
        pass


def daemon_with(monkeypatch, start_jack: str, backend: str = "auto"):
    """A daemon whose first open finds no MIDI system; records the opens and starts."""
    cfg = load_config(None, {"midi.start_jack": start_jack, "midi.backend": backend}, system_paths=())
    opened, started = [], []

    def fake_open(backend, *args):
        opened.append(backend)
        if len(opened) == 1:
            raise NoMidiSystem("No MIDI system could be opened: tried ALSA (x) and JACK (y). To fix it, start one.")
        return FakePorts()

    def fake_start(log=None, why=""):
        started.append(why)
        return jackserver.EmbeddedServer("emb-test", 4242, owned=True, start_s=0.4)

    monkeypatch.setattr(daemon_module, "open_ports", fake_open)
    monkeypatch.setattr(jackserver, "start", fake_start)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "emb-test")
    return daemon_module.Daemon(cfg), opened, started


def test_start_jack_never_keeps_todays_error_and_names_the_flag(monkeypatch):
    d, opened, started = daemon_with(monkeypatch, "never")
    with pytest.raises(NoMidiSystem, match=r"tried ALSA.*--start-jack") as err:
        d._open_ports()
    assert err.value.exit_code == 2 and opened == ["auto"] and not started and d.jack is None


def test_start_jack_auto_starts_a_server_and_opens_the_ports_on_jack(monkeypatch):
    d, opened, started = daemon_with(monkeypatch, "auto")
    ports = d._open_ports()
    assert opened == ["auto", "jack"] and started == ["No MIDI system could be opened: tried ALSA (x) and JACK (y)"]
    assert os.environ["JACK_DEFAULT_SERVER"] == "emb-test"
    d.ports = ports
    line = d.jack_line()
    assert "emb-test" in line and "JACK_DEFAULT_SERVER=emb-test jack_lsp" in line
    assert "jack_connect YOUR-KEYBOARD:out jazzd:in" in line and "jack_connect jazzd-01:out" in line


def test_a_backend_other_than_jack_never_starts_a_server(monkeypatch):
    d, _opened, started = daemon_with(monkeypatch, "auto", backend="alsa")
    with pytest.raises(NoMidiSystem):
        d._open_ports()
    assert not started


def test_the_flag_sets_start_jack_and_the_default_is_never(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert main(["config", "midi.start_jack"]) == 0
    assert 'start_jack = "never"' in capsys.readouterr().out
    assert main(["config", "midi.start_jack", "--start-jack"]) == 0
    assert 'start_jack = "auto"' in capsys.readouterr().out


def test_make_run_asks_for_it_and_the_system_unit_does_not():
    makefile = (ROOT / "Makefile").read_text()
    run = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "jazzd run --start-jack" in run
    for unit in [ROOT / "systemd" / "jazzd.service", *(ROOT / "systemd" / "user").glob("*.service")]:
        assert "start-jack" not in unit.read_text() and "start_jack" not in unit.read_text(), unit


# --- the demo's player and its judge, without ports -------------------------------------


def test_the_demo_script_calls_above_the_split_over_chords_below_it():
    plan = demo.script()
    assert len(plan.calls) == len(demo.CALLS) == 3
    assert all(n.midi >= 60 for n in plan.melody)
    chords = [m[1] for _b, m in plan.events if m[0] & 0xF0 == 0x90 and m[0] & 0x0F == demo.CHORDS and m[1] < 60]
    assert chords and max(chords) < 60
    for first, end, stop in plan.calls:
        assert first < end <= stop - 4  # at least a bar left for the answer
    # every note on has its note off
    ons = sorted((m[0] & 0x0F, m[1]) for _b, m in plan.events if m[0] & 0xF0 == 0x90)
    offs = sorted((m[0] & 0x0F, m[1]) for _b, m in plan.events if m[0] & 0xF0 == 0x80)
    assert ons == offs


def test_the_judge_counts_answers_gaps_grid_and_hanging_notes():
    plan = demo.script()
    spb = 60.0 / demo.TEMPO
    t0 = 100.0
    (_f1, end1, _s1), (_f2, end2, _s2), _third = plan.calls
    answer1, answer2 = end1 + 0.65, end2 + 1.0  # 0.65 beats: off the grid (about 16 ms at 160 bpm)
    got = [(t0 + answer1 * spb, b"\x90\x48\x50"), (t0 + (answer1 + 0.5) * spb, b"\x80\x48\x00"),
           (t0 + answer2 * spb, b"\x90\x4a\x50"), (t0 + (answer2 + 0.5) * spb, b"\x90\x4a\x00"),
           (t0 + (answer2 + 1) * spb, b"\x90\x4c\x50")]  # left sounding
    notes, hanging = demo.notes_of(got, t0, spb)
    assert [n.midi for n in notes] == [0x48, 0x4A] and hanging == 1
    result = demo.judge(plan, notes, hanging, demo.TEMPO)
    assert result.answered == [True, True, False] and not result.ok
    assert result.gaps[0] == pytest.approx(0.65) and result.gaps[1] == pytest.approx(1.0)
    assert result.onsets == 2 and result.on_grid == 1
    lines = demo.summary(result, demo.TEMPO, 30.0, "x", True)
    assert "calls answered: 2 of 3" in lines[1] and "hanging notes: 1" in lines[-1]


def test_the_demo_writes_three_tracks(tmp_path):
    mido = pytest.importorskip("mido")
    plan = demo.script()
    result = demo.judge(plan, [Note(12.0, 0.5, 70, 80)], 0, demo.TEMPO)
    demo.write_files(tmp_path, plan, result, demo.TEMPO)
    names = [t.name for t in mido.MidiFile(tmp_path / "demo.mid").tracks]
    assert names[1:] == ["jazzd", "chords", "player"]


def test_the_demo_never_loads_tensorflow():
    code = "import sys, jazzd.demo, jazzd.judge.plots; sys.exit('tensorflow' in sys.modules or 'music21' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode == 0
