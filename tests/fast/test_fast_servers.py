"""Fast servers seen fast: probe polls and an immediate replan, at no cost per job at 28 s."""

from __future__ import annotations

from pathlib import Path

from batchgen.core.pollplan import PROBE_JOBS, PollPlanner
from tests.fast.sim import run_engine


async def test_ten_fast_jobs_are_seen_at_once_not_at_the_models_28_s(tmp_path: Path):
    """10 jobs of 0.05 s at rpm 600 planned on qwen-image's 28 s: done in well under 20 s of
    virtual time (the old plan waited for its 28 s first poll, then for 8 samples)."""
    engine, api = await run_engine(
        tmp_path, 10, mean=0.05, jitter=0.02, concurrency=None, rpm=600, typical_seconds=28.0
    )
    assert engine.clock.now() < 5.0
    assert api.calls["poll"] <= 10 * 2 + 3 * PROBE_JOBS
    _, old = await run_engine(
        tmp_path / "old", 10, mean=0.05, jitter=0.02, probes=0, concurrency=None, rpm=600,
        typical_seconds=28.0,
    )  # fmt: skip
    assert old.clock.now() > 20.0  # without probes the first poll is the plan's, at ~21 s


async def test_at_the_real_latency_probes_add_a_handful_of_polls_per_run_not_per_job(
    tmp_path: Path,
):
    """28 ± 4 s jobs, rpm 50: polls per job with the probe schedule against without it."""
    n = 200
    config = {"concurrency": None, "rpm": 50, "typical_seconds": 28.0}
    _, after = await run_engine(tmp_path, n, **config)  # type: ignore[arg-type]
    _, before = await run_engine(tmp_path / "b", n, probes=0, **config)  # type: ignore[arg-type]
    extra = after.calls["poll"] - before.calls["poll"]
    assert 0 <= extra <= 3 * PROBE_JOBS  # the probe polls, once per run
    print(
        f"polls per job: before {before.calls['poll'] / n:.3f}, after {after.calls['poll'] / n:.3f}"
    )


def test_a_contradicting_first_sample_replans_at_once_and_resume_seeds_the_plan():
    planner = PollPlanner(28.0)
    first = planner.plan[0]
    probes = planner.probe()
    assert probes
    assert probes[-1] < first
    planner.observe(0.05)
    assert planner.plan == (0.05,)
    assert planner.version == 1
    assert planner.probe() == ()  # something finished: no more probes
    agreeing = PollPlanner(28.0)
    agreeing.observe(27.0)  # within the prior: the plan waits for more samples
    assert agreeing.version == 0
    resumed = PollPlanner(28.0)
    resumed.seed([2.0, 2.1, 1.9, 2.2, 2.0, 1.8, 2.05, 1.95, 2.1])
    assert resumed.settled
    assert 1.8 <= resumed.plan[0] <= 2.2
