"""Issue 14: the control socket (`jazzd.live.control`), with the daemon in memory (its
ports a `Wire`, its clock a fake) and real UNIX sockets: the protocol, every command,
the limits (line length, clients, slow subscribers) and `jazzd status` / `jazzd ctl`.
The end-to-end test on a real `jazzd run` is in tests/test_control_jack.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from jazzd import cli
from jazzd.errors import ControlError
from jazzd.live import control as ctl
from jazzd.live import daemon as loop
from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.notify import Notifier

from .test_fuzz import Wire, drive
from .tinymodel import make_bundle


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("control") / "tiny.npz")


@pytest.fixture
def short_dir():
    """A folder with a short path: AF_UNIX paths are at most 107 bytes (pytest's tmp_path may be longer)."""
    path = Path(tempfile.mkdtemp(prefix="jz", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def started(model, folder: Path, now: float = 0.0, **overrides) -> Daemon:
    cfg = load_config(overrides={"model.path": str(model), "engine.seed": 1,
                                 "system.control_socket": str(folder / "c.sock"), **overrides},
                      system_paths=[])
    daemon = Daemon(cfg, notifier=Notifier(environ={}))
    daemon.start(now=now, ports=Wire())
    daemon.monotonic = lambda: 0.0
    daemon.open_control()
    assert daemon.control is not None
    return daemon


def connect(daemon: Daemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    sock.connect(str(daemon.control.path))
    return sock


def read_line(sock: socket.socket) -> dict:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, "the daemon closed the connection"
        buf += chunk
    return json.loads(buf)


def ask(daemon: Daemon, sock: socket.socket, request, now: float = 1.0) -> dict:
    """Send one request (a dict, or raw bytes), let the loop serve once, read the reply."""
    sock.sendall(request if isinstance(request, bytes) else json.dumps({"v": 1, **request}).encode() + b"\n")
    daemon.serve_control(now)
    return read_line(sock)


# --- the protocol, pure ---------------------------------------------------------------------


@pytest.mark.parametrize("line, reason", [
    (b"\xff\xfe\x00garbage\n", "not UTF-8"),
    (b"status\n", "not JSON"),
    (b"[1, 2]\n", "a request is a JSON object"),
    (b'{"cmd": "status"}\n', "protocol version null not understood"),
    (b'{"v": 2, "cmd": "status"}\n', "protocol version 2 not understood"),
    (b'{"v": 1, "cmd": "explode"}\n', 'unknown command "explode"'),
    (b'{"v": 1, "cmd": "set", "value": 1}\n', 'set needs "key"'),
    (b'{"v": 1, "cmd": "set", "key": "engine.temperature", "value": [1]}\n', 'set needs "value"'),
    (b'{"v": 1, "cmd": "mode"}\n', 'mode needs "mode"'),
])
def test_a_bad_request_is_one_line_saying_why(line, reason):
    with pytest.raises(ctl.ProtocolError) as err:
        ctl.parse_request(line)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_requests_and_replies_are_versioned_json_lines():
    assert ctl.parse_request(b'{"v": 1, "cmd": "set", "key": "temperature", "value": "0.8"}\n')["key"] == "temperature"
    line = ctl.encode({"ok": True, "x": "é"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and json.loads(line) == {"v": 1, "ok": True, "x": "é"}


def test_the_socket_is_where_systemd_or_the_session_says_else_in_a_private_tmp_folder():
    assert ctl.socket_path("off", {}) is None
    assert ctl.socket_path("/x/y.sock", {"RUNTIME_DIRECTORY": "/run/jazzd"}) == Path("/x/y.sock")
    assert ctl.socket_path("", {"RUNTIME_DIRECTORY": "/run/jazzd", "XDG_RUNTIME_DIR": "/run/user/1"}) \
        == Path("/run/jazzd/control.sock")
    assert ctl.socket_path("", {"XDG_RUNTIME_DIR": "/run/user/1"}) == Path("/run/user/1/jazzd/control.sock")
    assert ctl.socket_path("", {}) == Path(tempfile.gettempdir()) / f"jazzd-{os.getuid()}" / "control.sock"
    # A client looks for its own daemon first, then the system service's.
    assert ctl.client_paths("", {"XDG_RUNTIME_DIR": "/run/user/1"}) == \
        [Path("/run/user/1/jazzd/control.sock"), Path("/run/jazzd/control.sock")]


def test_a_default_folder_made_by_someone_else_or_open_to_others_is_refused(short_dir):
    folder = short_dir / "jazzd"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    with pytest.raises(ControlError, match="not a private folder"):
        ctl.ControlServer(folder / "control.sock", lambda r, t: {}, own_folder=True)
    os.chmod(folder, 0o700)
    server = ctl.ControlServer(folder / "control.sock", lambda r, t: {}, own_folder=True)
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    server.close()
    assert not server.path.exists()


def test_a_stale_socket_is_replaced_and_a_live_one_is_left_to_its_daemon(short_dir):
    path = short_dir / "c.sock"
    first = ctl.ControlServer(path, lambda r, t: {})
    with pytest.raises(ControlError, match="another jazzd is serving"):
        ctl.ControlServer(path, lambda r, t: {})
    first.listener.close()  # dies without cleaning up: the file stays
    assert path.exists()
    second = ctl.ControlServer(path, lambda r, t: {})
    second.close()


def test_no_daemon_is_one_line_naming_the_socket_and_how_to_start_one(short_dir):
    with pytest.raises(ControlError) as err:
        ctl.Client([short_dir / "none.sock"])
    assert str(err.value) == (f"no jazzd is running: no control socket at {short_dir / 'none.sock'}; "
                              "start it with `jazzd run`")
    assert cli.main(["status", "--socket", str(short_dir / "none.sock")]) == 1


# --- the commands, on a daemon in memory ------------------------------------------------------


def test_status_says_what_status_text_says_and_more(model, short_dir):
    d = started(model, short_dir)
    drive(d, [(0.3, bytes([0x90, 40, 90])), (0.31, bytes([0x90, 43, 90])), (0.32, bytes([0x90, 47, 90]))], 0.5)
    with connect(d) as s:
        reply = ask(d, s, {"cmd": "status"}, now=0.5)
    st = reply["status"]
    assert reply["ok"] and reply["v"] == 1
    assert st["text"] == d.status_text()
    assert st["tempo"] == 120 and st["mode"] == "call" and st["model"] == "tiny.npz"
    assert st["chord"] == str(d.engine.chord_at(0.5)) and st["chord"] is not None
    assert st["beat"] is not None and st["bar"] == 1
    assert st["settings"]["engine.temperature"] == 1.0 and len(st["settings"]) == len(d.cfg.flat())
    assert st["counters"]["received"] == 3 and st["control"]["accepted"] == 1
    d.shutdown(1.0)


def test_set_changes_the_running_engine_as_the_cc_does_and_a_bad_value_changes_nothing(model, short_dir):
    d = started(model, short_dir)
    with connect(d) as s:
        reply = ask(d, s, {"cmd": "set", "key": "temperature", "value": "0.8"})
        assert reply == {"v": 1, "ok": True, "key": "engine.temperature", "value": 0.8}
        assert d.engine.settings.temperature == 0.8 and d.cfg.engine.temperature == 0.8
        assert "temperature 0.8" in d.status_text()
        assert ask(d, s, {"cmd": "status"})["status"]["settings"]["engine.temperature"] == 0.8
        before = (d.cfg, d.engine.settings.temperature)
        for key, value, error in [
            ("engine.temperature", 5, "set: engine.temperature = 5: must be a number from 0 to 3"),
            ("temprature", "1", "unknown key temprature; did you mean"),
            ("engine.temperature", "hot", 'engine.temperature = "hot": must be a number'),
            ("engine.range_low", 80, "must be at least an octave (12) below engine.range_high (84)"),
            ("engine.split", 50, "engine.split cannot change while jazzd plays"),
            ("midi.backend", "jack", "midi.backend cannot change while jazzd plays"),
        ]:
            reply = ask(d, s, {"cmd": "set", "key": key, "value": value})
            assert not reply["ok"] and error in reply["error"] and "\n" not in reply["error"], reply
            assert (d.cfg, d.engine.settings.temperature) == before
        assert ask(d, s, {"cmd": "set", "key": "call.answer_beats", "value": 8})["ok"]
        assert d.engine.settings.answer_beats == 8
        assert ask(d, s, {"cmd": "mode", "mode": "duet"})["ok"] and d.engine.settings.mode == "duet"
        assert not ask(d, s, {"cmd": "mode", "mode": "jam"})["ok"] and d.engine.settings.mode == "duet"
        assert ask(d, s, {"cmd": "set", "key": "clock.tempo", "value": 150})["ok"]
        assert d.clock.tempo == 150
    d.shutdown(1.0)


def test_panic_silences_what_sounds_and_forget_clears_the_memory(model, short_dir):
    d = started(model, short_dir, **{"engine.mode": "solo", "engine.articulation": "legato"})
    t = 0.0
    while not d.sounding and t < 10:
        t += 0.05
        drive(d, [], t, start=t - 0.05)
    assert d.sounding
    d.memory.learn("C,0.500", 60)
    assert len(d.memory) == 1
    with connect(d) as s:
        before = len(d.ports.out)
        assert ask(d, s, {"cmd": "panic"}, now=t)["ok"]
        assert d.sounding == set() and len(d.ports.out) > before
        assert ask(d, s, {"cmd": "forget"}, now=t) == {"v": 1, "ok": True, "memory_values": 0}
    d.shutdown(t)


def test_memory_names_the_allocation_sites_that_grew_and_refuses_while_tracing_is_off(model, short_dir):
    """Issue 16: `memory` (`jazzd ctl memory`) compares tracemalloc snapshots: the first
    reply lists what is held, the next what grew since; without PYTHONTRACEMALLOC it is
    a one-line error naming the fix."""
    import tracemalloc

    assert not tracemalloc.is_tracing()
    d = started(model, short_dir)
    with connect(d) as s:
        reply = ask(d, s, {"cmd": "memory"})
        assert not reply["ok"] and "PYTHONTRACEMALLOC=1" in reply["error"] and "\n" not in reply["error"]
        tracemalloc.start()
        try:
            first = ask(d, s, {"cmd": "memory", "top": 5}, now=1.0)["memory"]
            kept = [bytearray(1000) for _ in range(300)]  # ~300 kB held at one line of this test
            second = ask(d, s, {"cmd": "memory", "top": 5}, now=3.5)["memory"]
        finally:
            tracemalloc.stop()
        assert first["since_s"] is None and first["grown_kb"] is None and second["since_s"] == 2.5
        assert len(second["sites"]) == 5 and second["grown_kb"] >= 290
        top = second["sites"][0]
        assert top["site"].endswith("test_control.py:" + str(_line_of("kept = [bytearray(1000)")))
        assert top["diff_kb"] >= 290 and top["diff_blocks"] >= 300 and len(kept) == 300
        assert ask(d, s, {"cmd": "memory", "top": 0})["error"].startswith('memory\'s "top"')
    d.shutdown(4.0)


def _line_of(text: str) -> int:
    """The line of this file that holds `text` (first)."""
    return next(i for i, line in enumerate(Path(__file__).read_text().splitlines(), 1) if text in line)


def test_a_subscriber_hears_beats_played_notes_heard_notes_chords_and_settings(model, short_dir):
    d = started(model, short_dir, **{"engine.mode": "solo"})
    with connect(d) as s:
        assert ask(d, s, {"cmd": "subscribe"}, now=0.0) == {"v": 1, "ok": True, "subscribed": True}
        drive(d, [(0.5, bytes([0x90, 40, 90])), (0.51, bytes([0x90, 44, 90])),
                  (0.52, bytes([0x90, 47, 90]))], 3.0)
        ask(d, s, {"cmd": "set", "key": "density", "value": 0.5}, now=3.0)  # its reply comes first
        d.step(3.01)
        d.serve_control(3.01)
        s.settimeout(0.2)
        events = []
        try:
            while True:
                events.append(read_line(s))
        except TimeoutError:
            pass
    kinds = [e.get("event") for e in events]
    assert {"beat", "played", "heard", "chord", "settings"} <= set(kinds), kinds
    beats = [e["beat"] for e in events if e.get("event") == "beat"]
    assert beats == sorted(beats) and len(beats) >= 4
    assert [e["note"] for e in events if e.get("event") == "heard" and e["kind"] == "on"] == [40, 44, 47]
    assert {e["hand"] for e in events if e.get("event") == "heard"} == {"chord"}  # below the split
    assert next(e for e in events if e.get("event") == "settings")["settings"]["engine.density"] == 0.5
    d.shutdown(3.0)


# --- the limits ------------------------------------------------------------------------------


def test_a_subscriber_that_never_reads_is_dropped_not_waited_for(model, short_dir):
    d = started(model, short_dir)
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(str(d.control.path))
    slow.sendall(b'{"v": 1, "cmd": "subscribe"}\n')
    d.serve_control(0.0)
    assert d.control.subscribers == 1
    with connect(d) as other:
        for k in range(20_000):
            d.control.publish("played", {"t": k, "kind": "on", "note": 60, "velocity": 90, "channel": 0})
            d.serve_control(0.0)
            if not d.control.subscribers:
                break
        assert d.control.subscribers == 0 and d.control.counts["slow dropped"] == 1
        assert ask(d, other, {"cmd": "status"})["ok"]  # the others are served on
    slow.close()
    d.shutdown(1.0)


def test_more_clients_than_allowed_are_refused_and_counted(model, short_dir):
    d = started(model, short_dir)
    socks = [connect(d) for _ in range(ctl.MAX_CLIENTS)]
    d.serve_control(0.0)
    extra = connect(d)
    d.serve_control(0.0)
    d.serve_control(0.0)
    reply = read_line(extra)
    assert not reply["ok"] and "too many clients" in reply["error"] and extra.recv(10) == b""
    assert d.control.counts["refused"] == 1
    assert ask(d, socks[-1], {"cmd": "status"})["ok"]
    for s in socks:
        s.close()
    d.serve_control(0.0)
    assert d.control.clients == []
    d.shutdown(1.0)


def test_a_megabyte_line_garbage_and_a_thousand_connections_leave_the_daemon_serving(model, short_dir):
    d = started(model, short_dir)
    with connect(d) as good, connect(d) as big:
        big.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            big.sendall(b"x" * 1_000_000)  # no newline, ever
        for _ in range(4):
            d.serve_control(0.0)
        assert d.control.counts["too long"] == 1 and len(d.control.clients) == 1
        reply = ask(d, good, b"\x00\xff\x90\x3c\x40garbage\n")
        assert not reply["ok"] and "not UTF-8" in reply["error"]
        for k in range(1000):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(str(d.control.path))
            c.close()
            if k % 3 == 0:
                d.serve_control(0.0)
        for _ in range(400):
            d.serve_control(0.0)
        assert len(d.control.clients) == 1
        assert ask(d, good, {"cmd": "status"})["status"]["control"]["bad requests"] == 1
    d.shutdown(1.0)


def test_with_a_client_connected_the_loop_sleeps_in_select_and_a_request_wakes_it(model, short_dir, monkeypatch):
    d = started(model, short_dir, now=loop.time.monotonic() + 100)  # its first beat far away
    slept = []
    monkeypatch.setattr(loop.time, "sleep", lambda s: slept.append(s))
    d._wait()
    assert slept  # no client: a plain sleep, as before
    with connect(d) as s:
        d.serve_control(10.0)
        assert d._poll_interval(10.0) == loop.POLL_IDLE_S  # a silent client: no extra wake-ups
        slept.clear()
        t0 = loop.time.monotonic()
        d._wait()  # nothing comes: the whole poll interval in select, no sleep
        assert slept == [] and loop.time.monotonic() - t0 >= 0.5 * loop.POLL_IDLE_S
        s.sendall(b'{"v": 1, "cmd": "status"}\n')
        assert d.control.wait(5.0)  # a request ends the wait at once
    d.shutdown(10.0)


# --- the commands of the cli ------------------------------------------------------------------


def test_jazzd_status_and_ctl_talk_to_the_socket(model, short_dir, capsys):
    d = started(model, short_dir)
    stop = threading.Event()

    def serve():  # the daemon's loop, reduced to its control socket
        while not stop.is_set():
            d.serve_control(1.0)
            stop.wait(0.002)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        sock = ["--socket", str(d.control.path)]
        assert cli.main(["status", "--json", *sock]) == 0
        assert json.loads(capsys.readouterr().out)["mode"] == "call"
        assert cli.main(["ctl", *sock, "set", "temperature", "0.7"]) == 0
        assert capsys.readouterr().out == "engine.temperature = 0.7\n"
        assert cli.main(["ctl", *sock, "set", "temperature", "9"]) == 1
        assert capsys.readouterr().err == "jazzd ctl: set: engine.temperature = 9: must be a number from 0 to 3\n"
        assert cli.main(["ctl", *sock, "mode", "solo"]) == 0
        assert cli.main(["status", *sock]) == 0
        text = capsys.readouterr().out
        assert "jazzd: solo, 120 bpm" in text and "temperature 0.7" in text
    finally:
        stop.set()
        thread.join()
    d.shutdown(1.0)


@pytest.mark.skipif(os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root (to run a client as a second uid) and /usr/bin/python3 (which it can run)")
def test_another_user_cannot_connect(model, short_dir):
    d = started(model, short_dir)
    os.chmod(short_dir, 0o755)  # the folder open: the socket's own mode (0600) is what refuses
    probe = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
             "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('denied')\n"
             "else:\n    print('connected')\n")
    result = subprocess.run(["/usr/bin/python3", "-c", probe, str(d.control.path)], user=65534,
                            capture_output=True, text=True, timeout=30, cwd="/")
    assert result.stdout.strip() == "denied", result.stderr
    d.serve_control(0.0)
    assert d.control.counts["accepted"] == 0
    d.shutdown(1.0)


def test_reload_answers_with_the_new_status_or_the_reason_it_was_rejected(model, short_dir, tmp_path):
    bundle = tmp_path / "m.npz"
    bundle.write_bytes(model.read_bytes())
    overrides = {"model.path": str(bundle), "engine.seed": 1, "system.control_socket": str(short_dir / "c.sock")}
    d = Daemon(load_config(overrides=overrides, system_paths=[]), None, overrides, notifier=Notifier(environ={}))
    d.start(now=0.0, ports=Wire())
    d.monotonic = lambda: 0.0
    d.open_control()
    with connect(d) as s:
        reply = ask(d, s, {"cmd": "reload"})
        assert reply["ok"] and reply["status"]["counters"]["reloads"] == 1
        bundle.write_bytes(b"not a bundle")
        reply = ask(d, s, {"cmd": "reload"})
        assert not reply["ok"] and reply["error"].startswith("reload rejected, still playing the old setup: ")
        assert str(bundle) in reply["error"] and d.counters.rejected_reloads == 1
        assert ask(d, s, {"cmd": "status"})["status"]["model"] == "m.npz"
    d.shutdown(1.0)
