"""The floor is a lower bound: no client, however clever, finishes a run's work faster.

Fast tier: the bound against hand-computed cases (rate-bound, latency-bound, resumed) and against
a simulated best client on random work. Wire tier: real runs over the emulator, whose wall time
the floor must never pass (quickstart-shaped, and a resume that only re-attaches).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import importlib
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchgen.core.floor import Limits, Work, floor_seconds
from batchgen.core.runstats import RunStats
from batchgen.core.summary import RunShape, final_summary, run_work
from batchgen.emulator import Emulator, EmulatorConfig
from batchgen.run.runner import run_manifest

from .conftest import KEY, StartEmulator

ROOT = Path(__file__).resolve().parent.parent


def test_rate_bound_lets_the_first_window_go_at_once():
    """8 submits at 5 per 1 s window: 5 at t=0, 3 at t=1, then one job's time (not 8/5 windows)."""
    work = Work(submits=8, polls=8, durations=[0.05] * 8, tail=0.06)
    assert floor_seconds(work, Limits(rpm=5, window=1.0, concurrency=4)) == 1.06
    # fractional limits are read the weak way: 2.5 per window lets 3 go in the first one
    assert floor_seconds(Work(submits=3, tail=0.5), Limits(2.5, 60.0, 10)) == 0.5
    assert floor_seconds(Work(submits=4, tail=0.5), Limits(2.5, 60.0, 10)) == 60.5


def test_counted_polls_are_calls_the_run_had_to_make():
    """With polls counted every job needs a submit and a GET: 8 jobs are 16 calls at 5/window."""
    work = Work(submits=8, polls=8, tail=0.05)
    assert floor_seconds(work, Limits(5, 1.0, 4, count_polls=True)) == 3.0
    # a resume that only re-attaches: no submit, but each job still needs its GET
    assert floor_seconds(Work(submits=0, polls=12), Limits(5, 1.0, 4, count_polls=True)) == 2.0


def test_latency_bound_by_the_busiest_slot_and_the_sum():
    """100 jobs of 1 s over 10 slots: 10 s; uneven times: the sum over the slots."""
    assert floor_seconds(Work(submits=100, durations=[1.0] * 100), Limits(None, 60, 10)) == 10.0
    uneven = Work(submits=4, durations=[1.0, 1.0, 1.0, 5.0])
    assert floor_seconds(uneven, Limits(None, 60, 4)) == 2.0  # sum 8 over 4 slots
    # unmeasured jobs count as 0 s: 4 jobs on 2 slots, two measured at 3 s -> the busiest slot
    # may hold the two unmeasured ones; the sum still needs 6 s over 2 slots
    assert floor_seconds(Work(submits=4, durations=[3.0, 3.0]), Limits(None, 60, 2)) == 3.0


def test_a_resume_that_only_reattaches_has_nothing_to_wait_for():
    """Re-attached jobs need no submit and may be done already: the floor is 0, not N x L."""
    stats = RunStats(completed=30, reattached=30)
    for _ in range(30):
        stats.complete(0.12, {"inference_time": 28.0}, 0.2)
    stats.completed = 30
    shape = RunShape(30, 5, 60.0, 4, 28.0)
    assert run_work(stats, shape).submits == 0
    summary = final_summary(
        stats, shape, skipped=0, failed_earlier=0, removed=0, wall=0.3, exit_code=0
    )
    assert summary["floor_seconds"] == 0.0
    assert summary["floor_basis"]["submits"] == 0


