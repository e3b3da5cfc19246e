"""The counters of one run, as the engine saw them: what the summary, progress and tests read.

(The emulator's counters are the independent cross-check; these are the client's view.)
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from batchgen.core.sketch import LatencySketch

__all__ = ["EXAMPLES_PER_KIND", "RunStats", "percentile"]

EXAMPLES_PER_KIND = 3


@dataclass
class RunStats:
    """Counts of a run, as the engine saw them (the emulator's counters are the cross-check)."""

    jobs: int = 0
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # by kind
    calls: Counter[str] = field(default_factory=Counter)  # submit, poll, result, download
    retries: int = 0
    rate_limited: int = 0
    rate_limited_probing: int = 0  # of those, met while `--rpm auto` widened the rate
    resubmits: int = 0  # the server forgot a request (expired): paid again
    released: int = 0  # left unfinished because the run stopped (a rerun picks them up)
    reattached: int = 0  # requests paid for by an earlier run, polled instead of resubmitted
    refetched: int = 0  # completed images whose file was lost, downloaded again
    possible_double_charges: int = 0  # a submit that may have been billed without an answer
    fewer_images: int = 0  # jobs answered with fewer images than they asked for (max_images)
    reused: int = 0  # placed from the catalogue (paid by another run): nothing sent
    saved: float = 0.0  # USD those reused images cost when first made (else the set price)
    stop_reason: str | None = None
    in_flight: int = 0  # accepted by the server, not finished yet
    spend: float = 0.0  # USD of completed jobs (the server's metrics.cost, else the set price)
    remaining_credits: float | None = None  # the latest balance the server reported
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # kind -> a few
    # Seconds per completed job, in fixed memory (exact while few: `core.sketch`).
    latency: dict[str, LatencySketch] = field(
        default_factory=lambda: {k: LatencySketch() for k in ("queue", "inference", "total")}
    )
    started: float = field(default_factory=time.monotonic)

    def fail(self, kind: str, job_id: str, error: str) -> None:
        """Count a failure and keep the first few of each kind as examples for the summary."""
        self.failed[kind] += 1
        kept = self.examples.setdefault(kind, [])
        if len(kept) < EXAMPLES_PER_KIND:
            kept.append({"job": job_id, "error": error})

    def complete(self, cost: float, metrics: dict[str, Any], total_seconds: float | None) -> None:
        """Count a completed job: its cost, reported balance and timings."""
        self.completed += 1
        self.spend += cost
        remaining = metrics.get("remaining_credits")
        if isinstance(remaining, int | float) and not isinstance(remaining, bool):
            self.remaining_credits = float(remaining)
        for key, name in (("queue_time", "queue"), ("inference_time", "inference")):
            value = metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                self.latency[name].append(float(value))
        if total_seconds is not None:
            self.latency["total"].append(total_seconds)

    @property
    def finished(self) -> int:
        return self.completed + sum(self.failed.values())

    @property
    def api_calls_per_job(self) -> float:
        """Requests to the API (not media downloads) per finished job."""
        api = sum(n for kind, n in self.calls.items() if kind != "download")
        return api / self.finished if self.finished else 0.0


def percentile(samples: LatencySketch | array[float] | list[float], q: float) -> float | None:
    """The q-th percentile (0-100, nearest rank) of `samples`, or None when there are none."""
    if isinstance(samples, LatencySketch):
        return samples.quantile(q)
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
