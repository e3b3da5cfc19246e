"""`batchgen status DIR`: counts from a real engine run's ledger and from hand-written ledgers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from batchgen.cli.main import main
from batchgen.core.lifecycle import LedgerDamage, replay
from batchgen.emulator import parse_fault
from batchgen.views.status import Status, read_ledger, status_lines, summarize

from .conftest import StartEmulator
from .test_engine import make_jobs, run_engine

T0 = 1_700_000_000.0


def line(event: str, t: float = T0, **fields: Any) -> bytes:
    """One record serialised exactly as `LedgerWriter` does."""
    record = {"v": 1, "t": t, "event": event, **fields}
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def status_cli(folder: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["status", str(folder), *args])


def status_json(folder: Path) -> dict[str, Any]:
    result = status_cli(folder, "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


# A small ledger covering every state: two runs, a retry, an ambiguous submit, failures.
LEDGER = b"".join(
    [
        line("run", T0, model="qwen-image", version="0.1.0"),
        line("intent", T0 + 1, job="done", attempt=0),
        line("submitted", T0 + 2, job="done", request_id="r1", status_url="s1", response_url="u1"),
        line("completed", T0 + 3, job="done", request_id="r1", file="done.jpg", sha256="ab"),
        line("intent", T0 + 4, job="flying", attempt=0),
        line("unknown", T0 + 5, job="flying", error="reset after send"),
        line("intent", T0 + 6, job="flying", attempt=1),
        line("submitted", T0 + 7, job="flying", request_id="r2", status_url="s", response_url="u"),
        line("intent", T0 + 8, job="lost", attempt=0),
        line("unknown", T0 + 9, job="lost", error="timeout: maybe sent"),
        line("intent", T0 + 10, job="bad", attempt=0),
        line("failed", T0 + 11, job="bad", kind="invalid", error="422: prompt: required"),
        line("intent", T0 + 12, job="gone", attempt=0),
        line("submitted", T0 + 13, job="gone", request_id="r3", status_url="s", response_url="u"),
        line("expired", T0 + 14, job="gone", request_id="r3"),
        line("released", T0 + 15, job="gone", reason="interrupted"),
        line("run", T0 + 16, model="qwen-image", version="0.1.0"),
        line("intent", T0 + 17, job="srv", attempt=0),
        line("failed", T0 + 18, job="srv", kind="server", error="FAILED", request_id=None),
        line("intent", T0 + 19, job="srv2", attempt=0),
        line("failed", T0 + 20, job="srv2", kind="server", error="FAILED", request_id="r5"),
    ]
)
EXPECTED = {
    "jobs": 7,
    "pending": 1,
    "unknown": 1,
    "in_flight": 1,
    "completed": 1,
    "failed": 3,
    "failed_by_kind": {"invalid": 1, "server": 2},
    "runs": 2,
    "events": 21,
    "possible_double_charges": 2,
    "last_event_at": T0 + 20,
    "last_event": "2023-11-14T22:13:40Z",
    "torn": False,
    "planned": None,  # these runs' records predate the `jobs` field
}


def write_ledger(folder: Path, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ledger.jsonl"
    path.write_bytes(data)
    return path


def test_json_counts_every_state(tmp_path: Path):
    """--json gives one object with counts per state, failures by kind, runs, ambiguity, time."""
    write_ledger(tmp_path, LEDGER)
    got = status_json(tmp_path)
    assert got.pop("ledger") == str(tmp_path / "ledger.jsonl")
    assert got == EXPECTED


def test_text_shows_the_same_counts(tmp_path: Path):
    """The text form carries every count of the JSON form, one state per line."""
    write_ledger(tmp_path, LEDGER)
    result = status_cli(tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "7 jobs, 2 run(s), 21 events, last event 2023-11-14T22:13:40Z"
    assert "  completed  1" in lines
    assert "  in flight  1" in lines
    assert "  submitting 1  (submit sent, answer not recorded yet)" in lines
    assert "  pending    1" in lines
    assert "  failed     3  (invalid 1, server 2)" in lines
    assert "possible double charges: 2" in lines
    assert not any(x.startswith("note:") for x in lines)


def test_torn_last_line_is_ignored_and_left_alone(tmp_path: Path):
    """A half-written last line (a run appending, or a crash) is reported, ignored, not cut."""
    torn = line("completed", T0 + 21, job="flying", request_id="r2", file="f", sha256="cd")
    data = LEDGER + torn[:25]
    path = write_ledger(tmp_path, data)
    got = status_json(tmp_path)
    assert got["torn"] is True
    assert (got["in_flight"], got["completed"], got["events"]) == (1, 1, 21)
    assert got["last_event_at"] == T0 + 20  # the last *complete* record
    assert path.read_bytes() == data  # read-only: status never truncates
    assert status_cli(tmp_path).stdout.splitlines()[-1].startswith("note: the last line")


def test_snapshot_reads_only_bytes_present_at_open(tmp_path: Path):
    """Bytes appended after the size is taken are not read: a line in progress is a torn tail."""
    path = write_ledger(tmp_path, LEDGER)
    extra = line("intent", T0 + 30, job="late", attempt=0)
    with path.open("ab") as f:
        f.write(extra[:10])
    snap = read_ledger(tmp_path)
    assert snap.replay.torn
    assert "late" not in snap.replay.jobs
    assert snap.replay.valid_bytes == len(LEDGER)


def test_damaged_middle_line_names_it_and_exits_2(tmp_path: Path):
    """A broken line before the last stops status with exit 2 and the line number."""
    lines = LEDGER.splitlines(keepends=True)
    lines[4] = b'{"v":1,"t":17000\n'  # line 5: a torn write that later appends followed
    write_ledger(tmp_path, b"".join(lines))
    result = status_cli(tmp_path)
    assert result.exit_code == 2
    assert "line 5" in result.stderr
    assert result.stdout == ""


def test_missing_ledger_exits_3(tmp_path: Path):
    """A folder without a ledger (or no folder at all) is a clear error with exit 3."""
    for folder in (tmp_path, tmp_path / "nope"):
        result = status_cli(folder, "--json")
        assert result.exit_code == 3
        assert "no ledger at" in result.stderr
        assert "ledger.jsonl" in result.stderr
        assert result.stdout == ""


def test_empty_ledger_is_all_zero(tmp_path: Path):
    """An empty ledger (a run that had just started) shows zeros and no last event."""
    write_ledger(tmp_path, b"")
    got = status_json(tmp_path)
    assert (got["jobs"], got["events"], got["last_event_at"], got["torn"]) == (0, 0, None, False)
    assert "last event never" in status_cli(tmp_path).stdout


def test_last_event_time_found_past_a_long_line(tmp_path: Path):
    """The last record's time is found even when that line is longer than one read-back chunk."""
    long = line("failed", T0 + 99, job="x", kind="server", error="e" * 200_000)
    write_ledger(tmp_path, LEDGER + long)
    assert read_ledger(tmp_path).last_event_at == T0 + 99
    write_ledger(tmp_path, long)  # a single line: no newline before it
    assert read_ledger(tmp_path).last_event_at == T0 + 99


