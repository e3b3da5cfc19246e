"""Disk trouble: a full disk (a real 1 MB tmpfs, and ENOSPC injected at the write layer) and a
failing fsync. The run must stop with a clear message (exit 2), lose nothing it had recorded, and
finish on the next run once the disk is healthy, without paying twice.

The tmpfs test needs root (to mount). CI runs as root: there a failing mount FAILS the test.
On a non-root machine it is skipped with that reason; the injected-fault tests below exercise the
same code paths (image write, image fsync, ledger write, ledger fsync) anywhere.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchgen.core.lifecycle import State
from batchgen.edges.crashpoints import FAULT_ENV
from batchgen.edges.sinks import file_intact
from batchgen.manifest.loader import load_manifest
from tests.helpers import write_jsonl
from tests.procs import check_dataset, finish, server_stats, start_run, write_jobs
from tests.reliability.campaign import (
    campaign_seed,
    duplicate_problems,
    final_images_decode,
    job_by_fingerprint,
    read_ledger,
)

FREE_BYTES = 160 * 1024  # left free on the tmpfs: room for a few dozen jobs, not for all


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs, unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root); the injected faults cover it")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"running as root but could not mount a 1 MB tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def assert_recorded_intact(out: Path, context: str) -> int:
    """Every job the ledger calls completed has its image, sha256 as recorded; the ledger replays
    and no partial file is under a final name. Returns the number of completed jobs."""
    state = read_ledger(out)
    completed = [j for j in state.jobs.values() if j.state is State.COMPLETED]
    lost = [j.file for j in completed if not file_intact(out / str(j.file), j.sha256)]
    assert not lost, f"{context}: recorded images lost or damaged: {lost}"
    assert not final_images_decode(out), context
    return len(completed)


def resume_and_check(manifest: Path, out: Path, url: str, total: int, done_before: int) -> None:
    """The next run on a healthy disk finishes every job, skips what was done, pays once."""
    code, _, stderr = finish(start_run(manifest, out, url))
    assert code == 0, stderr[-2000:]
    check_dataset(out, total)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"]["already_done"] == done_before
    jobs = job_by_fingerprint(load_manifest(manifest).jobs())
    duplicates = {p: n for p, n in server_stats(url)["duplicates"].items() if p in jobs}
    listed = summary["possible_double_charge_jobs"]
    problems = duplicate_problems(duplicates, jobs, {entry["job"] for entry in listed}, listed)
    assert not problems, problems  # paid twice only where summary.json says it may have been


def test_disk_full_on_a_real_tmpfs(
    tmp_path: Path, tiny_disk: Path, module_emulator_url: str
) -> None:
    """A 1 MB tmpfs fills up mid-run: exit 2 naming the full disk; after a remount with room,
    the same command finishes."""
    total = 60
    manifest = write_jobs(tmp_path / "jobs.jsonl", total)
    out = tiny_disk / "out"
    out.mkdir()
    stat = os.statvfs(tiny_disk)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - FREE_BYTES))
    code, stdout, stderr = finish(start_run(manifest, out, module_emulator_url))
    assert code == 2, (code, stdout[-2000:], stderr[-2000:])
    assert "No space left on device" in stdout + stderr, (stdout[-2000:], stderr[-2000:])
    done = assert_recorded_intact(out, "disk full")
    assert 0 < done < total, f"{done} of {total} done: the disk should fill mid-run"
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    resume_and_check(manifest, out, module_emulator_url, total, done)


# Where the fault is -> what the message must name. `outputs`: metadata.jsonl rebuilt at the end.
FAULTS = {
    "write:image": "images",
    "fsync:image": "images",
    "write:ledger": "ledger",
    "fsync:ledger": "ledger",
    "write:outputs": "metadata.jsonl",
}


@pytest.mark.parametrize("where", FAULTS)
def test_injected_disk_fault_stops_then_resumes(
    tmp_path: Path, module_emulator_url: str, where: str
) -> None:
    """ENOSPC on a write or EIO on an fsync, from the Nth one on (N seeded): exit 2 with the
    error named; nothing recorded is lost; a healthy rerun finishes and pays once."""
    total = 30
    seed = campaign_seed(9000)
    # outputs are written once per run, at its end; the rest: some jobs complete first.
    nth = 1 if where.endswith("outputs") else random.Random(f"{where}:{seed}").randint(3, 12)
    spec = f"{where}:{nth}"
    context = f"{FAULT_ENV}={spec} (seed {seed})"
    manifest = tmp_path / "jobs.jsonl"
    write_jsonl(manifest, ({"prompt": f"fault {where} {seed} {i}"} for i in range(total)))
    out = tmp_path / "out"
    code, stdout, stderr = finish(
        start_run(manifest, out, module_emulator_url, env={FAULT_ENV: spec})
    )
    said = stdout + stderr
    assert code == 2, f"{context}: exit {code}: {said[-2000:]}"
    errno_text = "No space left on device" if where.startswith("write") else "Input/output error"
    assert errno_text in said, f"{context}: {said[-2000:]}"
    assert FAULTS[where] in said, f"{context}: {said[-2000:]}"
    done = assert_recorded_intact(out, context)
    resume_and_check(manifest, out, module_emulator_url, total, done)
