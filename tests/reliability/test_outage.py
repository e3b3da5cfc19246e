"""Outage (issue 8): the server answers 503 to every API call for a (scaled) minute.

Time is scaled: one "second" lasts `S` real seconds (0.05 short, 0.25 with --long), and the job
latency (28 s), the runner's backoff, outage probes and per-call timeouts are scaled with it.
What the server saw (its arrival log) shows the runner's request rate dropping to a trickle
within seconds of the outage's start, and every job completing on its own after it ends. An
outage longer than the runner's patience stops the run with a message, failing no job.
"""

from __future__ import annotations

import json
from pathlib import Path

from batchgen.core.circuit import OutagePolicy
from batchgen.edges.client import Timeouts
from batchgen.emulator import EmulatorConfig
from batchgen.emulator.requestlog import count_between, quiet_from

from .soak import API_ROUTES, make_jobs, run_soak, scaled_engine

TRICKLE = 2  # at most this many requests in any (scaled) second: a trickle


def scaled_timeouts(s: float) -> Timeouts:
    real = Timeouts()
    return Timeouts(submit=real.submit * s, poll=real.poll * s, media=real.media * s,
                    connect=real.connect * s)  # fmt: skip


async def test_outage_trickle_then_recovery(tmp_path: Path, long_form: bool):
    """503s for a minute: within 5 s of the first 503 at most 2 requests in any second, and at
    most 1/s on average; every job completes after it, none fails."""
    s = 0.25 if long_form else 0.05  # real seconds per scaled second
    n = 400 if long_form else 200
    jobs = make_jobs(tmp_path, n)
    config = EmulatorConfig(seed=3, workers=50, latency=28 * s, latency_jitter=4 * s,
                            outage_start=40 * s, outage_seconds=60 * s,
                            log_requests=True)  # fmt: skip
    engine = scaled_engine(60 * s, concurrency=50, typical_seconds=28 * s, seed=3)
    run = await run_soak(config, jobs, tmp_path / "out", scaled_timeouts(s), **engine)

    assert run.stats.completed == n, (dict(run.stats.failed), run.stats.examples)
    assert run.stats.stop_reason is None
    assert run.stats.released == 0
    assert sum(run.server["faults"].get(f"{r}:outage", 0) for r in API_ROUTES) > 0

    times = run.log.times(API_ROUTES)  # the outage began 40 s after the first API request
    down, up = times[0] + 40 * s, times[0] + 100 * s
    # The runner learns of the outage from its first call into it (jobs in flight may all be
    # waiting for their first poll when it starts): the trickle is timed from that call.
    seen = min(a.at for a in run.log.arrivals if a.at >= down and a.status == 503)
    before = count_between(times, down - 20 * s, down) / 20
    trickle = quiet_from(times, seen, up, 1 * s, TRICKLE)
    during = count_between(times, trickle, up) / ((up - trickle) / s)
    recovered = min(a.at for a in run.log.arrivals if a.at >= up and a.status == 200)
    after = count_between(times, recovered, recovered + 20 * s) / 20
    figures = {
        "scale_s": s, "jobs": n, "completed": run.stats.completed,
        "rate_before_per_s": round(before, 2), "rate_during_per_s": round(during, 3),
        "rate_after_per_s": round(after, 2),
        "first_call_into_outage_s": round((seen - down) / s, 2),
        "time_to_trickle_s": round((trickle - seen) / s, 2),
        "time_to_recover_s": round((recovered - up) / s, 2),
        "requests_during_outage": count_between(times, down, up),
        "wall_s_scaled": round(run.wall / s, 1),
    }  # fmt: skip
    print("outage", json.dumps(figures))
    assert (trickle - seen) / s <= 5.0, figures  # a trickle within seconds
    assert during <= 1.0, figures
    # Recovery is noticed by the next probe: at most the longest gap between probes (10 s),
    # plus what a loaded machine adds to the probe's own sending (a ledger fsync for a submit).
    assert recovered - up <= OutagePolicy().probe_cap * s + 0.5, figures


async def test_outage_longer_than_patience_stops_the_run(tmp_path: Path):
    """A server down for longer than the runner's patience: the run stops, no job fails."""
    jobs = make_jobs(tmp_path, 60)
    config = EmulatorConfig(seed=4, workers=20, latency=0.3, outage_start=0.5,
                            outage_seconds=3600, log_requests=True)  # fmt: skip
    engine = scaled_engine(3.0, concurrency=20, typical_seconds=0.3, seed=4)
    engine["outage"] = OutagePolicy(probe_base=0.05, probe_cap=0.2, patience=2.0)
    run = await run_soak(config, jobs, tmp_path / "out", scaled_timeouts(0.05), **engine)

    assert "outage" in (run.stats.stop_reason or "")
    assert not run.stats.failed, run.stats.examples
    unfinished = run.stats.jobs - run.stats.completed
    assert unfinished > 0
    assert run.stats.released == unfinished
    # While it waited, the probes were a trickle: at most one per 0.2 s after the first few.
    times = run.log.times(API_ROUTES, since=run.log.first(503) or 0.0)
    print("outage-patience", json.dumps({"released": run.stats.released,
          "completed": run.stats.completed, "requests_after_outage_start": len(times),
          "wall_s": round(run.wall, 2), "stop_reason": run.stats.stop_reason}))  # fmt: skip
    assert len(times) <= 5 + 2.5 / 0.2 + 20
