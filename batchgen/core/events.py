"""The ledger's vocabulary: one enum of event names, one frozen record type per event.

The writer (`edges/ledger.py`) takes these records, so an event name or a field cannot be
misspelt at a call site: a typo is a type error, not a folder that cannot resume. Replay
(`lifecycle.py`) reads the same names back through `Event`; it folds parsed dicts rather than
building a record per line, because replay is the resume path of million-line ledgers.

Every line on disk is `{"v", "t", "event", <the record's fields in declaration order>}`; the
field order is the one the engine wrote before these types existed, so new lines read like old
ones (`edges/ledger.encode` says the two ways their bytes may differ). `t` (epoch seconds) is
stamped by the writer, not carried by the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any, ClassVar, get_args

__all__ = [
    "Completed",
    "Event",
    "Expired",
    "Failed",
    "FailureKind",
    "FolderEvent",
    "Intent",
    "LedgerRecord",
    "RateLearned",
    "Released",
    "RunStarted",
    "Submitted",
    "Unknown",
    "Uploaded",
    "record_fields",
]


class Event(StrEnum):
    """The `event` of a ledger line."""

    RUN = "run"  # a run started on this folder (not about a job)
    INTENT = "intent"  # about to send a submit (or a sync call)
    SUBMITTED = "submitted"  # the server accepted it: request_id known
    UNKNOWN = "unknown"  # a submit was sent and its answer lost: maybe billed
    EXPIRED = "expired"  # the server forgot the request: it will be submitted again
    COMPLETED = "completed"  # the image is stored under its final name
    FAILED = "failed"  # the job ended without an image
    RELEASED = "released"  # the run stopped before this job ended


class FolderEvent(StrEnum):
    """The `event` of a ledger line about the output folder rather than a job: not in `Event`,
    whose members are the transition table's (a job event or `run`)."""

    UPLOADED = "uploaded"  # an input file is stored on the upload host
    RATE = "rate"  # the rate limit `--rpm auto` learned


class FailureKind(StrEnum):
    """The `kind` of a `failed` record (and of `RunStats.failed`): why a job ended unfinished."""

    SERVER = "server"  # the server said FAILED, or answered COMPLETED without an output
    INVALID = "invalid"  # the submit was refused for good (4xx other than 429)
    GAVE_UP = "gave_up"  # retryable errors went on past the retry bounds
    DOWNLOAD = "download"  # the image URL answered gone (or refused for good)
    EXPIRED = "expired"  # the server forgot the request too many times
    UNKNOWN = "unknown"  # sync mode: the answer to a (maybe billed) call was lost; not retried
    BAD_IMAGE = "bad_image"  # the bytes are not the image asked for
    UNSAFE_URL = "unsafe_url"  # the image URL (or a redirect) points somewhere not allowed
    TOO_LARGE = "too_large"  # the image is over the size cap
    TIMEOUT = "timeout"  # the image download took too long
    UPLOAD = "upload"  # an input could not be uploaded (or changed since it was validated)


@dataclass(frozen=True, slots=True)
class RunStarted:
    EVENT: ClassVar[Event] = Event.RUN
    OPTIONAL: ClassVar[tuple[str, ...]] = ("jobs",)  # left out of the line when None
    model: str
    manifest: str
    jobs: int | None = None  # the jobs this run sets out to do (status: "N of TOTAL")


@dataclass(frozen=True, slots=True)
class Intent:
    EVENT: ClassVar[Event] = Event.INTENT
    job: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Submitted:
    EVENT: ClassVar[Event] = Event.SUBMITTED
    job: str
    request_id: str
    status_url: str
    response_url: str


@dataclass(frozen=True, slots=True)
class Unknown:
    EVENT: ClassVar[Event] = Event.UNKNOWN
    job: str
    error: str


@dataclass(frozen=True, slots=True)
class Expired:
    EVENT: ClassVar[Event] = Event.EXPIRED
    job: str
    request_id: str


@dataclass(frozen=True, slots=True)
class Completed:
    """`row` is the job's metadata.jsonl row, rebuilt from here after a crash; `output` the
    image URL (None for base64 answers), so a lost file can be downloaded again. `reused`: the
    image was copied from the catalogue (where from, and what it cost then); absent otherwise."""

    EVENT: ClassVar[Event] = Event.COMPLETED
    # Left out of the line when None. A job with several images (max_images) adds `files`
    # [{file, sha256}] (image 0 is `file`), `asked` and `rows` (one metadata row each), and has
    # no `output`: a lost file is fetched again through the request.
    OPTIONAL: ClassVar[tuple[str, ...]] = ("reused", "files", "asked", "rows")
    job: str
    request_id: str
    file: str
    sha256: str
    bytes: int | None  # None: a reused image whose catalogue entry did not say
    format: str
    seed: int | None
    metrics: dict[str, Any]
    output: str | None
    row: dict[str, Any]
    reused: dict[str, Any] | None = None
    files: list[dict[str, str]] | None = None
    asked: int | None = None
    rows: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """`row`: id, model, params and annotations, so grids can place a failed cell."""

    EVENT: ClassVar[Event] = Event.FAILED
    job: str
    kind: FailureKind
    error: str
    request_id: str | None
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Released:
    EVENT: ClassVar[Event] = Event.RELEASED
    job: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Uploaded:
    """An input's content (`sha256`) is stored at `url` by the upload `host`: shared by every job
    that sends it, so it has no `job` (replay keeps it in `Replay.uploads`, not a job state)."""

    EVENT: ClassVar[FolderEvent] = FolderEvent.UPLOADED
    sha256: str
    url: str
    host: str


@dataclass(frozen=True, slots=True)
class RateLearned:
    """What `--rpm auto` found the server allows (requests a window): a resume starts there."""

    EVENT: ClassVar[FolderEvent] = FolderEvent.RATE
    rpm: float


LedgerRecord = (
    RunStarted
    | Intent
    | Submitted
    | Unknown
    | Expired
    | Completed
    | Failed
    | Released
    | Uploaded
    | RateLearned
)


def _reader(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """All of a record's values in one C call (`attrgetter`): the writer encodes ~6 records a
    job, and a getattr per field was most of `record_fields`' cost."""
    get = attrgetter(*names)
    return get if len(names) > 1 else lambda record: (get(record),)


_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]], tuple[str, ...]]] = {
    kind: (names, _reader(names), getattr(kind, "OPTIONAL", ()))
    for kind in get_args(LedgerRecord)
    for names in [tuple(f.name for f in fields(kind))]
}


def record_fields(record: LedgerRecord) -> dict[str, Any]:
    """The record's fields in declaration order, as a line carries them after `event`."""
    names, read, optional = _FIELDS[type(record)]
    values = dict(zip(names, read(record), strict=True))
    for name in optional:
        if values[name] is None:
            del values[name]
    return values
