"""Running the engine against a recording emulator and reading figures off what the server saw.

Shared by the chaos soak and the outage test. Time is scaled: `minute` seconds stand for 60, and
the runner's backoff, outage probes and per-call timeouts are scaled with it, so a run that would
take hours against the real service takes seconds and still exercises the same decisions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgen.core.circuit import OutagePolicy
from batchgen.core.jobs import Job
from batchgen.core.policy import Backoff
from batchgen.core.runstats import RunStats
from batchgen.edges.client import ApiClient, Timeouts
from batchgen.edges.ledger import LedgerWriter
from batchgen.emulator import Emulator, EmulatorConfig
from batchgen.emulator.requestlog import RequestLog
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.manifest.loader import load_manifest
from tests.helpers import write_jsonl

from ..conftest import KEY

API_ROUTES = ("submit", "status", "result")


def make_jobs(folder: Path, n: int) -> list[Job]:
    """n distinct jobs from a real JSONL manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jobs.jsonl"
    write_jsonl(path, ({"prompt": f"soak {i}", "aspect_ratio": "1:1"} for i in range(n)))
    return list(load_manifest(path).jobs())


def scaled_engine(minute: float, **overrides: Any) -> dict[str, Any]:
    """EngineConfig knobs with the runner's real-time defaults compressed to a `minute`."""
    scale = minute / 60.0
    knobs: dict[str, Any] = {
        "window": minute,
        # Real time: 0.5 s doubling to 30 s, 8 tries. The time bound per failure streak (10 min
        # real) is kept at 30 s or more: CPU time does not compress with the minute, and a
        # loaded machine must not turn a slow event loop into jobs that give up.
        "backoff": Backoff(
            base=0.5 * scale, cap=30.0 * scale, max_attempts=8, max_elapsed=max(30.0, 600 * scale)
        ),
        "outage": OutagePolicy().scaled(scale),
    }
    knobs.update(overrides)
    return knobs


@dataclass
class Run:
    stats: RunStats
    server: dict[str, Any]
    log: RequestLog
    wall: float
    started: float  # emulator clock at the engine's start


async def run_soak(
    emu_config: EmulatorConfig, jobs: list[Job], out: Path, timeouts: Timeouts, **engine: Any
) -> Run:
    """One run of `jobs` against a fresh emulator; the arrival log and counters come back."""
    async with Emulator(emu_config) as emu:
        async with ApiClient(KEY, emu.base_url, timeouts=timeouts) as api, \
                LedgerWriter(out / "ledger.jsonl") as ledger:  # fmt: skip
            runner = Engine(api, ledger, EngineConfig(out_dir=out, **engine))
            started, emu_started = time.monotonic(), emu.state.clock.now()
            stats = await runner.run(jobs)
            wall = time.monotonic() - started
        assert emu.state.log is not None, "the scenario must set log_requests=True"
        return Run(stats, emu.stats(detail=False), emu.state.log, wall, emu_started)
