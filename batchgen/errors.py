"""The one exception tree of batchgen, so callers can catch exactly the failures they can act on.

```
BatchgenError                 base: anything batchgen raises on purpose
└── ManifestError             the manifest cannot be run as written; carries every problem found
```

(The transport, HTTP-status and job-failure branches join this tree with the runner.)

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
    "BatchgenError",
    "ManifestError",
    "ManifestProblem",
    "ProblemLog",
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
