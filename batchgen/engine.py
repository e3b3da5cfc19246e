"""The engine: submit under the throttle, follow each request to the end, store the image.

One `asyncio.TaskGroup` holds the producer and one task per job *in flight*: the producer takes
an in-flight slot before it creates a job's task, so a million-job manifest never has more than
`concurrency` (+ `writers` downloading) tasks alive. Each job task walks the stages

    submit (retries per policy) -> follow (adaptive polls) -> store (download, verify, write)

and records every transition in the ledger; its request id is durable before it counts as in
flight. Decisions come from `policy`, admission from `throttle`, I/O from `client`, `ledger` and
`sinks`: this module only sequences them. A stop (bad key, no credits, model gone, a signal)
stops submitting; jobs already paid for are still followed and written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from batchgen.budget import job_cost, unaffordable
from batchgen.circuit import OutagePolicy
from batchgen.errors import ApiError, LedgerError, MediaRefused, TransportError
from batchgen.jobs import Job
from batchgen.ledger import LedgerWriter
from batchgen.metadata import job_row
from batchgen.parts import PartAllocator
from batchgen.policy import Action, Backoff, Decision, decide, decide_media, seeded_rand
from batchgen.pollplan import PollPlanner, completion_time
from batchgen.resume import Step, Work
from batchgen.runstats import RunStats
from batchgen.sinks import ImageInfo, InvalidImage, MetadataWriter
from batchgen.storage import Store
from batchgen.throttle import Throttle
from batchgen.wire import Poll, Submitted, SyncImage, decode_base64
from batchgen.writer import ImageWriter, checked

__all__ = ["MAX_EXPIRIES", "Api", "Engine", "EngineConfig"]

log = logging.getLogger("batchgen")

RATE_LIMIT_PATIENCE = 1800.0  # seconds of 429s on one call before the run stops
MAX_EXPIRIES = 2  # resubmits after "request not found": each one is paid again


class Api(Protocol):
    """What the engine needs from a transport (`client.ApiClient` is the real one)."""

    async def submit(self, model: str, params: dict[str, Any]) -> Submitted: ...
    async def poll(self, url: str) -> Poll: ...
    async def download(self, url: str) -> bytes: ...
    async def run_sync(self, model: str, params: dict[str, Any]) -> SyncImage: ...


@dataclass(frozen=True)
class EngineConfig:
    out_dir: Path
    concurrency: int = 4
    rpm: float | None = None
    window: float = 60.0  # seconds of the rpm window (scaled down against a fast emulator)
    outage: OutagePolicy = field(default_factory=OutagePolicy)  # when the server is down
    count_polls: bool = False
    filename: str = "{id}.{ext}"
    parts: PartAllocator | None = None  # subfolders of at most N images (large runs)
    typical_seconds: float = 28.0
    writers: int = 8
    retention: float = 3600.0
    backoff: Backoff = field(default_factory=Backoff)
    seed: int = 0  # jitter stream: a run replays the same way
    sync: bool = False  # one blocking POST /v1/{model} per job instead of the v2 queue
    price_per_image: float | None = 0.12  # USD, for budget projections before costs are known
    budget_usd: float | None = None  # stop submitting before projected spend passes this
    spent_before: float = 0.0  # USD spent on this output folder by earlier runs
    store: Store | None = None  # where images go (None: the folder `out_dir`)


class _JobOver(Exception):
    """Internal: the job's outcome is recorded, or the run is stopping; unwind its task."""


