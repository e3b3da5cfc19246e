"""The crash campaign: a run SIGKILLed at seeded random moments and resumed each time.

Short form (CI): 300 jobs, 5 kills. `pytest tests/reliability --long -s`: 2,000 jobs, 20 kills
(the README's figures). Replay a failing seed with `BATCHGEN_CRASH_SEED=<seed>` (the seed and
every kill are in the failure message).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from batchgen.core.lifecycle import Replay, State
from batchgen.edges.crashpoints import CRASH_ENV
from batchgen.manifest.loader import load_manifest
from tests.procs import (
    check_dataset,
    finish,
    ledger_events,
    server_stats,
    start_run,
    wait_for_events,
    write_jobs,
)
from tests.reliability.campaign import (
    at_risk,
    campaign_seed,
    duplicate_problems,
    final_images_decode,
    job_by_fingerprint,
    kill_schedule,
    read_ledger,
    records_needed,
    run_started_at,
)

DEFAULT_SEED = 20261124


@pytest.mark.timeout(1800)  # the long form: 21 runs of up to 2,000 jobs on a loaded machine
def test_crash_campaign(tmp_path: Path, emulator_url: str, long_form: bool) -> None:
    """Kill at seeded moments, resume each time: every job once, every image whole, the ledger
    replays, and every double payment is a submit caught unanswered by a kill, listed in
    summary.json."""
    total, kills = (2000, 20) if long_form else (300, 5)
    seed = campaign_seed(DEFAULT_SEED)
    schedule = kill_schedule(seed, kills)
    manifest = write_jobs(tmp_path / "jobs.jsonl", total)
    out = tmp_path / "out"
    log: list[dict[str, Any]] = []
    risky: set[tuple[str, int]] = set()

    def context() -> str:
        return f"seed {seed} ({len(schedule)} kills {schedule}); kills so far: {log}"

    state = Replay()
    for number, kill in enumerate(schedule, start=1):
        records = kill.records(records_needed(state, total))
        spawned = time.time()
        if kill.hook:
            proc = start_run(manifest, out, emulator_url, env={CRASH_ENV: f"ledger:{records}"})
        else:
            proc = start_run(manifest, out, emulator_url)
            wait_for_events(out, ledger_events(out) + records, proc)
            proc.send_signal(signal.SIGKILL)
        code, _, stderr = finish(proc)
        assert code == -signal.SIGKILL, f"kill {number}: exit {code} {stderr[-2000:]}\n{context()}"
        state = read_ledger(out)
        bad = final_images_decode(out)
        assert not bad, f"kill {number}: partial files under final names: {bad}\n{context()}"
        risk = at_risk(state)
        risky |= risk
        log.append({
            "kill": number, "hook": kill.hook, "records": records, "unanswered": len(risk),
            "completed": sum(j.state is State.COMPLETED for j in state.jobs.values()),
            "resume_s": round(run_started_at(out) - spawned, 2) if number > 1 else None,
        })  # fmt: skip

    spawned = time.time()
    code, _, stderr = finish(start_run(manifest, out, emulator_url), timeout=600)
    final_seconds = time.time() - spawned
    assert code == 0, f"{stderr[-2000:]}\n{context()}"
    final_resume = run_started_at(out) - spawned
    check_dataset(out, total)
    stats = server_stats(emulator_url)
    duplicates = stats["duplicates"]
    summary = json.loads((out / "summary.json").read_text())
    jobs = job_by_fingerprint(load_manifest(manifest).jobs())
    problems = duplicate_problems(
        duplicates, jobs, {job for job, _ in risky}, summary["possible_double_charge_jobs"]
    )
    resumes = [entry["resume_s"] for entry in log if entry["resume_s"] is not None]
    resumes.append(round(final_resume, 2))
    print(
        f"\ncrash campaign: seed {seed}, {total} jobs, {kills} SIGKILLs "
        f"({sum(k.hook for k in schedule)} at a ledger record by hook, the rest from outside); "
        f"submits in flight unanswered at the kills: {len(risky)}; duplicate paid submits: "
        f"{stats['duplicate_paid_submits']}; listed in summary.json: "
        f"{len(summary['possible_double_charge_jobs'])}; resume to first submit: "
        f"max {max(resumes):.2f} s, mean {sum(resumes) / len(resumes):.2f} s; "
        f"final run {final_seconds:.1f} s\nkills: {log}"
    )
    assert not problems, f"{problems}\n{context()}"
    assert stats["duplicate_paid_submits"] <= len(risky), context()
    assert stats["paid_submits"] == total + stats["duplicate_paid_submits"], context()
    assert stats["completed"] == stats["paid_submits"], context()  # every paid job finished
