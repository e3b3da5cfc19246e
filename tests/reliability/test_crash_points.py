"""Targeted crash points: the process SIGKILLs itself at a named moment (batchgen/crashpoints.py),
then the same command resumes. Only a kill between the POST's answer and its ledger record
("post-sent") may make the user pay twice, and then the job is listed in summary.json.

The killed run has one job in flight (`--concurrency 1`), so the job at the point is known and
no other submit hides behind it; the resume runs at full width. Short form: 2 seeds (kill at the
Nth time the point is reached) per point; `--long`: 5. `BATCHGEN_CRASH_SEED` replays one seed.
"""

from __future__ import annotations

import json
import random
import re
import signal
from pathlib import Path

import pytest

from batchgen.core.lifecycle import State
from batchgen.edges.crashpoints import CRASH_ENV
from batchgen.manifest.loader import load_manifest
from tests.helpers import write_jsonl
from tests.procs import check_dataset, finish, server_stats, start_run
from tests.reliability.campaign import (
    at_risk,
    campaign_seed,
    duplicate_problems,
    final_images_decode,
    job_by_fingerprint,
    partials,
    read_ledger,
)

JOBS = 8
POINTS = ("intent", "post-sent", "downloaded", "renamed")


def seeds(long_form: bool) -> list[int]:
    base = campaign_seed(8000)
    return [base + i for i in range(5 if long_form else 2)]


@pytest.mark.timeout(600)  # several seeds, two processes each
@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_named_point_then_resume(
    tmp_path: Path, module_emulator_url: str, long_form: bool, point: str
) -> None:
    """Killed at POINT (the Nth time it is reached, N seeded), resumed: every job once, and a
    double payment only at post-sent, listed in summary.json."""
    for seed in seeds(long_form):
        nth = random.Random(f"{point}:{seed}").randint(1, JOBS - 1)
        case = f"{point} seed {seed} (N={nth}; replay: {CRASH_ENV}={point}:{nth})"
        folder = tmp_path / str(seed)
        folder.mkdir()
        manifest = folder / "jobs.jsonl"
        write_jsonl(manifest, ({"prompt": f"{point} {seed} job {i}"} for i in range(JOBS)))
        jobs = job_by_fingerprint(load_manifest(manifest).jobs())
        ids = {job_id: print_ for print_, job_id in jobs.items()}
        out = folder / "out"
        env = {CRASH_ENV: f"{point}:{nth}"}
        code, _, stderr = finish(
            start_run(manifest, out, module_emulator_url, "--concurrency", "1", env=env)
        )
        assert code == -signal.SIGKILL, f"{case}: exit {code}: {stderr[-2000:]}"

        state = read_ledger(out)
        assert not final_images_decode(out), case
        risk = {job for job, _ in at_risk(state)}
        if point in ("intent", "post-sent"):
            assert len(risk) == 1, f"{case}: unanswered submits {risk}"
            (victim,) = risk
        else:  # the hook names the image it caught (another job may be storing too)
            found = re.search(rf"crashpoint {point} #\d+: (\S+)", stderr)
            assert found, f"{case}: {stderr[-2000:]}"
            image = Path(found.group(1))
            victim = image.stem
            assert state.jobs[victim].state is State.IN_FLIGHT, case  # not recorded yet
            if point == "downloaded":  # complete in its temp file, not under its final name
                assert not image.exists(), case
                assert any(name.startswith(f".{image.name}.") for name in partials(out)), case
            else:
                assert image.exists(), case

        code, _, stderr = finish(start_run(manifest, out, module_emulator_url))
        assert code == 0, f"{case}: {stderr[-2000:]}"
        check_dataset(out, JOBS)
        duplicates = {
            p: n for p, n in server_stats(module_emulator_url)["duplicates"].items() if p in jobs
        }
        listed = json.loads((out / "summary.json").read_text())["possible_double_charge_jobs"]
        assert not duplicate_problems(duplicates, jobs, risk, listed), (case, duplicates, listed)
        if point == "intent":  # killed before the POST: nothing paid twice (but listed: unknown)
            assert duplicates == {}, case
            assert victim in {entry["job"] for entry in listed}, case
        elif point == "post-sent":  # paid, answer not recorded: the one allowed double payment
            assert duplicates == {ids[victim]: 1}, case
        else:  # the job at the point is re-attached, never paid again; another job's submit
            # may have been in flight unanswered meanwhile (its slot is free while storing)
            assert ids[victim] not in duplicates, case
            assert sum(duplicates.values()) <= len(risk), case
