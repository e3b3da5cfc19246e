"""Run a manifest from Python: the same engine as `batchgen run`, with its result in hand.

    python examples/run_manifest.py [MANIFEST] [OUT_DIR]

Uses the built-in emulator so it runs anywhere; drop `emulator=True` and set SEGMIND_API_KEY to
run against the real service.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import batchgen

ROOT = Path(__file__).resolve().parent.parent


async def main(manifest: Path, out: Path) -> int:
    result = await batchgen.run_manifest(manifest, out=out, emulator=True)
    stats = result.stats
    failed = sum(stats.failed.values())
    print(f"{stats.completed} completed, {failed} failed, output in {result.out_dir}")
    print(f"{stats.api_calls_per_job:.2f} API calls per job")
    return result.exit_code


if __name__ == "__main__":
    manifest = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "jobs" / "quickstart.yaml"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("out") / "example"
    sys.exit(asyncio.run(main(manifest, out)))
