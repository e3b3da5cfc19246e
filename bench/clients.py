"""One client run against an emulator, in its own process, measured from inside that process.

    python bench/clients.py '{"client": "batchgen"|"sdk", "url": ..., "jobs": N, ...}'

Prints one JSON line: wall seconds, CPU seconds (`getrusage(RUSAGE_SELF)` user+sys delta over
the run only: the interpreter start, imports and writing the manifest are excluded; every thread
of the process is included), peak RSS (`ru_maxrss` of the process at the end, imports included),
completed and failed jobs, and when the first and the last image were stored (for the rate at
which images come once the pipeline is full). Both clients write every image to a temporary
folder.

* batchgen: the `Engine` in-process (asyncio, one aiohttp session), with the rate window,
  expected latency and backoff scaled like the emulator's clock.
* sdk: what a user of the official `segmind` SDK would write: one `SegmindClient`, a
  `ThreadPoolExecutor(C)`, `client.submit_async(...).wait()` (SDK defaults: status poll every
  1.0 s, 600 s deadline, no retries; the interval is multiplied by the time scale when the
  scenario runs scaled time), then `httpx` downloads `output` and the bytes go to a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

MODEL = "qwen-image"


def _usage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # CPU s, MB (KiB on Linux)


async def _batchgen(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    from batchgen.core.policy import Backoff
    from batchgen.edges.client import ApiClient
    from batchgen.edges.ledger import LedgerWriter
    from batchgen.engine.pipeline import Engine, EngineConfig
    from batchgen.manifest.loader import load_manifest

    manifest = tmp / "jobs.jsonl"
    lines = (json.dumps({"prompt": f"bench {i}"}) + "\n" for i in range(spec["jobs"]))
    manifest.write_text("".join(lines))
    jobs = list(load_manifest(manifest, model=MODEL).jobs())
    scale = spec.get("scale", 1.0)
    out = tmp / "out"
    config = EngineConfig(
        out_dir=out,
        concurrency=spec["concurrency"],  # None: auto, batchgen's default
        rpm=spec.get("rpm"),
        window=60.0 * scale,
        count_polls=spec.get("count_polls", False),
        typical_seconds=spec["latency"],  # what --expect-seconds would say
        backoff=Backoff(base=0.5 * scale, cap=30.0 * scale, max_elapsed=600.0 * scale),
    )
    cpu0, _ = _usage()
    started, epoch = time.perf_counter(), time.time()
    async with (
        ApiClient("emulator-key", spec["url"]) as api,
        LedgerWriter(out / "ledger.jsonl") as ledger,
    ):
        stats = await Engine(api, ledger, config).run(jobs)
    wall = time.perf_counter() - started
    cpu1, rss = _usage()
    records = map(json.loads, (out / "ledger.jsonl").read_text().splitlines())
    stored = [r["t"] - epoch for r in records if r["event"] == "completed"]  # ms resolution
    return {
        "wall_s": wall,
        "cpu_s": cpu1 - cpu0,
        "peak_rss_mb": rss,
        "completed": stats.completed,
        "failed": sum(stats.failed.values()),
        "errors": dict(stats.failed),
        "image_times": _span(stored),
    }


def _span(times: list[float]) -> list[float] | None:
    """[first, last] second at which an image was stored, from the start (None: under two)."""
    return [min(times), max(times)] if len(times) > 1 else None


def _sdk(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    import httpx
    from segmind import SegmindClient  # type: ignore[import-untyped]

    client = SegmindClient(api_key="emulator-key", base_url=f"{spec['url']}/v1")
    http = httpx.Client(timeout=30.0)
    interval = 1.0 * spec.get("scale", 1.0)  # the SDK's default, in the scenario's time

    stored: list[float] = []

    def one(i: int) -> None:
        result = client.submit_async(MODEL, prompt=f"bench {i}").wait(interval=interval)
        answer = http.get(result["output"])
        answer.raise_for_status()
        (tmp / f"{i}.img").write_bytes(answer.content)
        stored.append(time.perf_counter() - started)

    errors: Counter[str] = Counter()
    cpu0, _ = _usage()
    started = time.perf_counter()
    with ThreadPoolExecutor(spec["concurrency"]) as pool:
        futures = [pool.submit(one, i) for i in range(spec["jobs"])]
        for future in as_completed(futures):
            exc = future.exception()
            if exc is not None:
                errors[f"{type(exc).__name__}:{getattr(exc, 'status', '')}"] += 1
    wall = time.perf_counter() - started
    cpu1, rss = _usage()
    failed = sum(errors.values())
    return {
        "wall_s": wall,
        "cpu_s": cpu1 - cpu0,
        "peak_rss_mb": rss,
        "completed": spec["jobs"] - failed,
        "failed": failed,
        "errors": dict(errors),
        "image_times": _span(stored),
    }


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        # A catalogue of its own per measurement: images reused from an earlier one would hide
        # the requests this measures (the Engine here does not read it; run_manifest would).
        os.environ["BATCHGEN_CATALOG"] = str(tmp / "catalog.sqlite")
        sdk = spec["client"] == "sdk"
        row = _sdk(spec, tmp) if sdk else asyncio.run(_batchgen(spec, tmp))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
