"""Small helpers shared by many test modules, kept once: run settings for a quick run against the
emulator, a JSONL writer, and the real CLI as a process.

Fixtures live in `conftest.py` (the emulator, in-process or as a process); helpers for one group
of tests stay with it (`procs.py` for crash tests, `views.py`, `scale.py`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Run settings for a quick run against an emulator: no rate limit to speak of, a few jobs in flight.
FAST: dict[str, Any] = {"rpm": 6000, "concurrency": 8}


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write `rows` as a JSONL file (one JSON object a line, UTF-8) and return its path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI as a new user runs it: `python -m batchgen ARGS`, a process, in `cwd` (with
    exactly the variables `env`, when given)."""
    return subprocess.run(
        [sys.executable, "-m", "batchgen", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=env, check=False,
    )  # fmt: skip


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """The real CLI as a background process in `cwd`, for a test to watch, signal and reap."""
    return subprocess.Popen(
        [sys.executable, "-m", "batchgen", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )  # fmt: skip
