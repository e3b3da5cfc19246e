"""What a run looks like as numbers: the live snapshot (progress, status lines) and the final
summary (console and `DIR/summary.json`). Pure: counters in, plain dicts out, so the console, the
JSON file and the tests all read the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchgen.core.floor import Limits, Work, floor_seconds
from batchgen.core.runstats import RunStats, percentile

__all__ = ["RunShape", "final_summary", "run_work", "snapshot"]


@dataclass(frozen=True)
class RunShape:
    """What is known about a run before it starts: its size and its limits."""

    total: int  # jobs in the manifest
    rpm: float | None
    window: float  # seconds of the rpm window
    concurrency: int
    typical_seconds: float
    count_polls: bool = False  # polls count against `rpm`
    sync: bool = False  # one blocking call per job: no polls


def snapshot(
    stats: RunStats, shape: RunShape, skipped: int, elapsed: float, price: float | None
) -> dict[str, Any]:
    """The live picture: counts by state, rate, ETA, spend so far and projected."""
    failed = sum(stats.failed.values())
    left = max(0, shape.total - skipped - stats.reused - stats.completed - failed - stats.released)
    waiting = max(0, left - stats.in_flight)
    per_minute = stats.completed / elapsed * 60 if elapsed > 0 else 0.0
    eta = left / per_minute * 60 if per_minute > 0 else None
    unit = stats.spend / stats.completed if stats.completed else price
    projected = stats.spend + left * unit if unit is not None else None
    return {
        "jobs": shape.total,
        "already_done": skipped,
        "waiting": waiting,
        "in_flight": stats.in_flight,
        "completed": stats.completed,
        "failed": failed,
        "reused": stats.reused,
        "saved_usd": round(stats.saved, 4),
        "images_per_minute": round(per_minute, 2),
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "spend_usd": round(stats.spend, 4),
        "projected_usd": round(projected, 4) if projected is not None else None,
        "rate_limited": stats.rate_limited,
        "api_calls_per_job": round(stats.api_calls_per_job, 3),
        "elapsed_seconds": round(elapsed, 1),
    }


def final_summary(
    stats: RunStats,
    shape: RunShape,
    *,
    skipped: int,
    failed_earlier: int,
    removed: int,
    wall: float,
    exit_code: int,
    double_charged: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The end-of-run report written to summary.json (and printed, shorter, on the console).

    `double_charged`: the folder's possible double charges from the ledger (all runs), listed
    so a user can check each against the provider's billing; `possible_double_charges` is this
    run's count.
    """
    ran = stats.completed + sum(stats.failed.values())
    work = run_work(stats, shape)
    polls_counted = shape.count_polls and not shape.sync
    floor = floor_seconds(work, Limits(shape.rpm, shape.window, shape.concurrency, polls_counted))
    return {
        "exit_code": exit_code,
        "stop_reason": stats.stop_reason,
        "outcome": {
            "completed": stats.completed,
            "failed": sum(stats.failed.values()),
            "left_for_rerun": stats.released,
            "already_done": skipped,
            "reused": stats.reused,  # from the catalogue: not generated, not paid, not in completed
            "failed_earlier_left_alone": failed_earlier,
            "removed_from_manifest": removed,
        },
        "failures": {
            kind: {"count": count, "examples": stats.examples.get(kind, [])}
            for kind, count in sorted(stats.failed.items())
        },
        "latency_seconds": {
            name: {"p50": _round(percentile(samples, 50)), "p95": _round(percentile(samples, 95))}
            for name, samples in stats.latency.items()
        },
        "api_calls": {"per_job": round(stats.api_calls_per_job, 3), **dict(stats.calls)},
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
        "resubmits_after_expiry": stats.resubmits,
        "reattached": stats.reattached,
        "refetched": stats.refetched,
        "possible_double_charges": stats.possible_double_charges,
        "possible_double_charge_jobs": double_charged or [],
        "spend_usd": round(stats.spend, 4),
        "saved_usd": round(stats.saved, 4),
        "remaining_credits": stats.remaining_credits,
        "wall_seconds": round(wall, 2),
        "floor_seconds": _round(floor) if ran else None,
        "floor_basis": {
            "submits": work.submits,
            "polls": work.polls,
            "tail_seconds": _round(work.tail),
        },
    }


def run_work(stats: RunStats, shape: RunShape) -> Work:
    """What this run had to do, from its counters, counted so that it never overstates:

    - submits: completed jobs less the re-attached and re-fetched ones (some re-attached jobs may
      have failed: then more were submitted than this says, which only lowers the bound);
    - polls: in queue mode every completed job that needed the server was polled at least once;
    - durations: the server's inference times, of which at least `submits - unreported` belong
      to submitted jobs: the smallest that many are used;
    - tail: the least end-to-end time of a completed job (a re-attached one's counts from its
      first submit, so it is longer, never shorter, than a submitted one's).
    """
    timed = max(0, stats.completed - stats.refetched)
    submits = max(0, timed - stats.reattached)
    inference = sorted(stats.latency["inference"])
    unreported = max(0, timed - len(inference))
    total = stats.latency["total"]
    return Work(
        submits=submits,
        polls=0 if shape.sync else timed,
        durations=inference[: max(0, submits - unreported)],
        tail=min(total) if total else 0.0,
    )


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
