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

Fast servers seen fast: until real figures come, the plan rests on the model's typical latency,
which may be wrong by orders of magnitude (an emulator, a warm cache). So the first few jobs of
a run also poll early, on a short probe schedule (`PROBE_FRACTIONS` of the prior's first poll,
`PROBE_JOBS` jobs: a handful of extra polls per run, not per job), and a first finished job that
contradicts the prior (outside half its low to twice its high) drops the prior at once: the plan
is refitted on every sample until there are `_MIN_SAMPLES` of them. `version` moves with each
new plan, so a caller can wake jobs sleeping on an outdated one.

The plan also tells the in-flight cap what a job costs in time (`latency_high`, `poll_delay`:
`core.littles`). Pure: no clock, no I/O; the caller passes elapsed times.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping, Sequence

__all__ = ["PROBE_JOBS", "PollPlanner", "completion_time", "mean_delay", "plan_polls"]

_GRID = 24  # candidate poll times: quantiles k/_GRID of the samples
_MIN_SAMPLES = 8  # below this, plan on the model's typical latency
PROBE_JOBS = 2  # jobs of a run, while nothing has finished, that also poll early
PROBE_FRACTIONS = (1 / 64, 1 / 16, 1 / 4)  # of the prior's first poll: the probe schedule
_HIGH = 0.9  # quantile of the samples that stands for "a slow job" in the in-flight cap


def plan_polls(
    samples: Sequence[float], polls_per_job: float, *, grid: int = _GRID
) -> tuple[float, ...]:
    """Poll times (seconds after submit), minimising the expected detection delay for latencies
    distributed like `samples` with at most `polls_per_job` expected polls; the last time is the
    largest sample, so every sampled latency is seen by the plan. `grid`: how many quantiles are
    candidate times (a finer grid costs grid² per fit: the bench's frontier searches finer)."""
    xs = sorted(x for x in samples if math.isfinite(x) and x >= 0)
    if not xs:
        return ()
    problem = _Problem(xs, grid)
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


def mean_delay(plan: Sequence[float], samples: Sequence[float]) -> float:
    """Mean seconds between a sampled job finishing and the plan's poll that sees it (past the
    plan: a tenth of its last time, the first straggler step)."""
    xs = [x for x in samples if math.isfinite(x) and x >= 0]
    if not plan or not xs:
        return 0.0
    total = 0.0
    for x in xs:
        k = bisect.bisect_left(plan, x)
        total += plan[k] - x if k < len(plan) else 0.1 * plan[-1]
    return total / len(xs)


class _Problem:
    """Delays and poll probabilities between candidate times, computed once per fit."""

    def __init__(self, xs: Sequence[float], grid: int) -> None:
        n = len(xs)
        prefix = [0.0]
        for x in xs:
            prefix.append(prefix[-1] + x)
        quantiles = {
            xs[min(n - 1, max(0, math.ceil(k * n / grid) - 1))] for k in range(1, grid + 1)
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
        self.version = 0  # moves with every new plan
        self.probes_left = PROBE_JOBS
        # Before real figures: latencies spread evenly over typical ± 25 %.
        self._prior = [typical_seconds * (0.75 + 0.5 * i / 15) for i in range(16)]
        self._prior_dropped = False
        self.plan = plan_polls(self._prior, polls_per_job)
        self._fitted_on: Sequence[float] = self._prior

    @property
    def settled(self) -> bool:
        """The plan rests on enough real samples to move only slowly from now on."""
        return self.observed >= _MIN_SAMPLES

    def probe(self) -> tuple[float, ...]:
        """Early poll times for a new job (seconds after submit): the probe schedule while no
        job has finished and the run's probes are not used up, else ()."""
        if self.observed or self.probes_left <= 0 or not self.plan:
            return ()
        self.probes_left -= 1
        return tuple(self.plan[0] * f for f in PROBE_FRACTIONS)

    def seed(self, latencies: Sequence[float]) -> None:
        """Start from latencies an earlier run learned (a resume): as if observed now."""
        for latency in latencies:
            self.observe(latency)
        if self.samples:
            self._refit()

    def observe(self, latency: float) -> None:
        """Learn one job's submit-to-completion time."""
        if not math.isfinite(latency) or latency < 0:
            return
        self.samples.append(latency)
        self.observed += 1
        if not self.settled and not self._prior_dropped:
            low, high = self._prior[0], self._prior[-1]
            self._prior_dropped = latency < low / 2 or latency > high * 2
        if (
            self.observed == _MIN_SAMPLES
            or (self._prior_dropped and self.observed < _MIN_SAMPLES)
            or (self.observed > _MIN_SAMPLES and self.observed % self.refit_every == 0)
        ):
            self._refit()

    def _refit(self) -> None:
        self.plan = plan_polls(self.samples, self.polls_per_job)
        self._fitted_on = tuple(self.samples)
        self.version += 1

    def latency_high(self) -> float:
        """A slow job's latency (the 90th percentile of what the plan rests on)."""
        xs = sorted(self._fitted_on)
        return xs[min(len(xs) - 1, int(_HIGH * len(xs)))] if xs else 0.0

    def poll_delay(self) -> float:
        """Mean seconds a finished job waits for the plan's poll that sees it."""
        return mean_delay(self.plan, self._fitted_on)

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
