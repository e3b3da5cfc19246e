"""The decisions executor: an outage past patience stops API retries, never media retries."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from batchgen.circuit import OutagePolicy
from batchgen.jobs import Job
from batchgen.ledger import LedgerWriter
from batchgen.outcomes import JobOver, Outcomes
from batchgen.policy import Action, Backoff, Decision, seeded_rand
from batchgen.runstats import RunStats
from batchgen.throttle import Throttle


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
        outcomes = Outcomes(
            ledger, RunStats(), throttle, Backoff.immediate(), seeded_rand(0), stops.append
        )
        now = time.monotonic()
        await outcomes.handle(job, retry, "503", None, 1, now, phase="media")  # retried
        assert stops == []
        with pytest.raises(JobOver):
            await outcomes.handle(job, retry, "503", None, 1, now, phase="poll")
    assert len(stops) == 1
    assert "outage" in stops[0]
    records = [json.loads(x) for x in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == ["released"]
