"""The last stage of a job: verified bytes -> image file -> ledger `completed` -> metadata row.

The order is the crash-safety contract: the file is complete under its final name before the
ledger says so, and the ledger says so before the metadata row is appended (the metadata is rebuilt
from the ledger after every run, so a crash between the two costs nothing).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any

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

log = logging.getLogger("batchgen")


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
        self._inputs_kept: set[str] = set()  # input copies made (their names in the folder)

    async def keep_inputs(self, job: Job, part: str = "") -> None:
        """Copy the job's local inputs into the folder (`inputs/`, by content, once each) before
        its first image is recorded, so every metadata row's `input_file_name` exists. `part`:
        the image's subfolder of a large run (`data/00000/`), which has its own metadata.jsonl
        and so its own `inputs/` (imagefolder refuses paths with '..')."""
        for ref in job.inputs:
            name = part + ref.copy_name
            if name in self._inputs_kept:
                continue
            if not await asyncio.to_thread(self.store.intact, name, ref.sha256):
                try:
                    data = await asyncio.to_thread(Path(ref.path).read_bytes)
                except OSError:
                    data = b""
                if hashlib.sha256(data).hexdigest() != ref.sha256:  # moved or edited since
                    log.warning("input %s changed; its copy is not kept", ref.path)
                    continue
                await self.store.put(name, data, ref.sha256)
            self._inputs_kept.add(name)

    async def write(
        self, job: Job, request: Submitted, poll: Poll, data: bytes, info: ImageInfo
    ) -> None:
        """Store a verified image atomically, then record it in the ledger and the metadata."""
        relative = output_name(job, info.extension, self.filename).as_posix()
        part = f"{self.parts.take()}/" if self.parts is not None else ""
        relative = part + relative
        await self.keep_inputs(job, part)
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

    async def write_all(
        self, job: Job, request: Submitted, poll: Poll, images: list[tuple[bytes, ImageInfo]],
        asked: int,
    ) -> None:  # fmt: skip
        """A job's several images as `{id}-{k}.{ext}`, every one stored before the one
        `completed` record that names them all (so a crash leaves the job incomplete, and its
        request is polled again for the missing ones), then one metadata row each."""
        files: list[dict[str, str]] = []
        rows: list[dict[str, Any]] = []
        for k, (data, info) in enumerate(images):
            name = output_name(job, info.extension, self.filename)
            part = f"{self.parts.take()}/" if self.parts is not None else ""
            relative = part + name.with_name(f"{name.stem}-{k}{name.suffix}").as_posix()
            await self.keep_inputs(job, part)
            await self.store.put(relative, data, info.sha256)
            files.append({"file": relative, "sha256": info.sha256})
            row = metadata_row(job, relative, request.request_id, poll)
            row["index"] = k
            rows.append(row)
        seed = job.seed if job.seed is not None else poll.seed
        await self.ledger.append(
            Completed(
                job=job.id, request_id=request.request_id, file=files[0]["file"],
                sha256=files[0]["sha256"], bytes=sum(i.size for _, i in images),
                format=images[0][1].format, seed=seed, metrics=dict(poll.metrics), output=None,
                row=rows[0], files=files, asked=asked, rows=rows,
            )
        )  # fmt: skip
        for row in rows:
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
