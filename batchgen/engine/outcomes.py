"""Carry out what `policy` decided about a failed call: wait and retry, or end the job.

Every stage of a job (submit, sync call, polls, download) meets failures and hands them here, so
the rules that turn a decision into waiting, a recorded failure or a stop live in one place, and
each stage only says what happened. A job that ends (recorded as failed, released, or stopping)
unwinds its task with `JobOver`, which the engine catches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from batchgen.core.jobs import Job
from batchgen.core.metadata import job_row
from batchgen.core.policy import Action, Backoff, Decision
from batchgen.core.runstats import RunStats
from batchgen.core.wire import Submitted
from batchgen.edges.ledger import LedgerWriter
from batchgen.engine.throttle import Throttle

__all__ = ["RATE_LIMIT_PATIENCE", "JobOver", "Outcomes"]

log = logging.getLogger("batchgen")

RATE_LIMIT_PATIENCE = 1800.0  # seconds of 429s on one call before the run stops


class JobOver(Exception):
    """Internal: the job's outcome is recorded, or the run is stopping; unwind its task."""


class Outcomes:
    """The decisions executor shared by the engine's stages; `stop` is the engine's."""

    def __init__(
        self,
        ledger: LedgerWriter,
        stats: RunStats,
        throttle: Throttle,
        backoff: Backoff,
        rand: Callable[[], float],
        stop: Callable[[str], None],
    ) -> None:
        self.ledger = ledger
        self.stats = stats
        self.throttle = throttle
        self.backoff = backoff
        self.rand = rand
        self.stop = stop

    async def handle(
        self,
        job: Job,
        decision: Decision,
        error: str,
        retry_after: float | None,
        attempt: int,
        started: float,
        request: Submitted | None = None,
        *,
        phase: str = "poll",
        fail_kind: str = "server",
    ) -> None:
        """Carry out `decision` about a failed call: return to try it again, or end the job."""
        request_id = request.request_id if request else None
        if (
            decision.action is Action.RETRY
            and phase != "media"  # media has its own bounded backoff; a release loses the URL
            and (reason := self.throttle.outage_over())
        ):
            decision = Decision(Action.STOP_SUBMITTING, reason)  # down for too long: stop
        if decision.action is Action.RATE_LIMITED:
            if time.monotonic() - started > RATE_LIMIT_PATIENCE:
                # Refused for half an hour: a block, not a limit. Stop rather than spin forever.
                self.stop(f"rate limited (429) for over {RATE_LIMIT_PATIENCE / 60:g} minutes")
                await self.release(job, self.stats.stop_reason)
                raise JobOver
            self.stats.rate_limited += 1
            counted = phase == "submit" or (phase == "poll" and self.throttle.count_polls)
            wait = self.throttle.on_rate_limited(retry_after, counted=counted)
            if not counted:
                await asyncio.sleep(wait)
            return
        if decision.action is Action.RETRY:
            delay = self.throttle.retry_in(self.backoff, attempt, started, self.rand, phase)
            if delay is not None:
                self.stats.retries += 1
                await asyncio.sleep(delay)
                return
            await self.fail(job, "gave_up", f"gave up after {attempt} tries: {error}", request_id)
        elif decision.action in (Action.STOP_RUN, Action.STOP_SUBMITTING):
            self.stop(decision.reason)
            await self.release(job, decision.reason)
        else:
            await self.fail(job, fail_kind, error, request_id)
        raise JobOver

    async def release(self, job: Job, reason: str | None) -> None:
        """The run is stopping and this job will not be finished now; a rerun picks it up."""
        self.stats.released += 1
        await self.ledger.append("released", job=job.id, reason=reason)

    async def unknown(self, job: Job, error: str) -> None:
        self.stats.possible_double_charges += 1
        await self.ledger.append("unknown", job=job.id, error=error)

    async def fail(self, job: Job, kind: str, error: str, request_id: str | None) -> None:
        self.stats.fail(kind, job.id, error)
        log.info("failed %s (%s): %s", job.id, kind, error)
        await self.ledger.append(
            "failed", job=job.id, kind=kind, error=error, request_id=request_id, row=job_row(job)
        )
