"""Latency percentiles in fixed memory: exact while small, within 1 % (nearest rank) past it."""

from __future__ import annotations

import random

import pytest

from batchgen.core.runstats import RunStats, percentile
from batchgen.core.sketch import ACCURACY, EXACT, LatencySketch


def exact(samples: list[float], q: float) -> float:
    return percentile(samples, q)  # type: ignore[return-value]


def test_small_runs_are_exact():
    rng = random.Random(1)
    xs = [rng.uniform(0.5, 40.0) for _ in range(EXACT)]
    sketch = LatencySketch()
    for x in xs:
        sketch.append(x)
    for q in (1, 50, 95, 100):
        assert sketch.quantile(q) == exact(xs, q)


@pytest.mark.parametrize("n", [EXACT + 1, 20_000, 200_000])
def test_large_runs_stay_within_one_percent_in_bounded_memory(n: int):
    rng = random.Random(n)
    xs = [rng.lognormvariate(1.0, 1.2) for _ in range(n)]
    sketch = LatencySketch()
    for x in xs:
        sketch.append(x)
    assert len(sketch) == n
    for q in (5, 50, 95, 99):
        got, want = sketch.quantile(q), exact(xs, q)
        assert got is not None
        assert abs(got - want) <= ACCURACY * want * 1.0001
    assert sketch.buckets < 1400  # bounded by the range of values, not by n


def test_nonsense_is_ignored_and_zeros_are_kept():
    sketch = LatencySketch()
    for x in (float("nan"), -1.0, float("inf")):
        sketch.append(x)
    assert sketch.quantile(50) is None
    for _ in range(2000):
        sketch.append(0.0)
    sketch.append(3.0)
    assert sketch.quantile(50) == 0.0
    assert sketch.quantile(100) == pytest.approx(3.0, rel=ACCURACY)


def test_run_stats_percentiles_read_the_sketch():
    stats = RunStats()
    for i in range(1, 11):
        stats.complete(0.0, {"queue_time": 0.1, "inference_time": i / 10}, float(i))
    assert percentile(stats.latency["total"], 50) == 5.0
    assert percentile(stats.latency["inference"], 95) == 1.0
