"""Helpers for the scale-out tests: manifests, runs of every shard, id -> sha256 maps."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from batchgen.cli.main import main
from batchgen.core.shard import Shard
from batchgen.emulator import Emulator
from batchgen.run.runner import RunResult, run_manifest
from tests.helpers import FAST, write_jsonl

SCALE = {**FAST, "concurrency": 16}  # the shard tests keep twice as many jobs in flight


def write_prompts(path: Path, n: int) -> Path:
    """`n` jobs without explicit seeds: batchgen resolves each seed from the job id."""
    return write_jsonl(path, ({"prompt": f"scale test {i}"} for i in range(n)))


async def run(manifest: Path, out: Path | str, emu: Emulator, **kw: Any) -> RunResult:
    return await run_manifest(
        manifest, api_key="emulator-key", out=out, base_url=emu.base_url, overrides=SCALE,
        expect_seconds=0.05, quiet=True, **kw,
    )  # fmt: skip


async def run_shards(
    manifest: Path, out: Path | str, emu: Emulator, count: int, **kw: Any
) -> list[RunResult]:
    """All `count` shards at once, in one process, on one output (as N pods would)."""
    return list(
        await asyncio.gather(
            *(run(manifest, out, emu, shard=Shard(i, count), **kw) for i in range(count))
        )
    )


def local_hashes(out: Path) -> dict[str, str]:
    """id -> sha256 of the image file each metadata row names (read from disk)."""
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    return {r["id"]: hashlib.sha256((out / r["file_name"]).read_bytes()).hexdigest() for r in rows}


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)
