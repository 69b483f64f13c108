"""The control socket: see and steer the running daemon from a terminal.  Stdlib only.

A UNIX stream socket, never TCP: nothing is reachable from another machine.  Where
(`socket_path`): `[system] control_socket` if set (a path, or "off"); else
$RUNTIME_DIRECTORY/control.sock (the system unit's `RuntimeDirectory=jazzd`, i.e.
/run/jazzd); else $XDG_RUNTIME_DIR/jazzd/control.sock (a user); else
/tmp/jazzd-<uid>/control.sock, a folder of mode 0700 that must be this user's own (no
XDG_RUNTIME_DIR: a cron job, a container; a per-user folder that another user cannot
have made first).  The socket is 0600, or 0660 with the group named by
$JAZZD_CONTROL_GROUP (the system unit sets "audio": the users of that group may steer
it).

The protocol is line-delimited JSON, versioned: each request is one line, a JSON object
{"v": 1, "cmd": ...}; each reply is one line {"v": 1, "ok": true, ...} or
{"v": 1, "ok": false, "error": "one line"}.  Commands: status; set (key, value);
mode (mode); panic; reload; forget; memory (top: the allocation sites that grew since
the last memory request, when jazzd runs with PYTHONTRACEMALLOC: `jazzd.live.memtrace`);
subscribe (then event lines
{"v": 1, "event": "beat" | "heard" | "played" | "chord" | "answer" | "settings", ...}
follow until the client goes).  What they do is the daemon's (`Daemon.control_request`);
this module reads, bounds and answers.

It runs in the daemon's loop, in its slack (`ControlServer.serve`), and never blocks or
waits: every socket is non-blocking; a turn reads at most READ_PER_TURN bytes and
answers at most COMMANDS_PER_TURN requests; a line longer than MAX_LINE, more than
MAX_CLIENTS clients, and a client whose unsent output passes OUT_LIMIT (a subscriber that
does not read) are dropped and counted (`ControlServer.counts`), never waited for.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import logging
import os
import select
import socket
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from jazzd.errors import ControlError, JazzdError

log = logging.getLogger("jazzd")

VERSION = 1
SOCKET_NAME = "control.sock"
MAX_LINE = 4096           # bytes in one request line, newline included
MAX_CLIENTS = 8
ACCEPTS_PER_TURN = 4
READ_PER_TURN = 16384     # bytes read from all clients in one loop turn
COMMANDS_PER_TURN = 8
OUT_LIMIT = 65536         # bytes queued for one client; past it the client is dropped
GROUP_ENV = "JAZZD_CONTROL_GROUP"
COMMANDS = ("status", "set", "mode", "panic", "reload", "forget", "memory", "subscribe")
SUN_PATH_MAX = 107        # AF_UNIX paths: 108 bytes with the terminating NUL (Linux)


class ProtocolError(ValueError):
    """A request the server will not carry out; str() is the one-line reason."""


# --- where ------------------------------------------------------------------------------


def socket_path(setting: str = "", environ: Mapping[str, str] | None = None) -> Path | None:
    """The daemon's socket: `setting` ([system] control_socket: "off" = none, a path),
    else $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/jazzd or /tmp/jazzd-<uid> (module doc)."""
    env = os.environ if environ is None else environ
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    if env.get("RUNTIME_DIRECTORY"):
        return Path(env["RUNTIME_DIRECTORY"].split(":")[0]) / SOCKET_NAME
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "jazzd" / SOCKET_NAME
    return Path(tempfile.gettempdir()) / f"jazzd-{os.getuid()}" / SOCKET_NAME


def client_paths(setting: str = "", environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where a client looks, in order: the setting's path if given, else the user's own
    daemon's ($XDG_RUNTIME_DIR, /tmp/jazzd-<uid>), then the system service's /run/jazzd."""
    env = os.environ if environ is None else environ
    if setting:
        return [p for p in [socket_path(setting, env)] if p is not None]
    own = socket_path("", {k: v for k, v in env.items() if k != "RUNTIME_DIRECTORY"})
    paths = [Path(env["RUNTIME_DIRECTORY"].split(":")[0]) / SOCKET_NAME] if env.get("RUNTIME_DIRECTORY") else []
    return [*paths, own, Path("/run/jazzd") / SOCKET_NAME]


