"""The floor: the least wall time any client could have taken for what a run had to do.

It is printed next to the wall time (`summary.json`, the last line of `run`) and used by the
benchmark, so it must be a true lower bound: wall >= floor for every run, whatever the client
did. It is built only from facts that hold for any client:

* Rate: under "at most R calls in any window of W seconds" the first R calls may go at once, so
  the k-th call (1-based) cannot go before `(k - 1) // R` windows have passed. A fractional R is
  read the weak way (ceil(R) per window), so the bound holds for an evenly paced client too.
  Only calls the run *had* to make count: a submit per job it submitted (a re-attached job
  needs none, a re-fetched image none), and with polls counted one GET per job it waited for.
* Waiting: a submitted job holds one of the C in-flight slots for at least its time at the
  server, so the busiest slot holds ceil(K / C) of the K submitted jobs and all slots together
  hold the sum of their times; and the last submit is still followed by the least time any job
  took. Jobs already finished at the server (re-attached, re-fetched) add no wait.

Durations the run did not measure count as 0, which keeps the bound true at the price of
tightness. Pure: numbers in, seconds out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Limits", "Work", "floor_seconds"]


@dataclass(frozen=True)
class Limits:
    """The limits the run was held to."""

    rpm: float | None  # calls in any `window` seconds; None: no rate limit
    window: float  # seconds
    concurrency: int  # jobs in flight at once
    count_polls: bool = False  # status/result GETs count against `rpm` too


@dataclass(frozen=True)
class Work:
    """What the run had to do, as far as any client would have had to."""

    submits: int  # jobs it had to submit (a sync call is a submit)
    polls: int = 0  # jobs it had to poll at least once (queue mode: submitted + re-attached)
    durations: Iterable[float] = ()  # least seconds at the server of some submitted jobs
    tail: float = 0.0  # least seconds from any submit to its job's image being stored


def floor_seconds(work: Work, limits: Limits) -> float:
    """A lower bound on the wall time of `work` under `limits` (see the module docstring)."""
    if work.submits <= 0 and not (limits.count_polls and work.polls > 0):
        return 0.0
    by_rate = 0.0
    if limits.rpm:
        per_window = max(1, math.ceil(limits.rpm))
        if work.submits > 0:
            by_rate = (work.submits - 1) // per_window * limits.window + work.tail
        if limits.count_polls:
            calls = work.submits + work.polls
            by_rate = max(by_rate, (calls - 1) // per_window * limits.window)
    elif work.submits > 0:
        by_rate = work.tail
    known = sorted(max(0.0, d) for d in work.durations)[: work.submits]
    unknown = max(0, work.submits - len(known))
    slots = max(1, limits.concurrency)
    busiest = math.ceil(work.submits / slots)
    by_slots = max(
        sum(known) / slots,
        sum(known[: max(0, busiest - unknown)]),  # the least that slot's jobs can add up to
    )
    return max(by_rate, by_slots)
