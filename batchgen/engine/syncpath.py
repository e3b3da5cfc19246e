"""The v1 sync path (`sync: true`): one blocking POST /v1/{model} per job instead of the v2 queue.

Its billing rules differ from the queue's (only a 200 is billed; the answer carries the image),
so its failure handling is its own stage rather than a branch through submit and follow. It gets
what it needs from the engine explicitly: admission (rate limit, budget, stop), the jobs in
flight (`InFlight`: reservations and acceptance times), and the one retry primitive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from batchgen.core.errors import ApiError, TransportError
from batchgen.core.events import FailureKind
from batchgen.core.jobs import Job
from batchgen.core.policy import Failure, failure_of
from batchgen.core.resume import Work
from batchgen.core.wire import Poll, Submitted, SyncImage
from batchgen.edges.sinks import ImageInfo, InvalidImage
from batchgen.engine.inflight import InFlight
from batchgen.engine.kit import Kit
from batchgen.engine.outcomes import JobOver
from batchgen.engine.retry import Tries
from batchgen.engine.writer import checked

__all__ = ["SyncCalls", "SyncStage"]

Fetched = tuple[Submitted, Poll, tuple[bytes, ImageInfo]]


class SyncCalls(Protocol):
    """What the stage needs from a transport: the blocking v1 call (see `engine.Api`)."""

    async def run_sync(self, model: str, params: dict[str, Any]) -> SyncImage: ...


class SyncStage:
    """Runs jobs through the v1 endpoint; one per engine, shared by its job tasks."""

    def __init__(
        self,
        api: SyncCalls,
        kit: Kit,
        inflight: InFlight,
        sending: Callable[[Job, int, str], Awaitable[None]],
    ) -> None:
        self.api = api
        self.kit = kit
        self.inflight = inflight
        self.sending = sending  # the engine's admission + intent, as for a submit

    async def run(self, work: Work) -> Fetched:
        """One blocking POST /v1 per attempt. Only a 200 is billed, so any other answer is
        retried per policy; a lost answer may have been billed and is not retried (the job
        fails as `unknown`, and a rerun with --retry-failed redoes it)."""
        if work.ambiguous:
            self.kit.stats.possible_double_charges += 1
        # Counted against the rate limit like a submit; a refusal fails the job as `invalid`.
        return await self.kit.retry.run(Tries.paid(work.job), partial(self._once, work.job))

    async def _once(self, job: Job, attempt: int) -> Fetched | Failure:
        await self.sending(job, attempt, "sync")
        self.inflight.accepted(job.id)  # a blocking call is a job in flight, and a reservation
        throttle, outcomes = self.kit.throttle, self.kit.outcomes
        try:
            try:
                answer = await throttle.submit(self.api.run_sync(job.model, dict(job.params)))
            except BaseException:
                self.inflight.forgotten(job.id)
                raise
            info = await checked(answer.data, job)
        except (ApiError, TransportError) as exc:
            await throttle.probe_result(False)
            if isinstance(exc, TransportError) and exc.maybe_sent:
                await outcomes.unknown(job, exc.message)
                error = f"answer lost, maybe billed: {exc.message}"
                await outcomes.fail(job, FailureKind.UNKNOWN, error, None)
                raise JobOver from None
            return failure_of(exc, "sync")
        except InvalidImage as exc:  # billed, but unusable: the server's fault, not retried
            await outcomes.fail(job, FailureKind.BAD_IMAGE, f"the image is invalid: {exc}", None)
            raise JobOver from None
        await throttle.probe_result(True)
        metrics = {"inference_time": answer.generation_time, "cost": answer.cost}
        poll = Poll(
            "COMPLETED",
            output="",
            seed=answer.seed,
            metrics={k: v for k, v in metrics.items() if v is not None},
        )
        request = Submitted(answer.request_id or "", "", "")
        return request, poll, (answer.data, info)
