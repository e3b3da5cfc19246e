"""The engine's facts about each job in flight: its reserved price, and when it was accepted.

Both are written by more than one stage (the queue path, the sync path, a resubmit after an
expiry), so one object owns them: a reservation keeps the budget honest while a job's cost is
not counted yet (`core.budget`), and the acceptance time is where a job's total time starts.
"""

from __future__ import annotations

from batchgen.core.budget import Reservations
from batchgen.core.clock import Clock

__all__ = ["InFlight"]


class InFlight:
    def __init__(self, reservations: Reservations, clock: Clock) -> None:
        self.reservations = reservations
        self.clock = clock
        self._accepted_at: dict[str, float] = {}  # job id -> clock time of its acceptance

    def sending(self, job_id: str) -> None:
        """A submit is about to go: reserve its price first, so concurrent submitters see it."""
        self.reservations.add(job_id)

    def accepted(self, job_id: str, age: float = 0.0) -> None:
        """The server has the job (for `age` seconds already, when an earlier run sent it)."""
        self._accepted_at[job_id] = self.clock.now() - age
        self.reservations.add(job_id)  # until its cost is counted (or it fails): see budget.py

    def forgotten(self, job_id: str) -> None:
        """The server does not have it after all (expired, or the call failed): no reservation."""
        self.reservations.discard(job_id)

    def accepted_at(self, job_id: str) -> float | None:
        """When the job was accepted (and forget it: asked once, when the server is done)."""
        return self._accepted_at.pop(job_id, None)

    def ended(self, job_id: str) -> None:
        self._accepted_at.pop(job_id, None)
        self.reservations.discard(job_id)
