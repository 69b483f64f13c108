"""Issue 16: jazzd runs for weeks, so its memory is flat after warm-up.  The daemon's loop
in memory (the fuzz harness: `Wire` ports, a fake clock, `drive`) plays dense duet for a
long stretch, with everything the service meets in a day: chord changes every bar, the
player's sixteenth notes, CCs, a reload (SIGHUP) every few minutes, a control-socket
subscriber reading every event and a status request every few bars; the live Python
allocations (`sys.getallocatedblocks` after a full collection) after warm-up must stay
within a small fixed tolerance.  A container of the live path without a bound grows with
the notes, beats and events, and fails it.  The real-port soak is bench/soak.py."""

from __future__ import annotations

import gc
import json
import shutil
import socket
import sys
import tempfile
import weakref
from pathlib import Path

import numpy as np
import pytest

from jazzd.live.config import load_config
from jazzd.live.daemon import Daemon
from jazzd.live.notify import Notifier
from jazzd.model.memory import SessionMemory

from .test_fuzz import Wire, drive
from .tinymodel import make_bundle

TEMPO = 160.0
SPB = 60.0 / TEMPO
CHORDS = ([50, 53, 57, 60], [55, 59, 62, 65], [48, 52, 55, 59], [57, 60, 64, 67])  # Dm7 G7 Cmaj7 Am7
BARS = 1000                 # 25 minutes at 160 bpm (see the test)
WARMUP_BARS = 400           # the bounded containers fill in the first minutes, through 4 reloads
CHUNK_BARS = 4              # the loop runs this long between the control socket's turns
RELOAD_BARS = 100           # a reload every 2.5 minutes; live allocations are counted just before each
MEMORY_CAPACITY = 512       # the session memory's bound, small so that it turns over within the run
TOLERANCE_BLOCKS = 300      # live blocks the count may move after warm-up (measured: +30 to +70)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("longrun") / "tiny.npz")


@pytest.fixture
def short_dir():
    path = Path(tempfile.mkdtemp(prefix="jz", dir="/tmp"))  # (AF_UNIX paths: 107 bytes at most)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def phrases(seed: int = 5, n: int = 10) -> list[list[tuple[int, float]]]:
    """The player's repertoire: `n` one-bar phrases of sixteenths and eighths (pitch, length
    in beats), from which every bar is played, transposed.  A repertoire, as a real player
    has one: the values heard are a finite set that warm-up meets (the grammar's
    caches are bounded by the count of distinct values, not by the minutes)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        notes, t = [], 0.0
        while t < 4.0:
            length = float(rng.choice([0.25, 0.25, 0.5]))
            notes.append((int(rng.integers(0, 14)), min(length, 4.0 - t)))
            t += length
        out.append(notes)
    return out


def bar_messages(bar: int, repertoire) -> list[tuple[float, bytes]]:
    """One bar of the player: a chord change in the left hand (released at the bar line),
    and seven bars of phrases in ten with three bars' rest (where jazzd takes over, duet);
    every 10 bars a CC.  It repeats every 20 bars: each stretch between two reloads
    (`RELOAD_BARS`) is played alike, so the counts before them compare like with like
    (the engine's bounded traces are not full after 100 bars, and how full they are
    follows what was played)."""
    t0 = bar * 4 * SPB
    sends = [(t0 - 0.004, bytes([0x80, n, 0])) for n in CHORDS[(bar - 1) % 4]]
    sends += [(t0 + 0.002, bytes([0x90, n, 70])) for n in CHORDS[bar % 4]]
    if bar % 10 < 7:
        beat, root = 0.0, 62 + bar % 5
        for step, length in repertoire[(bar * 3) % len(repertoire)]:
            on = t0 + beat * SPB + 0.003
            sends += [(on, bytes([0x90, root + step, 90])), (on + 0.8 * length * SPB, bytes([0x80, root + step, 0]))]
            beat += length
    if bar % 20 == 3:
        sends.append((t0 + 0.5 * SPB, bytes([0xB0, 71, 50])))   # temperature
    if bar % 20 == 13:
        sends.append((t0 + 0.5 * SPB, bytes([0xB0, 74, 90])))   # density
    return sorted(sends, key=lambda s: s[0])


def read_all(sock: socket.socket) -> int:
    """Everything the daemon sent the subscriber so far (never waits); the lines read."""
    lines = 0
    try:
        while data := sock.recv(1 << 16):
            lines += data.count(b"\n")
    except BlockingIOError:
        pass
    return lines


def value_caches() -> list:
    """jazzd's caches of pure functions (functools.lru_cache) in the modules loaded."""
    found = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("jazzd.") and module is not None:
            for obj in vars(module).values():
                if hasattr(obj, "cache_parameters") and hasattr(obj, "cache_clear"):
                    found[id(obj)] = obj
    return list(found.values())


