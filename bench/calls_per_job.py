"""API calls per job, counted by the emulator, at its default latency and under the chaos profile.

    python bench/calls_per_job.py [--jobs N]

Not a unit test: figures go in closing notes. "API calls" exclude media downloads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from batchgen.core.policy import Backoff
from batchgen.edges.client import ApiClient
from batchgen.edges.ledger import LedgerWriter
from batchgen.emulator import Emulator, EmulatorConfig, parse_fault
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.manifest.loader import load_manifest

CHAOS = ("*:429=0.10", "status:503=0.025", "result:502=0.025", "submit:accepted-503=0.025",
         "submit:500=0.025", "*:reset=0.02", "media:truncate=0.01")  # fmt: skip


async def measure(name: str, config: EmulatorConfig, jobs: int, rpm: float | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "jobs.jsonl"
        manifest.write_text("".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(jobs)))
        out = Path(tmp) / "out"
        async with Emulator(config) as emu:
            async with ApiClient("emulator-key", emu.base_url) as api, \
                    LedgerWriter(out / "ledger.jsonl") as ledger:  # fmt: skip
                engine = Engine(api, ledger, EngineConfig(
                    out_dir=out, concurrency=50, rpm=rpm, window=1.0,
                    typical_seconds=config.latency, backoff=Backoff(0.02, 0.5),
                ))  # fmt: skip
                started = time.monotonic()
                stats = await engine.run(load_manifest(manifest).jobs())
                wall = time.monotonic() - started
            server = emu.stats(detail=False)
    api_calls = server["requests_total"] - server["requests"].get("media", 0)
    return {
        "scenario": name,
        "jobs": jobs,
        "completed": stats.completed,
        "failed": sum(stats.failed.values()),
        "api_calls_per_job": round(api_calls / jobs, 3),
        "engine_api_calls_per_job": round(stats.api_calls_per_job, 3),
        "duplicate_paid_submits": server["duplicate_paid_submits"],
        "possible_double_charges_reported": stats.possible_double_charges,
        "over_limit_429": server["rate_limited"],
        "wall_s": round(wall, 2),
    }


async def main(jobs: int) -> None:
    default = EmulatorConfig(workers=50)
    chaos = EmulatorConfig(workers=50, seed=7, rpm=400, rate_window=1.0, fail_rate=0.02,
                           fault_reset_seconds=0.02,
                           faults=tuple(parse_fault(r) for r in CHAOS))  # fmt: skip
    for row in (await measure("default", default, jobs, None),
                await measure("chaos", chaos, jobs, 400)):  # fmt: skip
        print(json.dumps(row))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    asyncio.run(main(parser.parse_args().jobs))
