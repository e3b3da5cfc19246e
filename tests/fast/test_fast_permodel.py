"""A run mixing models learns each one's latency apart (a poll plan per model), in virtual time.

A 1 s model and a 10 s model in one run: one plan fitted on the mixture either polls the fast
jobs at the slow one's time (each fast image seen seconds late) or polls the slow jobs early and
again. With a plan per model, after the first wave every job is polled about once, at its own
model's time.
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean
from typing import Any

from batchgen.core.jobs import Job
from batchgen.core.pollplans import PollPlans
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.testing import FakeApi, SteppedClock
from tests.fast.sim import MemoryLedger

FAST, SLOW = "fast/model", "slow/model"  # pass-through slugs: no table, no prior of their own
LATENCY = {FAST: 1.0, SLOW: 10.0}
CONCURRENCY = 20


async def _mixed_run(tmp_path: Path, n: int, **config: Any) -> FakeApi:
    """`n` jobs alternating between the two models; images are counted, not stored."""
    clock = SteppedClock()
    api = FakeApi(clock, latencies=LATENCY)
    settings: dict[str, Any] = {"concurrency": CONCURRENCY, "typical_seconds": 3.0, **config}
    engine = Engine(api, MemoryLedger(), EngineConfig(out_dir=tmp_path, **settings), clock=clock)  # type: ignore[arg-type]

    async def store(*_args: Any) -> None:
        engine.stats.completed += 1

    engine.storing.store = store  # type: ignore[method-assign]
    models = (FAST, SLOW)
    jobs = [Job(id=f"j{i}", model=models[i % 2], params={"prompt": f"p{i}"}) for i in range(n)]
    stats = await clock.run(engine.run(jobs))
    assert stats.completed == n
    return api


async def test_two_models_are_each_polled_about_once_per_job(tmp_path: Path):
    """After the first two waves (the jobs in flight before each model's plan had learned):
    at most 2.3 calls per job (submit + polls) for each model, and each image seen within a
    tenth of its model's latency. A single shared plan fails one of the two for one model."""
    api = await _mixed_run(tmp_path, 240)
    later = [r for r in api.model_of if int(r.removeprefix("req-")) > 2 * CONCURRENCY]
    for model, latency in LATENCY.items():
        mine = [r for r in later if api.model_of[r] == model]
        calls = 1 + mean(api.polls[r] for r in mine)
        late = mean(api.seen_at[r] - api.done_at[r] for r in mine)
        assert calls <= 2.3, (model, calls)
        assert late <= 0.1 * latency, (model, late)


def test_each_model_has_its_own_prior_and_resume_seeds():
    """A planner per model, made on first use from the model's prior (else the fallback);
    resume seeds go to their own model's planner; the in-flight cap is sized for the slowest."""
    plans = PollPlans(3.0, {"qwen-image": 28.0})
    plans.seed({FAST: [1.0] * 8, SLOW: [10.0] * 8})
    assert plans.of(FAST).plan == (1.0,)
    assert plans.of(SLOW).plan == (10.0,)
    assert plans.of("qwen-image").settled is False  # made now, from its own prior
    assert plans.of("qwen-image").plan[-1] > 28.0
    assert plans.of("other/model").plan[-1] < 3.0 * 1.25 + 1e-9  # the fallback's prior
    high, delay = plans.fit() or (0.0, 0.0)
    assert high == plans.of("qwen-image").latency_high()
    assert high + delay == max(p.latency_high() + p.poll_delay() for _, p in plans)
