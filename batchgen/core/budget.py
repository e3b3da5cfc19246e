"""Money rules, pure: what a finished job cost, and whether one more submit is affordable.

Projected spend = what completed jobs cost + a reservation of one image's price for every job in
flight (accepted or being submitted) + the job about to be sent. Submitting stops *before* that
would pass the budget, or the balance the server last reported, so a run never overshoots by a
burst of in-flight jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgen.core.runstats import RunStats

__all__ = ["Reservations", "expected_price", "job_cost", "unaffordable"]

_SLACK = 1e-9  # float sums of prices must not refuse the job that exactly reaches the cap


def job_cost(metrics: Mapping[str, Any], price: float | None) -> float:
    """What a completed job cost: the server's `metrics.cost` when given, else the set price."""
    cost = metrics.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        return float(cost)
    return price or 0.0


def expected_price(stats: RunStats, price: float | None) -> float | None:
    """The expected cost of the next image: the average charged so far, else the set price."""
    if stats.completed and stats.spend > 0:
        return stats.spend / stats.completed
    return price


def unaffordable(
    stats: RunStats, price: float | None, budget: float | None, spent_before: float = 0.0
) -> str | None:
    """Why one more submit would be unaffordable (the message for the user), or None.

    `spent_before`: what earlier runs of the same output folder spent; a budget covers the
    folder, so resuming an interrupted run does not grant it a second budget.
    """
    unit = expected_price(stats, price)
    if unit is None:
        return None
    committed = (stats.in_flight + 1) * unit
    spent = spent_before + stats.spend
    if budget is not None and spent + committed > budget + _SLACK:
        return (
            f"budget reached: ${spent:.2f} spent + ${committed - unit:.2f} in flight; "
            f"one more image (${unit:.2f}) would pass budget_usd ${budget:.2f}"
        )
    credits = stats.remaining_credits
    if credits is not None and committed > credits + _SLACK:
        return (
            f"the account balance (${credits:.2f} reported) would not cover the jobs in flight "
            "and one more: top up, then run the same command to resume"
        )
    return None


class Reservations:
    """The jobs in flight whose cost is not counted yet (accepted, or being submitted).

    `stats.in_flight` mirrors their number, so `unaffordable` reserves a price for each; the
    engine's stages add and drop them as jobs are accepted, forgotten, counted or fail.
    """

    def __init__(self, stats: RunStats) -> None:
        self._stats = stats
        self._ids: set[str] = set()

    def add(self, job_id: str) -> None:
        self._ids.add(job_id)
        self._stats.in_flight = len(self._ids)

    def discard(self, job_id: str) -> None:
        self._ids.discard(job_id)
        self._stats.in_flight = len(self._ids)
