"""Where beats come from: jazzd's own clock, or a MIDI clock it follows.  Pure; the
daemon's real-time loop thread.

Stdlib only: never imports numpy, tensorflow, music21, mido or rtmidi.  Nothing here
reads a clock.  Every method takes the time (`now`, `t`) in seconds on the caller's
monotonic clock, so the same arithmetic runs live and, instantly, in tests.

- `InternalClock` keeps a tempo map (beat k at an absolute time) and hands out the beats
  (`poll`) and, when jazzd is the clock master (`--clock-out`), the 24-ppqn 0xF8 pulses
  (`clock_messages`) whose time has come.  Late polls return every due beat with its
  exact time, so lateness never accumulates as drift.
- `MidiClockFollower` turns incoming 0xF8/0xFA/0xFB/0xFC/0xF2 messages and their arrival
  times into `Tick`s and transport events, numbering the pulses on a fitted line (see
  `TempoFilter`), so lost, doubled and stray pulses and jitter do not move the beat.
- `LinkFollower` places the beats on an Ableton Link session's timeline, from snapshots
  of it (`LinkTimeline`) that jazzd.live.abletonlink takes in the loop.

MIDI facts (conventions §3.2): Timing Clock 0xF8 at 24 pulses per quarter note; Start
0xFA (play from position 0 at the next clock); Continue 0xFB (play from the current
position at the next clock); Stop 0xFC; Song Position Pointer 0xF2 lsb msb, a 14-bit count
of 16th notes (6 clocks each).  Active Sensing 0xFE is not clock and is ignored here.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

from jazzd.play.events import Tick

PPQN = 24                       # MIDI clock pulses per beat (quarter note)
PULSES_PER_SIXTEENTH = 6        # a Song Position Pointer unit
CLOCK = 0xF8
START = 0xFA
CONTINUE = 0xFB
STOP = 0xFC
SONG_POSITION = 0xF2
ACTIVE_SENSING = 0xFE
SPP_MAX = 0x3FFF                # 14 bits

MIN_TEMPO = 10.0                # bpm; the follower clamps its estimate to this range
MAX_TEMPO = 1000.0

# The follower's pulse line (see `TempoFilter`).
FIT_PULSES = 48                 # least-squares window: the last two beats of counted pulses
FIRST_JUDGED = 7                # from this many counted pulses on, the line places arrivals
SETTLE_EARLY = 0.3           # at start-up, an arrival this far before the earliest phase is still its slot's
SLOT_TOLERANCE = 0.3         # an arrival this near (share of a period) to a slot is its pulse
TRAIN = 7                       # a tempo jump: the last 7 arrivals make a regular clock...
JUMP_MISSES = 3                 # ...of which the line could not place 3 (or saw a gap before)...
MAX_JUMP = 2.5                  # ...within a factor 2.5 of the line's tempo,
LONG_TRAIN = 24                 # or the last 24 arrivals do, at any tempo
MAX_GAPS = 2                    # gaps in a row counted as lost pulses; the next is a slower clock
MAX_PULSE_GAP_S = 0.25          # a longer gap (below 10 bpm) is a stalled clock: start afresh


def _check_time(t: float) -> float:
    if not (isinstance(t, int | float) and math.isfinite(t)):
        raise ValueError(f"time must be a finite number of seconds, not {t!r}")
    return float(t)


def _check_tempo(tempo: float) -> float:
    if not (isinstance(tempo, int | float) and math.isfinite(tempo) and tempo > 0):
        raise ValueError(f"tempo must be a positive number of bpm, not {tempo!r}")
    return float(tempo)


def decode_song_position(data: bytes) -> int | None:
    """The position in 16th notes of a Song Position Pointer message, or None if `data`
    is not a well-formed one."""
    if len(data) != 3 or data[0] != SONG_POSITION or data[1] > 0x7F or data[2] > 0x7F:
        return None
    return data[1] | (data[2] << 7)


@dataclass(frozen=True, slots=True)
class TransportStart:
    """Start (0xFA) arrived at `t`: play from `beat` (always 0) at the next clock."""

    t: float
    beat: float = 0.0


@dataclass(frozen=True, slots=True)
class TransportStop:
    """Stop (0xFC) arrived at `t`, with the song at `beat` (where Continue resumes)."""

    t: float
    beat: float


@dataclass(frozen=True, slots=True)
class TransportContinue:
    """Continue (0xFB) arrived at `t`: play from `beat` (a 16th-note position from the
    Song Position Pointer, or where Stop left it) at the next clock."""

    t: float
    beat: float


TransportEvent = TransportStart | TransportStop | TransportContinue


class BaseClock:
    """What the daemon's loop asks of any clock.  Subclasses hold all the arithmetic and
    take the time as an argument; the loop only supplies "what time is it".

    `poll(now)`: the beats due by `now`; `next_tick_time()`: when to poll next
    (`math.inf`: no beat is scheduled, wait for input); `tempo` in bpm.
    """

    def __init__(self, beats_per_bar: int = 4):
        if not (isinstance(beats_per_bar, int) and 1 <= beats_per_bar <= 64):
            raise ValueError(f"beats_per_bar must be in range 1..64, not {beats_per_bar!r}")
        self.beats_per_bar = beats_per_bar

    @property
    def tempo(self) -> float:
        raise NotImplementedError

    def poll(self, now: float) -> list[Tick]:
        return []

    def next_tick_time(self) -> float:
        return math.inf


# ---------------------------------------------------------------------------------------
# jazzd's own clock


@dataclass(frozen=True, slots=True)
class _Segment:
    """From time `t0` (inclusive) until the next segment's `t0`, beat `beat0 + n` is at
    `t0 + n * spb` (n >= 0)."""

    t0: float
    beat0: int
    tempo: float

    @property
    def spb(self) -> float:
        return 60.0 / self.tempo


def _grid_time(seg: _Segment, j: int, per_beat: int) -> float:
    """The time of grid point j of `seg` (per_beat points a beat).  Whole beats are
    computed exactly as `t0 + n * spb`, so a beat and its pulse agree to the bit."""
    q, r = divmod(j, per_beat)
    return seg.t0 + q * seg.spb + (r * seg.spb / per_beat if r else 0.0)


class InternalClock(BaseClock):
    """jazzd as its own (and optionally other devices') clock.

    Beat 0 is at `start`, then one beat every 60/tempo s.  All times are absolute
    deadlines computed from a tempo map, never by adding intervals to the time of a late
    poll.  `set_tempo` changes the tempo from the next beat on (the beat in progress
    keeps its length).  As clock master (`--clock-out`) its 0xF8 pulses, 24 a beat on the
    same map, come from `clock_messages`.  Call `poll` and `clock_messages` with
    non-decreasing times.
    """

    def __init__(self, tempo: float, start: float, beats_per_bar: int = 4):
        super().__init__(beats_per_bar)
        self._tempo = _check_tempo(tempo)
        start = _check_time(start)
        self._segments = [_Segment(start, 0, self._tempo)]
        # Cursors: the next beat / pulse is the first grid point after (or at, if not
        # strict) this time.
        self._tick_after, self._tick_strict = start, False
        self._pulse_after, self._pulse_strict = start, False

    # -- the tempo map ------------------------------------------------------------------

    def _segment_index(self, t: float) -> int:
        """The segment in force at t (the first one for times before it)."""
        segs = self._segments
        for i in range(len(segs) - 1, 0, -1):
            if segs[i].t0 <= t:
                return i
        return 0

    def _next_point(self, after: float, strict: bool, per_beat: int) -> tuple[int, float, _Segment]:
        """The first grid point (per_beat a beat) at or after `after` (strictly after if
        `strict`): (its index, counted from beat 0, its time, segment)."""
        segs = self._segments
        i = self._segment_index(after)
        seg = segs[i]
        step = seg.spb / per_beat

        def ok(t: float) -> bool:
            return t > after if strict else t >= after

        j = max(0, math.ceil((after - seg.t0) / step)) if after > seg.t0 else 0
        while j > 0 and ok(_grid_time(seg, j - 1, per_beat)):
            j -= 1
        while not ok(_grid_time(seg, j, per_beat)):
            j += 1
        t = _grid_time(seg, j, per_beat)
        if i + 1 < len(segs) and t >= segs[i + 1].t0:
            seg, j, t = segs[i + 1], 0, segs[i + 1].t0
        return seg.beat0 * per_beat + j, t, seg

    def _prune(self) -> None:
        """Forget segments that no cursor can reach any more."""
        oldest = min(self._tick_after, self._pulse_after)
        while len(self._segments) > 1 and self._segments[1].t0 <= oldest:
            del self._segments[0]

    # -- beats --------------------------------------------------------------------------

    @property
    def tempo(self) -> float:
        """The tempo last set (in force from the beat after the change)."""
        return self._tempo

    def next_tick_time(self) -> float:
        return self._next_point(self._tick_after, self._tick_strict, 1)[1]

    def poll(self, now: float) -> list[Tick]:
        """Every beat due by `now` (time <= now) and not yet returned, each with its exact
        time and the tempo of the beat it begins."""
        ticks: list[Tick] = []
        limit = _check_time(now)
        while True:
            beat, t, seg = self._next_point(self._tick_after, self._tick_strict, 1)
            if t > limit:
                break
            ticks.append(Tick(t, beat, seg.tempo))
            self._tick_after, self._tick_strict = t, True
        self._prune()
        return ticks

    def set_tempo(self, tempo: float, now: float) -> None:
        """From the first beat after `now` on, beats come at `tempo` bpm.  The beat
        count stays continuous: that beat keeps the time the old tempo gave it."""
        tempo = _check_tempo(tempo)
        beat, t_anchor, _ = self._next_point(_check_time(now), True, 1)
        self._segments = [s for s in self._segments if s.t0 < t_anchor]
        self._segments.append(_Segment(t_anchor, beat, tempo))
        self._tempo = tempo

    # -- clock out ----------------------------------------------------------------------

    @staticmethod
    def stop_bytes() -> bytes:
        """Transport Stop (0xFC), sent when jazzd stops as clock master."""
        return bytes((STOP,))

    def next_pulse_time(self) -> float:
        """When the next 0xF8 is due."""
        return self._next_point(self._pulse_after, self._pulse_strict, PPQN)[1]

    def clock_messages(self, now: float) -> list[bytes]:
        """The 0xF8 pulses due by `now` and not yet returned (24 a beat, at absolute
        deadlines; a late poll gets all of them)."""
        limit = _check_time(now)
        pulses = 0
        while True:
            _, t, _ = self._next_point(self._pulse_after, self._pulse_strict, PPQN)
            if t > limit:
                break
            pulses += 1
            self._pulse_after, self._pulse_strict = t, True
        self._prune()
        return [bytes((CLOCK,))] * pulses


# ---------------------------------------------------------------------------------------
# Following a MIDI clock


class TempoFilter:
    """The pulse line of a 24-ppqn clock: which pulse each arrival is, and the tempo.

    Pulses are numbered by time, not by arrival: `count` is the number of the last pulse
    counted, and `time_of(k)` the time of pulse k on a least-squares line through the
    last `FIT_PULSES` (48, two beats) counted pulses against their numbers: the best
    linear estimate under independent per-pulse jitter, with no lag on a steady clock.
    From `FIRST_JUDGED` (7) counted pulses on, each arrival is placed on the line: within
    `SLOT_TOLERANCE` (0.3 of a period) of the next slot it is the next pulse; of a later
    slot, that pulse, the ones between counted as `lost` (a gap of about two periods
    counts as two; pulses that arrive together after a stall count the same way); near
    the slot of the pulse just counted it is `dropped` as "doubled" (and kept instead if
    nearer to it); anywhere else as "stray".  So a lost, doubled or stray pulse never
    moves the count, and one arrival's jitter moves the line by a fraction of itself.
    Before that (and after a gap over `MAX_PULSE_GAP_S`, which restarts the line at that
    pulse) every later arrival counts, and when the 7th comes they are numbered again by
    time (`_settle`), so a pulse lost among them, or held up until the next, counts too.

    A new tempo is a regular clock of its own: when the last `TRAIN` (7) arrivals lie on
    a line of their own (each within the tolerance) and the line could not place
    `JUMP_MISSES` (3) of them, the line restarts on them, if their tempo is within
    `MAX_JUMP` (2.5x) of the line's; any tempo takes `LONG_TRAIN` (24) such arrivals.
    Only `MAX_GAPS` (2) gaps in a row are taken for lost pulses (unless the clock goes on
    a period later): gap after gap is a slower clock, renumbered when it restarts the
    line.  Stray pulses among a clock do not form such a train, so they never move it.

    Measured by bench/clock.py (uniform ±1 ms jitter on every pulse, 1000 seeds), worst
    error at 100 / 120 / 173 bpm: 0.20 / 0.29 / 0.60 bpm after 25 pulses (one beat; 0.9%
    of runs exceed 0.5 at 173), 0.11 / 0.15 / 0.32 bpm from 48 pulses on.  A step 120 ->
    140 restarts the line after 4-10 pulses; the worst error is 0.78 bpm one beat after
    the step and 0.20 from two beats on (100 -> 173: restart after 6 pulses, 0.31 from two
    beats; a 7% step, 120 -> 128, after 7-10 pulses, 0.17 from two beats).  One pulse in
    50 lost, ±2 ms jitter, spurious and doubled pulses (200 runs of 64 beats): no beat
    moved; a beat's time within 0.22 ms of the sender's (median), 0.83 ms (p99), 1.5 ms
    at worst.  Cost: about 10 µs a pulse.
    """

    def __init__(self, tempo: float = 120.0):
        self.tempo = min(max(_check_tempo(tempo), MIN_TEMPO), MAX_TEMPO)
        self.count = 0                    # the number of the last pulse counted
        self.lost = 0                     # pulses missing between counted ones
        self.dropped: dict[str, int] = {}  # arrivals that were no pulse of the line, by reason
        self.resets = 0
        self._line: deque[tuple[int, float]] = deque(maxlen=FIT_PULSES)  # (pulse, arrival)
        # The last arrivals: (time, count before it, lost before it, drop reason or None).
        self._recent: deque[tuple[float, int, int, str | None]] = deque(maxlen=LONG_TRAIN)
        self._k0, self._t0, self._slope = 0.0, 0.0, self.period  # time_of(k) = t0 + slope (k - k0)
        self._error = 0.0                 # the last counted pulse's distance from its slot
        self._gaps = 0                    # pulses counted after a gap, in a row
        self._last = 0.0                  # the last arrival, counted or not
        self._phase: tuple[int, float, float] | None = None  # the settled start-up slots (`slot_of`)
        self._origin = (0, 0.0)           # (number, arrival) of the line's first pulse (`first`)
        self._settled = False             # numbering by the line (see `settled`)

    @property
    def period(self) -> float:
        """Seconds per pulse at the current estimate."""
        return 60.0 / (self.tempo * PPQN)

    def time_of(self, pulse: int) -> float:
        """The time of pulse number `pulse` on the fitted line."""
        return self._t0 + (pulse - self._k0) * self._slope

    def observe(self, t: float) -> bool:
        """Place a pulse that arrived at `t`: True if it was counted (`count` then says
        which pulse it is), False if dropped (the reason counted in `dropped`)."""
        before, lost = self.count, self.lost
        reason = self._place(t)
        self._recent.append((t, before, self.lost - lost, reason))
        if reason is None:
            return True
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return self._jump()

    def _place(self, t: float) -> str | None:
        line = self._line
        last, self._last = self._last, t
        if not line or abs(t - last) > MAX_PULSE_GAP_S:
            line.clear()
            self._recent.clear()
            self._phase = None
            self._settled = False
            self._count(1, t, 0.0)
            self._origin = (self.count, t)
            return None
        if not self._settled:
            if t > line[-1][1]:  # (one that came with the last is numbered at `_settle`)
                self._count(1, t, 0.0)
                if len(line) >= FIRST_JUDGED:
                    self._settle()
            return None
        x = (t - self.time_of(self.count)) / self._slope
        n = round(x)
        error = x - n
        if abs(error) > SLOT_TOLERANCE or n < 0:
            return "stray"
        if n == 0:
            if abs(error) < abs(self._error):  # the better of two arrivals for one pulse
                if line[-1][0] == self.count:
                    line[-1] = (self.count, t)
                else:  # (one `_settle` left out of the line)
                    line.append((self.count, t))
                self._fit()
                self._error = error
            return "doubled"
        if n > 1:
            # Pulses lost, unless the last pulses came after gaps too: gap after gap is
            # a slower clock, for the jump detector to find; but not if this one came a
            # period after the last arrival: then the line's clock goes on.
            if self._gaps >= MAX_GAPS and not (
                    self._recent and abs((t - self._recent[-1][0]) / self._slope - 1.0) <= SLOT_TOLERANCE):
                return "stray"
            self.lost += n - 1
        self._count(n, t, error)
        return None

    @property
    def first(self) -> tuple[int, float]:
        """(number, arrival) of the first pulse counted since the line (re)started (the
        line itself may leave it out: `_settle`)."""
        return self._origin

    def slot_of(self, pulse: int) -> float:
        """The time of pulse number `pulse` by the start-up slots `_settle` numbered the
        first pulses by (the phase of the earliest of them, in the median period), or on
        the fitted line if the line did not start with them (a jump restarted it).

        Why not the line: it is fitted to the first pulses as they came, so when the first
        few came late and the next on time, its slope is too flat and its first slot
        late.  The follower asks where the first pulse after a Start belongs, and on the
        line a first pulse held up by half a period (9 ms at 150 bpm: a DAW starting its
        transport) looked a whole period after the Start, so it was taken for the second
        and every beat of the song came a pulse early."""
        if self._phase is None:
            return self.time_of(pulse)
        k, t, period = self._phase
        return t + (pulse - k) * period

    @property
    def settled(self) -> bool:
        """Whether the line has had enough pulses (`FIRST_JUDGED`) to number arrivals by
        (see `_settle`)."""
        return self._settled

    def _settle(self) -> None:
        """The first pulses, counted blind, numbered again by time, in periods of the
        median of their intervals: a pulse lost among them leaves a gap of two (counted
        as lost, as are pulses that came with another: a poll found both, at the later
        one's time).  Pulses held up (further than `SLOT_TOLERANCE` from their slots)
        are counted but left out of the line: fitted, two pulses held by a stall in the
        first seven put the next slots so far off that the next two pulses were dropped
        as stray, and every beat came a pulse late.

        Numbered from the earliest phase among them, not from the first one's: arrivals
        are late (a busy sender, a poll), never early, so the one that came soonest
        after its slot marks the slots, and an arrival counts as a pulse later only when
        it is `1 - SETTLE_EARLY` (0.7) of a period behind that phase.  Numbered from the
        first one's phase (rounding), a first pulse on time and the next ones held up by
        half a period made a pulse "lost" that never was, and every beat a pulse early
        for good (a 1-in-40 failure of the JACK external-clock test: 8.5 ms at 150 bpm
        is enough)."""
        line = list(self._line)
        period = sorted(b[1] - a[1] for a, b in itertools.pairwise(line))[(len(line) - 1) // 2]
        k0, t0 = line[0]
        # Each arrival's lateness against "one period each, none lost" (index i), and
        # the earliest of those: the phase the slots are counted from.
        late = [(t - t0) / period - i for i, (_, t) in enumerate(line)]
        early = min(late)
        behind = [x - early for x in late]          # periods behind the earliest phase
        # Pulses lost before each arrival, by time; but pulses come in order, so an
        # arrival is never more pulses on than a later one: one that seems to be (a
        # group of first pulses held up by 0.7 of a period and more, then on time) was
        # held up, not preceded by a lost pulse.
        ahead = [math.floor(b + SETTLE_EARLY) for b in behind]
        for i in range(len(ahead) - 2, -1, -1):
            ahead[i] = min(ahead[i], ahead[i + 1])
        first = ahead[0]  # (the first arrival keeps its number)
        numbered = [(k0 + i + ahead[i] - first, t) for i, (_, t) in enumerate(line)]  # (increasing)
        j = late.index(early)
        self._phase = (numbered[j][0], numbered[j][1], period)
        count = numbered[-1][0]
        self.lost += count - self.count
        self.count = count
        self._origin = numbered[0]
        # Fitted: the arrivals near their slots.  (Not one further on than its slot's
        # phase: only the margin numbers it so, and it may be a pulse held up.)
        near = [0.0 <= b - a <= SLOT_TOLERANCE for b, a in zip(behind, ahead, strict=True)]
        fitted = [p for p, ok in zip(numbered, near, strict=True) if ok]
        self._line.clear()
        self._line.extend(fitted if len(fitted) >= 2 else numbered)
        self._error = behind[-1] - ahead[-1] if near[-1] else 1.0  # (1: any arrival for it is nearer)
        self._settled = True
        self._fit()

    def _count(self, n: int, t: float, error: float) -> None:
        self.count += n
        self._line.append((self.count, t))
        self._error = error
        self._gaps = self._gaps + 1 if n > 1 else 0
        self._fit()

    def _fit(self) -> None:
        line = self._line
        n = len(line)
        k_ref, t_ref = line[0]
        if n == 1:
            self._k0, self._t0, self._slope = k_ref, t_ref, self.period
            return
        sk = st = skk = skt = 0.0
        for k, t in line:
            k -= k_ref
            t -= t_ref
            sk += k
            st += t
            skk += k * k
            skt += k * t
        mk, mt = sk / n, st / n
        slope = (skt / n - mk * mt) / (skk / n - mk * mk)
        if slope > 0.0:
            self._slope = slope
            self.tempo = min(max(60.0 / (slope * PPQN), MIN_TEMPO), MAX_TEMPO)
        self._k0, self._t0 = k_ref + mk, t_ref + mt

    def _jump(self) -> bool:
        """Restart the line on the last arrivals if they are a clock of their own that the
        line does not explain (see the class docstring)."""
        recent = list(self._recent)
        if not self._settled:
            return False
        for size in (TRAIN, LONG_TRAIN):
            if len(recent) < size:
                return False
            fit = _regular([r[0] for r in recent[-size:]])
            if fit is None:
                continue
            slope, first = fit
            train = recent[-size:]
            misses = sum(r[3] is not None or r[2] > 0 for r in train)
            if misses < JUMP_MISSES or not (size == LONG_TRAIN or 1 / MAX_JUMP <= slope / self._slope <= MAX_JUMP):
                continue
            # Arrivals just before it that the line counted after a gap, and that lie on
            # its line, are its first pulses (a slower clock's, taken for lost pulses).
            start = len(recent) - size
            while start > 0 and recent[start - 1][2] > 0 and abs(
                    recent[start - 1][0] - (first - (len(recent) - size - start + 1) * slope)) <= SLOT_TOLERANCE * slope:
                start -= 1
            self._restart(recent[start:], slope)
            return True
        return False

    def _restart(self, train: list, slope: float) -> None:
        """The line restarts on `train`, numbered on from the last pulse counted before
        it: as the line counted its first arrival if that came without a gap, else with
        the gap measured in the train's own periods."""
        for r in train:
            if r[3] is not None:  # they were pulses after all
                self.dropped[r[3]] -= 1
        self.dropped = {r: c for r, c in self.dropped.items() if c}
        t0, before, lost, reason = train[0]
        if reason is None and not lost:
            gap = 1
        else:
            last = next((t for k, t in reversed(self._line) if k == before), self.time_of(before))
            gap = max(1, round((t0 - last) / slope))
        self.lost += gap - 1 - sum(r[2] for r in train)
        first = before + gap - 1
        self._line.clear()
        self._line.extend((first + 1 + i, r[0]) for i, r in enumerate(train))
        self.count = first + len(train)
        self._origin = self._line[0]
        self._error = 0.0
        self._gaps = 0
        self._fit()
        self._recent.clear()
        self._phase = None
        self.resets += 1


def _regular(times: list[float]) -> tuple[float, float] | None:
    """(period, the line's time of the first) if `times` lie on a line of their own, each
    within the slot tolerance of it, at a tempo the filter can follow; else None."""
    n = len(times)
    mid = (n - 1) / 2
    mean = sum(times) / n
    slope = sum((i - mid) * (t - mean) for i, t in enumerate(times)) / (n * (n * n - 1) / 12)
    if not 60.0 / (MAX_TEMPO * PPQN) <= slope <= MAX_PULSE_GAP_S:
        return None
    if any(abs(t - mean - (i - mid) * slope) > SLOT_TOLERANCE * slope for i, t in enumerate(times)):
        return None
    return slope, mean - mid * slope


class MidiClockFollower(BaseClock):
    """Beats from an external MIDI clock.  Feed it every realtime and Song Position
    message with its arrival time; it returns the `Tick`s and transport events they make.

    The pulses are numbered by `TempoFilter`'s line, so a lost, doubled or stray pulse
    never moves the beat: while running, song position p (pulses, from Start at 0 or
    from the Song Position Pointer) is pulse number `anchor + p` of the line, and beat b
    makes `Tick(time_of(anchor + 24 b), b, tempo)` as soon as that pulse (or a later one)
    is counted: its time is the line's, not one arrival's, so jitter does not move beats.
    Start, Continue and Song Position re-anchor completely: the first pulse after them is
    the song position they name (pulses the line says were lost after them count; on a
    clock that starts with them, beat 0 ticks when the line is settled, at the 7th
    pulse, with its own time).  A Continue from mid-beat ticks at the next whole beat.
    Pulses while stopped only feed the line.  Start always restarts at position 0;
    Continue while running and Stop while stopped change nothing.  Active sensing is
    ignored silently; malformed or unknown messages are ignored and counted in
    `ignored`.  Never raises.
    """

    def __init__(self, beats_per_bar: int = 4, tempo: float = 120.0):
        super().__init__(beats_per_bar)
        self.filter = TempoFilter(tempo)
        self.running = False
        self._next_pulse = 0                 # song position (pulses) of the next pulse
        self._anchor: int | None = None      # pulse number of song position 0 (running)
        self._since: float | None = None     # a transport message waiting for its first pulse
        self._next_beat = 0                  # the next beat to tick
        self.ignored = 0

    @property
    def tempo(self) -> float:
        return self.filter.tempo

    def feed(self, t: float, data: bytes | bytearray | tuple | list) -> list:
        """The events made by one incoming message `data` that arrived at `t`."""
        msg = _as_bytes(data)
        if msg is None or not isinstance(t, int | float) or not math.isfinite(t):
            self.ignored += 1
            return []
        status = msg[0]
        if len(msg) == 1:
            if status == CLOCK:
                return self._clock(float(t))
            if status == START:
                self.running = True
                self._restart(t, 0)
                return [TransportStart(t, 0.0)]
            if status == CONTINUE:
                if self.running:
                    return []
                self.running = True
                self._restart(t, self._next_pulse)
                return [TransportContinue(t, self._next_pulse / PPQN)]
            if status == STOP:
                if not self.running:
                    return []
                self.running = False
                if self._anchor is not None:  # (a renumbered line never moves it before 0)
                    self._next_pulse = max(0, self.filter.count - self._anchor + 1)
                    self._anchor = None
                return [TransportStop(t, self._next_pulse / PPQN)]
            if status == ACTIVE_SENSING:
                return []
        elif status == SONG_POSITION:
            sixteenths = decode_song_position(msg)
            if sixteenths is not None:
                self._restart(t, sixteenths * PULSES_PER_SIXTEENTH)
                return []
        self.ignored += 1
        return []

    def _restart(self, t: float, position: int) -> None:
        """The first pulse after `t` is at song `position`."""
        self._next_pulse = position
        self._anchor = None
        self._since = t
        self._next_beat = -(-position // PPQN)

    def _clock(self, t: float) -> list[Tick]:
        flt = self.filter
        if not flt.observe(t) or not self.running:
            return []
        if self._anchor is None:
            if not flt.settled:  # (the first pulses of a clock: its beats wait for the line)
                return []
            # Song position `_next_pulse` is the first pulse after the transport message
            # (conventions §3.2: the master sends the first clock right after it).  On a
            # clock that ran before the message, that is the line's first slot after it:
            # a pulse lost after the message still counts.  A clock that starts after it
            # starts with its first pulse heard, or the one before if that came a period
            # after the message (the first pulse was lost).
            since = self._since - SLOT_TOLERANCE * flt.period
            first, first_t = flt.first
            if first_t <= since:
                first = flt.count
                while flt.count - first < 4 * PPQN and flt.time_of(first - 1) >= since:
                    first -= 1
            elif abs((flt.slot_of(first) - self._since) / flt.period - 1.0) <= SLOT_TOLERANCE:
                first -= 1
                flt.lost += 1
            self._anchor = first - self._next_pulse
        ticks = []
        while True:
            pulse = self._anchor + self._next_beat * PPQN
            if pulse > flt.count:
                return ticks
            ticks.append(Tick(flt.time_of(pulse), self._next_beat, flt.tempo))
            self._next_beat += 1


def _as_bytes(data) -> bytes | None:
    """A message as bytes, or None if it is not a non-empty sequence of byte values."""
    if isinstance(data, bytes | bytearray):
        return bytes(data) if data else None
    if isinstance(data, tuple | list) and data and all(
            isinstance(b, int) and 0 <= b <= 255 for b in data):
        return bytes(data)
    return None


# ---------------------------------------------------------------------------------------
# Following an Ableton Link session

LINK_JOIN_S = 1.0        # without start/stop sync, jazzd waits this long for a session before playing alone
LINK_LATE_S = 0.05       # a transport start learned of at most this late still plays its first beat
LINK_MOVED_S = 0.0005    # a timeline that moves the next beat by more than this has changed (tempo, phase)


@dataclass(frozen=True, slots=True)
class LinkTimeline:
    """A snapshot of a Link session, on the loop's clock: at time `t` the session is at
    `beat` (quantum = a bar: beat 0 mod beats_per_bar is a bar line on every peer),
    moving at `tempo` bpm; `playing` is its transport, which took (or takes) effect at
    `since`; `peers` is the number of other peers in the session."""

    t: float
    beat: float
    tempo: float
    playing: bool = False
    since: float = -math.inf
    peers: int = 0

    def time_at(self, beat: float) -> float:
        return self.t + (beat - self.beat) * 60.0 / self.tempo

    def beat_at(self, t: float) -> float:
        return self.beat + (t - self.t) * self.tempo / 60.0


class LinkFollower(BaseClock):
    """Beats on an Ableton Link session's timeline.  Feed it a `LinkTimeline` snapshot
    each turn of the loop (`update`, which returns transport events); `poll` hands out
    the beats due, each at its time on the latest snapshot, minus `latency` (seconds: how
    long jazzd's notes take to be heard, a DAW's "nudge"), so they sound on the beat.

    Link beat b (quantum = bar) is jazzd's beat b - base, with `base` a whole number of
    bars fixed when a run of beats starts: the first beat of a run is counted 0 to
    beats_per_bar - 1, so jazzd's bar lines are the session's.  The next beat is always
    after the last one in time and number; a timeline that jumps (a new session's phase)
    skips beats, and the engine starts a new timeline there.

    `start_stop` (the session's start/stop sync): beats come only while the session
    plays; a start is a `TransportStart` and beats from the first at or after its time;
    a stop a `TransportStop` at its time (no beat at or after it).  Without it, beats
    come always, once jazzd has joined a session or waited `LINK_JOIN_S` for one (so it
    does not play a moment at its own tempo and then jump to the session's).
    """

    def __init__(self, start: float, beats_per_bar: int = 4, latency: float = 0.0,
                 start_stop: bool = False):
        super().__init__(beats_per_bar)
        if not (isinstance(latency, int | float) and math.isfinite(latency)):
            raise ValueError(f"latency must be a finite number of seconds, not {latency!r}")
        self.latency = float(latency)
        self.start_stop = start_stop
        self.view: LinkTimeline | None = None
        self.joined_after: float | None = None   # seconds from start to the first peer
        self._start = _check_time(start)
        self._running = False
        self._stop_at = math.inf                 # a stop announced for this time
        self._next: int | None = None            # the next Link beat to tick
        self._base = 0
        self._last: tuple[int, float] | None = None  # (Link beat, time) of the last tick

    @property
    def tempo(self) -> float:
        return self.view.tempo if self.view is not None else 0.0

    @property
    def running(self) -> bool:
        return self._running

    def time_of(self, link_beat: float) -> float:
        """When jazzd plays Link beat `link_beat` (latency ahead of the session's time)."""
        return self.view.time_at(link_beat) - self.latency

    def update(self, view: LinkTimeline) -> list:
        """Take a new snapshot (at `view.t`); returns the transport events it makes."""
        now = _check_time(view.t)
        _check_tempo(view.tempo)
        if view.peers and self.joined_after is None:
            self.joined_after = max(0.0, now - self._start)
        self.view = view
        events: list = []
        if self.start_stop:
            if view.playing:
                if not self._running:
                    since = view.since if math.isfinite(view.since) else now
                    # A start just announced (or just past) plays from its own beat; in a
                    # session that has played for a while jazzd comes in at the next beat.
                    self._begin(since if since >= now + self.latency - LINK_LATE_S else now + self.latency)
                    events.append(TransportStart(since))
                self._stop_at = math.inf
            elif self._running:
                self._stop_at = view.since if math.isfinite(view.since) else now
                if now >= self._stop_at:
                    events.append(TransportStop(self._stop_at, self._beat_number(self._stop_at)))
                    self._running, self._next, self._stop_at = False, None, math.inf
        elif not self._running and (view.peers or now >= self._start + LINK_JOIN_S):
            self._begin(now + self.latency)
        if self._running and self._last is not None:
            # The timeline may have moved (a tempo change, a new session): the next beat
            # is the first after the last one, in number and in time.
            beat, t = self._last
            after = math.floor(view.beat_at(t + self.latency) + 1e-6) + 1
            self._next = max(beat + 1, after)
        return events

    def _begin(self, t: float) -> None:
        """A run of beats starts at time t (session time): from the first beat at or after it."""
        first = math.ceil(self.view.beat_at(t) - 1e-6)
        self._base = first - first % self.beats_per_bar
        self._next, self._last, self._running = first, None, True

    def _beat_number(self, t: float) -> float:
        return self.view.beat_at(t) - self._base if self.view is not None else 0.0

    def moved(self, old: LinkTimeline | None) -> bool:
        """Whether the latest snapshot places the next beat elsewhere than `old` did
        (by more than `LINK_MOVED_S`): what was planned on `old` must move."""
        if old is None or self.view is None or self._next is None:
            return False
        return abs(old.time_at(self._next) - self.view.time_at(self._next)) > LINK_MOVED_S

    def retime(self, old: LinkTimeline, t: float) -> float:
        """Time t as planned on `old`, moved to the same beat of the latest snapshot."""
        return self.view.time_at(old.beat_at(t + self.latency)) - self.latency

    def next_tick_time(self) -> float:
        if not self._running or self._next is None or self.view is None:
            return math.inf
        t = self.time_of(self._next)
        return t if t < self._stop_at - self.latency else math.inf

    def poll(self, now: float) -> list[Tick]:
        """The beats due by `now` (time <= now) not yet returned, each at its time on the
        latest snapshot."""
        limit = _check_time(now)
        ticks: list[Tick] = []
        while (t := self.next_tick_time()) <= limit:
            ticks.append(Tick(t, self._next - self._base, self.view.tempo))
            self._last = (self._next, t)
            self._next += 1
        return ticks
