"""Crash safety and resume with real processes: an emulator process that outlives the runner, a
runner killed with SIGKILL (or interrupted), and the same command run again."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from batchgen.core.lifecycle import State, replay
from tests.procs import (
    check_dataset,
    finish,
    ledger_events,
    server_stats,
    start_run,
    unknown_submits,
    wait_for_events,
    write_jobs,
)


def test_sigkill_three_times_then_resume(tmp_path: Path, emulator_url: str):
    """300 jobs, SIGKILLed at 3 seeded moments and resumed: each job once, no double pay beyond
    the submits that were in flight unanswered at the kills."""
    manifest = write_jobs(tmp_path / "jobs.jsonl", 300)
    out = tmp_path / "out"
    rng = random.Random(20261123)
    kill_points = sorted(rng.sample(range(60, 700), 3))  # ledger line counts at which to kill
    at_risk = 0
    timings = []
    for point in kill_points:
        proc = start_run(manifest, out, emulator_url)
        wait_for_events(out, point, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        at_risk += unknown_submits(out)
        timings.append(point)
    started = time.monotonic()
    code, _, stderr = finish(start_run(manifest, out, emulator_url))
    resume_seconds = time.monotonic() - started
    assert code == 0, stderr
    check_dataset(out, 300)
    stats = server_stats(emulator_url)
    duplicates = stats["duplicate_paid_submits"]
    print(
        f"\nkills at ledger lines {timings}; unanswered submits at the kills: {at_risk}; "
        f"duplicate paid submits: {duplicates}; final resume took {resume_seconds:.1f} s"
    )
    assert duplicates <= at_risk
    assert stats["paid_submits"] == 300 + duplicates


def test_torn_ledger_tail_resumes_cleanly(tmp_path: Path, emulator_url: str):
    """A ledger cut inside its last line (as kill -9 can leave it) is truncated and resumed."""
    manifest = write_jobs(tmp_path / "jobs.jsonl", 40)
    out = tmp_path / "out"
    proc = start_run(manifest, out, emulator_url)
    wait_for_events(out, 50, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    ledger = out / "ledger.jsonl"
    data = ledger.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = last_start + random.Random(5).randrange(1, len(data) - last_start - 1)
    ledger.write_bytes(data[:cut])
    code, _, stderr = finish(start_run(manifest, out, emulator_url))
    assert code == 0, stderr
    check_dataset(out, 40)


def test_damaged_ledger_line_is_a_clear_error(tmp_path: Path, emulator_url: str):
    """Damage before the last line stops the run (exit 2) and names the line; nothing is sent."""
    manifest = write_jobs(tmp_path / "jobs.jsonl", 5)
    out = tmp_path / "out"
    assert finish(start_run(manifest, out, emulator_url))[0] == 0
    ledger = out / "ledger.jsonl"
    lines = ledger.read_bytes().splitlines(keepends=True)
    lines[3] = b'{"v":1,"event":"submitted","jo\n'
    ledger.write_bytes(b"".join(lines))
    before = server_stats(emulator_url)["requests_total"]
    code, _, stderr = finish(start_run(manifest, out, emulator_url))
    assert code == 2
    assert "line 4" in stderr
    assert server_stats(emulator_url)["requests_total"] == before


def test_deleted_and_corrupted_images_are_repaired(tmp_path: Path, emulator_url: str):
    """On resume a missing image and a corrupted one are downloaded again, without new submits."""
    manifest = write_jobs(tmp_path / "jobs.jsonl", 6)
    out = tmp_path / "out"
    assert finish(start_run(manifest, out, emulator_url))[0] == 0
    images = sorted(out.glob("*.png"))
    images[0].unlink()
    images[1].write_bytes(images[1].read_bytes()[:50])
    paid = server_stats(emulator_url)["paid_submits"]
    code, stdout, stderr = finish(start_run(manifest, out, emulator_url))
    assert code == 0, stderr
    assert "2 lost image(s) downloaded again" in stdout
    assert server_stats(emulator_url)["paid_submits"] == paid
    check_dataset(out, 6)


def test_interrupts_then_rerun_completes(tmp_path: Path, emulator_url: str):
    """One SIGINT drains and exits 130; two SIGINTs exit at once; a rerun completes everything
    with no image twice."""
    manifest = write_jobs(tmp_path / "jobs.jsonl", 150)
    out = tmp_path / "out"
    proc = start_run(manifest, out, emulator_url, "--rpm", "600")
    wait_for_events(out, 40, proc)
    proc.send_signal(signal.SIGINT)
    code, stdout, _ = finish(proc)
    assert code == 130
    assert "stopped: interrupted" in stdout
    with (out / "ledger.jsonl").open("rb") as handle:
        states = {j.state for j in replay(handle).jobs.values()}
    assert State.IN_FLIGHT not in states  # drained: every paid job was finished
    proc = start_run(manifest, out, emulator_url, "--rpm", "600")
    wait_for_events(out, ledger_events(out) + 30, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    code, _, stderr = finish(proc)
    assert code == 130
    assert "stopped at once" in stderr
    code, _, stderr = finish(start_run(manifest, out, emulator_url))
    assert code == 0, stderr
    check_dataset(out, 150)