def live_blocks(daemon: Daemon) -> int:
    """Python's live allocations: memory blocks of its allocator after a full collection,
    with the caches of values emptied first (`value_caches` and the vocabulary's nearest
    values).  Those hold at most their maxsize, and they fill with the distinct values
    met (a chord, a value, an interval seen for the first time), not with the minutes:
    jazzd's own answers keep meeting a few new values an hour.  Every other container
    must hold still."""
    for cache in value_caches():
        cache.cache_clear()
    daemon.engine.soloist.runtime.vocab._near.clear()
    gc.collect()
    return sys.getallocatedblocks()


def play(daemon: Daemon, bars: range, repertoire, sub: socket.socket, status: socket.socket,
         counts: dict, at_check=None) -> None:
    """Drive the daemon through `bars`, serving its control socket between chunks."""
    for first in range(bars.start, bars.stop, CHUNK_BARS):
        start, end = first * 4 * SPB, (first + CHUNK_BARS) * 4 * SPB
        drive(daemon, [s for b in range(first, first + CHUNK_BARS) for s in bar_messages(b, repertoire)], end,
              start=start)  # (the chunk's messages are gone when the blocks are counted)
        daemon.ports.out.clear()  # (the wire's own record: not the daemon's)
        if first % RELOAD_BARS == 0 and first:
            daemon.reload_requested = True  # as SIGHUP's handler does
            daemon.requests(end)
        status.sendall(b'{"v": 1, "cmd": "status"}\n')
        daemon.serve_control(end)
        counts["events"] += read_all(sub)
        counts["replies"] += read_all(status)
        if at_check is not None and (first + CHUNK_BARS) % RELOAD_BARS == 0:
            at_check(first + CHUNK_BARS)  # (just before a reload: each count at the same age of the engine)


