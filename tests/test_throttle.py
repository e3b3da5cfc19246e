"""Admission control: the probe gate, in-flight slots, and how 429s move the rate."""

from __future__ import annotations

import asyncio

from batchgen.throttle import Throttle


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_probe_gate_lets_one_submit_through_until_accepted():
    """Before the first accepted submit only one job may be in flight; then all slots open."""
    throttle = Throttle(concurrency=4, probe=True)
    await throttle.acquire_slot()  # the probe
    waiting = [asyncio.create_task(throttle.acquire_slot()) for _ in range(3)]
    await settle()
    assert not any(t.done() for t in waiting)
    await throttle.probe_result(True)
    await asyncio.gather(*waiting)


async def test_failed_probe_passes_the_turn_to_one_waiter():
    """A refused probe lets exactly one more job try."""
    throttle = Throttle(concurrency=4, probe=True)
    await throttle.acquire_slot()
    waiting = [asyncio.create_task(throttle.acquire_slot()) for _ in range(2)]
    await settle()
    await throttle.probe_result(False)
    await settle()
    assert sum(t.done() for t in waiting) == 1
    await throttle.probe_result(True)
    await asyncio.gather(*waiting)


async def test_slots_cap_jobs_in_flight():
    """No more than `concurrency` slots are held at once."""
    throttle = Throttle(concurrency=2, probe=False)
    await throttle.acquire_slot()
    await throttle.acquire_slot()
    third = asyncio.create_task(throttle.acquire_slot())
    await settle()
    assert not third.done()
    throttle.release_slot()
    await third


async def test_stray_429_does_not_lower_the_rate_but_a_storm_does():
    """One 429 among many requests costs its wait only; a quarter of 429s lowers the rate."""
    throttle = Throttle(concurrency=10, rpm=1000, window=1.0, probe=False)
    for _ in range(20):
        await throttle.before_submit()
    assert throttle.on_rate_limited(0.0) == 0.0
    assert throttle.rate == 1000
    for _ in range(6):
        throttle.on_rate_limited(0.0)
    assert throttle.rate == 750


async def test_uncounted_429_does_not_pause_others():
    """A 429 on a poll that does not count returns its wait and pauses no one else."""
    throttle = Throttle(concurrency=1, rpm=10, window=1.0, probe=False)
    assert throttle.on_rate_limited(5.0, counted=False) == 5.0
    await asyncio.wait_for(throttle.before_submit(), 1.0)  # not paused for 5 s
    assert throttle.rate == 10


async def test_missing_reset_time_falls_back_to_one_pacing_interval():
    """Without a reset time, the wait is one interval of the current pace."""
    throttle = Throttle(concurrency=1, rpm=120, window=60.0, probe=False)
    assert throttle.on_rate_limited(None, counted=False) == 0.5
    assert Throttle(concurrency=1).on_rate_limited(None, counted=False) == 1.0
