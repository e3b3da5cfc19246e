"""The poll plan: fits its call budget, sits on the delay/polls frontier, learns and backs off."""

from __future__ import annotations

import itertools
import random

import pytest

from batchgen.core.pollplan import PollPlanner, completion_time, plan_polls


def evaluate(plan: tuple[float, ...], latencies: list[float]) -> tuple[float, float]:
    """(mean polls, mean delay between finishing and being seen) of `plan` on `latencies`."""
    polls = delay = 0.0
    for x in latencies:
        for t in plan:
            polls += 1
            if t >= x:
                delay += t - x
                break
    return polls / len(latencies), delay / len(latencies)


def uniform(low: float, high: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(n)]


@pytest.mark.parametrize(("low", "high"), [(1.5, 2.5), (2.4, 3.2), (0.4, 0.6), (20.0, 40.0)])
@pytest.mark.parametrize("budget", [1.0, 1.4, 2.0])
def test_plan_fits_the_budget_and_sees_every_sample(low: float, high: float, budget: float):
    samples = uniform(low, high, 256, seed=7)
    plan = plan_polls(samples, budget)
    assert list(plan) == sorted(plan)
    assert plan[-1] == max(samples)  # no sampled job outlives the plan
    polls, _ = evaluate(plan, samples)
    assert polls <= budget + 1e-9


def test_more_budget_buys_less_delay():
    samples = uniform(1.5, 2.5, 256, seed=3)
    delays = [evaluate(plan_polls(samples, b), samples)[1] for b in (1.0, 1.2, 1.4, 2.0, 3.0)]
    assert delays == sorted(delays, reverse=True)
    assert delays[-1] < delays[0] / 3


def test_plan_is_on_the_frontier_of_small_plans():
    """No plan of up to three polls at the sample quantiles is both cheaper and quicker."""
    samples = uniform(1.5, 2.5, 96, seed=11)
    plan = plan_polls(samples, 1.4)
    polls, delay = evaluate(plan, samples)
    candidates = [*sorted(set(samples))[::4], max(samples)]
    for size in (1, 2, 3):
        for combo in itertools.combinations(candidates[:-1], size - 1):
            other = (*combo, max(samples))
            other_polls, other_delay = evaluate(other, samples)
            assert not (other_polls <= polls - 1e-9 and other_delay < delay - 1e-9), other


def test_plan_beats_the_mean_and_spread_schedule_it_replaced():
    """The old rule (first poll at mean + spread/2, then steps of spread/2 growing 1.5x) for
    1.5-2.5 s jobs, against a plan with no more polls: at least a fifth less delay."""
    samples = uniform(1.5, 2.5, 256, seed=5)
    old = (2.125, 2.25, 2.4375, 2.71875, 3.140625)
    old_polls, old_delay = evaluate(old, samples)
    polls, delay = evaluate(plan_polls(samples, old_polls), samples)
    assert polls <= old_polls + 1e-9
    assert delay <= 0.8 * old_delay


def test_planner_starts_from_the_typical_latency_then_learns():
    planner = PollPlanner(typical_seconds=28.0)
    assert 21.0 <= planner.delay(0, 0.0) <= 35.0  # typical ± 25 %
    for x in uniform(1.8, 2.2, 8, seed=1):
        planner.observe(x)
    assert 1.8 <= planner.delay(0, 0.0) <= 2.2
    assert planner.observed == 8


def test_planner_ignores_nonsense_and_learns_midpoints():
    planner = PollPlanner(typical_seconds=10.0)
    planner.observe(float("nan"))
    planner.observe(-1.0)
    assert planner.observed == 0
    for _ in range(8):
        planner.observe_between(1.0, 3.0)
    assert planner.plan == (2.0,)


def test_planner_skips_plan_points_already_passed():
    planner = PollPlanner(typical_seconds=10.0)
    plan = planner.plan
    assert len(plan) >= 2
    assert planner.delay(1, plan[0]) == pytest.approx(plan[1] - plan[0])
    # A resumed job older than the whole plan: polled soon, not at the plan's start.
    assert planner.delay(0, plan[-1] + 100) < plan[0]


def test_stragglers_back_off_geometrically_within_bounds():
    planner = PollPlanner(typical_seconds=10.0, min_interval=0.1, max_interval=5.0)
    end = planner.plan[-1]
    delays = [planner.delay(n, end + 1.0) for n in range(len(planner.plan), len(planner.plan) + 12)]
    assert delays == sorted(delays)
    assert delays[0] >= 0.1
    assert delays[-1] == 5.0


def test_completion_time_prefers_the_servers_timings():
    """Server-reported timings beat our poll-granular observation, but never exceed it."""
    assert completion_time({"total_time": 1.2}, observed=1.5) == 1.2
    assert completion_time({"queue_time": 0.3, "inference_time": 0.5}, observed=1.5) == 0.8
    assert completion_time({"inference_time": 0.5}, observed=1.5) is None  # no queue figure
    assert completion_time({"total_time": 9.0}, observed=1.5) == 1.5  # never above what we saw
    assert completion_time({"total_time": "x"}, observed=1.5) is None
