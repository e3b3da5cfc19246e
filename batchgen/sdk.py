"""An async client shaped like the official SDK, for code that wants one job at a time.

    async with batchgen.Client() as client:                  # key from SEGMIND_API_KEY
        job = await client.submit("qwen-image", prompt="a fox")
        result = await job.wait(timeout=600)                  # InferenceFailed / InferenceTimeout
        image = await client.download(result["output"])

Unlike the SDK's fixed 1 s polling, `wait` polls the status URL near the expected completion and
backs off, and it retries 429/5xx/connection errors per `policy` instead of surfacing the first
one (a submit whose answer was lost is not retried: one job, one charge). Batches
belong to `run_manifest`, which adds the rate limit, the ledger and resume.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from batchgen.core.clock import Clock, SystemClock
from batchgen.core.errors import ApiError, InferenceFailed, InferenceTimeout, TransportError
from batchgen.core.policy import Backoff, Streak, failure_of, retry_wait, seeded_rand
from batchgen.core.pollplan import PollPlanner, completion_time
from batchgen.core.wire import Poll, Submitted
from batchgen.edges.client import DEFAULT_API_ROOT, ApiClient
from batchgen.models.registry import typical_seconds_of

__all__ = ["AsyncJob", "Client"]


@dataclass
class AsyncJob:
    """A submitted request: `request_id`, and `wait()` for its final body."""

    request_id: str
    status_url: str
    response_url: str
    model: str
    _client: Client = field(repr=False)

    async def status(self) -> Poll:
        """One look at the job's status URL."""
        return await self._client._poll(self.status_url)

    async def wait(self, timeout: float = 600.0) -> dict[str, Any]:  # noqa: ASYNC109 - SDK's name
        """Poll until COMPLETED (returns the body) or FAILED (raises InferenceFailed)."""
        schedule = self._client._schedule(self.model)
        clock = self._client._clock
        started = clock.now()
        deadline = started + timeout
        delay, polls = schedule.delay(0, 0.0), 0
        while True:
            await clock.sleep(max(0.0, min(delay, deadline - clock.now())))
            poll = await self.status()
            polls += 1
            if poll.state == "COMPLETED" and poll.output is None:
                poll = await self._client._poll(self.response_url)
            if poll.state == "COMPLETED":
                exact = completion_time(poll.metrics, clock.now() - started)
                if exact is not None:
                    schedule.observe(exact)
                return {
                    "status": "COMPLETED",
                    "request_id": self.request_id,
                    "output": poll.output,
                    "seed": poll.seed,
                    "metrics": dict(poll.metrics),
                }
            if poll.state == "FAILED":
                raise InferenceFailed(poll.error or "FAILED", request_id=self.request_id)
            if clock.now() >= deadline:
                raise InferenceTimeout(
                    f"not finished after {timeout:g} s; it may still complete on the server",
                    request_id=self.request_id,
                )
            delay = schedule.delay(polls, clock.now() - started)


class Client:
    """`async with Client(api_key=..., base_url=...)`: submit, wait, download."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = DEFAULT_API_ROOT,
        *,
        backoff: Backoff | None = None,
        typical_seconds: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        key = api_key or os.environ.get("SEGMIND_API_KEY")
        if not key:
            raise ValueError("no API key: pass api_key= or set SEGMIND_API_KEY")
        self._api = ApiClient(key, base_url)
        self._backoff = backoff or Backoff()
        self._rand = seeded_rand(time.time_ns())
        self._typical = typical_seconds
        self._clock: Clock = clock or SystemClock()
        self._planners: dict[str, PollPlanner] = {}

    async def __aenter__(self) -> Client:
        await self._api.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._api.__aexit__(exc_type, exc, tb)

    async def submit(self, model: str, **params: Any) -> AsyncJob:
        """POST the job (retrying only where no charge can have happened)."""
        request: Submitted = await self._retrying(
            lambda: self._api.submit(model, params), phase="submit"
        )
        return AsyncJob(request.request_id, request.status_url, request.response_url, model, self)

    async def run(self, model: str, **params: Any) -> dict[str, Any]:
        """submit + wait(600 s), like the SDK's `run`: every keyword goes to the model."""
        return await (await self.submit(model, **params)).wait()

    async def download(self, url: str) -> bytes:
        """The image behind an `output` URL (fetched without credentials)."""
        data: bytes = await self._retrying(lambda: self._api.download(url), phase="media")
        return data

    async def _poll(self, url: str) -> Poll:
        poll: Poll = await self._retrying(lambda: self._api.poll(url), phase="poll")
        return poll

    def _schedule(self, model: str) -> PollPlanner:
        if model not in self._planners:  # one per model: what one job teaches helps the next
            typical = self._typical or typical_seconds_of(model)
            self._planners[model] = PollPlanner(typical)
        return self._planners[model]

    async def _retrying(self, call: Any, *, phase: str) -> Any:
        """Try `call` until it answers, per policy (the engine's rules: `core.policy`)."""
        clock = self._clock
        streak = Streak(since=clock.now())  # the whole call is bounded, from its first try
        while True:
            try:
                return await call()
            except (ApiError, TransportError) as exc:
                if phase == "submit" and isinstance(exc, TransportError) and exc.maybe_sent:
                    raise  # one job, one charge: the caller decides whether to risk another
                now = clock.now()
                elapsed = now - streak.failed(now)
                delay = retry_wait(
                    failure_of(exc, phase), streak.attempts, elapsed, self._backoff, self._rand
                )
                if delay is None:
                    raise
            await clock.sleep(delay)
