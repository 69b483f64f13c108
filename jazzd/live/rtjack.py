"""Closing python-rtmidi's JACK clients without racing jack2's notification thread.

jack2 (1.9.21 here, 1.9.22 in python-rtmidi's wheel, and its master today) takes a port
off the client's port list on the caller's thread in `jack_port_unregister`, while the
client's notification thread may be walking that same list to recompute latencies: the
server asks every active client to, each time any client on it connects, disconnects,
comes or goes.  The walk then follows a freed list node and the process dies of SIGSEGV
in `JackClient::HandleLatencyCallback` (jackaudio/jack2 #216 and #340).  rtmidi's
`closePort` (so python-rtmidi's `close_port`, and `delete`, which calls it) unregisters
the port of an active client.  Seen in CI: the test process crashed closing its keyboard
and recorder just after four jazzds stopped; jazzd itself closes its two clients one
after the other at every stop, the first one's leaving being the very graph change that
sends the second its notification.

The cure jack2's authors give is to deactivate the client first: an inactive client
ignores notifications, and `jack_deactivate` returns only once the server has finished
any it was delivering (it sends them one at a time, under its engine lock, waiting for
each reply).  python-rtmidi has no `deactivate`, so `find` reaches the JACK client and
port behind an rtmidi object through rtmidi's own structures (`RtMidi::rtapi_`, then
`MidiApi::apiData_`, then `JackMidiData`), checking each step: the object must be rtmidi's
RtMidiIn or RtMidiOut (its vtable), the output's ringbuffer must be rtmidi's 16 kB one,
the input's data must point back into its API object, and libjack must own up to the
port as the client's.  When a check fails (another build of python-rtmidi, another API),
`find` returns None and the callers close as rtmidi does, race and all.

`close` then drains an output's ringbuffer, deactivates, unregisters the port, clears
rtmidi's pointer to it (so that rtmidi's own close has nothing left to do) and lets
rtmidi close the client; `close_port` reactivates the client for a port to come.
Linux, 64-bit only; never on the hot path (a close costs a server round trip or two).
"""

from __future__ import annotations

import ctypes
import sys
import time
from dataclasses import dataclass
from functools import lru_cache

import rtmidi

# rtmidi's JACK_RINGBUFFER_SIZE: its output ringbuffer, of which it writes size - 1.
RINGBUFFER_SIZE = 16384
# How long `close` waits for JACK to take what an output still has queued: rtmidi's own
# closePort waits at most one second for one process cycle.
DRAIN_TIMEOUT_S = 1.0
_POINTER = ctypes.sizeof(ctypes.c_void_p)
# Where python-rtmidi 1.5 keeps `thisptr` in its MidiIn/MidiOut objects: after the object
# header (2 words), Cython's vtable pointer and MidiBase's three object fields.
_THISPTR = 6 * _POINTER
_VTABLES = {rtmidi.MidiIn: "_ZTV8RtMidiIn", rtmidi.MidiOut: "_ZTV9RtMidiOut"}


class _JackMidiData(ctypes.Structure):
    """RtMidi.cpp's `JackMidiData` (built with semaphore.h, as python-rtmidi's wheels are;
    without it `rt_midi_in` comes 64 bytes earlier, which `find` accepts too)."""

    _fields_ = [("client", ctypes.c_void_p), ("port", ctypes.c_void_p), ("buff", ctypes.c_void_p),
                ("buff_max_write", ctypes.c_int), ("last_time", ctypes.c_uint64),
                ("sem_cleanup", ctypes.c_char * (4 * _POINTER)),
                ("sem_needpost", ctypes.c_char * (4 * _POINTER)),
                ("rt_midi_in", ctypes.c_void_p)]


class _Ringbuffer(ctypes.Structure):
    """libjack's `jack_ringbuffer_t`."""

    _fields_ = [("buf", ctypes.c_void_p), ("write_ptr", ctypes.c_size_t),
                ("read_ptr", ctypes.c_size_t), ("size", ctypes.c_size_t),
                ("size_mask", ctypes.c_size_t), ("mlocked", ctypes.c_int)]


@lru_cache(maxsize=1)  # (one library: bounded, as every cache of the live path)
def _library() -> ctypes.CDLL | None:
    """python-rtmidi's extension, through which its own libjack's functions are found
    (dlsym searches a library's dependencies), with their signatures; None off Linux,
    on 32 bits, or when the extension has no JACK."""
    if not sys.platform.startswith("linux") or _POINTER != 8:
        return None
    try:
        from rtmidi import _rtmidi

        lib = ctypes.CDLL(_rtmidi.__file__)
        for name in _VTABLES.values():
            ctypes.c_char.in_dll(lib, name)
        signatures = {
            "jack_deactivate": (ctypes.c_int, [ctypes.c_void_p]),
            "jack_activate": (ctypes.c_int, [ctypes.c_void_p]),
            "jack_port_unregister": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
            "jack_port_is_mine": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
            "jack_port_name": (ctypes.c_char_p, [ctypes.c_void_p]),
            "jack_get_client_name": (ctypes.c_char_p, [ctypes.c_void_p]),
            "jack_ringbuffer_read_space": (ctypes.c_size_t, [ctypes.c_void_p]),
        }
        for name, (restype, argtypes) in signatures.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
    except (ImportError, OSError, AttributeError, ValueError):
        return None
    return lib


