"""The reuse step: before anything is submitted, take from the catalogue what was already paid for.

A job about to be submitted whose fingerprint (`core/fingerprint.py`) is in the catalogue, with an
image that still hashes to the recorded sha256, is placed into this run's output instead
(`edges/imagecopy.py`: hard link, server-side copy or copy) and recorded in the ledger as an
ordinary `completed` record with cost 0 and a `reused` field saying from where; its metadata row
gets a `reused_from` column. Nothing is sent for it. A stale row (file gone or changed) is dropped
from the catalogue and the job runs as usual. Jobs without a fingerprint (no seed fixed before
the request) are never reused.

At the end of every run the folder's ledger is indexed into the catalogue (`ledgerindex`), so
the next run anywhere on this machine finds these images. `--reuse-from DIR` indexes folders into
an in-memory catalogue that is searched first; `--no-reuse` searches nothing (the run's images
are still catalogued); `--no-catalog` neither reads nor writes the catalogue file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from batchgen.core.fingerprint import fingerprint, public_location
from batchgen.core.jobs import Job
from batchgen.core.runstats import RunStats
from batchgen.edges.catalog import (
    BATCH,
    Catalog,
    CatalogError,
    CatalogUnavailable,
    Entry,
    default_catalog_path,
)
from batchgen.edges.imagecopy import SourceUnavailable, place_image
from batchgen.edges.ledger import LedgerWriter
from batchgen.edges.ledgerindex import folder_ledgers, index_folder, index_ledger
from batchgen.edges.parts import PartAllocator
from batchgen.edges.storage import LocalStore, StorageError, Store, is_remote, open_store
from batchgen.models.registry import schema_for
from batchgen.run.reusesets import image_names, image_sets, reused_record

__all__ = ["WORKERS", "Reuse", "fingerprinted", "open_reuse", "reuse_jobs", "store_location"]

log = logging.getLogger("batchgen.reuse")

WORKERS: Final = 16  # images checked (hashed) and placed at once

CatalogOption = Path | str | bool | None  # None/True: the default file; False: none


@dataclass
class Reuse:
    """The catalogues one run reads (`sources`, in order) and writes (`catalog`)."""

    catalog: Catalog | None
    sources: tuple[Catalog, ...]
    options: Mapping[str, Any] = field(default_factory=dict)  # for remote sources
    _stores: dict[str, Store | None] = field(default_factory=dict)

    def __enter__(self) -> Reuse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for source in {*self.sources, *((self.catalog,) if self.catalog else ())}:
            source.close()

    def lookup(self, fingerprints: Sequence[bytes]) -> dict[bytes, list[tuple[Catalog, Entry]]]:
        found: dict[bytes, list[tuple[Catalog, Entry]]] = {}
        for source in self.sources:
            for key, entries in source.lookup(fingerprints).items():
                found.setdefault(key, []).extend((source, e) for e in entries)
        return found

    def store_for(self, location: str) -> Store | None:
        """The store an entry's image is in; None if it cannot be opened here (no s3 extra)."""
        if location not in self._stores:
            try:
                self._stores[location] = (
                    open_store(location, self.options)
                    if is_remote(location)
                    else LocalStore(Path(location))
                )
            except (StorageError, OSError):
                self._stores[location] = None
        return self._stores[location]

    def record(self, ledger_path: Path, store: Store) -> int:
        """Index this run's ledger into the catalogue (a damaged one is reported, not fatal)."""
        if self.catalog is None:
            return 0
        try:
            return index_ledger(self.catalog, ledger_path, store_location(store))
        except CatalogError as exc:
            log.warning("the run's images were not catalogued: %s", exc)
            return 0


def store_location(store: Store) -> str:
    """How the catalogue names a store: an absolute folder, or its URL without credentials."""
    return public_location(store.url) if store.remote else str(Path(store.url).resolve())


def open_reuse(
    catalog: CatalogOption = None,
    reuse_from: Sequence[Path | str] = (),
    reuse: bool = True,
    options: Mapping[str, Any] | None = None,
    *,
    read_only: bool = False,
) -> Reuse:
    """Open what a run reads and writes; CatalogError (before anything is sent) if unusable.

    `read_only` (plans): a catalogue file that does not exist yet is not created."""
    path = default_catalog_path() if catalog is None or catalog is True else catalog or None
    main = None
    if path and not (read_only and not Path(path).exists()):
        try:
            main = Catalog(path)
        except CatalogUnavailable as exc:
            if catalog is not None:  # asked for by name: say so, and stop before paying
                raise
            # The default place is not usable here (a read-only home): run without it.
            log.warning("running without the catalogue: %s", exc)
    extra: Catalog | None = None
    try:
        if reuse and reuse_from:
            extra = Catalog(":memory:")
            for folder in map(Path, reuse_from):
                if not folder_ledgers(folder):
                    raise CatalogError(f"--reuse-from {folder}: no ledger.jsonl there to reuse")
                index_folder(extra, folder, full=True)
    except BaseException:
        for opened in (main, extra):
            if opened is not None:
                opened.close()
        raise
    sources = tuple(c for c in (extra, main) if c is not None) if reuse else ()
    return Reuse(main, sources, dict(options or {}))


