"""Reuse in plans (`validate`, `run --dry-run`): what a run would take from the catalogue now.

Read-only: each hit is checked exactly as the run checks it (the file hashed, or one HEAD on S3),
but nothing is copied and stale rows are left for the run to drop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from batchgen.core.jobs import Job
from batchgen.edges.catalog import Catalog, Entry
from batchgen.edges.imagecopy import SourceUnavailable, read_verified
from batchgen.edges.storage import Store
from batchgen.models.registry import schema_for
from batchgen.run.reuse import WORKERS, Reuse, fingerprinted
from batchgen.run.reusesets import image_sets

__all__ = ["count_reusable"]


def count_reusable(
    reuse: Reuse, jobs: Iterable[Job], price: Callable[[str], float | None]
) -> tuple[set[str], float, Counter[str]]:
    """For a plan (validate, --dry-run): the jobs a run would reuse now, the USD saved (what
    each image cost when it was made, else its own model's `price`), and the reused jobs by
    model (so the rest can be priced by theirs).

    Read-only: hits are checked (hashed, or a HEAD on S3) exactly as the run checks them, but
    nothing is copied and stale rows are left for the run to drop."""
    ids: set[str] = set()
    saved = 0.0
    models: Counter[str] = Counter()
    if not reuse.sources:
        return ids, saved, models
    iterator = iter(jobs)
    with ThreadPoolExecutor(WORKERS) as pool:
        while batch := fingerprinted(iterator):
            hits = reuse.lookup([key for _, key in batch])
            checks = [(job, hits[key]) for job, key in batch if key in hits]
            for job, entry in zip(
                (job for job, _ in checks), pool.map(lambda c: _first_good(reuse, *c), checks),
                strict=True,
            ):  # fmt: skip
                if entry is not None:
                    ids.add(job.id)
                    models[job.model] += 1
                    saved += entry.cost if entry.cost is not None else (price(job.model) or 0.0)
    return ids, saved, models


def _first_good(reuse: Reuse, job: Job, found: list[tuple[Catalog, Entry]]) -> Entry | None:
    """The first entry of the first whole set of images (`reusesets`) that is all intact."""
    schema = schema_for(job.model)
    asked = schema.outputs_for(job.params) if schema is not None else 1
    for _, entries in image_sets(found, asked):
        origin = reuse.store_for(entries[0].location)
        if origin is not None and all(_intact(origin, entry) for entry in entries):
            return entries[0]
    return None


def _intact(origin: Store, entry: Entry) -> bool:
    try:
        return (
            origin.intact(entry.file, entry.sha256)
            if origin.remote
            else read_verified(origin, entry.file, entry.sha256) is not None
        )
    except SourceUnavailable:
        return False
