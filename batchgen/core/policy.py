"""What to do about each answer, and when to ask again: the runner's decisions as pure functions.

Three questions, answered without I/O so they are tested with plain numbers:

* `decide` — an HTTP status (or a transport failure) during submit or poll -> retry, fail the job,
  resubmit, stop submitting, or stop the run. The table is the spec's (segmind-v2-api.md, Errors).
* `Backoff` — how long to wait before retry number n: exponential with full jitter, bounded by
  attempts *and* elapsed time (a flaky gateway must not hold a job forever).
* `Failure`, `Streak`, `retry_wait` — the pure core of every retry loop (the engine's
  `engine.retry` and the SDK's): what a failed call means, how many tries and how much time its
  run of failures has spent, and how long to wait before the next try.

When to poll a pending job is `pollplan`'s question.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from batchgen.core.errors import ApiError, MediaRefused, TransportError
from batchgen.core.wire import (
    RESET_AT_HEADER,
    RETRY_AFTER_HEADER,
    parse_reset_at,
    parse_retry_after,
)

__all__ = [
    "Action",
    "Backoff",
    "Decision",
    "Failure",
    "Streak",
    "decide",
    "decide_media",
    "failure_of",
    "maybe_billed",
    "rate_limit_wait",
    "retry_wait",
    "seeded_rand",
]


class Action(Enum):
    RETRY = "retry"  # same request again after a backoff
    RATE_LIMITED = "rate_limited"  # same request again after the server's reset time
    FAIL_JOB = "fail_job"  # record this job as failed; the run goes on
    RESUBMIT = "resubmit"  # the request id is gone (expired): submit the job anew
    STOP_SUBMITTING = "stop_submitting"  # no new submits; finish what is in flight
    STOP_RUN = "stop_run"  # nothing will succeed: stop now


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # shown to the user, says what to do about it


_STOP_RUN_SUBMIT = {
    401: "the API key was refused (401): check SEGMIND_API_KEY or --key-file",
    403: "the API key has no access to this model (403): check the model name and your plan",
    404: "the model was not found (404): check the model name",
    410: "the model has been retired (410): pick another model",
}
_CREDITS = "the account is out of credits ({status}): top up, then run the same command to resume"


def decide(status: int | None, *, phase: str, maybe_sent: bool = True) -> Decision:
    """Decision for an answer with HTTP `status` (None: no answer) in `phase` submit|poll|media.

    `maybe_sent` matters only without an answer: a submit that surely never reached the server
    is retried; one that may have is retried too but counted as a possible double charge by the
    caller, which is why the reason says so.
    """
    if status is None:
        if phase == "submit" and maybe_sent:
            return Decision(Action.RETRY, "no answer after the submit was sent (possible charge)")
        return Decision(Action.RETRY, "no answer from the server")
    if status == 429:
        return Decision(Action.RATE_LIMITED, "rate limited (429)")
    if status >= 500 or status in (408, 425):
        return Decision(Action.RETRY, f"server error ({status})")
    if status in (402, 406) and phase in ("submit", "sync"):
        # 406 also means a bad Content-Type, which we never send: credits is the live meaning.
        return Decision(Action.STOP_SUBMITTING, _CREDITS.format(status=status))
    if phase in ("submit", "sync") and status in _STOP_RUN_SUBMIT:
        return Decision(Action.STOP_RUN, _STOP_RUN_SUBMIT[status])
    if phase == "poll" and status in (401, 403):
        return Decision(Action.STOP_RUN, _STOP_RUN_SUBMIT[status])
    if phase == "poll" and status in (404, 410):
        return Decision(Action.RESUBMIT, f"the request is no longer known to the server ({status})")
    if phase == "media" and status in (403, 404, 410):
        return Decision(Action.FAIL_JOB, f"the image URL is gone ({status})")
    return Decision(Action.FAIL_JOB, f"the server refused the request ({status})")


@dataclass(frozen=True)
class Failure:
    """A failed call as the retry rules see it: the decision, the error text, the server's wait."""

    decision: Decision
    error: str
    retry_after: float | None = None  # seconds the server asked for (429), if it said


