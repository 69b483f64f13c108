"""jazzd's own JACK server: a MIDI system for a machine that has none (`[midi] start_jack`).

When neither ALSA's sequencer nor a running JACK server can be opened, `jazzd run
--start-jack` starts a private jackd on the dummy driver (no sound hardware needed, the
same server the tests run on) and plays on it; other JACK clients reach jazzd with
JACK_DEFAULT_SERVER set to its name.

The server is jazzd's child and never outlives it:
- a clean stop (SIGTERM, SIGINT, an error) stops it after jazzd closed its ports;
- a crash or `kill -9` of jazzd: the kernel sends the server SIGTERM (PR_SET_PDEATHSIG);
- a server a killed run left anyway (its owner recorded in the pid file
  `<runtime dir>/jackd-<name>.pid` is gone) is stopped before a new one starts.
It runs in its own session, so a Ctrl-C at the terminal reaches jazzd alone, which then
silences its notes while the server still runs, and stops it last.

Stdlib only; runs once at start-up and once at the stop, never on the beat path.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jazzd.errors import PortError
from jazzd.live.ports import jack_server_pid, jack_server_socket, process_alive

# The server's name unless JACK_DEFAULT_SERVER names another.  Not "jazzd": a JACK server
# named like its client ("jazzd", jazzd's input client) took the server but not the
# client (rtmidi: "JACK server not running?"), and `make run` exited 2 on a bare machine.
NAME = "jazzd-jack"
RATE = 48000
PERIOD = 128            # frames: 2.7 ms at 48 kHz, kind to a busy machine
# Synchronous mode: a client late in a cycle (jazzd's or a peer's JACK thread held up on a
# busy machine) holds the cycle up instead of missing it.  In jack2's default asynchronous
# mode the next cycle goes on without it and the MIDI its sender wrote in the missed
# cycle is lost without an error (a note on that jazzd never hears, a note off that a
# synth never gets).  The dummy driver has no hardware deadline to miss.
SYNC = "-S"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0    # jackd takes about 1.5 s to exit
PR_SET_PDEATHSIG = 1
INSTALL = "sudo apt-get install --no-install-recommends jackd2"


def server_name() -> str:
    """The name to start the server under: JACK_DEFAULT_SERVER when set (so a client with
    the same environment finds it), else `NAME` (never "default": a user's own server
    keeps that name)."""
    name = os.environ.get("JACK_DEFAULT_SERVER", "")
    return name if name and name != "default" else NAME


def runtime_dir() -> Path:
    """Where the pid and log files go: $XDG_RUNTIME_DIR/jazzd, else a per-user folder in /tmp."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "jazzd" if base else Path(tempfile.gettempdir()) / f"jazzd-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def pid_file(name: str) -> Path:
    return runtime_dir() / f"jackd-{name}.pid"


def read_pid_file(path: Path) -> tuple[int, int] | None:
    """(jackd's pid, its owner's pid) from a pid file, or None when absent or unreadable."""
    try:
        server, owner = (int(x) for x in path.read_text().split()[:2])
    except (OSError, ValueError):
        return None
    return server, owner


