"""MIDI ports: jazzd's input and output on ALSA, JACK, CoreMIDI or WinMM, as raw bytes.

Runs in the daemon's main (real-time) thread.  Uses python-rtmidi directly and polls its
input queue: no rtmidi/mido callback, because a Python callback would run inside JACK's
real-time thread and wait there for the GIL.  Holds no MIDI parsing (bytes in, bytes
out; the caller parses).  Never imports tensorflow, music21, numpy or mido.

Ports come and go: `MidiPorts.check` (called from the loop's slack) notices a port
jazzd connected to by name vanishing and coming back, and a JACK server that stops and
starts again, and reconnects by name; see its docstring for how and what it cannot see.

What Python cannot guarantee here: `poll` and `send` allocate small objects (the bytes
and the list), and the garbage collector or another thread holding the GIL can still
delay them.  Backend errors are translated into `PortError` at this edge.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import rtmidi

from jazzd.errors import NoMidiSystem, PortError
from jazzd.live import rtjack
from jazzd.live.stamps import Arrivals

# Our backend names and rtmidi's API constants, in one table.
APIS = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
BACKENDS = ("auto", *APIS)
DISPLAY = {"alsa": "ALSA", "jack": "JACK", "coremidi": "CoreMIDI", "winmm": "WinMM"}

# What "auto" tries, in order, per platform (sys.platform prefix).
AUTO_ORDER = {"linux": ("alsa", "jack"), "darwin": ("coremidi", "jack"), "win32": ("winmm",)}

ALSA_SEQ_DEVICE = "/dev/snd/seq"
VIRTUAL_INPUT = "in"
VIRTUAL_OUTPUT = "out"
# rtmidi's input queue (messages).  Beyond it rtmidi drops new messages (and says so on
# stderr); 4096 holds about 1.3 s of a dense controller stream at 3 bytes per message.
QUEUE_SIZE = 4096
# At most this many messages per `poll`, so that a flood cannot starve the loop.
POLL_LIMIT = 1024
# A returning JACK server's socket must stand this long before jazzd reconnects.
SERVER_SETTLE_S = 0.5
# Where `rtjack` cannot see rtmidi's JACK output queue (another python-rtmidi build), a
# JACK port is kept open this long after the last send before closing, so the server
# takes what rtmidi still has queued (a few periods normally; more on a loaded machine).
JACK_DRAIN_S = 0.2
# Many messages at once (`send_all`) go out this many at a time, this long apart: 128
# three-byte messages are 0.9 kB of rtmidi's 16 kB JACK ringbuffer, and 5 ms is a few
# periods (a panic's 2,096 messages take about 80 ms).
SEND_CHUNK = 128
SEND_PAUSE_S = 0.005

# How to fix each backend, for the error paragraph.
FIXES = {
    "jack": ("start a JACK server (`jackd{name} -S -d dummy -r 48000 -p 64 &` on a machine "
             "without sound hardware, or run under the desktop's PipeWire-JACK: "
             "`pw-jack jazzd ...`)"),
    "alsa": ("load the ALSA sequencer (`sudo modprobe snd-seq`; a service user also needs "
             "the audio group)"),
    "coremidi": "check that CoreMIDI works (Audio MIDI Setup opens and lists devices)",
    "winmm": ("install a loopback driver such as loopMIDI and pass its ports with "
              "--input/--output (WinMM cannot create virtual ports)"),
}


def available_apis() -> list[str]:
    """The backends python-rtmidi was compiled with, as our names (e.g. ['alsa', 'jack'])."""
    compiled = set(rtmidi.get_compiled_api())
    return [name for name, api in APIS.items() if api in compiled]


def _jack_server_name() -> str:
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def jack_server_socket(name: str | None = None) -> str:
    """Where a jack2 server listens for its clients (/dev/shm/jack_<name>_<uid>_0)."""
    return f"/dev/shm/jack_{name or _jack_server_name()}_{os.getuid()}_0"


def jack_server_pid(path: str) -> int | None:
    """The pid of the server listening on the Unix socket `path` (SO_PEERCRED), or None.

    One connection, at start-up or after the server came back: the server handles each
    connection in its own time, so probing the socket while playing disturbs JACK (clock
    pulses came up to 20 ms late here when probed every 0.1 s).
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
            raw = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except (OSError, AttributeError):
            return None
    pid = struct.unpack("3i", raw)[0]
    return pid or None  # 0: the server lives in another pid namespace


