"""The outage gate: every API call passes it first, and `outcome` feeds it each call's answer.

Over `core.circuit` (the pure state machine): while the server is down only one probe at a time
goes out; the gate is passed before a rate token is taken, so a recovery does not release a
burst of tokens taken during the outage. Past the outage patience the run is told to stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from batchgen.core.circuit import Circuit, OutagePolicy
from batchgen.core.clock import Clock
from batchgen.core.errors import TransportError

__all__ = ["OutageGate"]

log = logging.getLogger("batchgen")


class OutageGate:
    def __init__(
        self,
        policy: OutagePolicy | None,
        clock: Clock,
        on_outage: Callable[[str], None] | None = None,
    ) -> None:
        self.circuit = Circuit(policy)
        self.clock = clock
        self._recovered = asyncio.Event()
        self._on_outage = on_outage  # called once the outage outlasts patience: stop the run

    async def passage(self, *, give_up: bool, holding: bool = False) -> bool:
        """Pass at once while the server is up; in an outage wait for a probe turn (True).
        `holding`: the caller already has the turn (it went round its loop before sending).

        Past the patience no probe goes out any more: the run is told to stop, and a caller
        that can `give_up` (a poll: its job is then released) gets a TransportError at once."""
        if holding and self.circuit.is_open:
            return True
        while self.circuit.is_open:
            if (reason := self.outage_over()) is not None:
                if self._on_outage is not None:
                    self._on_outage(reason)
                if give_up:
                    raise TransportError(reason, maybe_sent=False)
                await self._recovered.wait()
                continue
            wait = self.circuit.permit(self.clock.now())
            if wait == 0.0:
                return True
            await self._recovery_or(wait)
        return False

    async def _recovery_or(self, seconds: float) -> None:
        """Wait until the server answers again, or for `seconds` on the clock."""
        if self._recovered.is_set():
            return
        waits = {
            asyncio.ensure_future(self._recovered.wait()),
            asyncio.ensure_future(self.clock.sleep(seconds)),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def outcome(self, answered: bool) -> None:
        """A call got an answer (any status below 500), or none."""
        now = self.clock.now()
        if answered:
            if self.circuit.success(now):
                log.warning("the server answers again: resuming")
                self._recovered.set()
        elif self.circuit.failure(now):
            log.warning("the server is failing every call: probing it, one call at a time")
            self._recovered.clear()

    def outage_over(self) -> str | None:
        """Why the run should stop, once the server has been down for longer than patience."""
        if not self.circuit.over_patience(self.clock.now()):
            return None
        minutes = self.circuit.policy.patience / 60
        return (
            f"the server has failed every call for over {minutes:.3g} minutes (outage): "
            "run the same command again later to resume"
        )
