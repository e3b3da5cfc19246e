"""What to do about each answer, and when to ask again: the runner's decisions as pure functions.

Three questions, answered without I/O so they are tested with plain numbers:

* `decide` — an HTTP status (or a transport failure) during submit or poll -> retry, fail the job,
  resubmit, stop submitting, or stop the run. The table is the spec's (segmind-v2-api.md, Errors).
* `Backoff` — how long to wait before retry number n: exponential with full jitter, bounded by
  attempts *and* elapsed time (a flaky gateway must not hold a job forever).
* `PollSchedule` — when to look at a pending job: near its expected completion, learned from the
  jobs that finished, then backing off; polls cost requests (and, on some plans, rate limit).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from batchgen.errors import ApiError, MediaRefused, TransportError
from batchgen.wire import RESET_AT_HEADER, RETRY_AFTER_HEADER, parse_reset_at, parse_retry_after

__all__ = [
    "Action",
    "Backoff",
    "Decision",
    "PollSchedule",
    "completion_time",
    "decide",
    "decide_media",
    "rate_limit_wait",
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


class PollSchedule:
    """When to poll a pending job, learned from how long finished jobs took.

    The model: end-to-end latency (submit to completion) has a mean and a spread, tracked as
    exponentially weighted averages so the schedule follows a server whose queue grows or drains.
    The first poll lands a little after the mean (most jobs are then done, one call each); a job
    still pending is polled again at intervals that start at a fraction of the spread and grow,
    so a straggler costs a few calls, not one per second.
    """

    def __init__(
        self,
        typical_seconds: float,
        *,
        min_interval: float = 0.02,
        max_interval: float = 30.0,
        weight: float = 0.1,
    ) -> None:
        self.mean = typical_seconds
        self.spread = typical_seconds / 4
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.weight = weight
        self.samples = 0

    def observe(self, latency: float) -> None:
        """Learn from one completed job's submit-to-completion time."""
        if not math.isfinite(latency) or latency < 0:
            return
        if self.samples == 0:  # the first real figure beats the model's brochure number
            self.mean, self.spread = latency, latency / 4
        else:
            error = latency - self.mean
            self.mean += self.weight * error
            self.spread += self.weight * (abs(error) - self.spread)
        self.samples += 1

    def first_delay(self) -> float:
        """Seconds from submit to the first poll."""
        return self._clamp(self.mean + 0.5 * self.spread)

    def next_delay(self, polls_so_far: int) -> float:
        """Seconds until the next poll of a job already polled `polls_so_far` (>= 1) times."""
        step = max(self.spread, 0.05 * self.mean) * 0.5 * 1.5 ** (polls_so_far - 1)
        return self._clamp(step)

    def _clamp(self, seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, seconds))


def seeded_rand(seed: int | str) -> Callable[[], float]:
    """A deterministic [0, 1) source for jitter, so a test run replays exactly."""
    return random.Random(seed).random


def completion_time(metrics: Mapping[str, object], observed: float) -> float:
    """How long a job really took from submit to completion, for `PollSchedule.observe`.

    A poll that finds a job done only bounds its latency from above (it finished some time
    before); learning from that alone drifts the schedule later and later. The server's own
    `total_time` (or `queue_time` + `inference_time`) is the real figure when it gives one.
    """
    total = _seconds(metrics.get("total_time"))
    if total is None:
        queue = _seconds(metrics.get("queue_time"))
        inference = _seconds(metrics.get("inference_time"))
        if queue is not None and inference is not None:
            total = queue + inference
    return observed if total is None else min(total, observed)


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) and number >= 0 else None
    return None
