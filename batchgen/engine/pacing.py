"""Pacing: one send every `interval` seconds, first come first served, on the injected clock.

This is a leaky bucket of one token (what `aiolimiter.AsyncLimiter(1, interval)` is): a send may
go once `interval` has passed since the last one, waiters are served in arrival order, and a
waiter that gives up (cancelled) passes its turn on. It reads a `Clock` rather than `loop.time()`
so that rate control is tested by stepping time by hand.
"""

from __future__ import annotations

import asyncio

from batchgen.core.clock import Clock

__all__ = ["Pacer"]


class Pacer:
    def __init__(self, interval: float, clock: Clock) -> None:
        self.interval = interval
        self.clock = clock
        self._free_at: float | None = None  # when the next send may go (None: at once)
        self._turn = asyncio.Lock()  # FIFO, and a cancelled waiter releases its place

    async def acquire(self) -> None:
        """Wait for this caller's turn; returns when it may send."""
        async with self._turn:
            if self._free_at is not None:
                wait = self._free_at - self.clock.now()
                if wait > 0:
                    await self.clock.sleep(wait)
            self._free_at = self.clock.now() + self.interval