def failure_of(exc: ApiError | TransportError, phase: str) -> Failure:
    """The `Failure` of an HTTP error or a lost answer in `phase` (see `decide`)."""
    if isinstance(exc, ApiError):
        return Failure(decide(exc.status, phase=phase), str(exc), exc.retry_after)
    return Failure(decide(None, phase=phase, maybe_sent=exc.maybe_sent), str(exc))


def maybe_billed(exc: ApiError | TransportError) -> bool:
    """Whether a failed submit may have been accepted (and charged) all the same: a 5xx may come
    from a gateway that passed it on, and a lost answer may follow a received request."""
    return exc.status >= 500 if isinstance(exc, ApiError) else exc.maybe_sent


@dataclass
class Streak:
    """One call's run of failures, which retries are bounded by: how many, since when.

    `since` is when the run began (None: no failure yet), so a call that waited for a token
    before its first try is not charged for the wait; a stage may start it at its own beginning.
    """

    attempts: int = 0
    since: float | None = None

    def failed(self, now: float) -> float:
        """Count one more failure; returns when the run began."""
        self.attempts += 1
        if self.since is None:
            self.since = now
        return self.since

    def reset(self) -> None:
        """An answer ends the run: the bounds apply per run of failures."""
        self.attempts, self.since = 0, None


def retry_wait(
    failure: Failure, attempts: int, elapsed: float, backoff: Backoff, rand: Callable[[], float]
) -> float | None:
    """Seconds to wait before trying the call again, or None to give up (or not retryable).

    A 429 waits what the server said (else a backoff step, not bounded by time: the limit is
    not the server failing); a retryable failure backs off, bounded by attempts and `elapsed`.
    """
    action = failure.decision.action
    if action is Action.RATE_LIMITED:
        if failure.retry_after is not None:
            return failure.retry_after
        return backoff.delay(attempts, 0.0, rand)
    if action is Action.RETRY:
        return backoff.delay(attempts, elapsed, rand)
    return None


def decide_media(exc: Exception) -> tuple[Decision, str]:
    """Decision and failure kind for a failed image fetch or check (`exc`).

    HTTP and connection trouble go through `decide` (retried, then `gave_up`; a gone URL fails
    as `download`). A refusal (`MediaRefused`: unsafe_url, too_large, timeout) and bytes that are
    not the asked image (`bad_image`: any ValueError, InvalidImage or bad base64) fail the job at
    once: the same URL would give the same answer, and each try costs a download.
    """
    if isinstance(exc, MediaRefused):
        return Decision(Action.FAIL_JOB, str(exc)), exc.kind
    if isinstance(exc, ApiError):
        return decide(exc.status, phase="media"), "download"
    if isinstance(exc, TransportError):
        return decide(None, phase="media"), "download"
    return Decision(Action.FAIL_JOB, f"not the image asked for: {exc}"), "bad_image"


def rate_limit_wait(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds until the server says we may retry, from its reset time and/or Retry-After.

    When both are given the later one wins: waiting too little earns another 429 (and, against a
    strict per-key window, pushes nothing forward), waiting a little more costs nothing.
    """
    waits = []
    reset_at = headers.get(RESET_AT_HEADER)
    if reset_at:
        when = parse_reset_at(reset_at)
        if when is not None:
            waits.append(max(0.0, when - now_epoch))
    retry_after = headers.get(RETRY_AFTER_HEADER)
    if retry_after:
        seconds = parse_retry_after(retry_after, now_epoch)
        if seconds is not None:
            waits.append(seconds)
    return max(waits) if waits else None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, bounded by attempts and by total time."""

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int = 8
    max_elapsed: float = 600.0

    def delay(self, attempt: int, elapsed: float, rand: Callable[[], float]) -> float | None:
        """Wait before retry `attempt` (1-based), or None to give up. `rand` is in [0, 1)."""
        if attempt > self.max_attempts or elapsed >= self.max_elapsed:
            return None
        ceiling = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return min(rand() * ceiling, max(0.0, self.max_elapsed - elapsed))

    @classmethod
    def immediate(cls, max_attempts: int = 8) -> Backoff:
        """No waiting at all, for tests of retry logic (the attempt bound still holds)."""
        return cls(base=0.0, cap=0.0, max_attempts=max_attempts)


def seeded_rand(seed: int | str) -> Callable[[], float]:
    """A deterministic [0, 1) source for jitter, so a test run replays exactly."""
    return random.Random(seed).random
