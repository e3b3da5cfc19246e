"""The upload stage: every local input is on the server, at a recorded URL, before its job is sent.

Each distinct content (sha256) is uploaded once per output folder: the URLs recorded in the ledger
(`uploaded` records, replayed into `Replay.uploads`) are reused by resume, reruns and grown
sweeps, and within a run jobs that need the same file wait for the one upload of it. Files
wanted while a call waits for its rate token share that call (up to `MAX_BATCH` files). An upload
is recorded only once its answer is in, so a crash between the upload and the submit reuses the URL;
a crash during the call uploads again on resume (at most the files in flight at the kill).

Uploads take a token of the run's rate limit and go through the one retry primitive: a lost
answer is retried (uploads are free, so no possible double charge is counted), 429 waits, a
refused key stops the run. An answer with fewer URLs than files is not retried (the files were
stored): its jobs fail, naming it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from batchgen.core.errors import ApiError, TransportError
from batchgen.core.events import FailureKind, Uploaded
from batchgen.core.inputs import InputRef
from batchgen.core.jobs import Job
from batchgen.core.policy import Action, Decision, Failure, failure_of
from batchgen.edges.uploads import Poster, UploadShort, upload_files
from batchgen.engine.kit import Kit
from batchgen.engine.outcomes import JobOver
from batchgen.engine.retry import Tries

__all__ = ["MAX_BATCH", "UploadStage"]

MAX_BATCH = 16  # files per upload call (the emulator takes 64; base64 bodies grow fast)


class _Failed(Exception):
    """The upload this job waited for did not happen; `released`: the run is stopping."""

    def __init__(self, error: str, released: bool) -> None:
        super().__init__(error)
        self.released = released


class UploadStage:
    def __init__(
        self,
        poster: Poster,
        root: str,
        kit: Kit,
        known: Mapping[str, str],
        stopping: Callable[[], bool],
    ) -> None:
        self.poster = poster
        self.root = root
        self.kit = kit
        self.urls: dict[str, str] = dict(known)  # sha256 -> URL, this folder's
        self.stopping = stopping
        self.files = 0  # files uploaded by this run
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._batch: list[InputRef] = []
        self._leader = False

    async def urls_for(self, job: Job) -> Mapping[str, str]:
        """Every input of `job` uploaded (or found recorded): sha256 -> URL. Raises JobOver
        after recording the job's end when an upload it needs fails."""
        while True:
            waits: list[asyncio.Future[str]] = []
            for ref in job.inputs:
                if ref.sha256 in self.urls:
                    continue
                future = self._waiting.get(ref.sha256)
                if future is None:
                    future = asyncio.get_running_loop().create_future()
                    self._waiting[ref.sha256] = future
                    self._batch.append(ref)
                waits.append(future)
            if not waits:
                return self.urls
            if self._batch and not self._leader:  # files nobody is uploading yet: upload them
                self._leader = True
                try:
                    await asyncio.sleep(0)  # jobs started in this turn join the call
                    while self._batch:
                        await self._lead(job, [])  # filled once the call may go
                finally:
                    self._leader = False
                    self._abandon()
            for future in waits:
                try:
                    await asyncio.shield(future)
                except _Failed as exc:
                    if exc.released:  # the run is stopping: this job is picked up by a rerun
                        await self.kit.outcomes.release(job, self.kit.stats.stop_reason)
                        raise JobOver from None
                    # Another job's upload of it failed (that job is failed): try it ourselves;
                    # if it fails again, this job fails with its own error.

    def _abandon(self) -> None:
        """The leader left with files not uploaded (it failed): their waiters try again."""
        batch, self._batch = self._batch, []
        self._fail(batch, "the upload was not attempted", self.stopping())

    def _fail(self, batch: list[InputRef], error: str, released: bool) -> None:
        for ref in batch:
            future = self._waiting.pop(ref.sha256, None)
            if future is not None and not future.done():
                future.set_exception(_Failed(error, released))
                future.exception()  # retrieved: a job that no longer waits is not an error

    async def _lead(self, job: Job, batch: list[InputRef]) -> None:
        try:
            urls = await self.kit.retry.run(
                Tries(job, "upload", fail_kind=FailureKind.UPLOAD),
                lambda attempt: self._once(job, batch),
            )
        except BaseException as exc:
            self._fail(
                batch,
                str(exc) or "the upload failed",
                self.stopping() or not isinstance(exc, JobOver),
            )
            raise
        for ref, url in zip(batch, urls, strict=True):
            await self.kit.ledger.append(Uploaded(ref.sha256, url, self.root))
            self.urls[ref.sha256] = url
            future = self._waiting.pop(ref.sha256, None)
            if future is not None and not future.done():
                future.set_result(url)

    async def _once(self, job: Job, batch: list[InputRef]) -> list[str] | Failure:
        await self.kit.throttle.before_submit()
        if self.stopping():
            await self.kit.outcomes.release(job, self.kit.stats.stop_reason)
            raise JobOver
        # Files that became wanted while this call waited for its token go with it.
        room = MAX_BATCH - len(batch)
        batch += self._batch[:room]
        del self._batch[:room]
        if not batch:
            return []
        try:
            files = [(await asyncio.to_thread(_read, ref), ref.mime) for ref in batch]
        except _Changed as exc:
            return Failure(Decision(Action.FAIL_JOB, "input changed"), str(exc))
        self.kit.stats.calls["upload"] += 1
        try:
            urls = await upload_files(self.poster, self.root, files)
        except UploadShort as exc:
            return Failure(Decision(Action.FAIL_JOB, "upload short"), str(exc))
        except ApiError as exc:
            if exc.status in (401, 403):  # the key refused: as for a poll, stop the run
                return failure_of(exc, "poll")
            return failure_of(exc, "upload")
        except TransportError as exc:  # a lost answer: retried (uploads are free)
            return failure_of(exc, "upload")
        self.files += len(batch)
        return urls


def _read(ref: InputRef) -> bytes:
    """The input's bytes, checked against the digest its job id was made from."""
    try:
        data = Path(ref.path).read_bytes()
    except OSError as exc:
        raise _Changed(f"input {ref.path} cannot be read: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise _Changed(f"input {ref.path} changed since it was validated; run again")
    return data


class _Changed(Exception):
    """An input file is not what the manifest pass read (edited or removed meanwhile)."""
