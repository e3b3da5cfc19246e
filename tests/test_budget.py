"""Money rules without a network: job cost, expected price, the affordability check."""

from __future__ import annotations

import pytest

from batchgen.core.budget import expected_price, job_cost, unaffordable
from batchgen.core.runstats import RunStats


def stats(spend: float = 0.0, completed: int = 0, in_flight: int = 0, credits=None) -> RunStats:
    s = RunStats(completed=completed, spend=spend, in_flight=in_flight)
    s.remaining_credits = credits
    return s


def test_job_cost_prefers_the_servers_figure():
    """metrics.cost wins; a missing or nonsense cost falls back to the price."""
    assert job_cost({"cost": 0.1}, 0.12) == 0.1
    assert job_cost({}, 0.12) == 0.12
    assert job_cost({"cost": True}, 0.12) == 0.12
    assert job_cost({"cost": -1}, None) == 0.0


def test_expected_price_learns_from_charges():
    """Before any charge, the set price; after, the average charged."""
    assert expected_price(stats(), 0.12) == 0.12
    assert expected_price(stats(spend=0.5, completed=5), 0.12) == pytest.approx(0.1)
    assert expected_price(stats(), None) is None


@pytest.mark.parametrize(
    ("s", "budget", "stops"),
    [
        (stats(spend=0.36, completed=3, in_flight=1), 0.6, False),  # 0.36 + 2 x 0.12 = 0.60
        (stats(spend=0.36, completed=3, in_flight=2), 0.6, True),  # 0.36 + 3 x 0.12 > 0.60
        (stats(in_flight=4), 0.6, False),  # 5 x 0.12 = 0.60 exactly
        (stats(in_flight=5), 0.6, True),
        (stats(in_flight=100), None, False),  # no budget
    ],
)
def test_budget_counts_reservations_for_jobs_in_flight(s: RunStats, budget, stops: bool):
    """Spend plus one price per job in flight plus the next must stay within the budget."""
    reason = unaffordable(s, 0.12, budget)
    assert (reason is not None) is stops
    if stops:
        assert "budget reached" in reason


def test_reported_balance_is_watched():
    """A reported balance that cannot cover the jobs in flight and one more stops submitting."""
    assert unaffordable(stats(in_flight=1, credits=0.3), 0.12, None) is None
    reason = unaffordable(stats(in_flight=2, credits=0.3), 0.12, None)
    assert reason is not None
    assert "top up" in reason


def test_unknown_price_never_blocks():
    """Without any price (a pass-through model, nothing charged yet) there is nothing to project."""
    assert unaffordable(stats(in_flight=50), None, 0.01) is None


def test_earlier_runs_spending_counts_against_the_budget():
    """A resumed run starts from what the folder already spent (recorded cost, else price:
    `history.History.spent`, tested in test_history and test_permodel_estimate)."""
    before = 0.1 + 0.12 + 0.1
    assert unaffordable(stats(), 0.12, 0.4, before) is not None  # 0.32 + 0.12 > 0.40
    assert unaffordable(stats(), 0.12, 0.44, before) is None
