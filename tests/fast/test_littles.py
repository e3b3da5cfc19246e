"""Little's law for the in-flight cap, and the engine following it (virtual time, no sockets)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from batchgen.core.littles import AUTO_CEILING, in_flight_cap, limits
from batchgen.engine.admission import Admission
from batchgen.testing import settle
from tests.fast.sim import JitteredApi, run_engine


def test_cap_is_rate_times_time_held_with_headroom():
    # 50 jobs a minute, a slow job 35 s, 2 s of poll delay: 0.833 x 37 = 30.8 in flight at least.
    cap = in_flight_cap(50 / 60, 35.0, 2.0)
    assert 50 / 60 * 37 < cap <= 50 / 60 * 37 * 1.5 + 2
    assert in_flight_cap(100 / 60, 35.0, 2.0) > cap  # more rate, more slots
    assert in_flight_cap(50 / 60, 70.0, 2.0) > cap  # slower jobs, more slots
    assert in_flight_cap(5 / 60, 0.05) >= 1


def test_cap_stops_at_the_ceiling_and_unknown_rates_use_it():
    assert in_flight_cap(1000.0, 30.0) == AUTO_CEILING
    assert in_flight_cap(1000.0, 30.0, ceiling=40) == 40
    assert in_flight_cap(float("inf"), 30.0, ceiling=40) == 40


def test_dataset_manifest_plan_uses_the_rate():
    """jobs/dataset.yaml: rpm 50, ~28 s jobs. 8 in flight plans 17.1 images/min; auto >= 45."""
    fixed = limits(50, 1.0, 28.0, 8)
    assert fixed.per_minute == pytest.approx(8 * 60 / 28)
    assert fixed.binding == "concurrency"
    assert "--concurrency auto" in fixed.lift()
    auto = limits(50, 1.0, 28.0, None)
    assert auto.per_minute >= 45
    assert auto.binding == "rate"
    assert "higher rate" in auto.lift()


def test_auto_at_a_ceiling_says_so():
    capped = limits(100_000, 1.0, 28.0, None)
    assert capped.binding == "concurrency"
    assert f"ceiling ({AUTO_CEILING})" in capped.lift()


async def test_slots_grow_and_shrink_while_jobs_wait():
    slots = Admission(1, probe=False)
    await slots.acquire_slot()
    waiters = [asyncio_task(slots.acquire_slot()) for _ in range(3)]
    await settle()
    assert slots.in_use == 1
    slots.resize(3)  # two more get in at once
    await settle()
    assert slots.in_use == 3
    assert sum(t.done() for t in waiters) == 2
    slots.resize(1)  # shrink: nobody new until the count is under it
    slots.release_slot()
    slots.release_slot()
    await settle()
    assert slots.in_use == 1
    assert sum(t.done() for t in waiters) == 2
    slots.release_slot()
    await settle()
    assert all(t.done() for t in waiters)
    assert slots.in_use == 1


def asyncio_task(coro: Any) -> asyncio.Future[Any]:
    return asyncio.ensure_future(coro)


def submits_per_minute(api: JitteredApi, after: float) -> float:
    times = [t for t in api.submitted_at if t >= after]
    return (len(times) - 1) / (times[-1] - times[0]) * 60


async def test_auto_concurrency_grows_with_the_learned_latency_and_uses_the_rate(tmp_path: Path):
    """A wrong prior (2 s) for 28 ± 4 s jobs at rpm 50: the cap starts small, grows as the
    plan learns, and once the first jobs are back the run submits >= 45 a minute, where 8
    fixed slots submit ~17."""
    n = 150
    engine, api = await run_engine(tmp_path, n, concurrency=None, rpm=50, typical_seconds=2.0)
    start = in_flight_cap(50 / 60, 2.0 * 1.25)
    assert engine.throttle.admission.peak > 3 * start
    assert engine.throttle.admission.peak <= AUTO_CEILING
    assert submits_per_minute(api, after=60.0) >= 45
    _, fixed = await run_engine(tmp_path / "fixed", n, concurrency=8, rpm=50, typical_seconds=28.0)
    assert submits_per_minute(fixed, after=60.0) < 20