def _best_client(durations: list[float], limits: Limits) -> float:
    """The wall time of a client that submits every job as early as the limits allow."""
    per_window = max(1, -(-int(limits.rpm * 1000) // 1000)) if limits.rpm else None
    sent: list[float] = []
    slots = [0.0] * limits.concurrency  # when each slot frees up (a min-heap)
    end = 0.0
    for d in durations:
        t = heapq.heappop(slots)
        if per_window is not None and len(sent) >= per_window:
            t = max(t, sent[-per_window] + limits.window)
        sent.append(t)
        heapq.heappush(slots, t + d)
        end = max(end, t + d)
    return end


@settings(max_examples=300, deadline=None)
@given(
    durations=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=40),
    rpm=st.one_of(st.none(), st.integers(1, 12)),
    window=st.floats(0.1, 5.0),
    concurrency=st.integers(1, 8),
)
def test_no_client_beats_the_floor(durations, rpm, window, concurrency):
    """For any job times, the greedy best client (in any order) is never below the floor."""
    limits = Limits(rpm, window, concurrency)
    work = Work(submits=len(durations), durations=durations, tail=min(durations))
    floor = floor_seconds(work, limits)
    for order in (durations, sorted(durations), sorted(durations, reverse=True)):
        assert _best_client(order, limits) >= floor - 1e-9


def test_the_bench_uses_the_same_floor(monkeypatch: pytest.MonkeyPatch):
    """bench/run.py's floor is this function, not a formula of its own (it used to be one)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    bench = importlib.import_module("run")
    for scenario in bench.scenarios(quick=True):
        limits = Limits(scenario.rpm, 60.0 * scenario.scale, scenario.concurrency,
                        scenario.count_polls)  # fmt: skip
        n = scenario.jobs
        work = Work(n, n, [scenario.latency] * n, scenario.latency)
        assert scenario.floor() == floor_seconds(work, limits)
    polls_counted = next(s for s in bench.scenarios(quick=True) if s.count_polls)
    assert polls_counted.floor() == 2.0  # 120 calls at 50 per 1 s window: the last after 2 s
    sys.modules.pop("run", None)  # bench/run.py is not a module of the tests


def _quickstart_like(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"a fox {i}"}) + "\n" for i in range(n)))
    return path


async def test_quickstart_wall_is_at_least_the_floor(tmp_path: Path):
    """The quickstart's shape (8 jobs, rpm 5, concurrency 4) over the in-process emulator."""
    manifest = _quickstart_like(tmp_path / "m.jsonl", 8)
    result = await run_manifest(
        manifest, out=tmp_path / "out", overrides={"rpm": 5, "concurrency": 4}, emulator=True,
        quiet=True,
    )  # fmt: skip
    summary = result.summary
    assert summary["outcome"]["completed"] == 8
    assert summary["floor_basis"]["submits"] == 8
    assert 1.0 < summary["floor_seconds"] <= summary["wall_seconds"]  # one full window at least


async def test_latency_bound_run_wall_is_at_least_the_floor(tmp_path: Path):
    """16 jobs of 0.3 s on 4 slots, no rate to speak of: the slots bound it (4 rounds)."""
    manifest = _quickstart_like(tmp_path / "m.jsonl", 16)
    result = await run_manifest(
        manifest, out=tmp_path / "out", overrides={"rpm": 60000, "concurrency": 4},
        emulator=EmulatorConfig(latency=0.3, latency_jitter=0.0, workers=8), quiet=True,
    )  # fmt: skip
    summary = result.summary
    assert summary["outcome"]["completed"] == 16
    assert 4 * 0.3 <= summary["floor_seconds"] <= summary["wall_seconds"]


async def _run_until_submitted(manifest: Path, out: Path, emu: Emulator, n: int) -> None:
    """Start a run and cancel it (as a crash would stop it) once `n` submits are recorded."""
    fast = {"rpm": 6000, "concurrency": 8}
    run = run_manifest(manifest, out=out, api_key=KEY, base_url=emu.base_url, quiet=True,
                       overrides=fast, expect_seconds=30)  # fmt: skip
    task = asyncio.ensure_future(run)
    ledger = out / "ledger.jsonl"
    while not ledger.exists() or ledger.read_text().count('"event":"submitted"') < n:
        assert not task.done()
        await asyncio.sleep(0.02)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_reattaching_resume_has_wall_at_least_floor(
    tmp_path: Path, start_emulator: StartEmulator
):
    """Jobs submitted by a run that died are polled again, not paid again: the floor is what is
    left to do (nothing to submit), so the resume's wall time is above it, not far below."""
    emu = await start_emulator(latency=0.5, latency_jitter=0.0, workers=8)
    manifest = _quickstart_like(tmp_path / "m.jsonl", 8)
    out = tmp_path / "out"
    await _run_until_submitted(manifest, out, emu, 8)
    for _ in range(200):  # the server finishes them meanwhile (0.5 s each)
        if emu.stats()["completed"] == 8:
            break
        await asyncio.sleep(0.05)
    resumed = await run_manifest(
        manifest, out=out, api_key=KEY, base_url=emu.base_url, quiet=True,
        overrides={"rpm": 5, "concurrency": 4}, expect_seconds=0.05,
    )  # fmt: skip
    summary = resumed.summary
    assert (summary["outcome"]["completed"], summary["reattached"]) == (8, 8)
    assert emu.stats()["paid_submits"] == 8
    assert summary["floor_seconds"] <= summary["wall_seconds"]