def _private_folder(folder: Path) -> None:
    """Make `folder` (0700) unless it exists; an existing one must be a real folder of
    this user's that no one else may write (a /tmp folder made by someone else is a trap)."""
    try:
        folder.mkdir(mode=0o700, parents=False)
    except FileExistsError:
        pass
    except FileNotFoundError:
        folder.mkdir(mode=0o700, parents=True)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise ControlError(f"{folder}: not a private folder of this user's (owner uid {st.st_uid}, "
                           f"mode {stat.S_IMODE(st.st_mode):04o}); remove it or set [system] control_socket")


# --- the protocol ---------------------------------------------------------------------------


def encode(obj: Mapping) -> bytes:
    """One protocol line: {"v": 1, ...} as compact JSON and a newline."""
    return (json.dumps({"v": VERSION, **obj}, separators=(",", ":"), ensure_ascii=False, default=str)
            + "\n").encode("utf-8")


def parse_request(line: bytes) -> dict:
    """A request line as a dict with a known "cmd" and its arguments checked; else
    ProtocolError with a one-line reason."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("not UTF-8 text; a request is one line of JSON") from None
    except ValueError as err:
        raise ProtocolError(f"not JSON ({err.msg} at column {err.colno}); "
                            'a request is one line such as {"v": 1, "cmd": "status"}') from None
    if not isinstance(obj, dict):
        raise ProtocolError('a request is a JSON object, e.g. {"v": 1, "cmd": "status"}')
    if obj.get("v") != VERSION:
        raise ProtocolError(f"protocol version {json.dumps(obj.get('v'))} not understood; "
                            f"this jazzd speaks \"v\": {VERSION}")
    cmd = obj.get("cmd")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {json.dumps(cmd)[:40]}; one of {', '.join(COMMANDS)}")
    if cmd == "set":
        if not isinstance(obj.get("key"), str) or not obj["key"]:
            raise ProtocolError('set needs "key": a setting such as "engine.temperature"')
        if not isinstance(obj.get("value"), str | int | float | bool):
            raise ProtocolError('set needs "value": text, a number or true/false')
    if cmd == "memory" and "top" in obj and (type(obj["top"]) is not int or not 1 <= obj["top"] <= 100):
        raise ProtocolError('memory\'s "top" is a whole number of sites, 1 to 100')
    if cmd == "mode" and not isinstance(obj.get("mode"), str):
        raise ProtocolError('mode needs "mode": call, duet or solo')
    return obj


# --- the server -----------------------------------------------------------------------------


class _Client:
    __slots__ = ("fd", "inbuf", "outbuf", "sock", "subscribed")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.subscribed = False


Handler = Callable[[dict, float], dict]


class ControlServer:
    """The listening socket and its clients; `serve` once a loop turn, `publish` an event
    to the subscribers.  `handler(request, now)` carries out a parsed request and returns
    the reply's fields; a JazzdError it raises is the reply's one-line error."""

    def __init__(self, path: Path, handler: Handler, group: str | None = None, own_folder: bool = False):
        self.path = Path(path)
        self.own_folder = own_folder  # a default place: its folder must be this user's, not writable by others
        self.handler = handler
        self.clients: list[_Client] = []
        self.subscribers = 0
        self.counts = dict.fromkeys(("accepted", "served", "refused", "bad requests", "too long",
                                     "slow dropped", "events"), 0)
        self._turn = 0
        self.listener = self._listen(group)
        self._poller = select.poll()
        self._poller.register(self.listener, select.POLLIN)

    def _listen(self, group: str | None) -> socket.socket:
        path = self.path
        if len(os.fsencode(path)) > SUN_PATH_MAX:
            raise ControlError(f"{path}: too long for a UNIX socket ({SUN_PATH_MAX} bytes at most); "
                               "set [system] control_socket to a shorter path")
        if self.own_folder or not path.parent.exists():
            _private_folder(path.parent)
        if path.exists() or path.is_symlink():
            if _answers(path):
                raise ControlError(f"{path}: another jazzd is serving this control socket; "
                                   "give this one another with --set system.control_socket=PATH")
            path.unlink()  # a socket left by a jazzd that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            mode = 0o600
            if group:
                try:
                    os.chown(path, -1, grp.getgrnam(group).gr_gid)
                    mode = 0o660
                except (KeyError, OSError) as err:
                    log.warning("control socket: cannot give it to group %s (%s); only this user may use it",
                                group, err)
            os.chmod(path, mode)
            sock.listen(MAX_CLIENTS)
            sock.setblocking(False)
        except OSError as err:
            sock.close()
            raise ControlError(f"{path}: cannot open the control socket: {err.strerror or err}") from None
        return sock

    def serve(self, now: float) -> None:
        """One turn: accept, read, answer, send; bounded, never blocking.  One poll(2)
        with no timeout says which sockets have something: with none, and nothing left
        to answer or send, that is all a turn costs."""
        ready = {fd for fd, _ in self._poller.poll(0)}
        if not ready and not any(c.outbuf or b"\n" in c.inbuf for c in self.clients):
            return
        if self.listener.fileno() in ready:
            ready |= self._accept()  # (what a new client sent with its connect is read at once)
        budget, commands = READ_PER_TURN, COMMANDS_PER_TURN
        n = len(self.clients)
        self._turn += 1
        for i in range(n):  # a different client first each turn: none starves the others
            client = self.clients[(i + self._turn) % n]
            if budget > 0 and client.sock is not None and client.fd in ready:
                budget -= self._read(client)
            while client.sock is not None and commands > 0 and (end := client.inbuf.find(b"\n")) >= 0:
                line = bytes(client.inbuf[:end + 1])
                del client.inbuf[:end + 1]
                commands -= 1
                self._answer(client, line, now)
            if client.sock is not None and len(client.inbuf) >= MAX_LINE and client.inbuf.find(b"\n", 0, MAX_LINE) < 0:
                self.counts["too long"] += 1
                self._queue(client, encode({"ok": False, "error": f"a request line is at most {MAX_LINE} bytes"}))
                self._flush(client)
                self._drop(client)
        for client in self.clients:
            if client.sock is not None and client.outbuf:
                self._flush(client)
        self.clients = [c for c in self.clients if c.sock is not None]

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds (select(2): microseconds, not poll's
        milliseconds), or until a client or a new one has something; True if one has."""
        socks = [self.listener, *(c.sock for c in self.clients if c.sock is not None)]
        ready, _, _ = select.select(socks, [], [], max(0.0, timeout))
        return bool(ready)

    def publish(self, kind: str, fields: Mapping) -> None:
        """An event to every subscriber (queued; sent by the next `serve`)."""
        if not self.subscribers:
            return
        line = encode({"event": kind, **fields})
        self.counts["events"] += 1
        for client in self.clients:
            if client.subscribed and client.sock is not None:
                self._queue(client, line)

    def close(self) -> None:
        for client in self.clients:
            self._drop(client)
        self.clients = []
        self.listener.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    # --- inside a turn ---------------------------------------------------------------------
    def _accept(self) -> set[int]:
        """Take up to ACCEPTS_PER_TURN new clients (refusing those past MAX_CLIENTS);
        returns the new clients' descriptors."""
        new = set()
        for _ in range(ACCEPTS_PER_TURN):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:  # EMFILE and the like: try again next turn
                log.warning("control socket: cannot accept (%s)", err.strerror or err)
                break
            sock.setblocking(False)
            if len([c for c in self.clients if c.sock is not None]) >= MAX_CLIENTS:
                self.counts["refused"] += 1
                with contextlib.suppress(OSError):
                    sock.send(encode({"ok": False, "error": f"too many clients ({MAX_CLIENTS}); try again later"}))
                sock.close()
                continue
            self.counts["accepted"] += 1
            self.clients.append(_Client(sock))
            self._poller.register(sock, select.POLLIN)
            new.add(sock.fileno())
        return new

    def _read(self, client: _Client) -> int:
        try:
            data = client.sock.recv(min(MAX_LINE, MAX_LINE - len(client.inbuf) + 1))
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self._drop(client)
            return 0
        if not data:
            self._drop(client)
            return 0
        client.inbuf += data
        return len(data)

    def _answer(self, client: _Client, line: bytes, now: float) -> None:
        try:
            request = parse_request(line)
        except ProtocolError as err:
            self.counts["bad requests"] += 1
            return self._queue(client, encode({"ok": False, "error": str(err)}))
        if request["cmd"] == "subscribe":
            if not client.subscribed:
                client.subscribed = True
                self.subscribers += 1
            reply = {"subscribed": True}
        else:
            try:
                reply = self.handler(request, now)
            except JazzdError as err:
                self.counts["bad requests"] += 1
                first = (str(err).splitlines() or [type(err).__name__])[0]
                return self._queue(client, encode({"ok": False, "error": first}))
            except Exception as err:  # a bug must not stop the music
                log.exception("control request %s failed", request.get("cmd"))
                return self._queue(client, encode({"ok": False, "error": f"internal error: {err}"}))
        self.counts["served"] += 1
        self._queue(client, encode({"ok": True, **reply}))

    def _queue(self, client: _Client, line: bytes) -> None:
        if len(client.outbuf) + len(line) > OUT_LIMIT:  # it does not read: drop it, never wait
            self.counts["slow dropped"] += 1
            self._drop(client)
            return
        client.outbuf += line

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        del client.outbuf[:sent]

    def _drop(self, client: _Client) -> None:
        if client.sock is None:
            return
        if client.subscribed:
            self.subscribers -= 1
            client.subscribed = False
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(client.fd)
        try:
            client.sock.close()
        finally:
            client.sock = None


