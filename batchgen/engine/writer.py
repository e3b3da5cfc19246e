"""The last stage of a job: verified bytes -> image file -> ledger `completed` -> metadata row.

The order is the crash-safety contract: the file is complete under its final name before the
ledger says so, and the ledger says so before the metadata row is appended (the metadata is rebuilt
from the ledger after every run, so a crash between the two costs nothing).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from batchgen.core.events import Completed
from batchgen.core.jobs import Job, output_name
from batchgen.core.metadata import metadata_row
from batchgen.core.wire import Poll, Submitted
from batchgen.edges.ledger import LedgerWriter
from batchgen.edges.parts import PartAllocator
from batchgen.edges.sinks import ImageInfo, MetadataWriter, verify_image
from batchgen.edges.storage import LocalStore, Store
from batchgen.models.registry import schema_for

__all__ = ["ImageWriter", "checked", "expected_format"]


class ImageWriter:
    def __init__(
        self,
        store: Store | Path,
        filename: str,
        ledger: LedgerWriter,
        metadata: MetadataWriter,
        parts: PartAllocator | None = None,
    ) -> None:
        self.store = LocalStore(store) if isinstance(store, Path) else store
        self.filename = filename
        self.ledger = ledger
        self.metadata = metadata
        self.parts = parts  # large runs: images go into data/NNNNN/ subfolders

    async def write(
        self, job: Job, request: Submitted, poll: Poll, data: bytes, info: ImageInfo
    ) -> None:
        """Store a verified image atomically, then record it in the ledger and the metadata."""
        relative = output_name(job, info.extension, self.filename).as_posix()
        if self.parts is not None:
            relative = f"{self.parts.take()}/{relative}"
        await self.store.put(relative, data, info.sha256)  # complete under its name, or absent
        seed = job.seed if job.seed is not None else poll.seed
        row = metadata_row(job, relative, request.request_id, poll)
        await self.ledger.append(
            Completed(
                job=job.id,
                request_id=request.request_id,
                file=relative,
                sha256=info.sha256,
                bytes=info.size,
                format=info.format,
                seed=seed,
                metrics=dict(poll.metrics),
                output=None if job.params.get("base64") is True else (poll.output or None),
                row=row,
            )
        )
        await self.metadata.append(row)


def expected_format(job: Job) -> str | None:
    """The image format the job asked for (or the model's default), to check the answer."""
    fmt = job.params.get("image_format")
    schema = schema_for(job.model)
    if fmt is None and schema is not None:
        fmt = schema.with_defaults({}).get("image_format")
    return fmt if fmt in ("png", "jpeg", "webp") else None


async def checked(data: bytes, job: Job) -> ImageInfo:
    """`verify_image` in a thread (a full decode), against the format `job` asked for."""
    return await asyncio.to_thread(verify_image, data, expected_format(job))
