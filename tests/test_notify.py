"""jazzd.live.notify against real AF_UNIX datagram sockets (a path in tmp_path, and an abstract one)."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import pytest

from jazzd.live.notify import MAX_STATUS_CHARS, Notifier


@pytest.fixture
def listener(tmp_path):
    """A bound datagram socket standing in for systemd; yields (socket, $NOTIFY_SOCKET)."""
    path = str(tmp_path / "notify")
    assert len(path) < 108, "AF_UNIX paths are limited to 107 bytes: shorten the test name"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()


@pytest.fixture
def abstract_listener():
    name = f"jazzd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    yield sock, "@" + name
    sock.close()


def received(sock) -> list[bytes]:
    """Every datagram waiting on `sock` (at least one is expected)."""
    out = [sock.recv(8192)]
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(8192))
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


CALLS = [
    (lambda n: n.ready(), b"READY=1"),
    (lambda n: n.ready("playing: 140 bpm"), b"READY=1\nSTATUS=playing: 140 bpm"),
    (lambda n: n.stopping(), b"STOPPING=1"),
    (lambda n: n.status("bar 12 of 32"), b"STATUS=bar 12 of 32"),
    (lambda n: n.status("two\nlines"), b"STATUS=two lines"),
    (lambda n: n.watchdog(), b"WATCHDOG=1"),
]


@pytest.mark.parametrize(("call", "expected"), CALLS,
                         ids=["ready", "ready-status", "stopping", "status", "status-1-line", "wdog"])
def test_path_socket(listener, call, expected):
    sock, address = listener
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert call(notifier) is True
    assert received(sock) == [expected]
    assert notifier.failures == 0


@pytest.mark.parametrize(("call", "expected"), CALLS,
                         ids=["ready", "ready-status", "stopping", "status", "status-1-line", "wdog"])
def test_abstract_socket(abstract_listener, call, expected):
    sock, address = abstract_listener
    with Notifier({"NOTIFY_SOCKET": address}) as notifier:
        assert call(notifier) is True
        assert received(sock) == [expected]


def test_reloading_carries_monotonic_usec(listener):
    sock, address = listener
    notifier = Notifier({"NOTIFY_SOCKET": address})
    before = time.monotonic_ns() // 1000
    assert notifier.reloading()
    after = time.monotonic_ns() // 1000
    [datagram] = received(sock)
    first, second = datagram.decode().split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_status_is_one_short_line(listener):
    sock, address = listener
    Notifier({"NOTIFY_SOCKET": address}).status("x\nREADY=1\r\n" + "y" * 5000)
    [datagram] = received(sock)
    assert b"\n" not in datagram and b"\r" not in datagram
    assert len(datagram) == len("STATUS=") + MAX_STATUS_CHARS


def test_os_environ_is_the_default(listener, monkeypatch):
    sock, address = listener
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert Notifier().ready()
    assert received(sock) == [b"READY=1"]


def test_no_op_without_notify_socket(monkeypatch, caplog):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    for notifier in (Notifier(), Notifier({})):
        results = [notifier.ready("x"), notifier.reloading(), notifier.status("x"),
                   notifier.watchdog(), notifier.stopping()]
        assert results == [False] * 5
        assert notifier.failures == 0
    assert caplog.records == []


def test_unsupported_address_is_a_counted_no_op():
    notifier = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert notifier.ready() is False
    assert notifier.failures == 1 and "vsock" in notifier.last_error


@pytest.mark.parametrize(("env", "interval_s"), [
    ({"WATCHDOG_USEC": "5000000"}, 2.5),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "OURS"}, 2.5),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "OTHER"}, None),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "nonsense"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_PID": "OURS"}, None),
    ({}, None),
], ids=["usec", "our-pid", "other-pid", "bad-pid", "zero", "bad-usec", "pid-only", "unset"])
def test_watchdog_interval(env, interval_s):
    pid = os.getpid()
    env = {k: {"OURS": str(pid), "OTHER": str(pid + 1)}.get(v, v) for k, v in env.items()}
    for notifier in (Notifier(env), Notifier(env, pid=pid)):
        notifier.watchdog(now=100.0)  # no socket: nothing is sent, the schedule still runs
        if interval_s is None:
            assert not notifier.watchdog_due(1e12)
        else:
            assert not notifier.watchdog_due(100.0 + interval_s - 1e-6)
            assert notifier.watchdog_due(100.0 + interval_s)


def test_watchdog_due_every_half_interval(listener):
    sock, address = listener
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "5000000"})
    assert notifier.watchdog_due(0.0)  # due at once: systemd counts from exec
    assert notifier.watchdog(now=100.0)
    assert not notifier.watchdog_due(102.4)
    assert notifier.watchdog_due(102.5)
    assert received(sock) == [b"WATCHDOG=1"]


def test_watchdog_never_due_when_disabled():
    notifier = Notifier({"NOTIFY_SOCKET": "/nonexistent/notify"})
    assert not notifier.watchdog_due(1e12)


def test_vanished_socket_does_not_raise(listener, caplog):
    sock, address = listener
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.ready()
    sock.close()
    os.unlink(address)
    with caplog.at_level(logging.WARNING, logger="jazzd.live.notify"):
        assert notifier.watchdog() is False
        assert notifier.stopping() is False
    assert notifier.failures == 2
    assert notifier.last_error.startswith("STOPPING=1: ")
    assert len(caplog.records) == 1  # logged once, then only counted


def test_full_queue_neither_blocks_nor_raises(listener):
    _sock, address = listener  # never read: the kernel queue fills (max_dgram_qlen)
    notifier = Notifier({"NOTIFY_SOCKET": address})
    start = time.monotonic()
    results = [notifier.watchdog() for _ in range(2000)]
    assert time.monotonic() - start < 1.0
    assert results[0] is True and results[-1] is False
    assert notifier.failures == results.count(False)
