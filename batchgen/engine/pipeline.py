"""The engine: submit under the throttle, follow each request to the end, store the image.

One `asyncio.TaskGroup` holds the producer and one task per job *in flight*: the producer takes
an in-flight slot before it creates a job's task, so a million-job manifest never has more than
`concurrency` (+ `writers` downloading) tasks alive. Each job task walks the stages

    submit (retries per policy) -> follow (adaptive polls) -> store (download, verify, write)

and records every transition in the ledger; its request id is durable before it counts as in
flight. Decisions come from `policy`, admission from `throttle`, I/O from `client`, `ledger` and
`sinks`; the polling stage is `follow`, the v1 path `syncpath`, the download `storing`, and every
failed call goes through the one retry primitive (`retry`, which records endings via `outcomes`):
this module only sequences them. A stop (bad key, no credits, model gone, a signal)
stops submitting; jobs already paid for are still followed and written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from functools import partial
from typing import Any

from batchgen.core import events
from batchgen.core.budget import Reservations, unaffordable
from batchgen.core.clock import Clock, SystemClock
from batchgen.core.errors import ApiError, LedgerError, TransportError
from batchgen.core.events import FailureKind, Intent, RateLearned
from batchgen.core.inputs import sent_params
from batchgen.core.jobs import Job
from batchgen.core.policy import (
    Failure,
    failure_of,
    maybe_billed,
    seeded_rand,
)
from batchgen.core.pollplans import PollPlans
from batchgen.core.resume import Step, Work
from batchgen.core.runstats import RunStats
from batchgen.core.wire import Poll, Submitted
from batchgen.edges.ledger import LedgerWriter
from batchgen.edges.sinks import MetadataWriter
from batchgen.edges.uploads import Poster
from batchgen.engine.config import Api, EngineConfig
from batchgen.engine.follow import Follower
from batchgen.engine.inflight import InFlight
from batchgen.engine.kit import Kit
from batchgen.engine.outcomes import JobOver, Outcomes
from batchgen.engine.retry import Retry, Tries
from batchgen.engine.storing import StoreStage
from batchgen.engine.syncpath import SyncStage
from batchgen.engine.throttle import Throttle
from batchgen.engine.uploading import UploadStage
from batchgen.engine.writer import ImageWriter

__all__ = ["MAX_EXPIRIES", "Api", "Engine", "EngineConfig"]  # Api, EngineConfig: from config

log = logging.getLogger("batchgen")

MAX_EXPIRIES = 2  # resubmits after "request not found": each one is paid again


class Engine:
    def __init__(
        self, api: Api, ledger: LedgerWriter, config: EngineConfig, clock: Clock | None = None
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.config = config
        self.clock = clock or SystemClock()
        self.stats = RunStats()
        self.throttle = Throttle(
            config.concurrency,
            round(config.rpm) if config.rpm else None,
            window=config.window,
            count_polls=config.count_polls,
            outage=config.outage,
            on_outage=self.stop,
            clock=self.clock,
            typical_seconds=config.typical_seconds,
            rpm_auto=config.rpm_auto,
            rpm_start=config.rpm_start,
        )
        # A poll plan per model, each from its own prior (`model_seconds`) and resume seeds.
        self.plans = PollPlans(config.typical_seconds, config.model_seconds)
        self.plans.seed(config.known_latencies)
        self._reserved = config.reserved_price()  # per job in flight, for the budget check
        self._writers = asyncio.Semaphore(config.writers)
        self._stopped = asyncio.Event()
        # Accepted jobs whose cost is not counted yet, and when each was accepted.
        self.inflight = InFlight(Reservations(self.stats), self.clock)
        self.outcomes = Outcomes(ledger, self.stats, self.stop)
        rand = seeded_rand(config.seed)
        self.retry = Retry(self.clock, self.throttle, self.outcomes, config.backoff, rand)
        kit = Kit(self.throttle, ledger, self.retry)
        self.follower = Follower(api, kit, self.plans, config.retention)
        self.storing = StoreStage(api, self.retry, config.price_of)
        self.sync_stage = SyncStage(api, kit, self.inflight, self._sending)
        self.uploads: UploadStage | None = None  # local inputs: a JSON poster and a host
        if isinstance(api, Poster) and config.upload_root:
            known, root = config.uploaded, config.upload_root
            self.uploads = UploadStage(api, root, kit, known, lambda: self.stopping)

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
            self.storing.writer = ImageWriter(
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
        rates = self.throttle.rates
        self.stats.rate_limited_probing = rates.probe_refusals
        if rates.auto and rates.known is not None:  # the learned rate: a resume starts there
            await self.ledger.append(RateLearned(round(rates.known, 3)))
        return self.stats

    # -- one job ----------------------------------------------------------------------------------

    async def _job(self, work: Work) -> None:
        job = work.job
        slot_held = True
        try:
            fetched = None
            if work.step is Step.REFETCH and work.request and work.output:
                fetched = await self.storing.refetch(job, work.output)
            if fetched is not None and work.request is not None:
                self.stats.refetched += 1
                request, poll = work.request, Poll("COMPLETED", output=work.output)
            elif self.config.sync:
                sent = replace(work, job=await self._uploaded(job))
                request, poll, fetched = await self.sync_stage.run(sent)
            else:  # a new job, or a lost image that can no longer be downloaded: (re)do it
                request, poll = await self._until_final(work)
            accepted_at = self.inflight.accepted_at(job.id)
            if poll.state == "FAILED":
                await self.outcomes.fail(
                    job, FailureKind.SERVER, poll.error or "FAILED", request.request_id
                )
                return
            await self._writers.acquire()
            self.throttle.release_slot()  # the server is done; downloads have their own cap
            slot_held = False
            try:
                await self.storing.store(job, request, poll, fetched, accepted_at)
            finally:
                self._writers.release()
        except JobOver:
            pass
        finally:
            if work.step is Step.SUBMIT:
                # If this job was the probe and ended before the server accepted it (a stop, the
                # budget, a refused answer), pass the turn on, or the next job waits forever.
                await self.throttle.probe_result(False)
            self.inflight.ended(job.id)
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
        reason = unaffordable(self.stats, self._reserved, cfg.budget_usd, cfg.spent_before)
        if reason is not None:
            self.stop(reason)
        if self.stopping:
            await self.outcomes.release(job, self.stats.stop_reason)
            raise JobOver
        self.inflight.sending(job.id)

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
            self.inflight.accepted(job.id, age)
            poll = await self.follower.follow(job, request, age)
            if poll is not None:
                return request, poll
            self.inflight.forgotten(job.id)
            if expiries < MAX_EXPIRIES:
                self.stats.resubmits += 1  # a new, paid submit
        error = f"the server forgot the request {MAX_EXPIRIES + 1} times (expired)"
        await self.outcomes.fail(job, FailureKind.EXPIRED, error, request.request_id)
        raise JobOver

    async def _submit(self, job: Job) -> Submitted:
        """Upload its inputs (once per content), then POST until accepted (the request id is
        then durable)."""
        params = dict((await self._uploaded(job)).params)
        return await self.retry.run(Tries.paid(job), partial(self._submit_once, job, params))

    async def _uploaded(self, job: Job) -> Job:
        """`job` as sent: its local inputs uploaded and their URLs in place of the paths."""
        if not job.inputs:
            return job
        if self.uploads is None:
            await self.outcomes.fail(job, FailureKind.UPLOAD, "no upload host for inputs", None)
            raise JobOver
        urls = await self.uploads.urls_for(job)
        return replace(job, params=sent_params(job.params, job.inputs, urls))

    async def _sending(self, job: Job, attempt: int, kind: str) -> None:
        """Before a call that may cost a job: admission (token, budget, stop), then its intent
        durable in the ledger, then it counts as a call of `kind`."""
        await self._admit(job)
        await self.ledger.append(Intent(job.id, attempt))
        self.stats.calls[kind] += 1

    async def _submit_once(
        self, job: Job, params: dict[str, Any], attempt: int
    ) -> Submitted | Failure:
        await self._sending(job, attempt, "submit")
        try:
            request = await self.throttle.submit(self.api.submit(job.model, dict(params)))
        except (ApiError, TransportError) as exc:
            await self.throttle.probe_result(False)
            if maybe_billed(exc):
                await self.outcomes.unknown(job, str(exc))
            return failure_of(exc, "submit")
        await self.ledger.append(
            events.Submitted(job.id, request.request_id, request.status_url, request.response_url)
        )
        await self.throttle.probe_result(True)
        return request
