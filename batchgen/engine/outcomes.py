"""The ledger outcomes of a job that ends early: failed, released (a stop), or maybe billed.

Every stage of a job (submit, sync call, polls, download) meets failures; `retry` decides
whether to try again, and what ends a job is recorded here, in one place, with the counters
that go with it. A job that ends (recorded as failed, released, or stopping) unwinds its task
with `JobOver`, which the engine catches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from batchgen.core.events import Failed, FailureKind, Released, Unknown
from batchgen.core.jobs import Job
from batchgen.core.metadata import job_row
from batchgen.core.runstats import RunStats
from batchgen.edges.ledger import LedgerWriter

__all__ = ["JobOver", "Outcomes"]

log = logging.getLogger("batchgen")


class JobOver(Exception):
    """Internal: the job's outcome is recorded, or the run is stopping; unwind its task."""


class Outcomes:
    """What ends a job, recorded; `stop` is the engine's (stop submitting, say why)."""

    def __init__(self, ledger: LedgerWriter, stats: RunStats, stop: Callable[[str], None]) -> None:
        self.ledger = ledger
        self.stats = stats
        self.stop = stop

    async def release(self, job: Job, reason: str | None) -> None:
        """The run is stopping and this job will not be finished now; a rerun picks it up."""
        self.stats.released += 1
        await self.ledger.append(Released(job.id, reason))

    async def unknown(self, job: Job, error: str) -> None:
        self.stats.possible_double_charges += 1
        await self.ledger.append(Unknown(job.id, error))

    async def fail(self, job: Job, kind: FailureKind, error: str, request_id: str | None) -> None:
        self.stats.fail(kind, job.id, error)
        log.info("failed %s (%s): %s", job.id, kind, error)
        await self.ledger.append(Failed(job.id, kind, error, request_id, job_row(job)))
