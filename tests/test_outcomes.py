"""The decisions executor and the polling stage on odd servers: an outage past patience, a
result URL that lags the status URL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from batchgen.core.circuit import OutagePolicy
from batchgen.core.clock import SystemClock
from batchgen.core.jobs import Job
from batchgen.core.policy import Action, Backoff, Decision, Failure, seeded_rand
from batchgen.core.pollplans import PollPlans
from batchgen.core.runstats import RunStats
from batchgen.core.wire import Poll, Submitted
from batchgen.edges.ledger import LedgerWriter
from batchgen.engine.follow import Follower
from batchgen.engine.kit import Kit
from batchgen.engine.outcomes import JobOver, Outcomes
from batchgen.engine.retry import Retry, Tries
from batchgen.engine.throttle import Throttle


async def test_outage_past_patience_releases_api_retries_but_not_downloads(tmp_path: Path):
    """A download that fails while the API has been down past patience keeps its own backoff:
    releasing the job would drop an image already paid for (its URL is not in the ledger)."""
    throttle = Throttle(4, outage=OutagePolicy(threshold=1, patience=0.0))
    throttle.circuit.failure(asyncio.get_running_loop().time() - 1.0)  # down for a second
    assert throttle.outage_over() is not None
    stops: list[str] = []
    job = Job(id="j", model="qwen-image", params={"prompt": "x"})
    retry = Decision(Action.RETRY, "503")
    async with LedgerWriter(tmp_path / "ledger.jsonl") as ledger:
        outcomes = Outcomes(ledger, RunStats(), stops.append)
        retrier = Retry(SystemClock(), throttle, outcomes, Backoff.immediate(), seeded_rand(0))
        await retrier.failed(Tries(job, "media"), Failure(retry, "503"))  # retried
        assert stops == []
        with pytest.raises(JobOver):
            await retrier.failed(Tries(job, "poll"), Failure(retry, "503"))
    assert len(stops) == 1
    assert "outage" in stops[0]
    records = [json.loads(x) for x in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == ["released"]


class LaggingResults:
    """A server whose status URL says COMPLETED while its result URL still says PROCESSING for
    a couple of calls (a replica behind the other): the transport seam, not an HTTP mock."""

    def __init__(self, lag: int) -> None:
        self.lag = lag
        self.calls: list[str] = []

    async def poll(self, url: str) -> Poll:
        self.calls.append(url)
        if url == "status":
            return Poll("COMPLETED")
        if self.lag:
            self.lag -= 1
            return Poll("PROCESSING")
        return Poll("COMPLETED", output="http://127.0.0.1/media/x.png")


async def test_a_result_url_lagging_the_status_url_is_asked_again(tmp_path: Path):
    """Before: the pending body was returned as the result, and storing it crashed the run."""
    api = LaggingResults(lag=2)
    stats = RunStats()
    throttle = Throttle(4)
    async with LedgerWriter(tmp_path / "ledger.jsonl") as ledger:
        outcomes = Outcomes(ledger, stats, print)
        retrier = Retry(SystemClock(), throttle, outcomes, Backoff.immediate(), seeded_rand(0))
        follower = Follower(api, Kit(throttle, ledger, retrier), PollPlans(0.01), retention=3600)
        follower.result_answers_pending = False  # ask the status URL, then the result URL
        job = Job(id="j", model="qwen-image", params={"prompt": "x"})
        poll = await follower.follow(job, Submitted("r", "status", "result"))
    assert poll is not None
    assert poll.output == "http://127.0.0.1/media/x.png"
    assert api.calls == ["status", "result", "result", "result"]
    assert stats.retries == 2
