"""Real processes for crash tests: a `batchgen emulator` process that outlives the runner, a
`batchgen run` process to kill, and checks of what they left on disk and what the server saw."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from batchgen.core.lifecycle import State, replay
from tests.helpers import write_jsonl

ANNOUNCE = "batchgen emulator listening on "


def emulator_process(*args: str) -> Iterator[str]:
    """A `batchgen emulator --port 0 ARGS` process; yields its base URL, killed at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(ANNOUNCE), line
    try:
        yield line.removeprefix(ANNOUNCE).split(" ")[0]
    finally:
        proc.kill()
        proc.communicate()


def server_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_emulator/stats?detail=1", timeout=10) as resp:
        return dict(json.load(resp))


def write_jobs(path: Path, n: int) -> Path:
    return write_jsonl(path, ({"prompt": f"crash test {i}"} for i in range(n)))


def start_run(
    manifest: Path, out: Path, url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`batchgen run` as a process; `env` adds variables (e.g. the crashpoints.py test hooks)."""
    return subprocess.Popen(
        [sys.executable, "-m", "batchgen", "run", str(manifest), "--out", str(out),
         "--base-url", url, "--rpm", "6000", "--concurrency", "16", "--expect-seconds", "0.15",
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SEGMIND_API_KEY": "emulator-key", **(env or {})},
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def ledger_events(out: Path) -> int:
    path = out / "ledger.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for_events(out: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while ledger_events(out) < at_least:
        assert proc.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.01)


def unknown_submits(out: Path) -> int:
    """Jobs whose last record is a submit without an answer: the only ones a kill may bill twice."""
    with (out / "ledger.jsonl").open("rb") as handle:
        return sum(job.state is State.UNKNOWN for job in replay(handle).jobs.values())


def check_dataset(out: Path, n: int) -> None:
    """Every job exactly once: one verified image, one metadata row, sha256 as recorded."""
    rows = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == n
    assert len({r["id"] for r in rows}) == n
    with (out / "ledger.jsonl").open("rb") as handle:
        jobs = replay(handle).jobs
    assert sum(j.state is State.COMPLETED for j in jobs.values()) == n
    images = sorted(p.name for p in out.glob("*.png"))
    assert images == sorted(r["file_name"] for r in rows)
    for row in rows:
        data = (out / row["file_name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == jobs[row["id"]].sha256
        with Image.open(out / row["file_name"]) as image:
            image.load()
    assert not list(out.glob(".*.part"))
