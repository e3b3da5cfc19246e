"""Admission: in-flight slots and the probe gate, taken before a job's task exists.

* Slots: `limit` of them, held from submit until the job's image is stored or it fails, so
  backpressure reaches the producer instead of piling up requests. The limit can move while the
  run goes (`resize`: `--concurrency auto` follows rate x learned latency, `core.littles`): a
  larger one lets waiters in at once, a smaller one lets jobs in flight finish and admits no new
  one until the count is under it.
* Probe: until the server has accepted one submit, only one submit is outstanding, so a wrong key,
  an unknown model or an empty account costs one request, not a burst.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Admission"]


class Admission:
    def __init__(self, concurrency: int, *, probe: bool = True) -> None:
        self.limit = max(1, concurrency)
        self.peak = self.limit  # the highest limit the run reached (reported)
        self.in_use = 0
        self._waiting: deque[asyncio.Future[None]] = deque()  # for a slot, first come first
        self._open = not probe
        self._probing = False
        self._probe_done = asyncio.Condition()

    async def acquire_slot(self, *, submits: bool = True) -> None:
        """Wait for an in-flight slot; the caller must `release_slot` when the job is done.

        `submits=False` is for a job already paid for (resumed): it sends no submit, so it
        neither waits for nor acts as the probe.
        """
        while self.in_use >= self.limit:
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._wake()  # woken and cancelled at once: pass the turn on
                raise
            finally:
                if turn in self._waiting:
                    self._waiting.remove(turn)
        self.in_use += 1
        if not submits:
            return
        async with self._probe_done:
            while not self._open and self._probing:
                await self._probe_done.wait()
            if not self._open:
                self._probing = True

    @property
    def concurrency(self) -> int:
        return self.limit

    def release_slot(self) -> None:
        self.in_use -= 1
        self._wake()

    def resize(self, limit: int) -> None:
        """Move the in-flight cap; waiters get in at once if it grew."""
        limit = max(1, limit)
        if limit == self.limit:
            return
        grew = limit > self.limit
        self.limit = limit
        self.peak = max(self.peak, limit)
        if grew:
            self._wake()

    def _wake(self) -> None:
        """Wake as many waiters as there are free slots (each checks again when it runs)."""
        free = self.limit - self.in_use
        for turn in self._waiting:
            if free <= 0:
                break
            if not turn.done():
                turn.set_result(None)
                free -= 1

    async def probe_result(self, accepted: bool) -> None:
        """Report the outcome of a submit: the first accepted one opens the gate."""
        if self._open:
            return
        async with self._probe_done:
            if accepted:
                self._open = True
            self._probing = False
            self._probe_done.notify_all()