def _answers(path: Path) -> bool:
    """Whether something listens at `path` (a live daemon's socket, not a stale file)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def open_server(setting: str, handler: Handler, environ: Mapping[str, str] | None = None) -> ControlServer | None:
    """The daemon's control socket as configured, or None ("off")."""
    env = os.environ if environ is None else environ
    path = socket_path(setting, env)
    if path is None:
        return None
    return ControlServer(path, handler, group=env.get(GROUP_ENV) or None, own_folder=not setting)


# --- the client ---------------------------------------------------------------------------


class Client:
    """A blocking client of one daemon's socket (`jazzd status`, `jazzd ctl`)."""

    def __init__(self, paths: list[Path], timeout: float = 5.0, start_hint: str = "`jazzd run`"):
        self.sock, self.path = _connect(paths, timeout, start_hint)
        self._buf = b""

    def request(self, cmd: str, **args) -> dict:
        """Send one request, return its reply; ControlError for a refused one."""
        self.sock.sendall(encode({"cmd": cmd, **args}))
        reply = self.read()
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "the daemon refused the request"))
        return reply

    def read(self) -> dict:
        """The next line from the daemon (a reply or an event)."""
        while b"\n" not in self._buf:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise ControlError(f"{self.path}: no answer from jazzd in time") from None
            if not data:
                raise ControlError(f"{self.path}: jazzd closed the connection")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(paths: list[Path], timeout: float, start_hint: str) -> tuple[socket.socket, Path]:
    denied = None
    for path in paths:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            return sock, path
        except PermissionError:
            denied = path
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTDIR):
                sock.close()
                raise ControlError(f"{path}: cannot connect to jazzd: {err.strerror or err}") from None
        sock.close()
    if denied is not None:
        raise ControlError(f"{denied}: permission denied; the socket is for its owner (and for "
                           f"${GROUP_ENV}'s group under systemd: e.g. `sudo usermod -aG audio $USER`)")
    where = " or ".join(str(p) for p in paths)
    raise ControlError(f"no jazzd is running: no control socket at {where}; start it with {start_hint}")
