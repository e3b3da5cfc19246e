"""Which catalogue rows make one reusable job, and what its images are called here. Pure.

A job that made several images (`max_images`, `{id}-{k}.{ext}`) has a catalogue row per image
(`Entry.index`, `Entry.images`). Reusing it means copying every one of them: a job given only
its first image would count as complete with images missing, and nothing would ever fetch the
rest. So rows are grouped back into the jobs that made them (same catalogue, folder, job and
request), and a group is a candidate only when it is whole: every index from 0 to its count.
A row of unknown count (a catalogue from before counts were kept) stands alone, and only for
a job asking for one image. `reused_record` is the ledger record of a job placed that way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Final, TypeVar

from batchgen.core.events import Completed
from batchgen.core.jobs import Job, output_name
from batchgen.core.metadata import metadata_row
from batchgen.core.wire import Poll
from batchgen.edges.catalogbase import Entry

__all__ = ["image_names", "image_sets", "reused_record"]

_FORMATS: Final = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp", "gif": "gif"}

S = TypeVar("S")  # where a row was found (a catalogue): rows of two catalogues never mix


def image_sets(found: Sequence[tuple[S, Entry]], asked: int) -> list[tuple[S, tuple[Entry, ...]]]:
    """The whole jobs among `found` (newest first, as found), each with its images in order,
    for a job asking for `asked` images."""
    groups: dict[tuple[int, str, str | None, str | None], tuple[S, list[Entry]]] = {}
    for source, entry in found:
        if entry.images is None or entry.images <= 1:  # a one-image job: a set of its own
            if entry.images is not None or asked <= 1:
                groups[(id(entry), entry.location, entry.file, None)] = (source, [entry])
            continue
        key = (id(source), entry.location, entry.job, entry.request_id)
        groups.setdefault(key, (source, []))[1].append(entry)
    sets: list[tuple[S, tuple[Entry, ...]]] = []
    for source, entries in groups.values():
        entries.sort(key=lambda e: e.index)
        count = entries[0].images or 1
        if [e.index for e in entries] == list(range(count)):
            sets.append((source, tuple(entries)))
    return sets


def image_names(job: Job, entries: Sequence[Entry], template: str) -> list[str]:
    """This run's names for a job's images, as the writer names them: one image by the
    template, several as `{stem}-{k}{suffix}` (ValueError if the template or an extension
    would leave the folder)."""
    names = []
    for entry in entries:
        ext = PurePosixPath(entry.file).suffix.removeprefix(".")
        name = output_name(job, ext, template)
        if len(entries) > 1:
            name = name.with_name(f"{name.stem}-{entry.index}{name.suffix}")
        names.append(name.as_posix())
    return names


def reused_record(
    job: Job, entries: Sequence[Entry], names: Sequence[str], how: str, asked: int
) -> Completed:
    """The ledger's `completed` record of a reused job: what replay and resume already read,
    plus where it came from; each metadata row says it too (`reused_from`). Several images are
    recorded as the writer records them (`files`, `rows`, each row with its index)."""
    # The rows describe the images, as the first ones' did (cost and inference time), plus
    # where each was copied from; the ledger's metrics say what this run paid: nothing.
    entry = entries[0]
    made = {"cost": entry.cost, "inference_time": entry.inference}
    metrics = {k: v for k, v in made.items() if v is not None}
    several = len(entries) > 1
    rows = []
    for k, (image, name) in enumerate(zip(entries, names, strict=True)):
        row = metadata_row(job, name, entry.request_id or "", Poll("COMPLETED", metrics=metrics))
        row["reused_from"] = image.where
        if several:
            row["index"] = k
        rows.append(row)
    ext = PurePosixPath(names[0]).suffix.removeprefix(".")
    sizes = [e.size for e in entries]
    return Completed(
        job=job.id,
        request_id=entry.request_id or "",
        file=names[0],
        sha256=entry.sha256,
        bytes=None if None in sizes else sum(s or 0 for s in sizes),
        format=_FORMATS.get(ext, ext),
        seed=job.seed,
        metrics={"cost": 0.0},
        output=None,
        row=rows[0],
        reused={
            "from": entry.where,
            "request_id": entry.request_id,
            "job": entry.job,
            "cost": entry.cost,
            "inference_time": entry.inference,
            "how": how,
        },
        files=[{"file": n, "sha256": e.sha256} for e, n in zip(entries, names, strict=True)]
        if several
        else None,
        asked=asked if several else None,
        rows=rows if several else None,
    )