def test_summarize_is_pure_over_a_replay():
    """summarize() needs only a Replay; status_lines() renders a Status with no I/O."""
    status = summarize(replay(LEDGER.splitlines(keepends=True)), ledger="L", last_event_at=None)
    assert isinstance(status, Status)
    assert status.as_dict()["failed_by_kind"] == {"invalid": 1, "server": 2}
    assert status_lines(status)[0] == "ledger: L"
    with pytest.raises(LedgerDamage):
        replay([b"x\n", b"{}"])


async def test_status_of_a_real_engine_run(start_emulator: StartEmulator, tmp_path: Path):
    """After an engine run on the emulator with FAILED jobs, status matches the engine's counts."""
    emu = await start_emulator(seed=3, fail_rate=0.2)
    out = tmp_path / "out"
    jobs = make_jobs(tmp_path, 40)
    stats, _ = await run_engine(emu, jobs, out)
    got = status_json(out)
    assert got["jobs"] == 40
    assert got["completed"] == stats.completed
    assert got["failed"] == sum(stats.failed.values()) > 0
    assert got["failed_by_kind"] == dict(stats.failed)
    assert (got["pending"], got["unknown"], got["in_flight"]) == (0, 0, 0)
    assert got["possible_double_charges"] == stats.possible_double_charges == 0
    assert got["events"] == len((out / "ledger.jsonl").read_bytes().splitlines())
    assert got["torn"] is False
    assert got["last_event_at"] is not None


async def test_status_counts_ambiguous_submits_of_a_real_run(
    start_emulator: StartEmulator, tmp_path: Path
):
    """Submits answered 5xx after acceptance are recorded as unknown: status counts them."""
    emu = await start_emulator(seed=5, faults=(parse_fault("submit:accepted-503=0.3"),))
    out = tmp_path / "out"
    stats, _ = await run_engine(emu, make_jobs(tmp_path, 30), out)
    got = status_json(out)
    assert got["completed"] == stats.completed == 30
    assert got["possible_double_charges"] == stats.possible_double_charges > 0


async def test_status_while_a_run_is_appending(start_emulator: StartEmulator, tmp_path: Path):
    """Snapshots taken while the engine appends never see damage, and the last one is complete."""
    emu = await start_emulator(seed=7, latency=0.02, latency_jitter=0.01)
    out = tmp_path / "out"
    run = asyncio.create_task(run_engine(emu, make_jobs(tmp_path, 60), out, concurrency=10))
    seen: list[int] = []
    while not run.done():
        if (out / "ledger.jsonl").exists():
            seen.append(read_ledger(out).replay.events)  # raises LedgerDamage if it saw a split
        await asyncio.sleep(0.002)
    stats, _ = await run
    final = status_json(out)
    assert final["completed"] == stats.completed == 60
    assert seen == sorted(seen)
    assert any(0 < n < final["events"] for n in seen)  # some snapshots were taken mid-run
