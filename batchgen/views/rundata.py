"""A run folder, read-only: every finished job with its parameters, for grids and reports.

`grid` and `report` look at a folder that may still be running (or was killed), so they read the
ledger the way `status` does: only the bytes present at open time, never truncating a torn last
line. Completed jobs bring their metadata row (recorded in the ledger's `completed` event);
failed jobs bring the `row` recorded with the failure, or, for ledgers written before failures
carried one, the job's line in `failed.jsonl`. Jobs still waiting or in flight are only counted:
the ledger does not know their parameters until they end.

Paths read from the ledger are user data: `image_path` refuses any that would leave the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from batchgen.core.events import Event
from batchgen.core.folder import FAILED_NAME, LEDGER_NAME, SUMMARY_NAME
from batchgen.core.lifecycle import Replay, State, replay

__all__ = ["NOT_PARAMS", "Item", "RunData", "image_path", "load_run", "params_of"]

# Metadata columns that describe where an image came from, not what was asked for.
NOT_PARAMS: Final = frozenset(
    {"file_name", "id", "request_id", "inference_time", "cost", "reused_from"}
)


@dataclass(frozen=True)
class Item:
    """One finished job: its parameters, and its image or the reason it failed."""

    job_id: str
    state: Literal["completed", "failed"]
    row: Mapping[str, Any]  # the metadata row (completed) or the job row (failed)
    file: str | None = None  # relative to the run folder
    error: str | None = None  # "kind: message" for a failed job

    @property
    def params(self) -> dict[str, Any]:
        return params_of(self.row)


@dataclass(frozen=True)
class RunData:
    folder: Path
    items: tuple[Item, ...]  # in ledger order
    unfinished: int  # jobs the ledger knows that have not ended (waiting, in flight)
    unplaced_failures: int  # failed jobs whose parameters are recorded nowhere
    summary: Mapping[str, Any] | None  # summary.json of the last run that ended, if any


def params_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a row: what was asked for (model, params, annotations), not provenance."""
    return {k: v for k, v in row.items() if k not in NOT_PARAMS}


def load_run(folder: Path) -> RunData:
    """Read `folder`'s ledger (read-only) and side files into a `RunData`.

    Raises FileNotFoundError when there is no ledger, `LedgerDamage` when it is damaged before
    its last line, OSError when it cannot be read.
    """
    path = folder / LEDGER_NAME
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        state = replay(_lines(handle, size))
        handle.seek(0)
        rows = _rows(_lines(handle, state.valid_bytes), state)
    fallback = _failed_rows(folder / FAILED_NAME)
    items: list[Item] = []
    unfinished = unplaced = 0
    for job_id, job in state.jobs.items():
        if job.state is State.COMPLETED and job.file is not None:
            row = rows.get(job_id) or {"id": job_id, "file_name": job.file}
            items.append(Item(job_id, "completed", row, file=job.file))
        elif job.state is State.FAILED:
            placed = rows.get(job_id) or fallback.get(job_id)
            if placed is None:
                unplaced += 1
                continue
            items.append(Item(job_id, "failed", placed, error=job.failure))
        elif job.state is not State.COMPLETED:
            unfinished += 1
    return RunData(folder, tuple(items), unfinished, unplaced, _summary(folder / SUMMARY_NAME))


def image_path(folder: Path, relative: str) -> Path | None:
    """`folder/relative` if it stays inside `folder` (no absolute paths, no `..`), else None."""
    if not relative or "\\" in relative or "\x00" in relative or relative.startswith("/"):
        return None
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return folder.joinpath(*parts)


def _lines(handle: Any, limit: int) -> Iterator[bytes]:
    """The lines within the first `limit` bytes (what existed when the ledger was opened)."""
    left = limit
    for raw in handle:
        if left <= 0:
            return
        yield raw[:left]
        left -= len(raw)


def _rows(lines: Iterator[bytes], state: Replay) -> dict[str, dict[str, Any]]:
    """Each job's row from its last `completed` record, or from its last `failed` one."""
    rows: dict[str, dict[str, Any]] = {}
    for number, raw in enumerate(lines, start=1):
        if b'"completed"' not in raw and b'"failed"' not in raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:  # a torn last line: replay has already ignored it
            continue
        job = state.jobs.get(str(record.get("job")))
        row = record.get("row")
        if job is None or not isinstance(row, dict):
            continue
        event = record.get("event")
        if (event == Event.COMPLETED and number == job.completed_line) or (
            event == Event.FAILED and job.state is State.FAILED
        ):
            rows[record["job"]] = row
    return rows


def _failed_rows(path: Path) -> dict[str, dict[str, Any]]:
    """failed.jsonl (written when a run ends) as job id -> job row, for older ledgers."""
    rows: dict[str, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("_job"), str):
            job_id = row["_job"]
            clean = {k: v for k, v in row.items() if k not in ("_job", "_error")}
            clean["id"] = job_id
            rows[job_id] = clean
    return rows


def _summary(path: Path) -> Mapping[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
