"""The v1 sync path (`sync: true`): one blocking POST /v1/{model} per job instead of the v2 queue.

Its billing rules differ from the queue's (only a 200 is billed; the answer carries the image),
so its retry and failure handling is its own stage rather than a branch through submit and
follow. It gets what it needs from the engine explicitly: admission (rate limit, budget, stop),
the reservations and acceptance times the engine keeps per job, and `Outcomes` for failures.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from batchgen.core.budget import Reservations
from batchgen.core.errors import ApiError, TransportError
from batchgen.core.jobs import Job
from batchgen.core.policy import decide
from batchgen.core.resume import Work
from batchgen.core.runstats import RunStats
from batchgen.core.wire import Poll, Submitted, SyncImage
from batchgen.edges.ledger import LedgerWriter
from batchgen.edges.sinks import ImageInfo, InvalidImage
from batchgen.engine.outcomes import JobOver, Outcomes
from batchgen.engine.throttle import Throttle
from batchgen.engine.writer import checked

__all__ = ["SyncCalls", "SyncStage"]


class SyncCalls(Protocol):
    """What the stage needs from a transport: the blocking v1 call (see `engine.Api`)."""

    async def run_sync(self, model: str, params: dict[str, Any]) -> SyncImage: ...


class SyncStage:
    """Runs jobs through the v1 endpoint; one per engine, shared by its job tasks."""

    def __init__(
        self,
        api: SyncCalls,
        throttle: Throttle,
        ledger: LedgerWriter,
        stats: RunStats,
        outcomes: Outcomes,
        reservations: Reservations,
        accepted_at: dict[str, float],
        admit: Callable[[Job], Awaitable[None]],
    ) -> None:
        self.api = api
        self.throttle = throttle
        self.ledger = ledger
        self.stats = stats
        self.outcomes = outcomes
        self.reservations = reservations
        self.accepted_at = accepted_at  # the engine's: job id -> monotonic time of acceptance
        self.admit = admit

    async def run(self, work: Work) -> tuple[Submitted, Poll, tuple[bytes, ImageInfo]]:
        """One blocking POST /v1 per attempt. Only a 200 is billed, so any other answer is
        retried per policy; a lost answer may have been billed and is not retried (the job
        fails as `unknown`, and a rerun with --retry-failed redoes it)."""
        job = work.job
        if work.ambiguous:
            self.stats.possible_double_charges += 1
        attempt, started = 0, 0.0  # started: the first failure (waiting for a token is no error)
        while True:
            await self.admit(job)
            await self.ledger.append("intent", job=job.id, attempt=attempt)
            self.stats.calls["sync"] += 1
            self.accepted_at[job.id] = time.monotonic()
            self.reservations.add(job.id)  # a blocking call is a job in flight, and a reservation
            try:
                try:
                    answer = await self.throttle.submit(
                        self.api.run_sync(job.model, dict(job.params))
                    )
                except BaseException:
                    self.reservations.discard(job.id)
                    raise
                info = await checked(answer.data, job)
            except ApiError as exc:
                await self.throttle.probe_result(False)
                decision = decide(exc.status, phase="sync")
                error, wait = str(exc), exc.retry_after
            except TransportError as exc:
                await self.throttle.probe_result(False)
                if exc.maybe_sent:
                    await self.outcomes.unknown(job, exc.message)
                    await self.outcomes.fail(
                        job, "unknown", f"answer lost, maybe billed: {exc.message}", None
                    )
                    raise JobOver from None
                decision, error, wait = decide(None, phase="sync"), exc.message, None
            except InvalidImage as exc:  # billed, but unusable: the server's fault, not retried
                await self.outcomes.fail(job, "bad_image", f"the image is invalid: {exc}", None)
                raise JobOver from None
            else:
                await self.throttle.probe_result(True)
                metrics = {"inference_time": answer.generation_time, "cost": answer.cost}
                poll = Poll(
                    "COMPLETED",
                    output="",
                    seed=answer.seed,
                    metrics={k: v for k, v in metrics.items() if v is not None},
                )
                request = Submitted(answer.request_id or "", "", "")
                return request, poll, (answer.data, info)
            attempt, started = attempt + 1, started or time.monotonic()
            await self.outcomes.handle(
                job, decision, error, wait, attempt, started, phase="submit", fail_kind="invalid"
            )
