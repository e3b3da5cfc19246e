"""Streamed reads of a ledger that a fold has checked (`finalstate.fold_states`).

A full `lifecycle.replay` keeps every job's details in memory; the end of a run and a resume
need them for a few jobs only. So they fold the ledger to each job's final state first, then
read it again here for what they need, one record at a time: each job's last `completed`
record (metadata rows, files to check, costs, latencies), or every record of a few jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from batchgen.core.finalstate import FinalStates
from batchgen.core.ledgerparts import as_number, parse_record
from batchgen.core.lifecycle import Replay, State, replay

__all__ = ["completions", "final_rows", "replay_of"]


def completions(
    path: Path, states: FinalStates, *, submits: bool = False
) -> Iterator[tuple[str, dict[str, Any], float | None]]:
    """(job id, record, submitted at) for the last `completed` record of every job that has one,
    whatever its final state, in ledger order, streamed. `submits`: also the time of the last
    `submitted` record before it (else None), for the job's latency."""
    seen: dict[str, int] = {}  # jobs with several `completed` records: how many passed so far
    submitted: dict[str, float] = {}  # between a job's `submitted` and its last `completed`
    with path.open("rb") as handle:
        for raw in handle:
            if b"completed" not in raw and not (submits and b"submitted" in raw):
                continue
            record = _record(raw)
            if record is None:
                continue
            event, job_id = record["event"], record.get("job")
            if type(job_id) is not str or event not in ("completed", "submitted"):
                continue
            records, state = states.completions(job_id)
            if not records:  # a job that never completed
                continue
            if event == "submitted":
                t = as_number(record.get("t"))
                if submits and state is State.COMPLETED and t is not None:
                    submitted[job_id] = t
                continue
            if records > 1:
                passed = seen.get(job_id, 0) + 1
                if passed < records:
                    seen[job_id] = passed
                    continue
                seen.pop(job_id, None)
            yield job_id, record, submitted.pop(job_id, None)


def final_rows(path: Path, states: FinalStates) -> Iterator[dict[str, Any]]:
    """The metadata rows of each job's last `completed` record, for the jobs that ended
    completed (`finalstate.fold_states`, not a full replay: see run/finish.py), in ledger order,
    streamed."""
    for job_id, record, _ in completions(path, states):
        if not states.completed_records(job_id):  # not a job that ended COMPLETED
            continue
        rows = record.get("rows")  # a job with several images: one row each
        for row in rows if isinstance(rows, list) else [record.get("row")]:
            if isinstance(row, dict):
                yield row


def replay_of(path: Path, job_ids: set[str]) -> Replay:
    """`lifecycle.replay` of these jobs alone: their records and every `run` record (which
    replay counts), so each of them replays as in the whole ledger (but for `completed_line`,
    which numbers the lines replayed)."""
    return replay(_lines_of(path, job_ids)) if job_ids else Replay()


def _lines_of(path: Path, job_ids: set[str]) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for raw in handle:
            record = _record(raw)
            if record is not None and (record["event"] == "run" or record.get("job") in job_ids):
                yield raw


def _record(raw: bytes) -> dict[str, Any] | None:
    """A line of a ledger `fold_states` has checked: its record, None for the torn tail."""
    try:
        record = orjson.loads(raw)  # what it accepts, json.loads reads the same (ledgerparts)
    except ValueError:
        record = None
    if type(record) is dict and type(record.get("event")) is str:
        return record
    try:
        return parse_record(raw)
    except ValueError:
        return None
