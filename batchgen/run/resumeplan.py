"""The run-level resume plan: the manifest's jobs minus what the folder's ledger says is done.

`resume.plan` decides one job from its ledger record (pure); this module walks the whole manifest
against the folder's history (`history.read_history`: final states, lost files, the details of
the jobs to pick up) for a run (`runner.run_manifest`) and for a dry run (`plan_resume`), and
counts what it skips.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgen.core.folder import PART_ROOT
from batchgen.core.jobs import Job
from batchgen.core.lifecycle import LedgerJob, State
from batchgen.core.resume import Step, Work, plan
from batchgen.core.shard import Shard
from batchgen.core.wire import REQUEST_RETENTION
from batchgen.edges.parts import PartAllocator
from batchgen.manifest.loader import Manifest
from batchgen.models.registry import images_asked
from batchgen.run.history import History, read_history
from batchgen.run.layout import plan_layout
from batchgen.run.reuse import CatalogOption, Reuse, open_reuse, reuse_jobs
from batchgen.run.reuseplan import count_reusable

__all__ = [
    "IMAGES_KEY",
    "PAY_KEY",
    "ResumeCounts",
    "count_owned",
    "owned",
    "part_allocator",
    "pending_work",
    "plan_resume",
    "submit_candidates",
    "work_after_reuse",
    "work_for",
]


PAY_KEY = "pay:"  # `plan_resume`'s keys "pay:MODEL": the jobs it would submit, by model
IMAGES_KEY = "images:"  # and "images:MODEL": the images those jobs ask for


@dataclass
class ResumeCounts:
    """How the jobs of a rerun were picked up (see `resume.plan`)."""

    done: int = 0  # completed earlier, file intact
    failed: int = 0  # failed earlier, left alone (--retry-failed retries them)
    removed: int = 0  # in the ledger, no longer in the manifest: left alone
    runs: int = 0  # earlier runs in this folder


def plan_resume(
    manifest: Manifest,
    out: Path | str | None = None,
    *,
    retry_failed: bool = False,
    shard: Shard | None = None,
    ledger_dir: Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
    catalog: CatalogOption = None,
    reuse_from: Sequence[Path | str] = (),
    reuse: bool = True,
) -> Counter[str]:
    """What a run would do, read-only (a dry run): jobs per resume step, nothing sent or changed.

    Keys: done, failed (left alone), attach, refetch, submit (new), resubmit_unknown (possible
    double charge), resubmit_expired, removed (in the ledger, not in the manifest), reuse (from
    the catalogue, not paid), `saved_cents` (what those reused images cost, in US cents) and
    `pay:MODEL` (the jobs it would submit, new or again, by model: each is priced by its own).
    """
    layout = plan_layout(
        out if out is not None else manifest.settings.output, shard, ledger_dir, storage_options
    )
    past = read_history(layout.ledger_path, layout.store, writable=False)
    counts = ResumeCounts()
    steps: Counter[str] = Counter()
    jobs = owned(manifest.jobs(), shard)
    price = manifest.settings.price_of
    with open_reuse(catalog, reuse_from, reuse, storage_options, read_only=True) as reuser:
        works = _reuse_counted(
            pending_work(jobs, past, counts, retry_failed=retry_failed),
            lambda batch: count_reusable(reuser, batch, price)[:2],
            steps,
        )
        _count_steps(works, steps)
    steps.update(done=counts.done, failed=counts.failed, removed=counts.removed)
    return steps


def _reuse_counted(
    works: Iterator[Work],
    reusable: Callable[[list[Job]], tuple[set[str], float]],
    steps: Counter[str],
    batch: int = 2000,
) -> Iterator[Work]:
    """`works` minus those the catalogue would supply, counted under `reuse`, in batches."""
    held: list[Work] = []
    for work in itertools.chain(works, [None]):
        if work is not None:
            held.append(work)
            if len(held) < batch:
                continue
        ids, saved = reusable([w.job for w in held if w.step is Step.SUBMIT])
        steps["reuse"] += len(ids)
        steps["saved_cents"] += round(saved * 100)
        yield from (w for w in held if w.job.id not in ids)
        held = []


def _count_steps(works: Iterator[Work], steps: Counter[str]) -> None:
    for work in works:
        if work.step is Step.SUBMIT:
            key = (
                "resubmit_unknown"
                if work.ambiguous
                else "resubmit_expired"
                if work.expired
                else "submit"
            )
            steps[PAY_KEY + work.job.model] += 1
            steps[IMAGES_KEY + work.job.model] += images_asked(work.job.model, work.job.params)
        else:
            key = work.step.value
        steps[key] += 1


def owned(jobs: Iterator[Job], shard: Shard | None) -> Iterator[Job]:
    """The jobs this run is responsible for: all of them, or those that hash to `shard`."""
    return jobs if shard is None else (job for job in jobs if shard.owns(job.id))


def count_owned(manifest: Manifest, shard: Shard) -> int:
    """How many jobs of `manifest` hash to `shard` (one streaming pass)."""
    return sum(1 for _ in owned(manifest.jobs(), shard))


def pending_work(
    jobs: Iterator[Job],
    past: History,
    counts: ResumeCounts,
    *,
    retry_failed: bool,
    reused: set[str] | frozenset[str] = frozenset(),
) -> Iterator[Work]:
    """The manifest's jobs as work for the engine, minus what is done; counts what it skips.
    `reused`: jobs the reuse step has just completed from the catalogue (`reuse.reuse_jobs`)."""
    seen = 0  # manifest jobs the ledger names: the rest of the ledger's were removed from it
    for job in jobs:
        record = past.record(job.id)
        seen += record is not None
        work = work_for(job, record, past, retry_failed=retry_failed)
        if job.id in reused:
            continue
        if work.step is Step.DONE:
            counts.done += 1
        elif work.step is Step.FAILED:
            counts.failed += 1
        else:
            yield work
    counts.removed = len(past.states) - seen


def work_for(job: Job, record: LedgerJob | None, past: History, *, retry_failed: bool) -> Work:
    """`resume.plan` for one job of this folder, now (shared with the reuse step); `record`:
    `past.record(job.id)`."""
    completed = record is not None and record.state is State.COMPLETED
    return plan(
        job,
        record,
        now=time.time(),
        retention=REQUEST_RETENTION,
        file_intact=past.intact(job.id) if completed else None,
        retry_failed=retry_failed,
    )


def submit_candidates(jobs: Iterator[Job], past: History, *, retry_failed: bool) -> Iterator[Job]:
    """The jobs this run would submit (pay for): what the reuse step looks up first."""
    for job in jobs:
        work = work_for(job, past.record(job.id), past, retry_failed=retry_failed)
        if work.step is Step.SUBMIT:
            yield job


async def work_after_reuse(
    reuser: Reuse,
    jobs: Callable[[], Iterator[Job]],
    past: History,
    counts: ResumeCounts,
    *,
    retry_failed: bool,
    **placing: Any,
) -> Iterator[Work]:
    """The reuse step over the jobs this run would pay for (`reuse.reuse_jobs`, `placing`: its
    keywords), then the engine's work without the jobs it completed. `jobs` is called twice:
    the manifest is streamed, once for each pass."""
    candidates = submit_candidates(jobs(), past, retry_failed=retry_failed)
    reused = await reuse_jobs(reuser, candidates, **placing)
    return pending_work(jobs(), past, counts, retry_failed=retry_failed, reused=reused)


def part_allocator(
    jobs: int, folder_size: int, past: History, shard: Shard | None
) -> PartAllocator | None:
    """Subfolders for a run of more than `folder_size` jobs (see `parts.py`); else flat. Shards
    share the images folder but not their counts: each fills its own `data/I-of-N/` parts."""
    if jobs <= folder_size:
        return None
    root = PART_ROOT if shard is None else f"{PART_ROOT}/{shard.label}"
    return PartAllocator(folder_size, past.parts, root)
