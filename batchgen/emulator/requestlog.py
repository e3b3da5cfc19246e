"""When each API request arrived, and pure functions over those times.

Counters say how many requests a client made; they cannot say whether the client kept to a rate
limit *in every window*, or how fast it backed off when the server went down. For that the
emulator records each API request's arrival (its own clock, before any fault or limit is applied,
so hung and refused requests count too) with its route and final status, when asked to
(`EmulatorConfig.log_requests`). The checks are plain functions of sorted times, tested without
a server.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Arrival",
    "RequestLog",
    "count_between",
    "max_in_window",
    "quiet_from",
]


@dataclass
class Arrival:
    """One API request: when it arrived, on which route, and the status it got (0: none, the
    client gave up before an answer, e.g. on a hung response)."""

    at: float
    route: str
    status: int = 0


class RequestLog:
    """Arrivals in order. Kept only when the scenario asks (a long-lived emulator would grow)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []

    def arrive(self, at: float, route: str) -> Arrival:
        entry = Arrival(at, route)
        self.arrivals.append(entry)
        return entry

    def times(
        self, routes: Iterable[str] | None = None, *, since: float = -float("inf")
    ) -> list[float]:
        """Sorted arrival times on `routes` (all when None), from `since` on."""
        wanted = None if routes is None else frozenset(routes)
        return sorted(
            a.at for a in self.arrivals if a.at >= since and (wanted is None or a.route in wanted)
        )

    def first(self, status: int) -> float | None:
        """Arrival time of the first request answered with `status` (e.g. the first 429)."""
        return min((a.at for a in self.arrivals if a.status == status), default=None)

    def as_json(self) -> list[list[object]]:
        return [[round(a.at, 6), a.route, a.status] for a in self.arrivals]


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most requests within any window of `window` seconds: (t - window, t] for any t.

    The same windows a strict sliding-window limiter counts: two requests less than `window`
    apart are in one window. `times` must be sorted.
    """
    best = 0
    start = 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def count_between(times: Sequence[float], start: float, end: float) -> int:
    """Requests in [start, end). `times` must be sorted."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def quiet_from(
    times: Sequence[float], start: float, end: float, window: float, limit: int
) -> float:
    """The earliest t in [start, end) after which no window of `window` seconds before `end`
    holds more than `limit` requests: when a rate dropped to a trickle and stayed there.

    `start` if it was quiet all along. `times` must be sorted.
    """
    inside = [t for t in times if start <= t < end]
    # The last request that completes a too-busy window: quiet begins there.
    for i in range(len(inside) - 1, limit - 1, -1):
        if inside[i] - inside[i - limit] < window:  # limit + 1 requests within one window
            return inside[i]
    return start