class Engine:
    def __init__(self, api: Api, ledger: LedgerWriter, config: EngineConfig) -> None:
        self.api = api
        self.ledger = ledger
        self.config = config
        self.stats = RunStats()
        self.throttle = Throttle(
            config.concurrency,
            round(config.rpm) if config.rpm else None,
            window=config.window,
            count_polls=config.count_polls,
            outage=config.outage,
            on_outage=self.stop,
        )
        self.schedule = PollPlanner(config.typical_seconds)
        self._writers = asyncio.Semaphore(config.writers)
        self._rand = seeded_rand(config.seed)
        self._stopped = asyncio.Event()
        self._accepted_at: dict[str, float] = {}  # job id -> monotonic time of its acceptance
        self._reserved: set[str] = set()  # accepted jobs whose cost is not counted yet
        self._result_answers_pending = True  # until the result URL proves otherwise

    def stop(self, reason: str) -> None:
        """Stop submitting (the first reason is kept); jobs in flight still finish."""
        if self.stats.stop_reason is None:
            self.stats.stop_reason = reason
            log.warning("stopping: %s", reason)
        self._stopped.set()

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    async def run(self, works: Iterable[Work | Job]) -> RunStats:
        """Run every job (a bare Job means "submit it"); returns when all started jobs ended."""
        async with MetadataWriter(self.config.out_dir) as metadata:
            store = self.config.store or self.config.out_dir
            self._writer = ImageWriter(
                store, self.config.filename, self.ledger, metadata, self.config.parts
            )
            try:
                async with asyncio.TaskGroup() as group:
                    for item in works:
                        work = item if isinstance(item, Work) else Work(item)
                        await self.throttle.acquire_slot(submits=work.step is Step.SUBMIT)
                        if self.stopping:
                            self.throttle.release_slot()
                            break
                        self.stats.jobs += 1
                        group.create_task(self._job(work), name=f"job-{work.job.id}")
            except* LedgerError as failed:
                # Without a durable ledger nothing may be submitted: stop everything, say why.
                raise failed.exceptions[0] from None
        return self.stats

    # -- one job ----------------------------------------------------------------------------------

    async def _job(self, work: Work) -> None:
        job = work.job
        slot_held = True
        try:
            fetched = None
            if work.step is Step.REFETCH and work.request and work.output:
                fetched = await self._refetch(job, work.output)
            if fetched is not None and work.request is not None:
                self.stats.refetched += 1
                request, poll = work.request, Poll("COMPLETED", output=work.output)
            elif self.config.sync:
                request, poll, fetched = await self._sync(work)
            else:  # a new job, or a lost image that can no longer be downloaded: (re)do it
                request, poll = await self._until_final(work)
            accepted_at = self._accepted_at.pop(job.id, None)
            if poll.state == "FAILED":
                await self._fail(job, "server", poll.error or "FAILED", request.request_id)
                return
            await self._writers.acquire()
            self.throttle.release_slot()  # the server is done; downloads have their own cap
            slot_held = False
            try:
                await self._store(job, request, poll, fetched, accepted_at)
            finally:
                self._writers.release()
        except _JobOver:
            self._accepted_at.pop(job.id, None)
        finally:
            if work.step is Step.SUBMIT:
                # If this job was the probe and ended before the server accepted it (a stop, the
                # budget, a refused answer), pass the turn on, or the next job waits forever.
                await self.throttle.probe_result(False)
            self._unreserve(job.id)
            if slot_held:
                self.throttle.release_slot()

    async def _until_stopped(self, waiting: Coroutine[Any, Any, None]) -> None:
        """Await `waiting` (a rate-limit token can be minutes away), but give up on a stop."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stop):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending

    async def _admit(self, job: Job) -> None:
        """Wait for a rate-limit token; then refuse (release the job) if the run is stopping or
        one more paid job could pass the budget or the reported balance."""
        await self._until_stopped(self.throttle.before_submit())
        cfg = self.config
        reason = unaffordable(self.stats, cfg.price_per_image, cfg.budget_usd, cfg.spent_before)
        if reason is not None:
            self.stop(reason)
        if self.stopping:
            await self._release(job, self.stats.stop_reason)
            raise _JobOver
        self._reserve(job.id)  # before the submit: concurrent submitters see each other

    def _reserve(self, job_id: str) -> None:
        self._reserved.add(job_id)
        self.stats.in_flight = len(self._reserved)

    def _unreserve(self, job_id: str) -> None:
        self._reserved.discard(job_id)
        self.stats.in_flight = len(self._reserved)

    async def _until_final(self, work: Work) -> tuple[Submitted, Poll]:
        """Submit (or re-attach) and follow; resubmit a bounded number of times if forgotten."""
        job = work.job
        if work.ambiguous:
            self.stats.possible_double_charges += 1  # the last run lost a submit's answer
        if work.expired:
            self.stats.resubmits += 1
        for expiries in range(MAX_EXPIRIES + 1):
            if work.step is Step.ATTACH and work.request is not None and expiries == 0:
                self.stats.reattached += 1
                request, age = work.request, work.age
            else:
                request, age = await self._submit(job), 0.0
            self._accepted_at[job.id] = time.monotonic() - age
            self._reserve(job.id)  # until its cost is counted (or it fails): see budget.py
            poll = await self._follow(job, request, age)
            if poll is not None:
                return request, poll
            self._unreserve(job.id)
            if expiries < MAX_EXPIRIES:
                self.stats.resubmits += 1  # a new, paid submit
        error = f"the server forgot the request {MAX_EXPIRIES + 1} times (expired)"
        await self._fail(job, "expired", error, request.request_id)
        raise _JobOver

    async def _sync(self, work: Work) -> tuple[Submitted, Poll, tuple[bytes, ImageInfo]]:
        """One blocking POST /v1 per attempt. Only a 200 is billed, so any other answer is
        retried per policy; a lost answer may have been billed and is not retried (the job
        fails as `unknown`, and a rerun with --retry-failed redoes it)."""
        job = work.job
        if work.ambiguous:
            self.stats.possible_double_charges += 1
        attempt, started = 0, 0.0  # started: the first failure (waiting for a token is no error)
        while True:
            await self._admit(job)
            await self.ledger.append("intent", job=job.id, attempt=attempt)
            self.stats.calls["sync"] += 1
            self._accepted_at[job.id] = time.monotonic()
            self._reserve(job.id)  # a blocking call is a job in flight, and a reservation
            try:
                try:
                    answer = await self.throttle.submit(
                        self.api.run_sync(job.model, dict(job.params))
                    )
                except BaseException:
                    self._unreserve(job.id)
                    raise
                info = await checked(answer.data, job)
            except ApiError as exc:
                await self.throttle.probe_result(False)
                decision = decide(exc.status, phase="sync")
                error, wait = str(exc), exc.retry_after
            except TransportError as exc:
                await self.throttle.probe_result(False)
                if exc.maybe_sent:
                    await self._unknown(job, exc.message)
                    await self._fail(
                        job, "unknown", f"answer lost, maybe billed: {exc.message}", None
                    )
                    raise _JobOver from None
                decision, error, wait = decide(None, phase="sync"), exc.message, None
            except InvalidImage as exc:  # billed, but unusable: the server's fault, not retried
                await self._fail(job, "bad_image", f"the image is invalid: {exc}", None)
                raise _JobOver from None
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
            await self._handle(
                job, decision, error, wait, attempt, started, phase="submit", fail_kind="invalid"
            )

    async def _submit(self, job: Job) -> Submitted:
        """POST until accepted (the request id is then durable)."""
        attempt, started = 0, 0.0  # started: the first failure (waiting for a token is no error)
        while True:
            await self._admit(job)
            await self.ledger.append("intent", job=job.id, attempt=attempt)
            self.stats.calls["submit"] += 1
            try:
                request = await self.throttle.submit(self.api.submit(job.model, dict(job.params)))
            except ApiError as exc:
                await self.throttle.probe_result(False)
                if exc.status >= 500:  # a gateway may have passed it on: maybe billed
                    await self._unknown(job, str(exc))
                decision, error, wait = (
                    decide(exc.status, phase="submit"),
                    str(exc),
                    exc.retry_after,
                )
            except TransportError as exc:
                await self.throttle.probe_result(False)
                if exc.maybe_sent:
                    await self._unknown(job, exc.message)
                decision = decide(None, phase="submit", maybe_sent=exc.maybe_sent)
                error, wait = exc.message, None
            else:
                await self.ledger.append(
                    "submitted",
                    job=job.id,
                    request_id=request.request_id,
                    status_url=request.status_url,
                    response_url=request.response_url,
                )
                await self.throttle.probe_result(True)
                return request
            attempt, started = attempt + 1, started or time.monotonic()
            await self._handle(
                job, decision, error, wait, attempt, started, phase="submit", fail_kind="invalid"
            )

    async def _follow(self, job: Job, request: Submitted, age: float = 0.0) -> Poll | None:
        """Poll until final; None when the server forgot the request (resubmit it).

        `age`: seconds since the submit, for a request recorded by an earlier run.
        """
        submitted = time.monotonic() - age
        await asyncio.sleep(self.schedule.delay(0, age))
        polls = errors = 0
        pending_at = 0.0  # seconds after submit of the last poll that found the job running
        streak = 0.0  # when the current run of errors began: retries are bounded from there
        status_only = False  # this request's result URL answered 404: use its status URL
        while True:
            direct = self._result_answers_pending and not status_only
            url = request.response_url if direct else request.status_url
            try:
                poll = await self._poll(url)
            except ApiError as exc:
                young = time.monotonic() - submitted < self.config.retention
                if direct and young and exc.status != 429 and exc.status < 500:
                    # The result URL may not answer for a pending job (segmind-v2-api.md, queue
                    # flow step 3): ask the status URL, which says "gone" if it really is. Only
                    # our own fresh submits prove that for every job of the run.
                    if age == 0.0:
                        self._result_answers_pending = False
                    status_only = True
                    continue
                decision = decide(exc.status, phase="poll")
                if decision.action is Action.RESUBMIT:
                    await self.ledger.append("expired", job=job.id, request_id=request.request_id)
                    return None
                errors, streak = errors + 1, streak or time.monotonic()
                await self._handle(
                    job, decision, str(exc), exc.retry_after, errors, streak, request
                )
                continue
            except TransportError as exc:
                errors, streak = errors + 1, streak or time.monotonic()
                decision = decide(None, phase="poll")
                await self._handle(job, decision, exc.message, None, errors, streak, request)
                continue
            errors, streak = 0, 0.0  # an answer ends the streak: bounds apply per streak
            polls += 1
            elapsed = time.monotonic() - submitted
            if poll.state == "COMPLETED":
                self._learn(poll, elapsed, pending_at, resumed=age > 0)
                if poll.output is None:  # a status body: the image is at the result URL
                    return await self._result(job, request)
                return poll
            if poll.state == "FAILED":
                return poll
            pending_at = elapsed
            await asyncio.sleep(self.schedule.delay(polls, time.monotonic() - submitted))

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
        attempt, started = 0, time.monotonic()
        while True:
            try:
                poll = await self._poll(request.response_url, kind="result")
            except (ApiError, TransportError) as exc:
                attempt += 1
                api = exc if isinstance(exc, ApiError) else None
                decision = decide(api.status if api else None, phase="poll")
                wait = api.retry_after if api else None
                await self._handle(job, decision, str(exc), wait, attempt, started, request)
                continue
            if poll.state == "COMPLETED" and poll.output is None:
                await self._fail(job, "server", "COMPLETED without an output", request.request_id)
                raise _JobOver
            return poll

    async def _poll(self, url: str, kind: str = "poll") -> Poll:
        await self.throttle.before_poll()
        self.stats.calls[kind] += 1
        return await self.throttle.watch(self.api.poll(url))

    async def _refetch(self, job: Job, output: str) -> tuple[bytes, ImageInfo] | None:
        """Download a completed job's image again from its recorded URL; None if that fails."""
        for attempt in range(1, 4):
            try:
                self.stats.calls["download"] += 1
                data = await self.api.download(output)
                return data, await checked(data, job)
            except (ApiError, TransportError, MediaRefused, InvalidImage):
                await asyncio.sleep(self.config.backoff.delay(attempt, 0.0, self._rand) or 0.0)
        return None

    async def _store(
        self,
        job: Job,
        request: Submitted,
        poll: Poll,
        fetched: tuple[bytes, ImageInfo] | None = None,
        accepted_at: float | None = None,
    ) -> None:
        """Get the bytes (retrying per policy), check them, and hand them to the writer."""
        attempt, started = 0, time.monotonic()
        while fetched is None:
            assert poll.output is not None
            try:
                if job.params.get("base64") is True:
                    data = decode_base64(poll.output)
                else:
                    self.stats.calls["download"] += 1
                    data = await self.api.download(poll.output)
                fetched = data, await checked(data, job)
            except (ApiError, TransportError, MediaRefused, ValueError) as exc:
                attempt += 1
                decision, kind = decide_media(exc)  # bad bytes or a refusal fail at once
                await self._handle(
                    job, decision, str(exc), None, attempt, started, request,
                    phase="media", fail_kind=kind,
                )  # fmt: skip
        try:
            await self._writer.write(job, request, poll, *fetched)
        except OSError as exc:  # disk full, permissions: nothing more can be stored
            # The job stays "submitted" in the ledger, so a rerun re-attaches and downloads it.
            self.stop(f"cannot write images to {self._writer.store.url}: {exc}")
            await self._release(job, self.stats.stop_reason)
            raise _JobOver from None
        total = time.monotonic() - accepted_at if accepted_at is not None else None
        self.stats.complete(
            job_cost(poll.metrics, self.config.price_per_image), dict(poll.metrics), total
        )
        log.info("done %s (request %s)", job.id, request.request_id)

    # -- decisions ---------------------------------------------------------------------------------

    async def _handle(
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
        if decision.action is Action.RETRY and (reason := self.throttle.outage_over()):
            decision = Decision(Action.STOP_SUBMITTING, reason)  # down for too long: stop
        if decision.action is Action.RATE_LIMITED:
            if time.monotonic() - started > RATE_LIMIT_PATIENCE:
                # Refused for half an hour: a block, not a limit. Stop rather than spin forever.
                self.stop(f"rate limited (429) for over {RATE_LIMIT_PATIENCE / 60:g} minutes")
                await self._release(job, self.stats.stop_reason)
                raise _JobOver
            self.stats.rate_limited += 1
            counted = phase == "submit" or (phase == "poll" and self.throttle.count_polls)
            wait = self.throttle.on_rate_limited(retry_after, counted=counted)
            if not counted:
                await asyncio.sleep(wait)
            return
        if decision.action is Action.RETRY:
            delay = self.throttle.retry_in(self.config.backoff, attempt, started, self._rand, phase)
            if delay is not None:
                self.stats.retries += 1
                await asyncio.sleep(delay)
                return
            await self._fail(job, "gave_up", f"gave up after {attempt} tries: {error}", request_id)
        elif decision.action in (Action.STOP_RUN, Action.STOP_SUBMITTING):
            self.stop(decision.reason)
            await self._release(job, decision.reason)
        else:
            await self._fail(job, fail_kind, error, request_id)
        raise _JobOver

    async def _release(self, job: Job, reason: str | None) -> None:
        """The run is stopping and this job will not be finished now; a rerun picks it up."""
        self.stats.released += 1
        await self.ledger.append("released", job=job.id, reason=reason)

    async def _unknown(self, job: Job, error: str) -> None:
        self.stats.possible_double_charges += 1
        await self.ledger.append("unknown", job=job.id, error=error)

    async def _fail(self, job: Job, kind: str, error: str, request_id: str | None) -> None:
        self.stats.fail(kind, job.id, error)
        log.info("failed %s (%s): %s", job.id, kind, error)
        await self.ledger.append(
            "failed", job=job.id, kind=kind, error=error, request_id=request_id, row=job_row(job)
        )