def test_hours_of_dense_duet_keep_live_allocations_flat_after_warm_up(model, short_dir):
    """25 minutes of dense duet at 160 bpm, clock sent (the player's sixteenths and
    eighths seven bars in ten, a chord a bar, CCs, a reload every 2.5 minutes, a
    subscriber, a status request every 4 bars): about 13,000 notes heard, 4,000 beats,
    96,000 clock pulses, 40,000 events to the subscriber, 9 reloads.  In notes heard
    that is hours of real playing (a player with rests plays a note or two a beat, not
    three); in reloads, over an hour of the soak's.  It takes seconds: the loop's clock
    is fake.  The session memory's bound is shrunk to `MEMORY_CAPACITY` values so that it
    fills and drops its oldest quarter many times over (its own bound is tested in
    test_memory).  After warm-up the live blocks, counted just before each reload, stay
    within `TOLERANCE_BLOCKS` of the count at its end: a list that kept one float a beat
    would add 2,400 blocks by the end, one that kept each message received 8,000."""
    overrides = {"model.path": str(model), "engine.seed": 1, "engine.mode": "duet", "clock.tempo": TEMPO,
                 "clock.send": True, "system.control_socket": str(short_dir / "c.sock")}
    cfg = load_config(overrides=overrides, system_paths=[])
    daemon = Daemon(cfg, overrides=overrides, notifier=Notifier(environ={}))
    daemon.memory = SessionMemory(MEMORY_CAPACITY)
    daemon.start(now=0.0, ports=Wire())
    daemon.open_control()
    sub = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sub.connect(str(daemon.control.path))
    status = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    status.connect(str(daemon.control.path))
    sub.sendall(b'{"v": 1, "cmd": "subscribe"}\n')
    daemon.serve_control(0.0)
    sub.setblocking(False)
    status.setblocking(False)
    repertoire = phrases()
    counts = {"events": 0, "replies": 0}
    try:
        play(daemon, range(0, WARMUP_BARS), repertoire, sub, status, counts)
        base = live_blocks(daemon)
        seen: list[tuple[int, int]] = []
        play(daemon, range(WARMUP_BARS, BARS), repertoire, sub, status, counts,
             at_check=lambda bar: seen.append((bar, live_blocks(daemon) - base)))
    finally:
        sub.close()
        status.close()
        daemon.shutdown(BARS * 4 * SPB)
    # It played the whole time: heard the player, answered, reloaded, served the socket.
    e = daemon.engine.stats
    assert daemon.counters.reloads == BARS // RELOAD_BARS - 1 and daemon.counters.rejected_reloads == 0
    assert daemon.counters.sent > 80_000 and daemon.counters.received > 20_000
    assert counts["replies"] >= BARS // CHUNK_BARS - 1 and counts["events"] > 10_000
    assert daemon.control is None and "error" not in daemon.counters.by_reason
    assert len(daemon.memory) <= MEMORY_CAPACITY
    assert e.played_notes + e.aside_notes > 100 and e.heard_notes > 500  # (an engine's own: since the last reload)
    assert all(abs(d) <= TOLERANCE_BLOCKS for _, d in seen), f"live blocks after warm-up (bar, change): {seen}"


def test_a_reload_frees_the_old_model_at_once_not_at_a_full_collection(model):
    """The daemon freezes its start-up objects (gc.freeze), so full collections of the
    cyclic garbage collector come hours apart; what a reload lets go must go by reference
    counting alone.  (The vocabulary's cache of nearest values was a cycle: every reload
    kept the old vocabulary and its cache alive.)"""
    overrides = {"model.path": str(model), "engine.seed": 1, "engine.mode": "duet"}
    cfg = load_config(overrides=overrides, system_paths=[])
    daemon = Daemon(cfg, overrides=overrides, notifier=Notifier(environ={}))
    daemon.start(now=0.0, ports=Wire())
    drive(daemon, [(0.5, bytes([0x90, 60, 90])), (0.6, bytes([0x90, 61, 90])), (0.8, bytes([0x80, 60, 0]))], 4.0)
    old = daemon.engine
    refs = {"engine": weakref.ref(old), "runtime": weakref.ref(old.soloist.runtime),
            "vocabulary": weakref.ref(old.soloist.runtime.vocab)}
    del old
    gc.disable()
    try:
        assert daemon.reload(4.0)
        drive(daemon, [], 8.0, start=4.0)
        alive = [name for name, ref in refs.items() if ref() is not None]
    finally:
        gc.enable()
    assert alive == []
    daemon.shutdown(8.0)


def test_every_cache_of_the_live_path_has_a_bound():
    """The caches `live_blocks` empties hold at most their maxsize: none is unbounded."""
    import jazzd.live.daemon  # noqa: F401  (everything the daemon loads)
    from jazzd.music.vocab import NEAREST_CACHE

    caches = value_caches()
    assert len(caches) >= 8
    unbounded = [c.__qualname__ for c in caches if c.cache_parameters()["maxsize"] is None]
    assert unbounded == [] and 0 < NEAREST_CACHE <= 65536