def fingerprinted(jobs: Iterator[Job]) -> list[tuple[Job, bytes]]:
    """The next jobs with a fingerprint (up to BATCH of them); [] at the end."""
    batch: list[tuple[Job, bytes]] = []
    for job in jobs:
        key = fingerprint(job)
        if key is not None:
            batch.append((job, key))
            if len(batch) >= BATCH:
                break
    return batch


async def reuse_jobs(
    reuse: Reuse,
    candidates: Iterator[Job],
    *,
    store: Store,
    ledger: LedgerWriter,
    stats: RunStats,
    filename: str,
    parts: PartAllocator | None,
    price: Callable[[str], float | None],
) -> set[str]:
    """Place every candidate (a job about to be submitted) the catalogue has; their ids.
    `price`: a model's price per image, what a reused image saves when its entry has no cost.

    The manifest is read and the catalogue searched in a thread, batch by batch, so an
    in-process emulator (or anything else on the loop) keeps running meanwhile."""
    reused: set[str] = set()
    if all(await asyncio.to_thread(lambda: [source.empty() for source in reuse.sources])):
        return reused
    gate = asyncio.Semaphore(WORKERS)
    while batch := await asyncio.to_thread(fingerprinted, candidates):
        hits = await asyncio.to_thread(reuse.lookup, [key for _, key in batch])
        stale: list[tuple[Catalog, Entry]] = []

        async def one(
            job: Job, found: list[tuple[Catalog, Entry]], stale: list[tuple[Catalog, Entry]]
        ) -> None:
            schema = schema_for(job.model)
            asked = schema.outputs_for(job.params) if schema is not None else 1
            async with gate:
                placed = await _place(reuse, job, image_sets(found, asked), store, filename,
                                      parts, stale)  # fmt: skip
            if placed is None:
                return
            entries, names, how = placed
            await _record(ledger, job, entries, names, how, asked)
            reused.add(job.id)
            stats.reused += 1
            cost = entries[0].cost  # what the job cost when it was made (each row says it)
            stats.saved += cost if cost is not None else (price(job.model) or 0.0)

        async with asyncio.TaskGroup() as group:
            for job, key in batch:
                if key in hits:
                    group.create_task(one(job, hits[key], stale))
        for source in {s for s, _ in stale}:
            await asyncio.to_thread(source.drop, [e for s, e in stale if s is source])
        if stale:
            log.info("dropped %d stale catalogue row(s): file gone or changed", len(stale))
    return reused


async def _place(
    reuse: Reuse,
    job: Job,
    sets: list[tuple[Catalog, tuple[Entry, ...]]],
    store: Store,
    filename: str,
    parts: PartAllocator | None,
    stale: list[tuple[Catalog, Entry]],
) -> tuple[tuple[Entry, ...], list[str], str] | None:
    """Copy the first whole set of images (`reusesets`) that is still intact into `store`:
    its entries, their names here, and how the first was placed; None if none is."""
    folders: list[str] = []  # a part per image, as the writer takes them, kept across sets
    for source, entries in sets:
        escaping = [(source, e) for e in entries if _escapes(e.file)]
        if escaping:
            stale.extend(escaping)  # not a file of that folder: never followed
            continue
        origin = reuse.store_for(entries[0].location)
        try:
            names = image_names(job, entries, filename)
        except ValueError:
            continue
        if origin is None:
            continue
        if parts is not None:
            folders += [parts.take() for _ in range(len(names) - len(folders))]
            names = [f"{folder}/{name}" for folder, name in zip(folders, names, strict=False)]
        hows: list[str] = []
        try:
            for entry, name in zip(entries, names, strict=True):
                how = await place_image(origin, entry.file, entry.sha256, store, name)
                if how is None:
                    stale.append((source, entry))
                    break
                hows.append(how)
        except SourceUnavailable as exc:
            log.warning("not reused (kept in the catalogue): %s", exc)
            continue
        if len(hows) == len(entries):
            return entries, names, hows[0]
    return None


def _escapes(file: str) -> bool:
    parts = PurePosixPath(file).parts
    return not parts or PurePosixPath(file).is_absolute() or ".." in parts or "\\" in file


async def _record(
    ledger: LedgerWriter,
    job: Job,
    entries: tuple[Entry, ...],
    names: list[str],
    how: str,
    asked: int,
) -> None:
    """The ledger's `completed` record of a reused job (`reusesets.reused_record`)."""
    await ledger.append(reused_record(job, entries, names, how, asked))
