"""A simulated run for the fast tier: jobs of seeded, jittered latency, no disk on the submit path.

`FakeApi` with jobs of `mean` ± `jitter` seconds, an in-memory ledger, and image storing
replaced by a count: thousands of jobs in virtual time, without a file written per job.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from batchgen.core.jobs import Job
from batchgen.core.wire import Submitted
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.testing import FakeApi, SteppedClock

__all__ = ["JitteredApi", "MemoryLedger", "run_engine"]


class JitteredApi(FakeApi):
    """Jobs of `mean` ± `jitter` seconds (seeded); remembers when each submit came."""

    def __init__(self, clock: SteppedClock, mean: float, jitter: float, seed: int) -> None:
        super().__init__(clock, latency=mean)
        self.mean, self.jitter = mean, jitter
        self.rng = random.Random(seed)
        self.submitted_at: list[float] = []

    async def submit(self, model: str, params: dict[str, Any]) -> Submitted:
        self.latency = self.rng.uniform(self.mean - self.jitter, self.mean + self.jitter)
        self.submitted_at.append(self.clock.now())
        return await super().submit(model, params)


class MemoryLedger:
    """The ledger without a disk: a real one fsyncs every group of appends."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def append(self, event: str, **fields: Any) -> None:
        self.records.append({"event": event, **fields})


async def run_engine(
    tmp_path: Path,
    n: int,
    mean: float = 28.0,
    jitter: float | None = None,
    *,
    probes: int | None = None,
    **config: Any,
) -> tuple[Engine, JitteredApi]:
    """Run `n` jobs of `mean` ± `jitter` (default mean/7) seconds; `probes` overrides the
    planner's probe jobs (0: no probe schedule, the poll plan as it was)."""
    clock = SteppedClock()
    api = JitteredApi(clock, mean, mean / 7 if jitter is None else jitter, seed=3)
    ledger: Any = MemoryLedger()
    engine = Engine(api, ledger, EngineConfig(out_dir=tmp_path / "out", **config), clock=clock)

    async def store(*_args: Any) -> None:
        engine.stats.completed += 1

    engine.storing.store = store  # type: ignore[method-assign]
    if probes is not None:
        engine.plans.probes = probes
    jobs = [Job(id=f"j{i}", model="qwen-image", params={"prompt": f"p{i}"}) for i in range(n)]
    stats = await clock.run(engine.run(jobs))
    assert stats.completed == n
    return engine, api