def process_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie does not): one read of /proc, ~10 us."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _candidates(backend: str) -> list[str]:
    if backend not in BACKENDS:
        raise PortError(f"unknown MIDI backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return [backend]
    for prefix, order in AUTO_ORDER.items():
        if sys.platform.startswith(prefix):
            return list(order)
    return available_apis()


class _Unusable(Exception):
    """One backend cannot work here: `reason` says why; `compiled` is False when
    python-rtmidi lacks it (no fix on this machine but another backend)."""

    def __init__(self, reason: str, compiled: bool = True):
        super().__init__(reason)
        self.reason, self.compiled = reason, compiled


def _new_clients(backend: str, client_name: str) -> tuple[rtmidi.MidiIn, rtmidi.MidiOut]:
    """Create rtmidi's input and output objects on one backend; raise _Unusable."""
    if backend not in available_apis():
        raise _Unusable(f"not compiled into python-rtmidi, which has "
                        f"{', '.join(available_apis()) or 'none'}", compiled=False)
    if backend == "alsa" and sys.platform.startswith("linux") and not os.path.exists(
            ALSA_SEQ_DEVICE):
        # Certain to fail; skip it so that libasound prints nothing on stderr.
        raise _Unusable(f"no ALSA sequencer: {ALSA_SEQ_DEVICE} does not exist; the snd-seq "
                        f"kernel module is not loaded, or this machine has no sound devices")
    if backend == "jack":
        # A JACK client must never start a server behind the user's back.
        os.environ.setdefault("JACK_NO_START_SERVER", "1")
    api = APIS[backend]
    midi_in = midi_out = None
    try:
        midi_in = rtmidi.MidiIn(api, name=client_name, queue_size_limit=QUEUE_SIZE)
        midi_out = rtmidi.MidiOut(api, name=client_name)
    except (rtmidi.RtMidiError, OSError, RuntimeError, SystemError) as err:
        # (python-rtmidi raises SystemError when the JACK server is not running)
        if midi_in is not None:
            midi_in.delete()
        if backend == "jack":
            why = f'no JACK server "{_jack_server_name()}" is running; rtmidi: {err}'
        elif backend == "alsa":
            why = f"cannot open {ALSA_SEQ_DEVICE}: {err}; is the user in the audio group?"
        else:
            why = f"rtmidi: {err}"
        raise _Unusable(why) from err
    if midi_in.get_current_api() != api or midi_out.get_current_api() != api:
        # rtmidi quietly falls back to another API when asked for one it lacks.
        _close_clients(midi_in, midi_out)
        raise _Unusable("python-rtmidi opened another MIDI system instead", compiled=False)
    return midi_in, midi_out


def _fix_text(failed: list[tuple[str, _Unusable]]) -> str:
    """The fixes for the backends that failed, then the --backend choice."""
    name = "" if _jack_server_name() == "default" else f" -n {_jack_server_name()}"
    tried = [backend for backend, why in failed]
    fixes = [FIXES[backend].format(name=name) for backend, why in failed if why.compiled]
    others = [b for b in available_apis() if b not in tried] or available_apis()
    fixes.append("choose the backend with --backend " + "|".join(others or APIS))
    return "; or ".join(fixes)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _connect(backend: str, client_name: str):
    """Return (backend, MidiIn, MidiOut) from the first backend that works, or raise."""
    failed = []
    for candidate in _candidates(backend):
        try:
            midi_in, midi_out = _new_clients(candidate, client_name)
        except _Unusable as why:
            failed.append((candidate, why))
            continue
        return candidate, midi_in, midi_out
    if not failed:
        raise PortError("python-rtmidi has no MIDI backend for this platform compiled in")
    reasons = [f"{DISPLAY[b]} ({why.reason})" for b, why in failed]
    if backend == "auto":
        head = "No MIDI system could be opened: tried " + _and(reasons)
    else:
        head = f"Cannot open MIDI ports with {reasons[0]}"
    raise NoMidiSystem(f"{head}. To fix it, {_fix_text(failed)}.")


def _close_clients(*clients, server_gone: bool = False) -> None:
    """Close rtmidi clients for good: JACK's deactivated before their ports go
    (`jazzd.live.rtjack`), unless their server is gone and nothing can race."""
    for client in clients:
        rtjack.close(client, server_gone=server_gone)


def list_ports(backend: str = "auto") -> dict[str, list[str]]:
    """The existing ports: "inputs" jazzd can read from, "outputs" it can write to.

    The position in each list is the index `open_ports` accepts.  Raises PortError when
    no backend works.
    """
    _, midi_in, midi_out = _connect(backend, "jazzd-list")
    try:
        return {"inputs": midi_in.get_ports(), "outputs": midi_out.get_ports()}
    finally:
        _close_clients(midi_in, midi_out)


def _numbered(ports: Iterable[tuple[int, str]]) -> str:
    return ", ".join(f"[{i}] {name}" for i, name in ports)


def find_port(spec: int | str, ports: list[str], kind: str = "input",
              backend: str = "") -> int:
    """The index in `ports` that `spec` names: an index (int or digits) or a name.

    A name matches exactly, else as a case-insensitive substring that must match one port
    only.  Raise PortError listing the ports (or the candidates when ambiguous).
    """
    where = f" on {DISPLAY.get(backend, backend)}" if backend else ""
    role = "read from" if kind == "input" else "write to"
    listing = (f"the ports jazzd can {role} are: {_numbered(enumerate(ports))}" if ports
               else f"there are no ports to {role}")
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        raise PortError(f"MIDI {kind} must be a port index or part of a port name, not {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        if 0 <= index < len(ports):
            return index
        raise PortError(f"MIDI {kind} index {index} is out of range{where}; {listing}")
    if spec in ports:
        return ports.index(spec)
    wanted = spec.casefold()
    hits = [(i, name) for i, name in enumerate(ports) if wanted in name.casefold()]
    if len(hits) == 1:
        return hits[0][0]
    if not hits:
        raise PortError(f'no MIDI {kind} matches "{spec}"{where}; {listing}')
    raise PortError(f'MIDI {kind} "{spec}" is ambiguous{where}: it matches {_numbered(hits)}; '
                    f"give more of the name, or the index")


def _discover(lister, before: list[str], port: str, fallback: str) -> str:
    """Our new port's name as other clients list it (JACK renames duplicate clients).

    Names look like "jazzd:in" (JACK), "jazzd:in 128:0" (ALSA) or "in" (CoreMIDI).
    """
    new = [p for p in lister() if p not in before
           and (p == port or p.endswith(f":{port}") or f":{port} " in p)]
    return new[0] if len(new) == 1 else fallback


def open_ports(backend: str = "auto", client_name: str = "jazzd",
               input: int | str | None = None, output: int | str | None = None) -> MidiPorts:
    """Open jazzd's MIDI input and output.

    `input`/`output` None (or "") creates a virtual port ("in"/"out") under `client_name`
    for other programs to connect to; an index or part of a port name connects to an
    existing port instead.  Raise PortError when no backend works or a port is not found.
    """
    if not client_name:
        raise PortError("the MIDI client name must not be empty")
    chosen, midi_in, midi_out = _connect(backend, client_name)
    try:
        return _open(chosen, client_name, midi_in, midi_out, input, output)
    except BaseException:
        _close_clients(midi_in, midi_out)
        raise


def _resolve(spec, ports: list[str], kind: str, backend: str, absent_ok: bool) -> str | None:
    if spec in (None, ""):
        return None
    if absent_ok and spec not in ports:  # a port lost before: wait for it by its name
        return str(spec)
    return ports[find_port(spec, ports, kind, backend)]


def _open(backend, client_name, midi_in, midi_out, input, output,
          absent_ok: bool = False) -> MidiPorts:
    sources, sinks = midi_in.get_ports(), midi_out.get_ports()
    # Resolve both before creating any port, so a name cannot match jazzd's own ports.
    source = _resolve(input, sources, "input", backend, absent_ok)
    sink = _resolve(output, sinks, "output", backend, absent_ok)
    try:
        # Our input port shows in the output client's listing, and the other way round.
        input_name, in_connected = _open_one(midi_in, source, VIRTUAL_INPUT, midi_out.get_ports,
                                             sinks, client_name)
        output_name, out_connected = _open_one(midi_out, sink, VIRTUAL_OUTPUT, midi_in.get_ports,
                                               sources, client_name)
    except ValueError as err:  # the port vanished between listing and opening
        raise PortError(f"a MIDI port disappeared while jazzd opened it: {err}") from err
    except (rtmidi.RtMidiError, OSError, NotImplementedError) as err:
        fix = FIXES["winmm"] if backend == "winmm" else "check the MIDI system"
        raise PortError(f"{DISPLAY[backend]} could not open jazzd's MIDI ports ({err}); "
                        f"{fix}") from err
    # Receive everything, active sensing too (jazzd drops it): rtmidi times each message
    # from the one before it, ignored or not, so an ignored message takes its time with
    # it and every later arrival would come out early (jazzd.live.stamps).
    midi_in.ignore_types(sysex=False, timing=False, active_sense=False)
    ports = MidiPorts(backend, midi_in, midi_out, input_name, output_name,
                      input_virtual=source is None, output_virtual=sink is None,
                      client_name=client_name, connected=[in_connected, out_connected],
                      stand_in=[source is not None and not in_connected,
                                sink is not None and not out_connected])
    if backend == "jack":
        ports.watch_server(jack_server_socket())
    return ports


def _open_one(client, name: str | None, port: str, lister, before: list[str],
              client_name: str) -> tuple[str, bool]:
    """Open one of jazzd's ports: virtual when `name` is None (returns the name others
    see it by), else connected to the port called `name`.  Returns (name, connected)."""
    if name is None:
        client.open_virtual_port(port)
        return _discover(lister, before, port, f"{client_name}:{port}"), True
    return name, _open_named(client, name, port)


def _open_named(client, name: str, port: str) -> bool:
    """Open our port connected to the port called `name`; if that port is not there
    (any more), open ours unconnected and return False."""
    ports = client.get_ports()
    if name not in ports:
        client.open_virtual_port(port)
        return False
    client.open_port(ports.index(name), port)
    return True


@dataclass(eq=False)
class MidiPorts:
    """jazzd's open input and output.  One thread at a time (the daemon's main thread).

    `input_name`/`output_name` are the names other MIDI programs see: jazzd's virtual
    ports, or the existing ports it connected to.  `pending` is True when the last `poll`
    stopped at its bound (more messages may be waiting: poll again next turn).
    """

    backend: str
    _in: rtmidi.MidiIn = field(repr=False)
    _out: rtmidi.MidiOut = field(repr=False)
    input_name: str
    output_name: str
    input_virtual: bool = True
    output_virtual: bool = True
    pending: bool = False
    client_name: str = "jazzd"
    # For the input and the output: connected to its named port now (virtual: always).
    connected: list[bool] = field(default_factory=lambda: [True, True])
    # For each: a virtual port stands in for a named port that was not there when opened.
    # python-rtmidi never lets a client that has had a virtual port open another port, so
    # such a client is replaced when its port appears (`check`).
    stand_in: list[bool] = field(default_factory=lambda: [False, False])
    # The JACK server, watched by `check`: its socket, pid and the socket's inode
    # (None: not JACK, or a server that is not jack2 or not visible from here).
    server_socket: str | None = None
    server_pid: int | None = None
    server_inode: int | None = None
    offline: bool = False  # the MIDI system went away; `check` reopens when it is back
    _server_seen: float | None = field(default=None, repr=False)
    _last_send: float = field(default=-math.inf, repr=False)  # monotonic; see close()
    _arrivals: Arrivals = field(default_factory=Arrivals, repr=False)  # the input's times

    def poll(self, now: float | None = None, max_messages: int = POLL_LIMIT) -> list[tuple[bytes, float]]:
        """Take up to `max_messages` waiting messages, oldest first, without blocking.

        Each is (raw bytes, when it arrived on the loop's clock, `time.monotonic`): from
        the MIDI system's own times, not the poll's (`jazzd.live.stamps`); `now` is the
        poll's time (read here when not given).  After `close` it returns [].  Never
        raises.
        """
        self.pending = False
        if self._in is None:
            return []
        got: list[tuple[bytes, float]] = []
        get = self._in.get_message
        for _ in range(max_messages):
            item = get()
            if item is None:
                break
            got.append(item)
        else:
            self.pending = True
        times = self._arrivals.stamp((delta for _, delta in got), time.monotonic() if now is None else now)
        return [(bytes(data), t) for (data, _), t in zip(got, times, strict=True)]

    def send(self, message: bytes) -> bool:
        """Send one complete MIDI message (rtmidi queues it; JACK sends it next period).
        False while the MIDI system is gone (see `check`): the message is dropped."""
        if self._out is None:
            if self.offline:
                return False
            raise PortError("the MIDI ports are closed")
        self._out.send_message(message)
        self._last_send = time.monotonic()
        return True

    def send_all(self, messages, chunk: int = SEND_CHUNK, pause: float = SEND_PAUSE_S) -> int:
        """Send many messages (a panic's 2,096) in chunks, pausing between them, so that
        rtmidi's JACK output ringbuffer (16 kB: about 2,300 three-byte messages) never
        holds more than a chunk: rtmidi does not drop a message that does not fit, it
        waits in the sending thread, yielding, until JACK has taken enough.  (CI once got
        the note offs of `jazzd panic` but none of its sustain-off and all-notes-off CCs:
        not an overflow, as this said before, but jack2's asynchronous mode, which loses
        what a sender wrote in a cycle its reader ran late for; the servers jazzd and its
        tests start run synchronously, `jazzd.live.jackserver`.)  Returns how many went
        out."""
        sent = 0
        for k, message in enumerate(messages):
            if k and k % chunk == 0 and self.backend == "jack":
                time.sleep(pause)
            sent += self.send(message)
        return sent

    def check(self) -> list[str]:
        """Notice what came and went since the last check; reconnect by name.

        Returns the changes, each one of "server lost", "server back", "input lost",
        "input back", "output lost", "output back" ("input"/"output" only for ports jazzd
        connected to; peers of its virtual ports come and go freely).  When the JACK
        server goes, the clients are closed at once (closing them after a new server
        has started can crash libjack) and `poll` and `send` idle until it is back.
        A port that vanishes and returns between two checks is not noticed.  Call it
        from the loop's slack: about 0.1 ms here.
        """
        changes: list[str] = []
        if self.server_pid is not None and not self.offline:
            if not process_alive(self.server_pid):
                _close_clients(self._in, self._out, server_gone=True)
                self._in = self._out = None
                self.offline, self.connected = True, [False, False]
                return ["server lost"]
        elif self.offline:
            # A new server makes a new socket.  Clients made while it is still starting
            # can come up dead (here an output that never delivered, one time in three),
            # so reopen only once the socket has stood for SERVER_SETTLE_S.
            if _inode(self.server_socket) in (None, self.server_inode):
                self._server_seen = None
                return changes
            now = time.monotonic()
            if self._server_seen is None:
                self._server_seen = now
            if now - self._server_seen < SERVER_SETTLE_S or not self._reopen():
                return changes
            changes.append("server back")
        for k, (client, virtual, name) in enumerate(
                ((self._in, self.input_virtual, self.input_name),
                 (self._out, self.output_virtual, self.output_name))):
            if virtual:
                continue
            kind = ("input", "output")[k]
            present = name in client.get_ports()
            if self.connected[k] and not present:
                self.connected[k] = False
                changes.append(f"{kind} lost")
            elif not self.connected[k] and present:
                if self.stand_in[k]:
                    client = self._renew(k)
                else:
                    rtjack.close_port(client)
                try:
                    self.connected[k] = _open_named(client, name, (VIRTUAL_INPUT, VIRTUAL_OUTPUT)[k])
                except (rtmidi.RtMidiError, ValueError):  # gone again meanwhile: next check
                    client.open_virtual_port((VIRTUAL_INPUT, VIRTUAL_OUTPUT)[k])
                self.stand_in[k] = not self.connected[k]
                if self.connected[k]:
                    changes.append(f"{kind} back")
                if k == 0:
                    self._arrivals.reset()  # the reopened port's times start again
        return changes

    def _renew(self, k: int):
        """A new client without a port, asking for the same name, in place of the input
        (k 0) or the output (1); made before the old one goes, so that a failure leaves
        the old one working."""
        api = APIS[self.backend]
        if k == 0:
            fresh = rtmidi.MidiIn(api, name=self.client_name, queue_size_limit=QUEUE_SIZE)
            fresh.ignore_types(sysex=False, timing=False, active_sense=False)  # as `_open`
            old, self._in = self._in, fresh
        else:
            fresh = rtmidi.MidiOut(api, name=self.client_name)
            old, self._out = self._out, fresh
        rtjack.close(old)
        return fresh

    def watch_server(self, path: str) -> None:
        """Watch the jack2 server listening at `path` (nothing to watch if none is)."""
        pid = jack_server_pid(path)
        self.server_socket = path if pid else None
        self.server_pid, self.server_inode = pid, _inode(path) if pid else None

    def _reopen(self) -> bool:
        """New clients and ports on the returned server, asking for the same names."""
        try:
            midi_in, midi_out = _new_clients(self.backend, self.client_name)
        except _Unusable:
            return False
        try:
            fresh = _open(self.backend, self.client_name, midi_in, midi_out,
                          None if self.input_virtual else self.input_name,
                          None if self.output_virtual else self.output_name, absent_ok=True)
        except (PortError, rtmidi.RtMidiError, SystemError):
            _close_clients(midi_in, midi_out)
            return False
        self._in, self._out, fresh._in, fresh._out = fresh._in, fresh._out, None, None
        self._arrivals.reset()  # a new client times its messages from a new start
        self.offline, self.connected, self.stand_in = False, fresh.connected, fresh.stand_in
        # `_open` watched the new server already (one SO_PEERCRED connection): take it over.
        self.server_socket, self.server_pid = fresh.server_socket, fresh.server_pid
        self.server_inode, self._server_seen = fresh.server_inode, None
        if self.input_virtual:
            self.input_name = fresh.input_name
        if self.output_virtual:
            self.output_name = fresh.output_name
        return True

    def close(self) -> None:
        """Close both ports and leave the MIDI system; safe to call twice."""
        midi_in, midi_out, self._in, self._out = self._in, self._out, None, None
        self.offline = False
        # rtmidi queues JACK output for the server's next periods; a port closed at once
        # loses what is still queued.  Seen: `jazzd panic` on a loaded machine delivered
        # 1,549 of its 2,048 note offs.  `rtjack.close` waits until the queue is empty;
        # where it cannot see the queue, it stays until the server has had time.
        blind = self._last_send + JACK_DRAIN_S - time.monotonic() if self.backend == "jack" else 0.0
        rtjack.close(midi_in)
        rtjack.close(midi_out, blind_wait_s=blind)

    def description(self) -> str:
        """One line for the ready message: backend and port names."""
        system = DISPLAY[self.backend]
        if self.backend == "jack":
            system += f' (server "{_jack_server_name()}")'
        reading = (f"{self.input_name} (virtual)" if self.input_virtual
                   else f"{self.input_name} (connected)")
        writing = (f"{self.output_name} (virtual)" if self.output_virtual
                   else f"{self.output_name} (connected)")
        return f"MIDI on {system}: reading {reading}, writing {writing}"

    def __enter__(self) -> MidiPorts:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
