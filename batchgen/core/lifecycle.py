"""Job states and ledger replay: the pure fold from ledger lines to each job's last state.

The engine writes one ledger event per transition (see `ledger.py` for the shapes); replay reads
them back in order and keeps, per job, only what resume needs. It does no I/O: it takes byte lines
and returns a `Replay`, so it is tested on any prefix of any ledger without touching a disk.

States and the events that lead to them:

    (none) --intent--> UNKNOWN --submitted--> IN_FLIGHT --completed--> COMPLETED
              ^   unknown keeps UNKNOWN        |  expired --> PENDING   failed --> FAILED
              +------------------------------ any state: intent starts a new attempt

`released` (the run stopped before the job ended) leaves the job in the state it was in, except
right after an unanswered `intent`: the engine releases a job only after its submit was answered
with a refusal (429, 4xx: not billed) or after recording `unknown`, so there it means "not sent,
or refused": PENDING, no possible double charge. (A kill writes no `released`.) A job last seen
in UNKNOWN sent a submit whose answer was never recorded: it may have been billed, and is
counted as a possible double charge when it is submitted again.

`ambiguous` counts those possible double charges from the ledger alone, so the count (and the list
in summary.json) survives any number of crashes and resumes: an `unknown` record (the answer was
lost while the run went on), or an `intent` that finds the job's previous intent unanswered and
written by an earlier run (that run died between the intent and the answer). Within one run an
intent after an unanswered intent is a retry after a sure refusal (429, connection refused):
nothing was billed, nothing is counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

__all__ = ["LedgerDamage", "LedgerJob", "Replay", "State", "replay"]


class State(StrEnum):
    PENDING = "pending"  # nothing paid that is still useful: submit
    UNKNOWN = "unknown"  # a submit was sent, its answer is not recorded
    IN_FLIGHT = "in_flight"  # accepted: request_id known
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(slots=True)  # a million jobs replay into memory: keep each small
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
    cost: float | None = None  # what the server charged for it (metrics.cost), if it said
    failure: str | None = None  # kind: error, for FAILED
    ambiguous: int = 0  # submits whose answer was lost (`unknown` events, crashes): see above
    attempts: int = 0
    # Replay's bookkeeping, not a fact about the job (so not compared): the run whose `intent`
    # is still unanswered, -1 if none.
    open_intent_run: int = field(default=-1, compare=False, repr=False)


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
    rate: float | None = None  # the rate limit `--rpm auto` learned (last `rate` record)


def replay(lines: Iterable[bytes]) -> Replay:
    """Fold ledger lines (as read in binary, newlines kept) into each job's last state.

    A last line without its newline that does not parse is a torn write: ignored, and reported
    through `torn`/`valid_bytes` so the caller can truncate it. Any other unreadable line raises
    `LedgerDamage` naming it: guessing past damage could pay for jobs twice or lose them.

    This is the resume path of a run with up to millions of events, so the loop is written for
    speed: one pass, the fold inlined, and orjson first (see `_record`). An unterminated line
    that does not parse is held back until we know whether another line follows it.
    """
    result = Replay()
    jobs = result.jobs
    loads = orjson.loads
    held: tuple[int, bytes, ValueError] | None = None  # an unparsable line without its newline
    events = runs = valid_bytes = 0
    for number, raw in enumerate(lines, start=1):
        if held is not None:  # it was not the last line after all: damage, not a torn write
            raise _damage(*held)
        # Fast path (see `_record` for why it agrees with json.loads); the rest goes through it.
        record: Any = None
        try:  # noqa: SIM105 - a with-block per line costs ~10 % of the replay
            record = loads(raw)
        except ValueError:  # orjson.JSONDecodeError is a ValueError
            pass
        if type(record) is not dict or type(event := record.get("event")) is not str:
            try:
                record = _record(raw)
            except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                if raw.endswith(b"\n"):
                    raise _damage(number, raw, exc) from None
                held = (number, raw, exc)
                continue
            event = record["event"]
        if event == "run":
            runs += 1
        elif event == "rate":
            rpm = record.get("rpm")
            if type(rpm) in (int, float) and rpm > 0:
                result.rate = float(rpm)
        else:
            job_id = record.get("job")
            if type(job_id) is not str:
                raise LedgerDamage(number, f"'{event}' record without a job id")
            job = jobs.get(job_id)
            if job is None:
                job = jobs[job_id] = LedgerJob()
            if event == "intent":
                if 0 <= job.open_intent_run != runs:  # its run died before the answer came
                    job.ambiguous += 1
                job.open_intent_run = runs
                job.state = _UNKNOWN
                job.attempts += 1
            elif event == "submitted":
                job.open_intent_run = -1  # every record answers the intent
                job.state = _IN_FLIGHT
                value = record.get("request_id")
                job.request_id = value if value and type(value) is str else None
                value = record.get("status_url")
                job.status_url = value if value and type(value) is str else None
                value = record.get("response_url")
                job.response_url = value if value and type(value) is str else None
                value = record.get("t")
                job.submitted_at = value if type(value) is float else _number(value)
            elif event == "completed":
                job.open_intent_run = -1
                job.state = _COMPLETED
                value = record.get("request_id")
                if value and type(value) is str:
                    job.request_id = value
                value = record.get("file")
                job.file = value if value and type(value) is str else None
                value = record.get("sha256")
                job.sha256 = value if value and type(value) is str else None
                job.output = _text(record.get("output"))
                value = record.get("t")
                job.completed_at = value if type(value) is float else _number(value)
                job.completed_line = number
                metrics = record.get("metrics")
                job.cost = _number(metrics.get("cost")) if type(metrics) is dict else None
                job.failure = None
            elif event == "unknown":
                job.open_intent_run = -1
                job.ambiguous += 1
                job.state = _UNKNOWN
            elif event == "expired":
                job.open_intent_run = -1
                job.state = _PENDING
            elif event == "failed":
                job.open_intent_run = -1
                job.state = _FAILED
                job.failure = f"{record.get('kind')}: {record.get('error')}"
            elif event == "released":
                if job.open_intent_run >= 0:  # released after a refused submit: nothing paid
                    job.open_intent_run = -1
                    job.state = _PENDING
            else:
                raise LedgerDamage(number, f"unknown event {event!r}")
        events += 1
        valid_bytes += len(raw)
    result.runs, result.events, result.valid_bytes = runs, events, valid_bytes
    result.torn = held is not None
    return result


_UNKNOWN, _IN_FLIGHT, _COMPLETED, _FAILED, _PENDING = (
    State.UNKNOWN,
    State.IN_FLIGHT,
    State.COMPLETED,
    State.FAILED,
    State.PENDING,
)


def _record(raw: bytes) -> dict[str, Any]:
    """`json.loads(raw)`, checked to be a ledger record (a dict with a text `event`).

    `replay` tries `orjson.loads` first (about twice as fast as the stdlib on ledger lines, and
    the parse is most of a replay). orjson is stricter than json.loads, never looser: valid UTF-8
    JSON only, no NaN, no BOM, 64-bit integers, no lone surrogates; what it accepts, json.loads
    reads as the same object. Everything it refuses comes here, so the verdict and the message
    are `json.loads`'s own (tests/test_lifecycle.py checks this on arbitrary byte edits).
    """
    record = json.loads(raw)
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        raise ValueError("not a ledger record")
    return record


def _damage(number: int, raw: bytes, exc: ValueError) -> LedgerDamage:
    if not raw.strip():
        return LedgerDamage(number, "empty line")
    return LedgerDamage(number, f"not a ledger record ({exc})")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
