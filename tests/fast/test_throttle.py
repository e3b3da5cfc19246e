"""Admission control: the probe gate, in-flight slots, and how 429s move the rate (the timing
rules, stepped by hand, are in test_fast_throttle.py)."""

from __future__ import annotations

import asyncio
import contextlib

from batchgen.core.circuit import OutagePolicy
from batchgen.core.clock import SystemClock
from batchgen.core.errors import ApiError, TransportError
from batchgen.core.jobs import Job
from batchgen.core.policy import Action, Backoff, Decision, Failure
from batchgen.core.runstats import RunStats
from batchgen.engine.outcomes import Outcomes
from batchgen.engine.retry import Retry, Tries
from batchgen.engine.throttle import Throttle
from batchgen.testing import SteppedClock

JOB = Job(id="j", model="qwen-image", params={"prompt": "x"})
RETRY = Failure(Decision(Action.RETRY, "503"), "503")


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
    clock = SteppedClock()
    throttle = Throttle(concurrency=10, rpm=1000, window=1.0, probe=False, clock=clock)
    for _ in range(20):
        await clock.run(throttle.before_submit())
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


# -- outage gate ---------------------------------------------------------------------------------

FAST_OUTAGE = OutagePolicy(threshold=3, probe_base=0.05, probe_cap=0.1, patience=60.0)


async def fail(throttle: Throttle, status: int | None = 503) -> None:
    """One watched call that the server did not answer (or answered with `status`)."""

    async def call() -> None:
        if status is None:
            raise TransportError("reset", maybe_sent=True)
        raise ApiError(status, "down")

    with contextlib.suppress(ApiError, TransportError):
        await throttle.watch(call())


async def succeed(throttle: Throttle) -> None:
    async def call() -> str:
        return "ok"

    assert await throttle.watch(call()) == "ok"


async def test_failures_in_an_outage_are_retried_at_once_and_excused():
    """In an outage a failed call waits for the gate, not for its backoff, and spends nothing."""
    throttle = Throttle(concurrency=10, probe=False, outage=FAST_OUTAGE)
    backoff = Backoff(base=10.0, cap=10.0, max_attempts=1, max_elapsed=100.0)
    clock = SystemClock()
    retry = Retry(clock, throttle, Outcomes(None, RunStats(), print), backoff, lambda: 0.5)  # type: ignore[arg-type]

    def retry_in(attempt: int, streak: float, phase: str = "poll") -> float | None:
        tries = Tries(JOB, phase)
        tries.streak.attempts = attempt
        return retry.delay(tries, RETRY, streak, clock.now())

    assert retry_in(2, 0.0) is None  # up: bounds apply
    for _ in range(3):
        await fail(throttle)
    streak = asyncio.get_running_loop().time()
    assert retry_in(1, streak) == 0.0
    # Media comes from another origin and passes no gate: its backoff still applies.
    assert retry_in(1, streak, "media") == 5.0
