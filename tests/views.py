"""Helpers for the grid / report / dataset tests: small real runs against the emulator."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from batchgen.cli.main import main
from batchgen.emulator import EmulatorConfig
from batchgen.run.runner import RunResult, run_manifest
from tests.helpers import FAST, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
FOX = "a red fox <script>window.pwned = 1</script> & friends"  # user text the page must escape
BIRD = "a blue bird [fail]"  # the emulator FAILS prompts containing [fail]
GUIDANCE = (2.5, 4, 7)


def cells_manifest(path: Path) -> Path:
    """prompt x guidance at seed 1: the BIRD row fails, (FOX, 7) is left out (a missing cell)."""
    rows = [
        {"prompt": p, "guidance": g, "seed": 1, "aspect_ratio": "1:1", "image_format": "png"}
        for p in (FOX, BIRD)
        for g in GUIDANCE
        if (p, g) != (FOX, 7)
    ]
    return write_jsonl(path, rows)


def run(manifest: Path, out: Path, **knobs: Any) -> RunResult:
    """One run of `manifest` into `out` against a fresh in-process emulator (seeded)."""
    return asyncio.run(
        run_manifest(
            manifest,
            out=out,
            overrides=FAST,
            emulator=EmulatorConfig(seed=7, latency=0.02, latency_jitter=0.01, **knobs),
            quiet=True,
        )
    )


def invoke(*args: str) -> Result:
    """The real CLI in-process (a subprocess costs seconds of imports on a loaded machine)."""
    return CliRunner().invoke(main, list(args))


def artifacts() -> Path:
    """Where tests leave pictures for people to look at (git-ignored; BATCHGEN_ARTIFACTS)."""
    folder = Path(os.environ.get("BATCHGEN_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
