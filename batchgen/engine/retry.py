"""The one retry primitive: every failed API call of the engine goes through `Retry.failed`.

A stage (submit, sync call, polls, result fetch, download) says what happened — a `Failure`
(policy's decision, the error text, the server's wait) for a `Tries` (the job, its phase and the
call's run of failures) — and this module carries it out in one place:

* attempts: counted per run of failures, bounded by count and time (`Backoff`), minus what an
  outage spent (the circuit excuses those: the server's problem is not the job's);
* 429s: the rate control's pause (or, for a call that does not count, the wait alone), and a
  stop when one call has been refused for `RATE_LIMIT_PATIENCE`;
* an outage past patience stops the run instead of retrying (not for media: another origin);
* the ledger outcome of a call that will not be tried again (`Outcomes`: failed or released),
  after which the job's task unwinds with `JobOver`.

`run` is the loop for stages whose only per-try work is the call itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from batchgen.core.clock import Clock
from batchgen.core.events import FailureKind
from batchgen.core.jobs import Job
from batchgen.core.policy import Action, Backoff, Decision, Failure, Streak, retry_wait
from batchgen.core.runstats import RunStats
from batchgen.core.wire import Submitted
from batchgen.engine.outcomes import JobOver, Outcomes
from batchgen.engine.throttle import Throttle

__all__ = ["RATE_LIMIT_PATIENCE", "Retry", "Tries"]

RATE_LIMIT_PATIENCE = 1800.0  # seconds of 429s on one call before the run stops
T = TypeVar("T")


class Tries:
    """One call of one job being tried: its phase, how it fails for good, its failure streak.

    `phase` is policy's (submit|poll|media); `fail_kind` is the failure kind recorded when the
    decision is to fail the job; `since`: a stage that bounds its whole life (a download, the
    result fetch) starts the streak at its beginning rather than at the first failure.
    """

    def __init__(
        self,
        job: Job,
        phase: str,
        *,
        fail_kind: FailureKind = FailureKind.SERVER,
        request: Submitted | None = None,
        since: float | None = None,
    ) -> None:
        self.job = job
        self.phase = phase
        self.fail_kind = fail_kind
        self.request = request
        self.streak = Streak(since=since)

    @classmethod
    def paid(cls, job: Job) -> Tries:
        """A call that may cost a job (a submit, a sync call): counted against the rate limit,
        and a refusal fails the job as `invalid`."""
        return cls(job, "submit", fail_kind=FailureKind.INVALID)

    @property
    def attempts(self) -> int:
        return self.streak.attempts


class Retry:
    """Shared by the engine's stages; `outcomes` records what ends a job."""

    def __init__(
        self,
        clock: Clock,
        throttle: Throttle,
        outcomes: Outcomes,
        backoff: Backoff,
        rand: Callable[[], float],
    ) -> None:
        self.clock = clock
        self.throttle = throttle
        self.stats: RunStats = outcomes.stats
        self.outcomes = outcomes
        self.backoff = backoff
        self.rand = rand

    async def run(self, tries: Tries, once: Callable[[int], Awaitable[T | Failure]]) -> T:
        """Call `once(attempt)` (0-based) until it returns a result, not a `Failure`; each
        failure is `failed` (which returns to try again, or ends the job)."""
        while True:
            outcome = await once(tries.attempts)
            if not isinstance(outcome, Failure):
                return outcome
            await self.failed(tries, outcome)

    async def failed(self, tries: Tries, failure: Failure) -> None:
        """Carry out `failure`'s decision: return to try the call again, or end the job."""
        now = self.clock.now()
        since = tries.streak.failed(now)
        job, decision = tries.job, failure.decision
        if (
            decision.action is Action.RETRY
            and tries.phase != "media"  # media has its own bounded backoff; a release loses the URL
            and (reason := self.throttle.outage_over())
        ):
            decision = Decision(Action.STOP_SUBMITTING, reason)  # down for too long: stop
        if decision.action is Action.RATE_LIMITED:
            await self._rate_limited(tries, failure, now - since)
            return
        if decision.action is Action.RETRY:
            delay = self.delay(tries, failure, since, now)
            if delay is not None:
                self.stats.retries += 1
                await self.clock.sleep(delay)
                return
            error = f"gave up after {tries.attempts} tries: {failure.error}"
            await self.outcomes.fail(job, FailureKind.GAVE_UP, error, _request_id(tries))
        elif decision.action in (Action.STOP_RUN, Action.STOP_SUBMITTING):
            self.outcomes.stop(decision.reason)
            await self.outcomes.release(job, decision.reason)
        else:
            await self.outcomes.fail(job, tries.fail_kind, failure.error, _request_id(tries))
        raise JobOver

    async def _rate_limited(self, tries: Tries, failure: Failure, refused_for: float) -> None:
        if refused_for > RATE_LIMIT_PATIENCE:
            # Refused for half an hour: a block, not a limit. Stop rather than spin forever.
            self.outcomes.stop(f"rate limited (429) for over {RATE_LIMIT_PATIENCE / 60:g} minutes")
            await self.outcomes.release(tries.job, self.stats.stop_reason)
            raise JobOver
        self.stats.rate_limited += 1
        throttle = self.throttle
        counted = tries.phase == "submit" or (tries.phase == "poll" and throttle.count_polls)
        wait = throttle.on_rate_limited(failure.retry_after, counted=counted)
        if not counted:
            await self.clock.sleep(wait)

    def delay(self, tries: Tries, failure: Failure, since: float, now: float) -> float | None:
        """Wait before retrying a failed call (None: give up). In an outage: no wait, since the
        gate paces it, and the failure spends none of the streak's attempts or time. Media
        downloads pass no gate (another origin, a CDN): their backoff always applies."""
        circuit = self.throttle.circuit
        if tries.phase != "media" and circuit.excuse(since):
            return 0.0
        attempts, elapsed = circuit.charged(tries.attempts, since, now)
        return retry_wait(failure, attempts, elapsed, self.backoff, self.rand)

    async def pause(self, attempt: int) -> None:
        """A backoff step outside any streak's bounds (a best-effort re-download's tries)."""
        await self.clock.sleep(self.backoff.delay(attempt, 0.0, self.rand) or 0.0)


def _request_id(tries: Tries) -> str | None:
    return tries.request.request_id if tries.request else None
