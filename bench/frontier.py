"""The least wall time any poller could reach at a given number of polls per job.

A job holds one of the C in-flight slots from its submit until a poll sees it done, so a client
is judged by two figures together: how many polls it spends and how long its jobs wait for the
poll that sees them. For one schedule of poll times used by every job, the best trade-off for a
latency distribution is what `batchgen.core.pollplan.plan_polls` computes (a dynamic programme
over quantiles; searched here on a finer grid than the engine's). The frontier simulates N jobs
of latencies drawn like the scenario's through C slots, each job holding its slot for its
latency plus its wait under that schedule, with no other cost at all (no round trips, no CPU):
a client at that many polls per job can only be slower. Averaged over a few seeded draws, so a
lucky draw does not move the target.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

from batchgen.core.pollplan import plan_polls

__all__ = ["frontier_wall"]

GRID = 96  # candidate poll times (the engine fits on 24)
DRAWS = 5


def frontier_wall(
    latency: float, jitter: float, jobs: int, concurrency: int, polls_per_job: float
) -> float:
    """Mean makespan of `jobs` uniform(latency ± jitter) jobs through `concurrency` slots under
    the best single schedule of at most `polls_per_job` expected polls."""
    walls = []
    for seed in range(DRAWS):
        rng = random.Random(seed)
        xs = [rng.uniform(latency - jitter, latency + jitter) for _ in range(jobs)]
        plan = plan_polls(xs, max(1.0, polls_per_job), grid=GRID)
        walls.append(_makespan([_seen_at(plan, x) for x in xs], concurrency))
    return sum(walls) / len(walls)


def _seen_at(plan: Sequence[float], latency: float) -> float:
    """When the plan's first poll at or after `latency` comes (the plan ends at the largest
    sample, so there is one)."""
    return next(t for t in plan if t >= latency)


def _makespan(holds: Sequence[float], slots: int) -> float:
    """Jobs in order, each taking the first free slot for `holds[i]` seconds."""
    free = [0.0] * min(slots, len(holds))
    for hold in holds:
        heapq.heappush(free, heapq.heappop(free) + hold)
    return max(free, default=0.0)
