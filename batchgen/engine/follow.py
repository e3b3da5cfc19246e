"""The polling stage: follow one accepted request until it is final, on an adaptive schedule.

Polling is the bulk of a run's calls, and its rules (first poll near the expected completion,
learn the latency from finished jobs, ask the result URL directly while it answers pending jobs,
fall back to the status URL when it does not) are one concern of their own. The engine only
asks `follow` for the final answer; failures go through the one retry primitive (`retry`).
"""

from __future__ import annotations

from typing import Protocol

from batchgen.core.errors import ApiError, TransportError
from batchgen.core.events import Expired, FailureKind
from batchgen.core.jobs import Job
from batchgen.core.policy import Action, Decision, Failure, failure_of
from batchgen.core.pollplan import PollPlanner, completion_time
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

    def __init__(self, api: Polls, kit: Kit, schedule: PollPlanner, retention: float) -> None:
        self.api = api
        self.throttle, self.ledger, self.retry = kit.throttle, kit.ledger, kit.retry
        self.stats, self.clock = kit.stats, kit.clock
        self.schedule = schedule
        self.retention = retention
        self.result_answers_pending = True  # until the result URL proves otherwise

    async def follow(self, job: Job, request: Submitted, age: float = 0.0) -> Poll | None:
        """Poll until final; None when the server forgot the request (resubmit it).

        `age`: seconds since the submit, for a request recorded by an earlier run.
        """
        clock = self.clock
        submitted = clock.now() - age
        await clock.sleep(self.schedule.delay(0, age))
        polls = 0
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
            polls += 1
            elapsed = clock.now() - submitted
            if poll.state == "COMPLETED":
                self._learn(poll, elapsed, pending_at, resumed=age > 0)
                if poll.output is None:  # a status body: the image is at the result URL
                    return await self._result(job, request)
                return poll
            if poll.state == "FAILED":
                return poll
            pending_at = elapsed
            await clock.sleep(self.schedule.delay(polls, clock.now() - submitted))

    def _pending_unknown(self, exc: ApiError, submitted: float) -> bool:
        """A refusal of a young request's result URL that may only mean "still pending"."""
        young = self.clock.now() - submitted < self.retention
        return young and exc.status != 429 and exc.status < 500

    def _learn(self, poll: Poll, elapsed: float, pending_at: float, *, resumed: bool) -> None:
        """Feed the poll plan: the server's timing if it gives one, else the interval between
        the last poll that saw the job running and the one that saw it done (a resumed job's
        interval includes the downtime: not learned)."""
        exact = completion_time(poll.metrics, elapsed)
        if exact is not None:
            self.schedule.observe(exact)
        elif not resumed:
            self.schedule.observe_between(pending_at, elapsed)

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
