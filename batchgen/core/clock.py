"""The one clock the engine reads: `now()` in seconds (monotonic) and an async `sleep()`.

Timing rules (backoff, 429 pauses, the outage gate, poll plans, acceptance times) are only as
testable as the clock they read. Everything time-dependent takes a `Clock`, so a test can step
time by hand (`batchgen.testing.SteppedClock`) instead of sleeping, and no rule can compare a
`time.monotonic()` reading with a `loop.time()` one.

`SystemClock` reads `time.monotonic()`, which is what asyncio's loops use for `loop.time()`
(so its readings compare with the loop's timers), called directly: the engine reads the time
about a dozen times a job, and a method around it was a measurable share of a fast run. A clock
also hands out the rate limiter that waits on it (`pacer`): the real one is aiolimiter's
one-token bucket (it reads `loop.time()`, the same clock), the stepped one a bucket of the same
rules in virtual time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from aiolimiter import AsyncLimiter

__all__ = ["Clock", "Pacer", "SystemClock"]


class Pacer(Protocol):
    """One send per interval, first come first served; a cancelled waiter passes its turn on."""

    async def acquire(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds, a way to wait for some of them to pass, and a pacer on that time."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def pacer(self, interval: float, tolerance: float = 0.0) -> Pacer: ...


class SystemClock:
    """The real clock: the loop's time (`time.monotonic`), and `asyncio.sleep`."""

    now = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def pacer(self, interval: float, tolerance: float = 0.0) -> Pacer:
        """aiolimiter's leaky bucket, one send per `interval`, holding `tolerance` seconds of
        credit: a send late by up to that much (a busy loop, a timer's wake-up) is made up by
        the next ones instead of pushing every later send back."""
        return AsyncLimiter(1 + tolerance / interval, interval + tolerance)