def is_jackd(pid: int, name: str) -> bool:
    """True when process `pid` runs and is a jackd serving `name` (a reused pid is not)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not process_alive(pid) or not argv or not os.path.basename(argv[0]).startswith(b"jackd"):
        return False
    return any(a == b"-n" and b == name.encode() for a, b in itertools.pairwise(argv))


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, wait for the process to go, SIGKILL as a last resort."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < end:
        time.sleep(0.02)
    if process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_leftovers(name: str) -> None:
    """Semaphores a killed server or client leaves in /dev/shm (jack_sem.<uid>_<name>_*)."""
    shm = Path("/dev/shm")
    if shm.is_dir():
        for path in shm.glob(f"jack_sem.{os.getuid()}_{name}_*"):
            with contextlib.suppress(OSError):
                path.unlink()


def clean_stale(name: str, log=None) -> int | None:
    """Stop the server a killed jazzd left under `name` (its pid file names a jackd whose
    owner is gone) and forget the pid file.  Returns the live owner's pid when another
    jazzd still owns it (then it is left alone), else None."""
    path = pid_file(name)
    recorded = read_pid_file(path)
    if recorded is None:
        return None
    server, owner = recorded
    if is_jackd(server, name):
        if owner != os.getpid() and process_alive(owner):
            return owner
        _terminate(server)
        if log:
            log(f'stopped JACK server "{name}" (pid {server}) that a jazzd which is gone (pid {owner}) left running')
    remove_leftovers(name)
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def _die_with_parent(parent: int):
    """`preexec_fn`: SIGTERM to the server when jazzd dies, however it dies."""
    def setup() -> None:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # jazzd died before the line above: go at once
            os._exit(1)
    return setup


@dataclass
class EmbeddedServer:
    """A JACK server jazzd started (`owned`) or found under its name and uses."""

    name: str
    pid: int
    owned: bool
    start_s: float = 0.0
    process: subprocess.Popen | None = None

    def connect_line(self, input_name: str, output_name: str) -> str:
        """The one line saying what runs and how another JACK client reaches jazzd."""
        whose = (f"started its own JACK server \"{self.name}\" (pid {self.pid}, dummy driver: no sound, "
                 f"{RATE} Hz, period {PERIOD}; in {self.start_s:.1f} s; stopped with jazzd)"
                 if self.owned else f"uses JACK server \"{self.name}\" (pid {self.pid}, another jazzd's)")
        env = f"JACK_DEFAULT_SERVER={self.name}"
        return (f"jazzd: no MIDI system was running, so jazzd {whose}; other JACK clients connect with "
                f"`{env} jack_lsp` and `{env} jack_connect YOUR-KEYBOARD:out {input_name}`, "
                f"`{env} jack_connect {output_name} YOUR-SYNTH:in`")

    def stop(self) -> None:
        """Stop the server if jazzd started it (after jazzd closed its ports); safe twice."""
        if not self.owned:
            return
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        remove_leftovers(self.name)
        path = pid_file(self.name)
        if (read_pid_file(path) or (0, 0))[0] == self.pid:
            with contextlib.suppress(OSError):
                path.unlink()
        self.owned = False


def start(name: str | None = None, log=None, why: str = "") -> EmbeddedServer:
    """Start a private jackd on the dummy driver under `name` (default `server_name()`)
    and wait until clients can connect; use the one running under that name instead, if
    any.  Raise PortError (after `why`, the reason a server is needed) when it cannot."""
    name = name or server_name()
    head = f"{why.rstrip('.')}; " if why else ""
    other = clean_stale(name, log)
    running = jack_server_pid(jack_server_socket(name))
    if running is not None:
        return EmbeddedServer(name, running, owned=False)
    if other is not None:
        raise PortError(f"{head}jazzd pid {other} owns JACK server \"{name}\" but it does not answer; "
                        f"stop that jazzd, or set JACK_DEFAULT_SERVER to another name")
    jackd = shutil.which("jackd")
    if jackd is None:
        raise PortError(f"{head}jazzd could start its own JACK server but jackd is not installed: "
                        f"`{INSTALL}` (or start a MIDI system yourself)")
    remove_leftovers(name)
    env = {**os.environ, "JACK_NO_START_SERVER": "1", "JACK_DEFAULT_SERVER": name}
    log_path = runtime_dir() / f"jackd-{name}.log"
    t0 = time.monotonic()
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [jackd, SYNC, "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env,
            preexec_fn=_die_with_parent(os.getpid()), start_new_session=True)
    server = EmbeddedServer(name, process.pid, owned=True, process=process)
    pid_file(name).write_text(f"{process.pid} {os.getpid()}\n")
    try:
        _wait_ready(server, env, log_path)
    except BaseException:
        server.stop()
        raise
    server.start_s = time.monotonic() - t0
    return server


def _wait_ready(server: EmbeddedServer, env: dict, log_path: Path) -> None:
    """Until the server listens on its socket and a client gets through (`jack_wait -c`,
    where installed: a socket alone came up before the server took clients)."""
    socket_path = jack_server_socket(server.name)
    jack_wait = shutil.which("jack_wait")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        if jack_server_pid(socket_path) == server.pid:
            if jack_wait is None:
                return
            done = subprocess.run([jack_wait, "-c"], env=env, capture_output=True, text=True,
                                  timeout=START_TIMEOUT_S)
            if done.stdout.strip() == "running":
                return
        time.sleep(0.02)
    code = server.process.poll()
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if "Too many servers" in text:
        # jack2 keeps 8 servers in /dev/shm/jack-shm-registry and frees the slot of a killed
        # one only when a server of the same name starts again.
        raise PortError(f"jazzd's own JACK server \"{server.name}\" could not start: JACK's table of "
                        f"servers is full (8; killed servers keep their places); stop other JACK servers, "
                        f"or remove /dev/shm/jack-shm-registry while none runs")
    tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:]) if log_path.exists() else ""
    raise PortError(f"jazzd's own JACK server \"{server.name}\" did not start within {START_TIMEOUT_S:.0f} s"
                    f"{f' (exit code {code})' if code is not None else ''}: {tail or 'no output'}; "
                    f"see {log_path}")
