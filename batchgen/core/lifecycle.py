"""Job states, the table of legal transitions, and ledger replay (the fold that checks it).

The engine writes one ledger event per transition (`events.py` has their names and shapes);
replay reads them back in order and keeps, per job, only what resume needs. It does no I/O: it
takes byte lines and returns a `Replay`, so it is tested on any prefix of any ledger without
touching a disk. `TRANSITIONS` (h11's `_state.py` is the model) says which event may follow
which state and where it leads; a record the table does not allow is damage that names its
line, like an unparsable one: resuming from a history that cannot have happened could pay for a
job twice or lose it.

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

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from batchgen.core.events import Event, FolderEvent
from batchgen.core.ledgerparts import (
    LedgerDamage,
    LedgerLines,
    as_number,
    as_text,
    cost_of,
    model_of,
    more_files,
    rate_of,
    upload_of,
)

__all__ = ["TRANSITIONS", "LedgerDamage", "LedgerJob", "LedgerLines", "Replay", "State", "replay"]


class State(StrEnum):
    PENDING = "pending"  # nothing paid that is still useful: submit
    UNKNOWN = "unknown"  # a submit was sent, its answer is not recorded
    IN_FLIGHT = "in_flight"  # accepted: request_id known
    COMPLETED = "completed"
    FAILED = "failed"


# The legal (state, event) -> state moves of one job, read off every `LedgerWriter.append` in
# the engine and the runner, resumes included (a job starts a run in its replayed state). A job
# never seen is PENDING. `run` records are about no job and are not in the table. A job this run
# would submit may instead be reused from the catalogue (run/reuse.py): a `completed` record
# from whatever state made it a submit (pending, unknown, in flight past retention, failed and
# retried, completed with its file lost).
TRANSITIONS: Final[dict[State, dict[Event, State]]] = {
    State.PENDING: {  # new, expired, or released after a refused submit
        Event.INTENT: State.UNKNOWN,
        Event.FAILED: State.FAILED,  # forgotten by the server once too often (kind: expired)
        Event.RELEASED: State.PENDING,  # refused at admission: a stop, the budget
        Event.COMPLETED: State.COMPLETED,  # reused from the catalogue: copied, not paid
        # Not written by the engine (its `submitted` and `unknown` follow an `intent`), but
        # kept legal for ledgers where a release came between the two; both are safe to
        # resume from (attach the recorded request; resubmit counting a possible charge).
        Event.SUBMITTED: State.IN_FLIGHT,
        Event.UNKNOWN: State.UNKNOWN,
    },
    State.UNKNOWN: {  # a submit (or sync call) was sent, its answer is not recorded
        Event.INTENT: State.UNKNOWN,  # retried in this run, or resubmitted by a resume
        Event.SUBMITTED: State.IN_FLIGHT,
        Event.UNKNOWN: State.UNKNOWN,  # the answer was lost (5xx, a reset after sending)
        Event.COMPLETED: State.COMPLETED,  # sync mode: the answer is the image
        Event.FAILED: State.FAILED,  # refused for good, gave up, or sync answer lost
        Event.RELEASED: State.UNKNOWN,  # PENDING right after an unanswered intent: see above
    },
    State.IN_FLIGHT: {  # accepted: request_id known
        Event.EXPIRED: State.PENDING,  # the server forgot it: resubmitted
        Event.COMPLETED: State.COMPLETED,
        Event.FAILED: State.FAILED,  # FAILED on the server, gave up polling, or the download
        Event.RELEASED: State.IN_FLIGHT,  # a later run re-attaches
        Event.INTENT: State.UNKNOWN,  # resumed past retention (or in sync mode): resubmitted
    },
    State.COMPLETED: {  # a resume redoes a job whose image file is missing or changed
        Event.COMPLETED: State.COMPLETED,  # downloaded again from the recorded URL
        Event.INTENT: State.UNKNOWN,  # resubmitted
        Event.EXPIRED: State.PENDING,  # re-attached to its request, which the server forgot
        Event.FAILED: State.FAILED,  # re-attached, and that ended badly
        Event.RELEASED: State.COMPLETED,
    },
    State.FAILED: {  # left alone, unless the run retries failures (--retry-failed)
        Event.INTENT: State.UNKNOWN,
        Event.COMPLETED: State.COMPLETED,  # a retry the catalogue already has (run/reuse.py)
        Event.RELEASED: State.FAILED,  # a retry refused at admission
    },
}


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
    # Images 1.. ((file, sha256)) of a job that made several (max_images).
    more_files: tuple[tuple[str, str], ...] = ()
    # The model of a completed job (its metadata row's): a resume seeds that model's poll plan.
    model: str | None = None
    # Replay's bookkeeping, not a fact about the job (so not compared): the run whose `intent`
    # is still unanswered, -1 if none.
    open_intent_run: int = field(default=-1, compare=False, repr=False)


@dataclass
class Replay:
    jobs: dict[str, LedgerJob] = field(default_factory=dict)
    runs: int = 0
    events: int = 0
    valid_bytes: int = 0  # length of the well-formed prefix; a torn tail starts here
    torn: bool = False  # the last line was cut short (by a crash) and is ignored
    # Uploaded inputs by upload host: host -> {sha256: URL}; a URL is good on its host only.
    uploads: dict[str, dict[str, str]] = field(default_factory=dict)
    rate: float | None = None  # the rate limit `--rpm auto` learned (last `rate` record)


def replay(lines: Iterable[bytes]) -> Replay:
    """Fold ledger lines (as read in binary, newlines kept) into each job's last state.

    A last line without its newline that does not parse is a torn write: ignored, and reported
    through `torn`/`valid_bytes` so the caller can truncate it. Any other unreadable line raises
    `LedgerDamage` naming it: guessing past damage could pay for jobs twice or lose them.

    This is the resume path of a run with up to millions of events, so the loop is written for
    speed: one pass, the fold inlined, and orjson first (see `ledgerparts.parse_record`). An
    unterminated line that does not parse is held back until we know whether another follows.
    """
    result = Replay()
    jobs = result.jobs
    by_event = _BY_EVENT
    # The fold's branches are picked by identity with the table's rows (cheaper than comparing
    # the event text again): each row is one event's moves.
    on_intent, on_submitted, on_completed, on_unknown, on_failed, on_released = (
        by_event[name]
        for name in ("intent", "submitted", "completed", "unknown", "failed", "released")
    )
    events = runs = 0
    reader = LedgerLines(lines)
    for number, record, event in reader:
        if event == "run":
            runs += 1
        elif event == _UPLOADED:  # a folder fact, not a job's (events.Uploaded)
            if (upload := upload_of(record)) is None:
                raise LedgerDamage(number, "'uploaded' record without its sha256, url and host")
            result.uploads.setdefault(upload[0], {})[upload[1]] = upload[2]
        elif event == FolderEvent.RATE:
            result.rate = rate_of(record, result.rate)
        else:
            job_id = record.get("job")
            if type(job_id) is not str:
                raise LedgerDamage(number, f"'{event}' record without a job id")
            job = jobs.get(job_id)
            if job is None:
                job = jobs[job_id] = LedgerJob()
            try:  # subscripts, not .get(): this check runs on every line
                moves = by_event[event]
                state = moves[job.state]
            except KeyError:
                raise LedgerDamage(number, _refused(event, job_id, job.state)) from None
            if moves is on_intent:
                if 0 <= job.open_intent_run != runs:  # its run died before the answer came
                    job.ambiguous += 1
                job.open_intent_run = runs
                job.attempts += 1
            elif moves is on_submitted:
                job.open_intent_run = -1  # every record answers the intent
                value = record.get("request_id")
                job.request_id = value if value and type(value) is str else None
                value = record.get("status_url")
                job.status_url = value if value and type(value) is str else None
                value = record.get("response_url")
                job.response_url = value if value and type(value) is str else None
                value = record.get("t")
                job.submitted_at = value if type(value) is float else as_number(value)
            elif moves is on_completed:
                job.open_intent_run = -1
                value = record.get("request_id")
                if value and type(value) is str:
                    job.request_id = value
                value = record.get("file")
                job.file = value if value and type(value) is str else None
                value = record.get("sha256")
                job.sha256 = value if value and type(value) is str else None
                job.output = as_text(record.get("output"))
                value = record.get("t")
                job.completed_at = value if type(value) is float else as_number(value)
                job.completed_line = number
                job.more_files = more_files(record.get("files"))
                value = model_of(record)
                # Interned: a million jobs share one string per model, not one each.
                job.model = sys.intern(value) if value else None
                job.cost = cost_of(record)
                job.failure = None
            elif moves is on_unknown:
                job.open_intent_run = -1
                job.ambiguous += 1
            elif moves is on_failed:
                job.open_intent_run = -1
                job.failure = f"{record.get('kind')}: {record.get('error')}"
            elif moves is on_released:
                if job.open_intent_run >= 0:  # released after a refused submit: nothing paid
                    job.open_intent_run = -1
                    state = _PENDING
            else:  # expired
                job.open_intent_run = -1
            job.state = state
        events += 1
    result.runs, result.events, result.valid_bytes = runs, events, reader.valid_bytes
    result.torn = reader.torn
    return result


_PENDING = State.PENDING
_UPLOADED = FolderEvent.UPLOADED.value

# The table turned around for the fold: plain-str event names (what JSON gives) -> state moves.
_BY_EVENT: Final[dict[str, dict[State, State]]] = {
    event.value: {state: moves[event] for state, moves in TRANSITIONS.items() if event in moves}
    for event in Event
    if event is not Event.RUN
}


def _refused(event: str, job_id: str, state: State) -> str:
    if event not in _BY_EVENT:
        return f"unknown event {event!r}"
    allowed = ", ".join(sorted(TRANSITIONS[state])) or "nothing"
    return (
        f"'{event}' for job {job_id!r} in state {state.value}: not a legal transition"
        f" (after {state.value}: {allowed})"
    )
