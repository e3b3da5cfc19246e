"""Job states and ledger replay: the pure fold from ledger lines to each job's last state.

The engine writes one ledger event per transition (see `ledger.py` for the shapes); replay reads
them back in order and keeps, per job, only what resume needs. It does no I/O: it takes byte lines
and returns a `Replay`, so it is tested on any prefix of any ledger without touching a disk.

States and the events that lead to them:

    (none) --intent--> UNKNOWN --submitted--> IN_FLIGHT --completed--> COMPLETED
              ^   unknown keeps UNKNOWN        |  expired --> PENDING   failed --> FAILED
              +------------------------------ any state: intent starts a new attempt

`released` (the run stopped before the job ended) changes nothing: the job is resumed from the
state it was in. A job last seen in UNKNOWN sent a submit whose answer was never recorded: it may
have been billed, and is counted as a possible double charge when it is submitted again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["LedgerDamage", "LedgerJob", "Replay", "State", "replay"]


class State(StrEnum):
    PENDING = "pending"  # nothing paid that is still useful: submit
    UNKNOWN = "unknown"  # a submit was sent, its answer is not recorded
    IN_FLIGHT = "in_flight"  # accepted: request_id known
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class LedgerJob:
    """What the ledger says about one job."""

    state: State = State.PENDING
    request_id: str | None = None
    status_url: str | None = None
    response_url: str | None = None
    submitted_at: float | None = None  # epoch seconds of the `submitted` record
    file: str | None = None
    sha256: str | None = None
    output: str | None = None  # the image URL of a completed job, for a re-download
    completed_at: float | None = None
    completed_line: int | None = None  # where its metadata row is (rebuilding metadata.jsonl)
    failure: str | None = None  # kind: error, for FAILED
    ambiguous: int = 0  # submits whose answer was recorded as lost (`unknown` events)
    attempts: int = 0


class LedgerDamage(ValueError):
    """A line before the last one is not a ledger record: the file was changed or damaged."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {reason}")


@dataclass
class Replay:
    jobs: dict[str, LedgerJob] = field(default_factory=dict)
    runs: int = 0
    events: int = 0
    valid_bytes: int = 0  # length of the well-formed prefix; a torn tail starts here
    torn: bool = False  # the last line was cut short (by a crash) and is ignored


def replay(lines: Iterable[bytes]) -> Replay:
    """Fold ledger lines (as read in binary, newlines kept) into each job's last state.

    A last line without its newline that does not parse is a torn write: ignored, and reported
    through `torn`/`valid_bytes` so the caller can truncate it. Any other unreadable line raises
    `LedgerDamage` naming it: guessing past damage could pay for jobs twice or lose them.
    """
    result = Replay()
    pending: tuple[int, bytes] | None = None  # the previous line, judged once we know it's not last
    for number, raw in enumerate(lines, start=1):
        if pending is not None:
            _apply(result, *pending, last=False)
        pending = (number, raw)
    if pending is not None:
        _apply(result, *pending, last=True)
    return result


def _apply(result: Replay, number: int, raw: bytes, *, last: bool) -> None:
    complete = raw.endswith(b"\n")
    try:
        record = json.loads(raw)
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            raise ValueError("not a ledger record")
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        if last and not complete:
            result.torn = True
            return
        if not raw.strip():
            raise LedgerDamage(number, "empty line") from None
        raise LedgerDamage(number, f"not a ledger record ({exc})") from None
    _fold(result, record, number)
    result.events += 1
    result.valid_bytes += len(raw)


def _fold(result: Replay, record: dict[str, Any], number: int) -> None:
    event = record["event"]
    if event == "run":
        result.runs += 1
        return
    job_id = record.get("job")
    if not isinstance(job_id, str):
        raise LedgerDamage(number, f"'{event}' record without a job id")
    job = result.jobs.get(job_id)
    if job is None:
        job = result.jobs[job_id] = LedgerJob()
    if event == "intent":
        job.state = State.UNKNOWN
        job.attempts += 1
    elif event == "unknown":
        job.ambiguous += 1
        job.state = State.UNKNOWN
    elif event == "submitted":
        job.state = State.IN_FLIGHT
        job.request_id = _text(record.get("request_id"))
        job.status_url = _text(record.get("status_url"))
        job.response_url = _text(record.get("response_url"))
        job.submitted_at = _number(record.get("t"))
    elif event == "expired":
        job.state = State.PENDING
    elif event == "completed":
        job.state = State.COMPLETED
        job.request_id = _text(record.get("request_id")) or job.request_id
        job.file = _text(record.get("file"))
        job.sha256 = _text(record.get("sha256"))
        job.output = _text(record.get("output"))
        job.completed_at = _number(record.get("t"))
        job.completed_line = number
        job.failure = None
    elif event == "failed":
        job.state = State.FAILED
        job.failure = f"{record.get('kind')}: {record.get('error')}"
    elif event != "released":
        raise LedgerDamage(number, f"unknown event {event!r}")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
