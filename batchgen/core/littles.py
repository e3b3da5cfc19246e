"""How many jobs to keep in flight: Little's law, so the in-flight cap never wastes the rate.

A plan sells a rate (requests a minute); a job holds an in-flight slot from its submit until its
image is seen, i.e. for its latency plus the poll plan's detection delay. By Little's law the
jobs in flight at a steady rate are `rate x time held`: fewer slots than that and the cap, not the
plan, sets the pace (8 slots over 28 s jobs use 17 of 50 requests a minute). More slots cost only
memory: a slot that waits for a rate token is a job not yet submitted. So the rule errs high —
it takes a high quantile of the latency (its spread) and the poll delay, adds a margin, and stops
at a ceiling (a runaway latency must not open thousands of requests).

Pure: the caller passes the rate and the learned latency figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["AUTO_CEILING", "AUTO_START_RPM", "HEADROOM", "Limits", "in_flight_cap", "limits"]

AUTO_START_RPM: Final = 5.0  # where `--rpm auto` starts: Segmind's lowest documented plan
AUTO_CEILING: Final = 256  # in-flight jobs `--concurrency auto` never goes past
HEADROOM: Final = 1.25  # x (high latency + poll delay): token waits, submit and poll round trips
SPARE: Final = 2  # slots beyond the product: a job's last poll and its successor's submit overlap


def in_flight_cap(
    jobs_per_second: float,
    latency_high: float,
    poll_delay: float = 0.0,
    *,
    ceiling: int = AUTO_CEILING,
) -> int:
    """Slots that keep `jobs_per_second` flowing when a job is held `latency_high` (a high
    quantile of the learned latency) plus `poll_delay` seconds; from 1 to `ceiling`."""
    if not math.isfinite(jobs_per_second) or jobs_per_second <= 0:
        return max(1, ceiling)
    held = max(0.0, latency_high) + max(0.0, poll_delay)
    wanted = math.ceil(jobs_per_second * held * HEADROOM) + SPARE
    return max(1, min(ceiling, wanted))


@dataclass(frozen=True)
class Limits:
    """Which of the two limits sets a run's pace, and by how much (images a minute)."""

    by_rate: float
    by_concurrency: float
    concurrency: int  # the in-flight cap the plan uses (auto: the rule's)
    auto: bool

    @property
    def per_minute(self) -> float:
        return min(self.by_rate, self.by_concurrency)

    @property
    def binding(self) -> str:
        """'rate' or 'concurrency': the limit that sets the pace (the rate on a tie)."""
        return "rate" if self.by_rate <= self.by_concurrency else "concurrency"

    def lift(self) -> str:
        """What would raise the pace, in words a user can act on."""
        if self.binding == "rate":
            return "a higher rate (a plan with more requests/min, --rpm) would lift it"
        if self.auto:
            return f"the auto ceiling ({self.concurrency}) binds: --concurrency N above it lifts it"
        return (
            f"--concurrency auto (or above {self.concurrency}) would lift it, "
            f"up to {self.by_rate:.1f} images/min at this rate"
        )


def limits(
    rpm: float,
    requests_per_job: float,
    latency: float,
    concurrency: int | None,
    *,
    latency_high: float | None = None,
    poll_delay: float = 0.0,
    window: float = 60.0,
    ceiling: int = AUTO_CEILING,
) -> Limits:
    """The pace of a run at `rpm` (per `window` seconds) with jobs of mean `latency` seconds;
    `concurrency` None means auto (the rule above)."""
    jobs_per_second = rpm / window / max(1.0, requests_per_job)
    auto = concurrency is None
    high = latency * HEADROOM if latency_high is None else latency_high
    cap = in_flight_cap(jobs_per_second, high, poll_delay, ceiling=ceiling) if auto else concurrency
    assert cap is not None
    held = max(1e-9, latency + poll_delay)
    return Limits(jobs_per_second * 60.0, cap * 60.0 / held, cap, auto)
