"""The counters of one run, as the engine saw them: what the summary, progress and tests read.

(The emulator's counters are the independent cross-check; these are the client's view.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["RunStats"]


@dataclass
class RunStats:
    """Counts of a run, as the engine saw them (the emulator's counters are the cross-check)."""

    jobs: int = 0
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # by kind
    calls: Counter[str] = field(default_factory=Counter)  # submit, poll, result, download
    retries: int = 0
    rate_limited: int = 0
    resubmits: int = 0  # the server forgot a request (expired): paid again
    released: int = 0  # left unfinished because the run stopped (a rerun picks them up)
    reattached: int = 0  # requests paid for by an earlier run, polled instead of resubmitted
    refetched: int = 0  # completed images whose file was lost, downloaded again
    possible_double_charges: int = 0  # a submit that may have been billed without an answer
    stop_reason: str | None = None

    @property
    def finished(self) -> int:
        return self.completed + sum(self.failed.values())

    @property
    def api_calls_per_job(self) -> float:
        """Requests to the API (not media downloads) per finished job."""
        api = sum(n for kind, n in self.calls.items() if kind != "download")
        return api / self.finished if self.finished else 0.0
