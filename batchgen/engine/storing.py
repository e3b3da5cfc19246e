"""The storing stage: get a finished job's image bytes, check them, hand them to the writer.

Downloads come from another origin than the API (a CDN), fail in their own ways (a refusal, bytes
that are not the image asked for) and are retried by their own bounded backoff through the one
retry primitive; a disk that cannot take the image stops the run instead of failing jobs that
are already paid for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from batchgen.core.budget import job_cost
from batchgen.core.errors import ApiError, MediaRefused, TransportError
from batchgen.core.events import FailureKind
from batchgen.core.jobs import Job
from batchgen.core.policy import Failure, decide_media
from batchgen.core.wire import Poll, Submitted, decode_base64
from batchgen.edges.sinks import ImageInfo, InvalidImage
from batchgen.engine.outcomes import JobOver
from batchgen.engine.retry import Retry, Tries
from batchgen.engine.writer import ImageWriter, checked
from batchgen.models.registry import images_asked

__all__ = ["REFETCH_TRIES", "Downloads", "StoreStage"]

log = logging.getLogger("batchgen")

REFETCH_TRIES = 3  # downloads of a completed job's recorded image URL before redoing the job
Fetched = tuple[bytes, ImageInfo]


class Downloads(Protocol):
    """What the stage needs from a transport: one image download (see `engine.Api`)."""

    async def download(self, url: str) -> bytes: ...


class StoreStage:
    """One per engine, shared by its job tasks; `writer` is set when the run opens its sinks."""

    def __init__(
        self, api: Downloads, retry: Retry, price_of: Callable[[str], float | None]
    ) -> None:
        self.api = api
        self.retry = retry
        self.stats = retry.stats
        self.price_of = price_of  # a job's price by its model, when the server gives no cost
        self.writer: ImageWriter | None = None

    async def refetch(self, job: Job, output: str) -> Fetched | None:
        """Download a completed job's image again from its recorded URL; None if that fails."""
        for attempt in range(1, REFETCH_TRIES + 1):
            try:
                self.stats.calls["download"] += 1
                data = await self.api.download(output)
                return data, await checked(data, job)
            except (ApiError, TransportError, MediaRefused, InvalidImage):
                await self.retry.pause(attempt)
        return None

    async def store(
        self,
        job: Job,
        request: Submitted,
        poll: Poll,
        fetched: Fetched | None = None,
        accepted_at: float | None = None,
    ) -> None:
        """Get the bytes (retrying per policy), check them, and hand them to the writer."""
        assert self.writer is not None, "the engine sets the writer before any job runs"
        clock = self.retry.clock
        asked = images_asked(job.model, job.params)
        urls = poll.outputs
        stored = 1
        try:
            if fetched is None and (len(urls) > 1 or asked > 1) and urls:
                images = [await self._fetch(job, request, poll, url) for url in urls]
                stored = len(images)
                if len(images) < asked:  # the model may return fewer ("at most max_images")
                    self.stats.fewer_images += 1
                    log.warning("%s asked for %d images, got %d", job.id, asked, len(images))
                await self.writer.write_all(job, request, poll, images, asked)
            else:
                if fetched is None:
                    fetched = await self._fetch(job, request, poll, poll.output)
                await self.writer.write(job, request, poll, *fetched)
        except OSError as exc:  # disk full, permissions: nothing more can be stored
            # The job stays "submitted" in the ledger, so a rerun re-attaches and downloads it.
            outcomes = self.retry.outcomes
            outcomes.stop(f"cannot write images to {self.writer.store.url}: {exc}")
            await outcomes.release(job, self.stats.stop_reason)
            raise JobOver from None
        total = clock.now() - accepted_at if accepted_at is not None else None
        price = self.price_of(job.model)  # per image, when the server does not say the cost
        cost = job_cost(poll.metrics, price * stored if price is not None else None)
        self.stats.complete(cost, dict(poll.metrics), total)
        log.info("done %s (request %s)", job.id, request.request_id)

    async def _fetch(self, job: Job, request: Submitted, poll: Poll, output: str | None) -> Fetched:
        assert output is not None
        tries = Tries(job, "media", request=request, since=self.retry.clock.now())

        async def once(_attempt: int) -> Fetched | Failure:
            try:
                if job.params.get("base64") is True:
                    data = decode_base64(output)
                else:
                    self.stats.calls["download"] += 1
                    data = await self.api.download(output)
                return data, await checked(data, job)
            except (ApiError, TransportError, MediaRefused, ValueError) as exc:
                decision, kind = decide_media(exc)  # bad bytes, a refusal: fail now
                tries.fail_kind = FailureKind(kind)
                return Failure(decision, str(exc))

        return await self.retry.run(tries, once)
