"""Engine decisions against the in-memory Api in virtual time: retries, stops, expiry, 429s.

The same rules the emulator tests check over HTTP, here without sockets or sleeps, so each
decision is pinned to exact call counts and virtual durations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchgen.core.circuit import OutagePolicy
from batchgen.core.errors import ApiError, TransportError
from batchgen.core.jobs import Job
from batchgen.core.policy import Backoff
from batchgen.core.runstats import RunStats
from batchgen.edges.ledger import LedgerWriter
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.testing import FakeApi, SteppedClock

BACKOFF = Backoff(base=1.0, cap=8.0, max_attempts=4, max_elapsed=600.0)


def jobs(n: int) -> list[Job]:
    return [Job(id=f"j{i}", model="qwen-image", params={"prompt": f"p{i}"}) for i in range(n)]


async def run(
    tmp_path: Path, api: FakeApi, clock: SteppedClock, n: int, **config: object
) -> RunStats:
    settings: dict[str, object] = {"concurrency": 4, "typical_seconds": 1.0, "backoff": BACKOFF}
    settings.update(config)
    out = tmp_path / "out"
    async with LedgerWriter(out / "ledger.jsonl") as ledger:
        engine = Engine(api, ledger, EngineConfig(out_dir=out, **settings), clock=clock)  # type: ignore[arg-type]
        return await clock.run(engine.run(jobs(n)))


def events(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "out" / "ledger.jsonl").read_text().splitlines()
    return [json.loads(line)["event"] for line in lines]


async def test_happy_path_one_submit_and_one_download_per_job(tmp_path: Path):
    """Every job: one submit, its polls, one download, one completed event."""
    clock = SteppedClock()
    api = FakeApi(clock, latency=1.0)
    stats = await run(tmp_path, api, clock, 8)
    assert (stats.completed, sum(stats.failed.values())) == (8, 0)
    assert (api.calls["submit"], api.calls["download"]) == (8, 8)
    assert api.calls["poll"] >= 8
    assert events(tmp_path).count("completed") == 8


@pytest.mark.parametrize(
    ("latency", "bound"),
    [
        # One poll a job, at the typical time; the two probe jobs also poll early.
        (1.0, 2.05),
        # Twice the plan's prior: the first wave (the 50 in flight before any job finishes)
        # polls past the prior on the straggler steps, about 7 polls each; the 250 after it
        # poll once, on the plan learned from the first.
        (2.0, 3.05),
    ],
)
async def test_a_few_hundred_jobs_cost_about_three_calls_each(
    tmp_path: Path, latency: float, bound: float
):
    """Submit + download + about one poll: the poll plan waits out the typical time first.

    Over real HTTP the count varies with scheduling, so the bound lives here in virtual time."""
    clock = SteppedClock()
    api = FakeApi(clock, latency=latency)
    stats = await run(tmp_path, api, clock, 300, concurrency=50)
    assert stats.completed == 300
    assert (api.calls["submit"], api.calls["download"]) == (300, 300)
    assert stats.api_calls_per_job <= bound


async def test_a_503_on_submit_is_retried_after_a_backoff_and_counted_maybe_billed(tmp_path: Path):
    """A 5xx submit may have reached the server: counted as a possible double charge, retried."""
    clock = SteppedClock()
    api = FakeApi(clock)
    api.fail_next("submit", ApiError(503, "busy"), ApiError(502, "gateway"))
    stats = await run(tmp_path, api, clock, 1)
    assert stats.completed == 1
    assert api.calls["submit"] == 3
    assert stats.retries == 2
    assert stats.possible_double_charges == 2
    assert events(tmp_path)[:4] == ["intent", "unknown", "intent", "unknown"]


async def test_retries_are_bounded_by_attempts(tmp_path: Path):
    """A poll that keeps failing (the server otherwise up: no outage) gives up after
    max_attempts retries, failed as gave_up; the backoff slept between tries is on the clock."""
    clock = SteppedClock()
    api = FakeApi(clock)
    api.fail_next("poll", *(TransportError("reset", maybe_sent=False) for _ in range(5)))
    no_outage = OutagePolicy(threshold=100)
    stats = await run(tmp_path, api, clock, 1, outage=no_outage)
    assert stats.failed == {"gave_up": 1}
    assert api.calls["poll"] == 5  # the first try + 4 retries
    assert stats.retries == 4
    assert "failed" in events(tmp_path)


async def test_a_refused_key_stops_the_run_after_one_submit(tmp_path: Path):
    """401 on the probe: nothing else is sent, every job is left for a rerun."""
    clock = SteppedClock()
    api = FakeApi(clock)
    api.fail_next("submit", ApiError(401, "bad key"))
    stats = await run(tmp_path, api, clock, 5)
    assert api.calls["submit"] == 1
    assert stats.stop_reason is not None
    assert "API key" in stats.stop_reason
    assert stats.completed == 0


async def test_an_expired_request_is_resubmitted(tmp_path: Path):
    """404 on a poll: the request is forgotten, the job is submitted again and completes."""
    clock = SteppedClock()
    api = FakeApi(clock)
    api.forget.add("req-1")
    stats = await run(tmp_path, api, clock, 1)
    assert stats.completed == 1
    assert (api.calls["submit"], stats.resubmits) == (2, 1)
    assert "expired" in events(tmp_path)


async def test_a_429_on_submit_waits_the_reset_time(tmp_path: Path):
    """The server's reset time is waited out in virtual time, then the submit goes again."""
    clock = SteppedClock()
    api = FakeApi(clock, latency=0.5)
    api.fail_next("submit", ApiError(429, "slow down", retry_after=30.0))
    stats = await run(tmp_path, api, clock, 1)
    assert stats.completed == 1
    assert stats.rate_limited == 1
    assert api.calls["submit"] == 2
    assert clock.now() >= 30.0


async def test_an_outage_is_excused_and_ends_on_the_first_answer(tmp_path: Path):
    """Polls failing in a row open the circuit; failures while it is open spend no attempts,
    so a job survives more failures than its backoff allows."""
    clock = SteppedClock()
    api = FakeApi(clock, latency=0.5)
    api.fail_next("poll", *(ApiError(503, "down") for _ in range(8)))
    outage = OutagePolicy(threshold=2, probe_base=1.0, probe_cap=2.0, patience=600.0)
    stats = await run(tmp_path, api, clock, 1, outage=outage)
    assert stats.completed == 1
    assert api.calls["poll"] == 9


async def test_sync_mode_retries_a_refusal_and_fails_a_lost_answer(tmp_path: Path):
    """v1: a 503 is retried (only a 200 is billed); an answer lost after sending fails the job
    as unknown, counted as a possible charge, and is not sent again."""
    clock = SteppedClock()
    api = FakeApi(clock)
    api.fail_next(
        "run_sync", ApiError(503, "busy"), TransportError("reset after send", maybe_sent=True)
    )
    stats = await run(tmp_path, api, clock, 2, sync=True, concurrency=1)
    assert api.calls["run_sync"] == 3
    assert stats.completed == 1
    assert stats.failed == {"unknown": 1}
    assert stats.possible_double_charges == 1
