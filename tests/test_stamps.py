"""Arrival times from the MIDI system's deltas (jazzd.live.stamps), on synthetic streams
whose true arrival times are known; the real JACK check is in tests/test_ports.py."""

from __future__ import annotations

import numpy as np

from jazzd.live.stamps import RELAX_STEP, Arrivals


def run(arrivals, polls, offset=0.0, lost=()):
    """Feed `arrivals` (true times, seconds, increasing) to an Arrivals through polls at
    the times `polls`; the MIDI system's clock is the loop's minus `offset`.  Deltas of
    the indices in `lost` are taken by a message the reader never sees.  Returns the
    stamps, in order."""
    stamps, conv, i, prev = [], Arrivals(), 0, None
    for read in polls:
        batch = []
        while i < len(arrivals) and arrivals[i] <= read:
            delta = 0.0 if prev is None else arrivals[i] - prev
            prev = arrivals[i]
            if i not in lost:
                batch.append(delta)
            elif i + 1 < len(arrivals):
                # the next message's delta counts from the lost one (rtmidi's way)
                pass
            i += 1
        stamps += conv.stamp(batch, read)
    return np.array(stamps)


def test_late_polls_do_not_make_late_stamps():
    rng = np.random.default_rng(1)
    true = np.cumsum(rng.uniform(0.005, 0.05, 400))
    # A poll every millisecond, but now and then the loop is held up 2-20 ms.
    polls, t = [], 0.0
    while t < true[-1] + 0.1:
        t += 0.001 + (rng.uniform(0.002, 0.02) if rng.random() < 0.1 else rng.uniform(0, 0.0003))
        polls.append(t)
    stamps = run(true, polls, offset=123.4)
    error = stamps - true
    reads = np.array([min(p for p in polls if p >= a) for a in true])
    assert np.all(error >= -1e-9) and np.all(stamps <= reads + 1e-12)
    # Within a poll's interval of the truth after the first reads, while the reads
    # themselves are often far late.
    assert np.max(error[20:]) < 0.001, np.max(error[20:])
    assert np.max(reads - true) > 0.01


def test_a_lost_delta_heals_at_relax_rate_and_never_goes_before_the_previous_read():
    true = np.arange(1, 2001) * 0.02   # a message every 20 ms for 40 s
    polls = np.arange(0, 41, 0.001)
    stamps = run(true, polls, lost={500})  # 20 ms of time lost at 10 s
    kept = np.delete(true, 500)
    error = stamps - kept
    assert abs(error[400]) < 0.0011
    # After the loss the times would be 20 ms early; the previous poll bounds them.
    assert -0.0011 <= np.min(error[500:]) < -0.0005
    assert np.max(np.abs(error)) < 0.0011


def test_an_idle_stream_keeps_its_offset():
    """Minutes without input: the first message after them is still stamped from the
    offset learnt before (raised by RELAX at most), then pulled back at once."""
    true = np.concatenate([np.arange(1, 101) * 0.01, 300.0005 + np.arange(0, 100) * 0.01])
    # Polls every 20 ms while idle: the first message after the pause is read 19.5 ms late.
    polls = np.concatenate([np.arange(0, 2, 0.001), 300 + np.arange(0, 3, 0.02)])
    stamps = run(true, polls)
    assert np.max(np.abs(stamps - true)) <= RELAX_STEP + 0.001


def test_reset_starts_a_new_stream():
    conv = Arrivals()
    assert conv.stamp([0.0, 0.01], 5.0) == [4.99, 5.0]
    conv.reset()
    assert conv.stamp([3.0], 6.0) == [6.0]  # the first delta of a new stream means nothing
    assert conv.stamp([], 7.0) == []
