"""Admission: in-flight slots and the probe gate, taken before a job's task exists.

* Slots: a semaphore of `concurrency`, held from submit until the job's image is stored or it
  fails, so backpressure reaches the producer instead of piling up requests.
* Probe: until the server has accepted one submit, only one submit is outstanding, so a wrong key,
  an unknown model or an empty account costs one request, not a burst.
"""

from __future__ import annotations

import asyncio

__all__ = ["Admission"]


class Admission:
    def __init__(self, concurrency: int, *, probe: bool = True) -> None:
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._open = not probe
        self._probing = False
        self._probe_done = asyncio.Condition()

    async def acquire_slot(self, *, submits: bool = True) -> None:
        """Wait for an in-flight slot; the caller must `release_slot` when the job is done.

        `submits=False` is for a job already paid for (resumed): it sends no submit, so it
        neither waits for nor acts as the probe.
        """
        await self._slots.acquire()
        if not submits:
            return
        async with self._probe_done:
            while not self._open and self._probing:
                await self._probe_done.wait()
            if not self._open:
                self._probing = True

    def release_slot(self) -> None:
        self._slots.release()

    async def probe_result(self, accepted: bool) -> None:
        """Report the outcome of a submit: the first accepted one opens the gate."""
        if self._open:
            return
        async with self._probe_done:
            if accepted:
                self._open = True
            self._probing = False
            self._probe_done.notify_all()
