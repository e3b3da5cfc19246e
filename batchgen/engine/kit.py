"""What every stage of a job shares: the throttle, the ledger and the one retry primitive.

The stages (follow, the sync path) are built by the engine from one `Kit`, so each says what it
needs beyond it (a transport, the poll plan, the jobs in flight) and nothing is wired twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchgen.core.clock import Clock
from batchgen.core.runstats import RunStats
from batchgen.edges.ledger import LedgerWriter
from batchgen.engine.outcomes import Outcomes
from batchgen.engine.retry import Retry
from batchgen.engine.throttle import Throttle

__all__ = ["Kit"]


@dataclass(frozen=True)
class Kit:
    throttle: Throttle
    ledger: LedgerWriter
    retry: Retry

    @property
    def stats(self) -> RunStats:
        return self.retry.stats

    @property
    def clock(self) -> Clock:
        return self.retry.clock

    @property
    def outcomes(self) -> Outcomes:
        return self.retry.outcomes
