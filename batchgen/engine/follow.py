"""The polling stage: follow one accepted request until it is final, on an adaptive schedule.

Polling is the bulk of a run's calls, and its rules (first poll near the expected completion,
learn the latency from finished jobs, ask the result URL directly while it answers pending jobs,
fall back to the status URL when it does not) are one concern of their own. While the plan is
young (`PollPlanner.settled`), the first jobs also poll on the planner's probe schedule, and a
new plan wakes every job sleeping on the old one: a server far faster than the model's typical
latency is seen after its first job, not after 28 s. Each model has a plan of its own
(`core.pollplans`: a run mixing a 1 s and a 10 s model learns both), and each new plan resizes
the in-flight cap (`--concurrency auto`: rate x latency, the slowest model's). The engine only
asks `follow` for the final answer; failures go through the one retry primitive (`retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from batchgen.core.errors import ApiError, TransportError
from batchgen.core.events import Expired, FailureKind
from batchgen.core.jobs import Job
from batchgen.core.policy import Action, Decision, Failure, failure_of
from batchgen.core.pollplan import PollPlanner, completion_time
from batchgen.core.pollplans import PollPlans
from batchgen.core.wire import Poll, Submitted
from batchgen.engine.kit import Kit
from batchgen.engine.outcomes import JobOver
from batchgen.engine.retry import Tries

__all__ = ["Follower", "Polls"]


class Polls(Protocol):
    """What the stage needs from a transport: one status or result call (see `engine.Api`)."""

    async def poll(self, url: str) -> Poll: ...


class Follower:
    """Polls requests to the end; one per engine, shared by its job tasks."""

    def __init__(self, api: Polls, kit: Kit, plans: PollPlans, retention: float) -> None:
        self.api = api
        self.throttle, self.ledger, self.retry = kit.throttle, kit.ledger, kit.retry
        self.stats, self.clock = kit.stats, kit.clock
        self.plans = plans
        self.retention = retention
        self.result_answers_pending = True  # until the result URL proves otherwise
        self._replanned = asyncio.Event()  # set (and replaced) when a plan changes
        self._fitted = -1  # `plans.version` the in-flight cap was last fitted to
        self._refit()

    def _refit(self) -> None:
        """Resize the in-flight cap if a plan was made or changed since the last fit."""
        if self.plans.version != self._fitted:
            self._fitted = self.plans.version
            figures = self.plans.fit()
            if figures is not None:
                self.throttle.fit_concurrency(*figures)

    async def follow(self, job: Job, request: Submitted, age: float = 0.0) -> Poll | None:
        """Poll until final; None when the server forgot the request (resubmit it).

        `age`: seconds since the submit, for a request recorded by an earlier run.
        """
        clock = self.clock
        submitted = clock.now() - age
        schedule = self.plans.of(job.model)
        self._refit()  # the model's first job: its plan joins the cap's figures
        probes = list(schedule.probe()) if age == 0.0 else []
        polls = 0  # polls on the plan (probe polls are not)
        probing = await self._until_due(schedule, polls, submitted, probes)
        pending_at = 0.0  # seconds after submit of the last poll that found the job running
        tries = Tries(job, "poll", request=request)  # retries are bounded per run of errors
        status_only = False  # this request's result URL answered 404: use its status URL
        while True:
            direct = self.result_answers_pending and not status_only
            url = request.response_url if direct else request.status_url
            try:
                poll = await self._poll(url)
            except (ApiError, TransportError) as exc:
                if isinstance(exc, ApiError) and direct and self._pending_unknown(exc, submitted):
                    # The result URL may not answer for a pending job (segmind-v2-api.md, queue
                    # flow step 3): ask the status URL, which says "gone" if it really is. Only
                    # our own fresh submits prove that for every job of the run.
                    if age == 0.0:
                        self.result_answers_pending = False
                    status_only = True
                    continue
                failure = failure_of(exc, "poll")
                if failure.decision.action is Action.RESUBMIT:
                    await self.ledger.append(Expired(job.id, request.request_id))
                    return None
                await self.retry.failed(tries, failure)
                continue
            tries.streak.reset()  # an answer ends the streak: bounds apply per streak
            if not probing:  # probe polls are extra: the plan's count goes on without them
                polls += 1
            elapsed = clock.now() - submitted
            if poll.state == "COMPLETED":
                self._learn(schedule, poll, elapsed, pending_at, resumed=age > 0)
                if poll.output is None:  # a status body: the image is at the result URL
                    return await self._result(job, request)
                return poll
            if poll.state == "FAILED":
                return poll
            pending_at = elapsed
            probing = await self._until_due(schedule, polls, submitted, probes)

    async def _until_due(
        self, schedule: PollPlanner, polls: int, submitted: float, probes: list[float]
    ) -> bool:
        """Sleep until the next poll: the job's model's plan's, or an earlier probe time (then
        True, and that probe is used); while the plan is young, a new plan (of any model: a
        spurious wake only works the time out again) cuts the sleep short and the time is
        worked out again."""
        while True:
            elapsed = self.clock.now() - submitted
            while probes and probes[0] <= elapsed:
                probes.pop(0)  # passed while this job waited for a token or a slot
            wait = schedule.delay(polls, elapsed)
            probe = bool(probes) and probes[0] - elapsed < wait
            if probe:
                wait = probes[0] - elapsed
            if schedule.settled:
                await self.clock.sleep(wait)
            elif not await self._nap(wait):
                continue
            if probe:
                probes.pop(0)
            return probe

    async def _nap(self, seconds: float) -> bool:
        """Sleep `seconds`; False if a new plan came first."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._replanned.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return sleeper.done() and not sleeper.cancelled()

    def _pending_unknown(self, exc: ApiError, submitted: float) -> bool:
        """A refusal of a young request's result URL that may only mean "still pending"."""
        young = self.clock.now() - submitted < self.retention
        return young and exc.status != 429 and exc.status < 500

    def _learn(
        self, schedule: PollPlanner, poll: Poll, elapsed: float, pending_at: float, *, resumed: bool
    ) -> None:
        """Feed the job's model's poll plan: the server's timing if it gives one, else the
        interval between the last poll that saw the job running and the one that saw it done
        (a resumed job's interval includes the downtime: not learned)."""
        version = schedule.version
        exact = completion_time(poll.metrics, elapsed)
        if exact is not None:
            schedule.observe(exact)
        elif not resumed:
            schedule.observe_between(pending_at, elapsed)
        if schedule.version != version:
            self._refit()
            self._replanned.set()
            self._replanned = asyncio.Event()

    async def _result(self, job: Job, request: Submitted) -> Poll:
        """Fetch the final body of a job the status URL reported COMPLETED."""

        async def once(_attempt: int) -> Poll | Failure:
            try:
                poll = await self._poll(request.response_url, kind="result")
            except (ApiError, TransportError) as exc:
                return failure_of(exc, "poll")
            if poll.state == "COMPLETED" and poll.output is None:
                await self.retry.outcomes.fail(
                    job, FailureKind.SERVER, "COMPLETED without an output", request.request_id
                )
                raise JobOver
            if poll.state not in ("COMPLETED", "FAILED"):  # the result URL lags the status URL
                error = f"the status URL said COMPLETED, the result URL still says {poll.state}"
                return Failure(Decision(Action.RETRY, error), error)
            return poll

        return await self.retry.run(
            Tries(job, "poll", request=request, since=self.clock.now()), once
        )

    async def _poll(self, url: str, kind: str = "poll") -> Poll:
        await self.throttle.before_poll()
        self.stats.calls[kind] += 1
        return await self.throttle.watch(self.api.poll(url))
