"""When to poll a pending job: a plan of poll times fitted to how long jobs really take.

A poll costs an API call (and, on plans whose rate limit counts every call, a rate token); a job
that finished but was not yet looked at costs an in-flight slot, i.e. throughput. So the plan
minimises the expected delay between a job finishing and a poll seeing it, under a budget of
expected polls per job (`polls_per_job`, 1.45 by default: with the submit, under 2.5 API calls a
job).

How: keep the last few hundred true latencies (the server's own `total_time` when it gives one),
take their quantiles as candidate poll times, and pick the subset that minimises
`delay + lam * polls` by dynamic programming; `lam` (the price of a poll in seconds of delay) is
bisected until the plan fits the budget. A mean-and-spread model cannot do this: with jitter of
±25 % it either polls early and often or late and once, where a plan polls where the mass is.
Jobs slower than every sample fall back to geometrically growing intervals (stragglers, or a
queue that suddenly grew); their latencies then move the plan.

Pure: no clock, no I/O; the caller passes elapsed times.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping, Sequence

__all__ = ["PollPlanner", "completion_time", "plan_polls"]

_GRID = 24  # candidate poll times: quantiles k/_GRID of the samples
_MIN_SAMPLES = 8  # below this, plan on the model's typical latency


def plan_polls(samples: Sequence[float], polls_per_job: float) -> tuple[float, ...]:
    """Poll times (seconds after submit), minimising the expected detection delay for latencies
    distributed like `samples` with at most `polls_per_job` expected polls; the last time is the
    largest sample, so every sampled latency is seen by the plan."""
    xs = sorted(x for x in samples if math.isfinite(x) and x >= 0)
    if not xs:
        return ()
    problem = _Problem(xs)
    best = problem.solve(0.0)
    if best[1] <= polls_per_job:
        return best[0]
    low, high = 0.0, xs[-1] * 4  # at `high` a poll costs more than any delay: one poll, at the max
    best = problem.solve(high)
    for _ in range(20):
        lam = (low + high) / 2
        plan = problem.solve(lam)
        if plan[1] <= polls_per_job:
            high, best = lam, plan
        else:
            low = lam
    return best[0]


class _Problem:
    """Delays and poll probabilities between candidate times, computed once per fit."""

    def __init__(self, xs: Sequence[float]) -> None:
        n = len(xs)
        prefix = [0.0]
        for x in xs:
            prefix.append(prefix[-1] + x)
        quantiles = {
            xs[min(n - 1, max(0, math.ceil(k * n / _GRID) - 1))] for k in range(1, _GRID + 1)
        }
        self.times = [0.0, *sorted(quantiles)]
        done = [bisect.bisect_right(xs, t) for t in self.times]  # samples finished by each time
        # pending[j]: share of jobs still running at times[j], i.e. needing the next poll.
        self.pending = [(n - d) / n for d in done]
        # delay[j][k]: mean wait of the jobs that finish in (times[j], times[k]] for a poll at k.
        self.delay = [
            [
                ((done[k] - done[j]) * self.times[k] - (prefix[done[k]] - prefix[done[j]])) / n
                for k in range(len(self.times))
            ]
            for j in range(len(self.times))
        ]

    def solve(self, lam: float) -> tuple[tuple[float, ...], float]:
        """The plan minimising mean delay + lam * mean polls; returns (times, mean polls)."""
        m = len(self.times)
        cost = [0.0] + [math.inf] * (m - 1)
        polls = [0.0] * m
        back = [0] * m
        for k in range(1, m):
            for j in range(k):
                total = cost[j] + self.delay[j][k] + lam * self.pending[j]
                if total < cost[k]:
                    cost[k], polls[k], back[k] = total, polls[j] + self.pending[j], j
        plan: list[float] = []
        k = m - 1
        while k:
            plan.append(self.times[k])
            k = back[k]
        return tuple(reversed(plan)), polls[m - 1]


class PollPlanner:
    """The poll plan of a run, refitted as jobs finish (see the module docstring)."""

    def __init__(
        self,
        typical_seconds: float,
        *,
        polls_per_job: float = 1.45,
        window: int = 256,
        refit_every: int = 32,
        min_interval: float = 0.02,
        max_interval: float = 30.0,
    ) -> None:
        self.polls_per_job = polls_per_job
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.refit_every = refit_every
        self.samples: deque[float] = deque(maxlen=window)
        self.observed = 0
        # Before real figures: latencies spread evenly over typical ± 25 %.
        self._prior = [typical_seconds * (0.75 + 0.5 * i / 15) for i in range(16)]
        self.plan = plan_polls(self._prior, polls_per_job)

    def observe(self, latency: float) -> None:
        """Learn one job's submit-to-completion time."""
        if not math.isfinite(latency) or latency < 0:
            return
        self.samples.append(latency)
        self.observed += 1
        if self.observed == _MIN_SAMPLES or (
            self.observed > _MIN_SAMPLES and self.observed % self.refit_every == 0
        ):
            self.plan = plan_polls(self.samples, self.polls_per_job)

    def observe_between(self, low: float, high: float) -> None:
        """Learn a job known only to have finished between two polls (no server timing).

        The midpoint, not `high`: learning the poll time itself would pin the plan to wherever
        it started, however early the jobs really finish.
        """
        self.observe((max(0.0, low) + high) / 2)

    def delay(self, polls_so_far: int, elapsed: float) -> float:
        """Seconds to wait before the next poll of a job submitted `elapsed` seconds ago."""
        upcoming = [t for t in self.plan[polls_so_far:] if t > elapsed]
        if upcoming:
            return self._clamp(upcoming[0] - elapsed)
        # Slower than every sample: back off geometrically from the plan's last poll.
        last = self.plan[-1] if self.plan else elapsed
        beyond = max(1, polls_so_far + 1 - len(self.plan))
        step = max(0.1 * last, self.min_interval) * 1.5 ** (beyond - 1)
        return self._clamp(step)

    def _clamp(self, seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, seconds))


def completion_time(metrics: Mapping[str, object], observed: float) -> float | None:
    """How long a job really took from submit to completion, by the server's own timing
    (`total_time`, or `queue_time` + `inference_time`), never above what we observed; None when
    the server gives no such figure (a poll only bounds the latency from above)."""
    total = _seconds(metrics.get("total_time"))
    if total is None:
        queue = _seconds(metrics.get("queue_time"))
        inference = _seconds(metrics.get("inference_time"))
        if queue is not None and inference is not None:
            total = queue + inference
    return None if total is None else min(total, observed)


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) and number >= 0 else None
    return None
