"""jazzd's own JACK server for real: `jazzd run --start-jack` with no JACK server running
starts one, plays on it, and leaves none behind however it stops; a stale one is
stopped; a running server is used as it is; and `jazzd demo` end to end.

Every server here has a name of its own (JACK_DEFAULT_SERVER=jazzd-emb-<n>), so none of
them meets the session's test server."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jazzd.live.jackserver import is_jackd
from jazzd.live.ports import jack_server_pid, jack_server_socket, process_alive

from .daemonsession import Session, call_messages
from .jackserver import JackServer, die_with_parent

pytestmark = pytest.mark.jack
ROOT = Path(__file__).resolve().parents[1]
_count = itertools.count()


def jackds(name: str) -> list[int]:
    """The pids of every jackd serving `name` on this machine."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and is_jackd(int(p.name), name)]


def gone(name: str, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while jackds(name) and time.monotonic() < end:
        time.sleep(0.05)
    return not jackds(name)


@pytest.fixture
def unused(monkeypatch, tmp_path):
    """No JACK server reachable: JACK_DEFAULT_SERVER names one nobody runs."""
    if shutil.which("jackd") is None:
        pytest.skip("needs jackd (apt-get install --no-install-recommends jackd2)")
    # The same names every run: jack2 frees a dead server's place in its table of 8
    # (/dev/shm/jack-shm-registry) only when a server of that name starts again, so unique
    # names would fill it on a machine where servers once crashed.
    name = f"jazzd-emb-{next(_count)}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    assert jack_server_pid(jack_server_socket(name)) is None
    server = JackServer(name, None, Path(os.devnull))  # for its clients only: jazzd runs the server
    yield server
    server.close_clients()
    for pid in jackds(name):  # a failed test must not leave one running
        os.kill(pid, signal.SIGKILL)


def embedded(line: str, name: str) -> int:
    """The pid of the server the line announces, after checking what it says."""
    assert f'JACK server "{name}"' in line and f"JACK_DEFAULT_SERVER={name} jack_lsp" in line, line
    assert "jack_connect" in line and "jazzd:in" in line, line
    pid = int(re.search(r"\(pid (\d+)", line).group(1))
    assert is_jackd(pid, name)
    print(f"embedded JACK server started in {re.search(r'in ([0-9.]+) s', line).group(1)} s")
    return pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
def test_with_no_jack_running_jazzd_starts_its_own_plays_on_it_and_leaves_none(unused, tmp_path, sig):
    s = Session(unused, tmp_path, "--start-jack", "--set", "call.turn_taking=silence")
    try:
        pid = embedded(s.ready_line, unused.name)
        assert s.proc.stdout.readline().startswith("jazzd ready: MIDI on JACK")
        s.play(call_messages(), 7.0)
        call_end = 0.3 + 7.8 * 0.5
        assert [t for t, on, _ in s.notes() if on and t > call_end], f"no answer; stderr: {s.stderr()}"
        unused.close_clients()
        s.kbd = s.rec = None
        s.proc.send_signal(sig)
        code = s.proc.wait(15)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), s.stderr()
        assert gone(unused.name), f"jackd {jackds(unused.name)} left after {sig.name}"
        end = time.monotonic() + 5  # exiting, its cmdline is empty before it is gone
        while process_alive(pid) and time.monotonic() < end:
            time.sleep(0.02)
        assert not process_alive(pid)
    finally:
        s.close()


def test_a_server_left_by_a_killed_run_is_stopped_and_a_fresh_one_started(unused, tmp_path):
    jackd = subprocess.Popen(["jackd", "-n", unused.name, "-d", "dummy", "-r", "48000", "-p", "128"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent,
                             start_new_session=True)
    end = time.monotonic() + 10
    while jack_server_pid(jack_server_socket(unused.name)) != jackd.pid and time.monotonic() < end:
        time.sleep(0.05)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runtime = tmp_path / "run" / "jazzd"
    runtime.mkdir(parents=True)
    (runtime / f"jackd-{unused.name}.pid").write_text(f"{jackd.pid} {dead.pid}\n")
    # (the runtime folder with the pid file: a Session otherwise makes its own)
    s = Session(unused, tmp_path, "--start-jack", wire=False, env={"XDG_RUNTIME_DIR": str(tmp_path / "run")})
    try:
        assert jackd.wait(10) is not None  # the stale one was stopped
        pid = embedded(s.ready_line, unused.name)
        assert pid != jackd.pid
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(15) == 0
        assert gone(unused.name)
    finally:
        s.close()
        if jackd.poll() is None:
            jackd.kill()
            jackd.wait()


def test_with_a_jack_server_running_jazzd_uses_it_and_starts_none(session, jack_server):
    s = session("--start-jack")
    assert s.ready_line.startswith("jazzd ready: MIDI on JACK") and jack_server.name in s.ready_line
    assert jackds(jack_server.name) == [jack_server.process.pid]
    assert s.stop() == 0


@pytest.mark.slow
def test_demo_plays_calls_and_a_duet_and_writes_its_files(unused, tmp_path):
    out = tmp_path / "out"
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "jazzd", "demo", "-o", str(out)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=die_with_parent)
    print(done.stdout, f"\n(demo took {time.monotonic() - t0:.1f} s)")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "demo.mid").stat().st_size > 100
    try:
        import matplotlib  # noqa: F401
        assert (out / "demo.png").stat().st_size > 1000
    except ImportError:
        assert "needs matplotlib" in done.stdout
    assert "calls answered: 3 of 3" in done.stdout and "hanging notes: 0" in done.stdout
    assert re.search(r"timing error p50 [0-9.]+ ms, p99 [0-9.]+ ms", done.stdout)
    # its server (jazzd's own, named after the demo's pid) is gone
    names = re.findall(r'JACK server "([^"]+)"', done.stdout)
    assert names and all(gone(n) for n in names)



def test_with_no_server_name_set_jazzd_starts_its_own_under_its_default_name(tmp_path):
    """`make run` on a bare machine: no JACK_DEFAULT_SERVER at all.  The server's default
    name was once "jazzd", the name of jazzd's own input client, and with it the client
    could not open ("JACK server not running?"): exit 2.  The other tests here name their
    servers, so only this one runs the way `make run` does."""
    from jazzd.live.jackserver import NAME

    if shutil.which("jackd") is None:
        pytest.skip("needs jackd (apt-get install --no-install-recommends jackd2)")
    if jack_server_pid(jack_server_socket(NAME)) is not None or jack_server_pid(jack_server_socket("default")):
        pytest.skip(f"a JACK server named {NAME!r} or 'default' runs here already")
    env = {k: v for k, v in os.environ.items() if k != "JACK_DEFAULT_SERVER"}
    env.update(XDG_RUNTIME_DIR=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"), JACK_NO_START_SERVER="1",
               PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    with open(tmp_path / "jazzd.stderr", "w") as err:  # (libjack's noise; a file, not a pipe nobody reads)
        proc = subprocess.Popen([sys.executable, "-m", "jazzd", "run", "--start-jack"], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=die_with_parent)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert any(f'own JACK server "{NAME}"' in line for line in lines), (lines, (tmp_path / "jazzd.stderr").read_text())
        assert any(line.startswith("jazzd ready: MIDI on JACK") for line in lines), lines
        assert jackds(NAME)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert gone(NAME)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