class _Maps:
    """This process's readable memory, from /proc/self/maps: a pointer is followed only
    into it, so that a wrong guess is a None, never a crash."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []
        with open("/proc/self/maps") as maps:
            for line in maps:
                span, perms = line.split(maxsplit=2)[:2]
                if perms.startswith("r"):
                    low, high = span.split("-")
                    self.spans.append((int(low, 16), int(high, 16)))

    def readable(self, address: int | None, size: int) -> bool:
        return bool(address) and any(low <= address and address + size <= high
                                     for low, high in self.spans)


def _word(address: int) -> int | None:
    return ctypes.c_void_p.from_address(address).value


@dataclass
class Jack:
    """The JACK client (and port) behind one rtmidi object."""

    lib: ctypes.CDLL
    data: _JackMidiData
    output: bool

    @property
    def client_name(self) -> str:
        return self.lib.jack_get_client_name(self.data.client).decode(errors="replace")

    @property
    def port_name(self) -> str | None:
        if not self.data.port:
            return None
        return self.lib.jack_port_name(self.data.port).decode(errors="replace")

    def queued(self) -> int:
        """Bytes an output still has queued for JACK to take (0 for an input)."""
        return self.lib.jack_ringbuffer_read_space(self.data.buff) if self.output else 0

    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until JACK has taken all the output queued (its process cycle copies it
        into the port's buffer, which its readers read in the same cycle); False when
        it did not within `timeout` (a stalled server), or cannot (no port: rtmidi's
        process callback then leaves the queue alone)."""
        if not self.data.port:
            return not self.queued()
        deadline = time.monotonic() + timeout
        while self.queued():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return True

    def release_port(self) -> None:
        """Deactivate the client, then unregister its port: the race-free order."""
        self.lib.jack_deactivate(self.data.client)
        if self.data.port:
            port, self.data.port = self.data.port, None
            self.lib.jack_port_unregister(self.data.client, port)

    def forget_port(self) -> None:
        """Let rtmidi's own close skip the port (it would wait a second for a process
        cycle that a dead server never runs): only once the server is gone."""
        self.data.port = None

    def activate(self) -> None:
        result = self.lib.jack_activate(self.data.client)
        if result != 0:
            raise OSError(f"jack_activate failed ({result}): the JACK server did not take the client back")


def find(midi) -> Jack | None:
    """The JACK client behind an rtmidi MidiIn or MidiOut, or None when it is not one
    (another API, a deleted object) or rtmidi's structures are not the expected ones."""
    lib = _library()
    kind = type(midi) if type(midi) in _VTABLES else None
    if (lib is None or kind is None or midi.is_deleted or type(midi).__basicsize__ < _THISPTR + _POINTER
            or midi.get_current_api() != rtmidi.API_UNIX_JACK):
        return None
    maps = _Maps()
    this = _word(id(midi) + _THISPTR)
    vtable = ctypes.addressof(ctypes.c_char.in_dll(lib, _VTABLES[kind])) + 2 * _POINTER
    if not maps.readable(this, 2 * _POINTER) or _word(this) != vtable:
        return None
    api = _word(this + _POINTER)  # RtMidi::rtapi_
    if not maps.readable(api, 2 * _POINTER):
        return None
    address = _word(api + _POINTER)  # MidiApi::apiData_
    if not maps.readable(address, ctypes.sizeof(_JackMidiData)):
        return None
    data = _JackMidiData.from_address(address)
    if not maps.readable(data.client, 2 * _POINTER):
        return None
    output = kind is rtmidi.MidiOut
    if output:
        if (data.buff_max_write != RINGBUFFER_SIZE - 1
                or not maps.readable(data.buff, ctypes.sizeof(_Ringbuffer))):
            return None
        ring = _Ringbuffer.from_address(data.buff)
        if ring.size != RINGBUFFER_SIZE or ring.size_mask != RINGBUFFER_SIZE - 1:
            return None
    else:
        back = (data.rt_midi_in, _word(address + _JackMidiData.sem_cleanup.offset))
        if not any(pointer and api < pointer < api + 4096 for pointer in back):
            return None
    if data.port and lib.jack_port_is_mine(data.client, data.port) != 1:  # (-1: an error)
        return None
    return Jack(lib, data, output)


def close(midi, server_gone: bool = False, blind_wait_s: float = 0.0) -> None:
    """Close an rtmidi object for good, port and client; for JACK's, without the race
    (see the module's docstring) and after its queued output has gone out.  With
    `server_gone` nothing can race or drain: only rtmidi's wait for a process cycle is
    skipped.  Where `find` cannot see the client, it sleeps `blind_wait_s` first, for
    the server to take what is queued, and closes as rtmidi does."""
    if midi is None or midi.is_deleted:
        return
    try:
        jack = find(midi)
        if jack is None:
            time.sleep(max(blind_wait_s, 0.0))
        elif server_gone:
            jack.forget_port()
        else:
            jack.drain()
            jack.release_port()
        midi.close_port()
    finally:
        midi.delete()


def close_port(midi) -> None:
    """Close an rtmidi object's port and keep its client for another port: its queued
    output goes out first (rtmidi would send it to the next port's peer).  The client is
    active again before rtmidi registers the next port, as it must be to connect it: a
    port added to an active client's list can meet the same walk, but an append does
    not free the node the walk stands on."""
    jack = find(midi)
    if jack is not None:
        jack.drain()
        jack.release_port()
        jack.activate()
    midi.close_port()
