"""Cost and duration estimates shown before a run, so nobody starts a $6,000 job by accident.

Duration is the slower of two ceilings: the in-flight cap (`concurrency` jobs, each taking about
the model's typical latency; with `auto`, the cap Little's law gives for the rate, see
`core.littles`) and the rate limit (`rpm` requests a minute, where a job costs one submit plus, if
polls count against the limit, about `POLLS_PER_JOB` status polls, the poller's target). The last
job's own latency is added once. `limits` says which of the two binds and what would lift it.

Each job is priced and timed by its own model (a sweep over `model`, a JSONL with a model per
row): the cost is the sum of each model's price x its jobs, the latency the jobs' mean (by
Little's law, what the in-flight cap's throughput depends on), the auto cap sized for the
slowest model (as the engine sizes it, `core.pollplans`) and the last job's latency the slowest
model's. A model without a known price (a pass-through slug) makes the cost unknown unless
`price_per_image` is set, as for a one-model run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from batchgen.core.littles import HEADROOM, Limits, limits
from batchgen.manifest.settings import RunSettings
from batchgen.models.registry import ModelSchema, typical_seconds_of

__all__ = ["POLLS_PER_JOB", "Estimate", "ImageTally", "ModelShare", "estimate", "format_duration"]

POLLS_PER_JOB: Final = 2.0


class ImageTally:
    """The images jobs ask for past one each (`max_images`), by model, and the most one job
    asks: a price is per image, and the budget reserves the most for a job in flight."""

    def __init__(self) -> None:
        self.extra: Counter[str] = Counter()
        self.most: dict[str, int] = {}

    def add(
        self, model: str, schema: ModelSchema | None, params: Mapping[str, Any], repeat: int
    ) -> None:
        if schema is None or schema.outputs_param is None:
            return
        asked = schema.outputs_for(params)
        self.extra[model] += (asked - 1) * repeat
        self.most[model] = max(asked, self.most.get(model, 1))

    def of(self, jobs: Mapping[str, int]) -> dict[str, int]:
        """Images by model for `jobs` by model (one per job unless the model takes a count)."""
        return {m: n + self.extra[m] for m, n in jobs.items()}


@dataclass(frozen=True)
class ModelShare:
    """One model's part of a run: its jobs and the images they ask for (more than the jobs
    where a job asks for several: `max_images`), its price per image (None: unknown), its
    latency."""

    model: str
    jobs: int
    price_per_image: float | None
    latency_seconds: float
    images: int = 0  # 0: one per job

    @property
    def priced_images(self) -> int:
        return self.images or self.jobs


@dataclass(frozen=True)
class Estimate:
    """What a run would cost and take; cost is None when a model's price is unknown."""

    jobs: int
    price_per_image: float | None  # the mean over the jobs (one model: its price)
    cost_usd: float | None
    seconds: float
    jobs_per_minute: float
    latency_seconds: float  # the jobs' mean
    limits: Limits
    models: tuple[ModelShare, ...] = ()  # by model, most jobs first

    @property
    def unpriced(self) -> tuple[str, ...]:
        """The models whose price is unknown (the reason `cost_usd` is None)."""
        return tuple(m.model for m in self.models if m.price_per_image is None)


def estimate(
    jobs: Mapping[str, int],
    settings: RunSettings,
    *,
    images: Mapping[str, int] | None = None,
    latency_seconds: float | None = None,
    window: float = 60.0,
) -> Estimate:
    """Estimate `jobs` (by model; a model with 0 jobs still sets the pace figures of an empty
    run) at `settings`' rate limit and concurrency; `images`: the images they ask for by model,
    when a job may ask for several (a price is per image); `latency_seconds` overrides every
    model's typical latency (the emulator's, or `--expect-seconds`); `window`: the seconds a
    rate-limit minute lasts (1 against the time-scaled emulator)."""
    shares = tuple(
        ModelShare(
            model,
            count,
            settings.price_of(model),
            typical_seconds_of(model) if latency_seconds is None else latency_seconds,
            (images or {}).get(model, 0),
        )
        for model, count in sorted(jobs.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    if not shares:
        raise ValueError("estimate: name at least one model")
    total = sum(m.jobs for m in shares)
    weights = [m.jobs for m in shares] if total else [1] * len(shares)
    latency = sum(w * m.latency_seconds for w, m in zip(weights, shares, strict=True))
    latency /= sum(weights)
    slowest = max(m.latency_seconds for m in shares)
    requests_per_job = 1.0 + (POLLS_PER_JOB if settings.count_polls else 0.0)
    pace = limits(settings.planned_rpm, requests_per_job, latency, settings.fixed_concurrency,
                  latency_high=slowest * HEADROOM, window=window)  # fmt: skip
    per_minute = pace.per_minute
    seconds = 0.0 if total == 0 else total / per_minute * 60.0 + slowest
    paid = [m for m in shares if m.jobs] or list(shares)
    cost: float | None = None
    price: float | None = None
    if all(m.price_per_image is not None for m in paid):
        cost = round(sum(m.priced_images * (m.price_per_image or 0.0) for m in paid), 2)
        prices = {m.price_per_image for m in paid}
        count = sum(m.priced_images for m in paid)
        price = prices.pop() if len(prices) == 1 else cost / count if count else None
    return Estimate(total, price, cost, seconds, per_minute, latency, pace, tuple(paid))


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
