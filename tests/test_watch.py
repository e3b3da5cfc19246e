"""Watching and judging a run: status lines, summary.json, failed.jsonl, budget, progress in a
terminal, `status` during a run, dry runs."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchgen.emulator import EmulatorConfig, parse_fault
from batchgen.manifest.loader import load_manifest
from batchgen.run.runner import run_manifest
from tests.helpers import FAST, cli, start_cli, write_jsonl


def jobs_file(path: Path, n: int, failing: int = 0) -> Path:
    rows = [{"prompt": f"picture {i}" + (" [fail]" if i < failing else "")} for i in range(n)]
    return write_jsonl(path, rows)


async def test_status_lines_and_summary_json(tmp_path: Path):
    """JSON status lines and summary.json report a run with known failures and faults."""
    manifest = jobs_file(tmp_path / "m.jsonl", 20, failing=3)
    stream = io.StringIO()
    result = await run_manifest(
        manifest,
        out=tmp_path / "out",
        overrides=FAST,
        emulator=EmulatorConfig(faults=(parse_fault("status:503=1x3"),), latency=0.05),
        status_stream=stream,
        status_interval=0.05,
    )
    assert result.exit_code == 1
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert lines
    assert all(x["event"] == "status" and x["jobs"] == 20 for x in lines)
    assert [x["completed"] for x in lines] == sorted(x["completed"] for x in lines)
    assert (lines[-1]["completed"], lines[-1]["failed"], lines[-1]["in_flight"]) == (17, 3, 0)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == result.summary
    assert summary["outcome"]["completed"] == 17
    assert summary["failures"]["server"]["count"] == 3
    assert "content filter" in summary["failures"]["server"]["examples"][0]["error"]
    assert summary["latency_seconds"]["total"]["p50"] > 0
    assert summary["api_calls"]["submit"] == 20
    assert summary["spend_usd"] == pytest.approx(17 * 0.12)
    assert summary["wall_seconds"] >= summary["floor_seconds"] * 0.5


async def test_failed_jsonl_is_a_manifest_and_retry_failed_reruns_in_place(tmp_path: Path):
    """failed.jsonl validates as a manifest; --retry-failed completes those jobs in place."""
    manifest = jobs_file(tmp_path / "m.jsonl", 30)
    out = tmp_path / "out"
    first = await run_manifest(
        manifest, out=out, overrides=FAST, emulator=EmulatorConfig(fail_rate=0.3, seed=1),
        quiet=True,
    )  # fmt: skip
    failed = sum(first.stats.failed.values())
    assert failed > 0
    rows = [json.loads(x) for x in (out / "failed.jsonl").read_text().splitlines()]
    assert len(rows) == failed
    assert all(r["_error"].startswith("server:") and r["_job"].startswith("j-") for r in rows)
    assert load_manifest(out / "failed.jsonl").scan().ok
    again = await run_manifest(manifest, out=out, overrides=FAST, emulator=True, quiet=True)
    assert (again.stats.jobs, again.resumed.failed) == (0, failed)  # left alone by default
    retried = await run_manifest(
        manifest, out=out, overrides=FAST, emulator=True, retry_failed=True, quiet=True
    )
    assert (retried.stats.completed, retried.exit_code) == (failed, 0)
    assert not (out / "failed.jsonl").exists()
    assert len(list(out.glob("*.png"))) == 30


def test_budget_on_the_command_line_stops_with_exit_2(tmp_path: Path):
    """--budget-usd stops submitting at the cap: exit 2, the reason printed, spend within it."""
    manifest = jobs_file(tmp_path / "m.jsonl", 30)
    result = cli("run", str(manifest), "--emulator", "--out", "out", "--budget-usd", "0.5",
                 "--rpm", "600", "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "budget reached" in result.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["spend_usd"] <= 0.5
    assert summary["outcome"]["completed"] == 4
    again = cli("run", str(manifest), "--emulator", "--out", "out", "--budget-usd", "0.5",
                "--rpm", "600", "--quiet", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2  # the budget covers the folder: a resume gets no second one
    assert "budget reached: $0.48 spent" in again.stdout
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["api_calls"]["per_job"] == 0


def test_progress_in_a_terminal_shows_counts_and_finishes(tmp_path: Path):
    """In a real pseudo-terminal the live line shows the counts and the run ends cleanly."""
    manifest = jobs_file(tmp_path / "m.jsonl", 12)
    leader, follower = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "run", str(manifest), "--emulator", "--out", "out",
         "--rpm", "10"],
        stdin=follower, stdout=follower, stderr=follower, cwd=tmp_path,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"},
    )  # fmt: skip
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=10) == 0
    text = screen.decode(errors="replace")
    assert "done 12/12" in text
    assert "img/min" in text
    assert "12 completed, 0 failed" in text
    assert "{" not in text.split("done 12/12")[0][-200:]  # a live line, not JSON


def test_status_during_and_after_a_run(tmp_path: Path):
    """`batchgen status --json` reads a ledger that a running process is appending to."""
    manifest = jobs_file(tmp_path / "m.jsonl", 60)
    proc = start_cli(
        "run", str(manifest), "--emulator", "--out", "out", "--rpm", "30", "--quiet", cwd=tmp_path
    )
    seen = []
    while proc.poll() is None:
        if (tmp_path / "out" / "ledger.jsonl").exists():
            result = cli("status", "out", "--json", cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            seen.append(json.loads(result.stdout)["completed"])
        time.sleep(0.2)
    proc.communicate()
    assert proc.returncode == 0
    assert any(0 < n < 60 for n in seen)  # looked at mid-run
    assert seen == sorted(seen)
    after = json.loads(cli("status", "out", "--json", cwd=tmp_path).stdout)
    assert (after["completed"], after["in_flight"]) == (60, 0)


def test_dry_run_shows_the_resume_plan_and_sends_nothing(tmp_path: Path):
    """After an interrupted run, --dry-run counts what is done and what is left; nothing changes."""
    manifest = jobs_file(tmp_path / "m.jsonl", 80)
    proc = start_cli(
        "run", str(manifest), "--emulator", "--out", "out", "--rpm", "40", "--quiet", cwd=tmp_path
    )
    ledger = tmp_path / "out" / "ledger.jsonl"
    while not ledger.exists() or ledger.read_text().count('"completed"') < 10:
        assert proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate()
    before = ledger.read_bytes()
    result = cli("run", str(manifest), "--emulator", "--out", "out", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    done = sum(1 for x in before.splitlines() if b'"event":"completed"' in x)
    assert f"already done            {done}" in result.stdout
    assert f"to submit               {80 - done}" in result.stdout
    assert "nothing was sent" in result.stdout
    assert ledger.read_bytes() == before
