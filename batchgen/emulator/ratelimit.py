"""A strict sliding-window limiter: at most N accepted requests in ANY window of W seconds.

Stricter than a token bucket on purpose: the strictest real server may count this way, and a
client that is correct against it is correct against the lenient ones too. Time is passed in, so
the window logic is tested without sleeping.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """Per-key log of accepted request times."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._log: dict[str, deque[float]] = {}

    def try_acquire(self, key: str, now: float) -> float | None:
        """Count a request at `now` and return None, or return when a slot frees (no count)."""
        log = self._log.setdefault(key, deque())
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= self.limit:
            return log[0] + self.window
        log.append(now)
        return None
