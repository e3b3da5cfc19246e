"""The one exception tree of batchgen, so callers can catch exactly the failures they can act on.

```
BatchgenError                 base: anything batchgen raises on purpose
├── ManifestError             the manifest cannot be run as written; carries every problem found
├── ApiError                  the server answered, with a status we did not want (.status)
├── TransportError            no usable answer: refused, reset, timed out, cut short (.maybe_sent)
├── InferenceFailed           the server ran the job and reported FAILED (.error)
├── InferenceTimeout          a job did not finish within the caller's deadline
├── MediaRefused              an image URL or body refused for safety (.kind: the failure kind)
└── LedgerError               the ledger cannot be written or read back safely
    └── OutputError           metadata/summary cannot be rewritten (disk full); the ledger is fine
```

What to *do* about an `ApiError` or `TransportError` is not decided here but in `policy.py`, from
the spec's table; a stopped run is not an exception but `RunResult.stop_reason` (exit code 2),
because the jobs already paid for still finish. Every error carries the job id and request id it
concerns when there is one, and never the API key.

Manifest problems are collected, not raised one by one: a user with a 50,000-line dataset wants
every broken line in one report, not a fix-rerun loop. `ProblemLog` caps what it keeps so that a
million broken lines cannot exhaust memory, while still counting them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "NO_VALUE",
    "ApiError",
    "BatchgenError",
    "InferenceFailed",
    "InferenceTimeout",
    "LedgerError",
    "ManifestError",
    "ManifestProblem",
    "MediaRefused",
    "OutputError",
    "ProblemLog",
    "TransportError",
]

DEFAULT_CAP: Final = 50


class _NoValue:
    """Marks a problem that is about a missing or structural thing rather than a bad value."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()


class BatchgenError(Exception):
    """Base of every error batchgen raises deliberately."""


class _JobError(BatchgenError):
    """An error about one request, located by job and request id when they are known."""

    def __init__(
        self, message: str, *, job_id: str | None = None, request_id: str | None = None
    ) -> None:
        self.message = message
        self.job_id = job_id
        self.request_id = request_id
        where = ", ".join(
            f"{k} {v}" for k, v in (("job", job_id), ("request", request_id)) if v is not None
        )
        super().__init__(f"{message} ({where})" if where else message)


class ApiError(_JobError):
    """An HTTP answer other than success: `status` and the server's `error` text."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        job_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait (429), if it said
        super().__init__(f"HTTP {status}: {message}", job_id=job_id, request_id=request_id)
        self.message = message


class TransportError(_JobError):
    """No usable HTTP answer. `maybe_sent`: the request may have reached the server.

    For a submit that matters: a POST that may have been received may have been billed, so it is
    retried only when `maybe_sent` is False, or counted as a possible double charge.
    """

    def __init__(
        self,
        message: str,
        *,
        maybe_sent: bool,
        job_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.maybe_sent = maybe_sent
        super().__init__(message, job_id=job_id, request_id=request_id)


class InferenceFailed(_JobError):
    """The server reports the job FAILED; `error` is its text (content filter, bad input, ...)."""

    def __init__(
        self, error: str, *, job_id: str | None = None, request_id: str | None = None
    ) -> None:
        self.error = error
        super().__init__(f"job failed: {error}", job_id=job_id, request_id=request_id)


class InferenceTimeout(_JobError):
    """A job was still pending at the caller's deadline; it may still finish on the server."""


class MediaRefused(_JobError):
    """The image was not fetched or not kept, deliberately: `kind` is the job's failure kind.

    `unsafe_url` (a scheme, address or redirect the media policy forbids), `too_large` (over
    the size cap) or `timeout` (the body did not arrive within the download deadline). Asking
    again would get the same answer, so the job fails at once instead of retrying.
    """

    def __init__(
        self, kind: str, message: str, *, job_id: str | None = None, request_id: str | None = None
    ) -> None:
        self.kind = kind
        super().__init__(message, job_id=job_id, request_id=request_id)


class LedgerError(BatchgenError):
    """The ledger could not be made durable, or is damaged where guessing would be unsafe."""


class OutputError(LedgerError):
    """metadata.jsonl, failed.jsonl or summary.json could not be rewritten (a full disk, say).

    A LedgerError so that every caller stops the same way (exit 2), though the ledger itself is
    intact: those files are rebuilt from it by the next run.
    """


@dataclass(frozen=True)
class ManifestProblem:
    """One thing wrong with a manifest, located precisely enough to fix without searching."""

    file: str
    line: int | None
    job: str | None
    field: str | None
    value: Any
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.job is not None:
            parts.append(f"job {self.job}")
        if self.field is not None:
            shown = "" if self.value is NO_VALUE else f" = {_short(self.value)}"
            parts.append(f"{self.field}{shown}")
        return ": ".join(parts) + ": " + self.message


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ManifestError(BatchgenError):
    """The manifest is invalid: `problems` holds the first problems (capped), `total` counts all."""

    def __init__(self, problems: Iterable[ManifestProblem], total: int | None = None) -> None:
        self.problems: tuple[ManifestProblem, ...] = tuple(problems)
        self.total: int = len(self.problems) if total is None else total
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [str(p) for p in self.problems]
        hidden = self.total - len(self.problems)
        if hidden > 0:
            lines.append(f"… and {hidden} more")
        return "\n".join(lines)


class ProblemLog:
    """Collects problems, keeping the first `cap` and counting the rest.

    Problems not tied to a single job (a bad value in `defaults` or `sweep`) would otherwise be
    repeated once per job; `add(..., once=True)` reports each of those a single time. Only those
    keys are remembered, and there are at most as many as the YAML file has lines.
    """

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self.kept: list[ManifestProblem] = []
        self.total = 0
        self._once: set[tuple[str, int | None, str | None, str, str]] = set()

    def add(self, problem: ManifestProblem, *, once: bool = False) -> None:
        """Record `problem`; with `once`, an identical problem seen before is dropped."""
        if once:
            key = (problem.file, problem.line, problem.field, repr(problem.value), problem.message)
            if key in self._once:
                return
            self._once.add(key)
        self.total += 1
        if len(self.kept) < self.cap:
            self.kept.append(problem)

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self) -> ManifestError:
        """The collected problems as one exception."""
        return ManifestError(self.kept, self.total)

    def raise_if_any(self) -> None:
        """Raise `error()` when anything was recorded."""
        if self.total:
            raise self.error()
