"""Rows of `metadata.jsonl`, in the layout `datasets.load_dataset("imagefolder", ...)` reads.

`file_name` is the key column imagefolder joins on; every other key becomes a column, so each
image carries its prompt, all parameters, the seed that made it and where it came from.
"""

from __future__ import annotations

from typing import Any

from batchgen.core.inputs import input_columns, read_params
from batchgen.core.jobs import Job
from batchgen.core.wire import Poll

__all__ = ["job_row", "metadata_row"]


def metadata_row(job: Job, file_name: str, request_id: str, poll: Poll) -> dict[str, Any]:
    """One dataset row: file, id, prompt, every sent parameter, annotations, timings, cost."""
    row: dict[str, Any] = {"file_name": file_name, "id": job.id, "model": job.model}
    row.update(job.params)
    if "seed" not in job.params and poll.seed is not None:
        row["seed"] = poll.seed  # a pass-through model resolved it: record what it reports
    row.update({k: v for k, v in job.annotations.items()})
    if job.inputs:
        _inputs_in(row, job)
    elif "image" in row:  # a URL input named like imagefolder's own column: moved aside
        row["image_url"] = row.pop("image")
    row["request_id"] = request_id
    for key in ("inference_time", "cost"):
        value = poll.metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            row[key] = value
    return row


def _inputs_in(row: dict[str, Any], job: Job) -> None:
    """An edit's inputs as columns (core/inputs.input_columns) instead of their paths: a slot
    named `image` would hide imagefolder's own `image` column (the output)."""
    local = {ref.slot for ref in job.inputs}
    for slot in local:
        row.pop(slot, None)
    if "image" in row:
        row["image_url"] = row.pop("image")
    row.update(input_columns(job.inputs))


def job_row(job: Job) -> dict[str, Any]:
    """What identifies a job to a person: id, model, every sent parameter and annotations.

    Recorded with a failure, so a grid or report can place a failed job among its neighbours
    while the run is still going (failed.jsonl is only rebuilt when a run ends).
    """
    row: dict[str, Any] = {"id": job.id, "model": job.model}
    # Local inputs as the paths they were read from: failed.jsonl runs from the output folder.
    row.update(read_params(job.params, job.inputs) if job.inputs else job.params)
    row.update(job.annotations)
    return row
