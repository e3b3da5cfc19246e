"""The one clock the engine reads: `now()` in seconds (monotonic) and an async `sleep()`.

Timing rules (backoff, 429 pauses, the outage gate, poll plans, acceptance times) are only as
testable as the clock they read. Everything time-dependent takes a `Clock`, so a test can step
time by hand (`batchgen.testing.SteppedClock`) instead of sleeping, and no rule can compare a
`time.monotonic()` reading with a `loop.time()` one.

`SystemClock` reads the event loop's clock, which is `time.monotonic()` for asyncio's loops: the
same figures the engine has always used.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Monotonic seconds, and a way to wait for some of them to pass."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: the running loop's time, and `asyncio.sleep`."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
