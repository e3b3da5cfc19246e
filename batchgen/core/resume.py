"""Resume: what to do with each manifest job, given what the ledger says happened to it.

Pure: the caller passes the replayed state, the time, and whether a completed job's file is still
intact (it hashed it). Every rule aims at "nothing lost, nothing paid twice":

* completed, file intact            -> skip
* completed, file missing/corrupt   -> download the recorded image again (kept 7 days), else
                                       poll the recorded request (within retention), else redo
* in flight, younger than retention -> re-attach: poll the recorded request id, no new submit
* in flight, older                  -> submit again (the server has forgotten it)
* submit outcome unknown            -> submit again, counted as a possible double charge
* failed                            -> skip, unless retrying failures
* never seen / expired              -> submit
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from batchgen.core.jobs import Job
from batchgen.core.lifecycle import LedgerJob, State
from batchgen.core.wire import MEDIA_RETENTION, Submitted

__all__ = ["Step", "Work", "plan"]


class Step(Enum):
    SUBMIT = "submit"
    ATTACH = "attach"  # poll a request that is already paid for
    REFETCH = "refetch"  # download a completed job's image again
    DONE = "done"  # completed, file intact: nothing to do
    FAILED = "failed"  # failed before; left alone


@dataclass(frozen=True)
class Work:
    """One job and how the engine should pick it up."""

    job: Job
    step: Step = Step.SUBMIT
    request: Submitted | None = None  # ATTACH, REFETCH: the recorded request
    age: float = 0.0  # ATTACH: seconds since its submit
    output: str | None = None  # REFETCH: the recorded image URL
    ambiguous: bool = False  # SUBMIT after a submit whose answer was lost: may pay twice
    expired: bool = False  # SUBMIT because the recorded request is past retention


def plan(
    job: Job,
    past: LedgerJob | None,
    *,
    now: float,
    retention: float,
    file_intact: bool | None = None,
    retry_failed: bool = False,
) -> Work:
    """How to pick up `job` (`now` in epoch seconds; `file_intact` only matters if completed)."""
    if past is None or past.state is State.PENDING:
        return Work(job)
    if past.state is State.UNKNOWN:
        return Work(job, ambiguous=True)
    if past.state is State.FAILED:
        return Work(job) if retry_failed else Work(job, Step.FAILED)
    attachable = _request(past, now, retention)
    if past.state is State.IN_FLIGHT:
        if attachable is None:
            return Work(job, expired=True)
        return Work(job, Step.ATTACH, request=attachable[0], age=attachable[1])
    # COMPLETED
    if file_intact:
        return Work(job, Step.DONE)
    if past.output and past.completed_at is not None and now - past.completed_at < MEDIA_RETENTION:
        recorded = Submitted(
            past.request_id or "", past.status_url or "", past.response_url or past.output
        )
        return Work(job, Step.REFETCH, request=recorded, output=past.output)
    if attachable is not None:
        return Work(job, Step.ATTACH, request=attachable[0], age=attachable[1])
    return Work(job)


def _request(past: LedgerJob, now: float, retention: float) -> tuple[Submitted, float] | None:
    if not (past.request_id and past.response_url and past.submitted_at is not None):
        return None
    age = max(0.0, now - past.submitted_at)
    if age >= retention:
        return None
    status_url = past.status_url or f"{past.response_url.rstrip('/')}/status"
    return Submitted(past.request_id, status_url, past.response_url), age
