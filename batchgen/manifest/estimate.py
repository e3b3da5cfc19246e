"""Cost and duration estimates shown before a run, so nobody starts a $6,000 job by accident.

Duration is the slower of two ceilings: the in-flight cap (`concurrency` jobs, each taking about
the model's typical latency; with `auto`, the cap Little's law gives for the rate, see
`core.littles`) and the rate limit (`rpm` requests a minute, where a job costs one submit plus, if
polls count against the limit, about `POLLS_PER_JOB` status polls, the poller's target). The last
job's own latency is added once. `limits` says which of the two binds and what would lift it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from batchgen.core.littles import Limits, limits
from batchgen.manifest.settings import RunSettings
from batchgen.models.registry import UNKNOWN_MODEL_SECONDS, ModelSchema

__all__ = ["POLLS_PER_JOB", "Estimate", "estimate", "format_duration"]

POLLS_PER_JOB: Final = 2.0


@dataclass(frozen=True)
class Estimate:
    """What a run would cost and take; cost is None when the price is unknown."""

    jobs: int
    price_per_image: float | None
    cost_usd: float | None
    seconds: float
    jobs_per_minute: float
    latency_seconds: float
    limits: Limits


def estimate(
    jobs: int,
    settings: RunSettings,
    schema: ModelSchema | None,
    *,
    latency_seconds: float | None = None,
    window: float = 60.0,
) -> Estimate:
    """Estimate `jobs` images at `settings`' rate limit and concurrency; `latency_seconds`
    overrides the model's typical latency (the emulator's, or `--expect-seconds`);
    `window`: the seconds a rate-limit minute lasts (1 against the time-scaled emulator)."""
    latency = latency_seconds
    if latency is None:
        latency = schema.typical_seconds if schema is not None else UNKNOWN_MODEL_SECONDS
    requests_per_job = 1.0 + (POLLS_PER_JOB if settings.count_polls else 0.0)
    pace = limits(
        settings.planned_rpm, requests_per_job, latency, settings.fixed_concurrency, window=window
    )
    per_minute = pace.per_minute
    seconds = 0.0 if jobs == 0 else jobs / per_minute * 60.0 + latency
    price = settings.price_for(schema)
    cost = None if price is None else round(jobs * price, 2)
    return Estimate(jobs, price, cost, seconds, per_minute, latency, pace)


def format_duration(seconds: float) -> str:
    """'2h 05m', '3m 20s' or '45s': precise enough for planning a night."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
