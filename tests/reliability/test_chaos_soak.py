"""Chaos soak (issue 8): thousands of jobs through every fault at once, under an enforced limit.

The profile, per request: 10 % 429 without Retry-After or reset time, 5 % 5xx (on submits half of
them *after* the server accepted and billed the job), 2 % connection resets, 1 % hung responses
(on the API routes); 2 % resets and 1 % truncated bodies on media; 2 % of jobs end FAILED; and a
strict sliding-window rate limit. The same jobs run first without any fault, in the same test, so
the wall-time bound compares two runs on the same (loaded) machine.

Invariants: every non-FAILED job completes with a verified image; after the first 429 no window
of the limit holds more requests (of the limit's scope) than the limit; retries are at most 20 %
of all requests; the chaos run takes at most 1.5x the clean one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchgen.edges.client import Timeouts
from batchgen.emulator import EmulatorConfig, parse_fault
from batchgen.emulator.requestlog import max_in_window

from ..test_engine import check_outputs
from .soak import Run, make_jobs, run_soak, scaled_engine

MINUTE = 1.0  # seconds that stand for a minute
API_FAULTS = ("429=0.10", "reset=0.02", "hang=0.01")
CHAOS = (
    *(f"submit:{f}" for f in (*API_FAULTS, "500=0.025", "accepted-503=0.025")),
    *(f"{route}:{f}" for route in ("status", "result") for f in (*API_FAULTS, "503=0.05")),
    "media:reset=0.02",
    "media:truncate=0.01",
)
# A hung call costs its timeout: 0.5 s of a 1 s "minute" (30 s in real time).
TIMEOUTS = Timeouts(submit=0.5, poll=0.5, media=1.0, connect=0.5)


def retry_share(run: Run) -> tuple[float, float]:
    """Retries / requests (API + media), as the runner counted them and as the server saw them.

    Runner: calls it sent again after a failed answer (backoff retries + 429 waits). Server:
    answers that were no answer at all (injected faults, refusals of the limit): each one is
    retried unless its job gave up.
    """
    total = run.server["requests_total"]
    runner = run.stats.retries + run.stats.rate_limited
    server = run.server["faults_total"] + run.server["rate_limited"]
    return runner / total, server / total


@pytest.mark.parametrize("count_polls", [True, False], ids=["all-calls-count", "submits-count"])
async def test_chaos_soak(tmp_path: Path, long_form: bool, count_polls: bool):
    """Chaos: all non-FAILED jobs done and verified, windows kept, retries <= 20%, wall <= 1.5x."""
    n = 2000 if long_form else 500  # fewer: one stalled hung call weighs too much in the ratio
    # The limit sets the pace: ~6 s (short) or ~40 s (--long) of calls per clean run.
    rpm = 120 if count_polls else 50
    scope = ("submit", "status", "result") if count_polls else ("submit",)
    jobs = make_jobs(tmp_path, n)
    emulator = {"workers": 100, "latency": 0.2, "latency_jitter": 0.05, "rpm": rpm,
                "rate_window": MINUTE, "count_polls": count_polls, "log_requests": True,
                "retry_after": False, "reset_header": False, "hang_seconds": 30.0}  # fmt: skip
    engine = scaled_engine(MINUTE, concurrency=100, rpm=rpm, count_polls=count_polls,
                           typical_seconds=0.2, seed=8)  # fmt: skip

    clean = await run_soak(
        EmulatorConfig(seed=8, **emulator), jobs, tmp_path / "clean", TIMEOUTS, **engine
    )
    assert clean.stats.completed == n
    chaos_config = EmulatorConfig(
        seed=8, fail_rate=0.02, faults=tuple(parse_fault(f) for f in CHAOS), **emulator
    )
    chaos = await run_soak(chaos_config, jobs, tmp_path / "chaos", TIMEOUTS, **engine)

    # 1. Every job that did not end FAILED on the server completed with a verified image.
    stats = chaos.stats
    assert set(stats.failed) <= {"server"}, stats.examples
    assert stats.completed + stats.failed["server"] == n
    ledger = [
        json.loads(line) for line in (tmp_path / "chaos/ledger.jsonl").read_text().splitlines()
    ]
    failed = {r["job"] for r in ledger if r["event"] == "failed"}
    check_outputs(tmp_path / "chaos", {j.id for j in jobs} - failed)

    # 2. After the first 429, no window holds more requests of the limit's scope than the limit.
    first_429 = chaos.log.first(429)
    assert first_429 is not None
    peak = max_in_window(chaos.log.times(scope, since=first_429), MINUTE)
    assert peak <= rpm

    # 3. Retries are at most 20% of requests, counted either way.
    by_runner, by_server = retry_share(chaos)
    assert max(by_runner, by_server) <= 0.20

    # 4. At most 1.5x the wall time of the same run without faults.
    ratio = chaos.wall / clean.wall
    figures = {
        "count_polls": count_polls, "jobs": n, "rpm": rpm, "completed": stats.completed,
        "failed_on_server": stats.failed["server"],
        "completion_of_non_failed": stats.completed / (n - stats.failed["server"]),
        "max_in_window_after_first_429": peak,
        "max_in_window_clean": max_in_window(clean.log.times(scope), MINUTE),
        "retries_share_runner": round(by_runner, 4), "retries_share_server": round(by_server, 4),
        "requests": chaos.server["requests_total"], "faults": chaos.server["faults_total"],
        "rate_limited_by_server": chaos.server["rate_limited"],
        "possible_double_charges": stats.possible_double_charges,
        "duplicate_paid_submits": chaos.server["duplicate_paid_submits"],
        "wall_clean": round(clean.wall, 2), "wall_chaos": round(chaos.wall, 2),
        "wall_ratio": round(ratio, 3),
    }  # fmt: skip
    print("chaos-soak", json.dumps(figures))
    assert ratio <= 1.5, figures
