"""The SDK-shaped client's retry and wait rules in virtual time (its HTTP behaviour is tested
against the emulator in tests/test_sdk.py). The client's transport is swapped for the
in-memory Api: it needs the same four calls as the engine's."""

from __future__ import annotations

import pytest

import batchgen
from batchgen.core.errors import ApiError, TransportError
from batchgen.core.policy import Backoff
from batchgen.testing import FakeApi, SteppedClock


def client(clock: SteppedClock, api: FakeApi) -> batchgen.Client:
    backoff = Backoff(base=1.0, cap=4.0, max_attempts=3, max_elapsed=60.0)
    c = batchgen.Client(api_key="k", backoff=backoff, typical_seconds=2.0, clock=clock)
    c._api = api  # type: ignore[assignment]
    return c


async def test_429_waits_the_servers_time_and_5xx_backs_off():
    """A 429 with Retry-After waits exactly that; polls failing with 503 are retried."""
    clock = SteppedClock()
    api = FakeApi(clock, latency=2.0)
    api.fail_next("submit", ApiError(429, "slow down", retry_after=7.0))
    api.fail_next("poll", ApiError(503, "busy"), ApiError(503, "busy"))
    c = client(clock, api)
    job = await clock.run(c.submit("qwen-image", prompt="x"))
    assert clock.now() == 7.0
    result = await clock.run(job.wait(timeout=60))
    assert result["status"] == "COMPLETED"
    assert api.calls["submit"] == 2
    assert api.calls["poll"] >= 3


async def test_a_lost_submit_answer_is_raised_not_resent():
    """One job, one charge: a submit whose answer was lost after sending is not retried."""
    clock = SteppedClock()
    api = FakeApi(clock)
    api.fail_next("submit", TransportError("reset", maybe_sent=True))
    with pytest.raises(TransportError):
        await clock.run(client(clock, api).submit("qwen-image", prompt="x"))
    assert api.calls["submit"] == 1


async def test_retries_end_after_max_attempts():
    """Three retries, then the error is raised."""
    clock = SteppedClock()
    api = FakeApi(clock)
    api.fail_next("download", *(ApiError(502, "gateway") for _ in range(4)))
    with pytest.raises(ApiError):
        await clock.run(client(clock, api).download("fake://media/x.png"))
    assert api.calls["download"] == 4


async def test_wait_times_out_at_the_deadline():
    """A job still pending at the deadline raises InferenceTimeout, at the deadline."""
    clock = SteppedClock()
    api = FakeApi(clock, latency=100.0)
    c = client(clock, api)
    job = await clock.run(c.submit("qwen-image", prompt="slow"))
    with pytest.raises(batchgen.InferenceTimeout):
        await clock.run(job.wait(timeout=10.0))
    assert clock.now() == pytest.approx(10.0)
