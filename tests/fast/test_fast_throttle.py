"""Admission, rate control and the outage gate in virtual time: the timing assertions of
tests/test_throttle.py, stepped by hand instead of measured against the wall clock."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random

import pytest

from batchgen.core.circuit import OutagePolicy
from batchgen.core.errors import TransportError
from batchgen.engine.throttle import Throttle
from batchgen.testing import SteppedClock, settle
from tests.fast.test_throttle import FAST_OUTAGE, fail, succeed


async def test_outage_gate_lets_one_probe_through_per_gap_and_reopens_on_an_answer():
    """Three failed calls in a row: polls wait; the first probe goes at 0.05 s, the next not
    before 0.15 s; an answer frees everyone at once."""
    clock = SteppedClock()
    throttle = Throttle(concurrency=10, probe=False, outage=FAST_OUTAGE, clock=clock)
    await fail(throttle, 429)  # a 429 is an answer: the server is up
    for status in (500, None, 502):
        await fail(throttle, status)
    assert throttle.circuit.is_open
    waiting = [asyncio.create_task(throttle.before_poll()) for _ in range(5)]
    await clock.advance(0.049)
    assert sum(t.done() for t in waiting) == 0  # before the first probe's gap
    await clock.advance(0.002)
    assert sum(t.done() for t in waiting) == 1  # the probe, alone
    await clock.advance(0.05)
    assert sum(t.done() for t in waiting) == 1  # still out: one probe at a time
    await succeed(throttle)  # the probe got an answer
    await settle()
    assert all(t.done() for t in waiting)
    assert not throttle.circuit.is_open


async def test_outage_past_patience_stops_polls_and_parks_submits():
    """Past patience: the run is told to stop, polls fail at once, submits send nothing."""
    clock = SteppedClock()
    stops: list[str] = []
    policy = OutagePolicy(threshold=1, probe_base=0.01, probe_cap=0.01, patience=0.05)
    throttle = Throttle(10, probe=False, outage=policy, on_outage=stops.append, clock=clock)
    await fail(throttle)
    await clock.advance(0.06)
    with pytest.raises(TransportError, match="outage"):
        await throttle.before_poll()
    submit = asyncio.create_task(throttle.before_submit())
    await clock.advance(10.0)
    assert not submit.done()
    assert stops
    assert "outage" in stops[0]
    assert throttle.outage_over() is not None
    submit.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await submit


async def test_429_without_reset_time_waits_a_pacing_interval():
    """Paced: the refused call waits for its next token and nobody pauses; unpaced, everyone
    pauses a second of the window's minute."""
    clock = SteppedClock(start=100.0)
    paced = Throttle(concurrency=1, rpm=100, window=2.0, probe=False, clock=clock)
    assert paced.on_rate_limited(None) == 0.02
    assert paced.rates.pause_until <= clock.now()
    free = Throttle(concurrency=1, window=6.0, probe=False, clock=clock)
    assert free.on_rate_limited(None) == 0.1
    assert free.rates.pause_until == pytest.approx(clock.now() + 0.1)


async def test_a_reset_time_pauses_every_counted_request_until_then():
    """A 429 with a reset time holds back the next submit until exactly that time."""
    clock = SteppedClock()
    throttle = Throttle(concurrency=4, window=1.0, probe=False, clock=clock)
    throttle.on_rate_limited(2.0)
    submit = asyncio.create_task(throttle.before_submit())
    await clock.advance(1.99)
    assert not submit.done()
    await clock.advance(0.02)
    assert submit.done()


async def test_tokens_come_one_pacing_interval_apart():
    """rpm 100 over a 1 s window, 2 % under: one token every 10.2 ms (slowed by 1/8 of that
    per window for the pacer's credit for late sends, which lets the second follow early)."""
    clock = SteppedClock()
    throttle = Throttle(concurrency=10, rpm=100, window=1.0, probe=False, clock=clock)
    taken: list[float] = []

    async def take() -> None:
        await throttle.before_submit()
        taken.append(clock.now())

    await clock.run(asyncio.gather(*(take() for _ in range(5))))
    paced, credit = 0.0102 * (1 + 0.0102 / 8), 0.0102 / 8
    assert taken == pytest.approx([0.0, *(k * paced - credit for k in range(1, 5))])


async def test_a_late_send_is_made_up_and_no_window_holds_more_than_the_limit():
    """A sender that comes late (a busy loop) does not push every later send back; and however
    late the senders come, no window of the limit's length holds more than rpm sends."""
    rng = random.Random(5)
    rpm, window = 50, 60.0
    clock = SteppedClock()
    throttle = Throttle(concurrency=10, rpm=rpm, window=window, probe=False, clock=clock)
    sent: list[float] = []

    interval = window / rpm * 1.02
    paced = interval * (1 + interval / 8 / window)

    async def sender() -> None:
        for k in range(400):
            if k % 7 == 3:  # late for its turn by up to 0.15 s, under the credit (1/8 interval)
                await clock.sleep(paced + rng.uniform(0.0, 0.15))
            elif k % 53 == 0:  # idle for a while: credit never grows past its cap
                await clock.sleep(rng.uniform(5.0, 90.0))
            await throttle.before_submit()
            sent.append(clock.now())

    await clock.run(sender())
    for start in sent:
        assert sum(start <= t < start + window for t in sent) <= rpm
    # Between the idle spells, the lateness is made up: the sends keep the pacing interval.
    assert sent[52] - sent[1] == pytest.approx(51 * paced, abs=0.16)


async def test_submits_bunched_after_their_tokens_are_spaced_again():
    """Tokens taken at the pace, then released together (a slow group fsync): the sends still
    go out one pacing interval apart (the first two 7/8 of one: the pacer's late credit)."""
    clock = SteppedClock()
    throttle = Throttle(concurrency=10, rpm=100, window=1.0, probe=False, clock=clock)
    await clock.run(asyncio.gather(*(throttle.before_submit() for _ in range(8))))
    sent: list[float] = []

    async def call() -> None:
        sent.append(clock.now())

    await clock.run(asyncio.gather(*(throttle.submit(call()) for _ in range(8))))
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    paced, credit = 0.0102 * (1 + 0.0102 / 8), 0.0102 / 8
    assert gaps == pytest.approx([paced - credit] + [paced] * 6)


async def test_a_storm_of_429s_lowers_the_rate_and_a_quiet_window_raises_it():
    """A quarter of a window's requests refused: x0.75; a quiet window later: x1.1."""
    clock = SteppedClock()
    throttle = Throttle(concurrency=10, rpm=1000, window=1.0, probe=False, clock=clock)
    await clock.run(asyncio.gather(*(throttle.before_submit() for _ in range(20))))
    for _ in range(7):
        throttle.on_rate_limited(0.0)
    assert throttle.rate == 750
    await clock.advance(1.0)
    await clock.run(throttle.before_submit())
    assert throttle.rate == pytest.approx(825)
