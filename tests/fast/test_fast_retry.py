"""The retry primitive on its own, in virtual time: backoff sleeps, the 429 patience."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchgen.core.jobs import Job
from batchgen.core.policy import Action, Backoff, Decision, Failure
from batchgen.core.runstats import RunStats
from batchgen.edges.ledger import LedgerWriter
from batchgen.engine.outcomes import JobOver, Outcomes
from batchgen.engine.retry import RATE_LIMIT_PATIENCE, Retry, Tries
from batchgen.engine.throttle import Throttle
from batchgen.testing import SteppedClock

JOB = Job(id="j", model="qwen-image", params={"prompt": "x"})
RETRY = Failure(Decision(Action.RETRY, "server error (503)"), "HTTP 503: busy")
LIMITED = Failure(Decision(Action.RATE_LIMITED, "rate limited (429)"), "HTTP 429", 60.0)


async def test_backoff_doubles_then_gives_up_with_the_error(tmp_path: Path):
    """Full jitter at rand 0.5: 0.5, 1, 2 s slept on the clock; the 4th failure fails the job."""
    clock = SteppedClock()
    stats = RunStats()
    backoff = Backoff(base=1.0, cap=10.0, max_attempts=3, max_elapsed=600.0)
    async with LedgerWriter(tmp_path / "ledger.jsonl") as ledger:
        retry = Retry(
            clock, Throttle(1, clock=clock), Outcomes(ledger, stats, print), backoff, lambda: 0.5
        )
        tries = Tries(JOB, "poll")
        for _ in range(3):
            await clock.run(retry.failed(tries, RETRY))
        with pytest.raises(JobOver):
            await clock.run(retry.failed(tries, RETRY))
    assert clock.slept == [0.5, 1.0, 2.0]
    assert stats.failed == {"gave_up": 1}
    record = json.loads((tmp_path / "ledger.jsonl").read_text())
    assert record["error"] == "gave up after 4 tries: HTTP 503: busy"


async def test_429s_for_longer_than_patience_stop_the_run(tmp_path: Path):
    """A call refused by 429s for over half an hour is a block: stop, release the job."""
    clock = SteppedClock()
    stops: list[str] = []
    async with LedgerWriter(tmp_path / "ledger.jsonl") as ledger:
        outcomes = Outcomes(ledger, RunStats(), stops.append)
        retry = Retry(clock, Throttle(1, clock=clock), outcomes, Backoff(), lambda: 0.5)
        tries = Tries(JOB, "poll")  # a poll that does not count: it waits itself
        await clock.run(retry.failed(tries, LIMITED))
        assert clock.now() == 60.0
        await clock.advance(RATE_LIMIT_PATIENCE)
        with pytest.raises(JobOver):
            await clock.run(retry.failed(tries, LIMITED))
    assert stops
    assert "429" in stops[0]
    assert json.loads((tmp_path / "ledger.jsonl").read_text())["event"] == "released"
