"""The crash campaign's parts that need no process: the kill schedule and the invariant checks.

The schedule is pure (a seed in, kill moments out) so a failing seed replays: set
`BATCHGEN_CRASH_SEED` to run one seed again. A kill moment is a number of ledger records, never
a wall-clock time: it means the same progress on a loaded machine as on a quiet one.
"""

from __future__ import annotations

import io
import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from batchgen.core.folder import PART_SUFFIX
from batchgen.core.jobs import Job
from batchgen.core.lifecycle import LedgerDamage, Replay, State, replay
from batchgen.emulator.stats import fingerprint

SEED_ENV = "BATCHGEN_CRASH_SEED"
RECORDS_PER_JOB = 3  # intent, submitted, completed: the least a job needs to finish


def campaign_seed(default: int) -> int:
    """The seed to run: `BATCHGEN_CRASH_SEED` when set (to replay a failure), else `default`."""
    value = os.environ.get(SEED_ENV)
    return int(value) if value else default


@dataclass(frozen=True)
class Kill:
    """One kill: `fraction` of the records the run still needs, then SIGKILL.

    `hook`: the process kills itself right after that many durable ledger records (the
    crashpoints.py `ledger` point: an exact moment between records). Otherwise the test sends
    SIGKILL from outside once the ledger has that many more lines: the process is then anywhere
    (mid-write of a ledger batch, of an image, of a request), which the hooks cannot reach.
    """

    fraction: float
    hook: bool

    def records(self, needed: int) -> int:
        """Records to let through: at least 1 and always fewer than `needed`, so the run is
        always killed before it could finish (no kill is silently skipped)."""
        return max(1, min(needed - 1, round(self.fraction * needed)))


def kill_schedule(seed: int, kills: int, low: float = 0.02, high: float = 0.2) -> list[Kill]:
    """`kills` seeded kills, each after a random share of the remaining work, half of them by
    hook and half from outside (seeded too)."""
    rng = random.Random(seed)
    return [Kill(round(rng.uniform(low, high), 4), rng.random() < 0.5) for _ in range(kills)]


def records_needed(result: Replay, total_jobs: int) -> int:
    """A lower bound of the ledger records a run must still append to finish every job."""
    needed = 1  # its `run` record
    seen = 0
    for job in result.jobs.values():
        seen += 1
        if job.state is State.IN_FLIGHT:
            needed += 1
        elif job.state is not State.COMPLETED:
            needed += RECORDS_PER_JOB
    return needed + RECORDS_PER_JOB * (total_jobs - seen)


def read_ledger(out: Path) -> Replay:
    """Replay the ledger as a resume would (a torn last line is allowed); damage fails."""
    with (out / "ledger.jsonl").open("rb") as handle:
        try:
            return replay(handle)
        except LedgerDamage as exc:  # pragma: no cover - reported as the test's failure
            raise AssertionError(f"the ledger does not replay after a kill: {exc}") from None


def at_risk(result: Replay) -> set[tuple[str, int]]:
    """(job, attempt) of every submit sent without a recorded answer: the only submits a kill
    may make us pay twice for."""
    return {
        (job_id, job.attempts) for job_id, job in result.jobs.items() if job.state is State.UNKNOWN
    }


def final_images_decode(out: Path) -> list[str]:
    """Names of files under a final image name that are not a complete image (should be none)."""
    bad = []
    for path in out.iterdir():
        if path.name.startswith(".") or path.suffix not in (".png", ".jpg", ".webp"):
            continue
        try:
            with Image.open(io.BytesIO(path.read_bytes())) as image:
                image.load()
        except OSError as exc:
            bad.append(f"{path.name}: {exc}")
    return bad


def partials(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(f".*{PART_SUFFIX}"))


def job_by_fingerprint(jobs: Iterable[Job]) -> dict[str, str]:
    """The emulator's fingerprint of each job's submit body -> the job id."""
    return {fingerprint(job.model, dict(job.params)): job.id for job in jobs}


def duplicate_problems(
    duplicates: dict[str, int],
    jobs: dict[str, str],
    risky_jobs: set[str],
    listed: list[dict[str, Any]],
) -> list[str]:
    """Why the emulator's duplicate paid submits are not all explained (empty: all are).

    Each duplicated fingerprint must be a job of the manifest, whose submit was in flight
    unanswered at a kill, and listed in summary.json with at least that many lost answers.
    """
    lost = {entry["job"]: int(entry["lost_answers"]) for entry in listed}
    problems = []
    for print_, extra in sorted(duplicates.items()):
        job = jobs.get(print_)
        if job is None:
            problems.append(f"fingerprint {print_} paid {extra + 1}x is no job of the manifest")
        elif job not in risky_jobs:
            problems.append(f"job {job} paid {extra + 1}x but no kill caught its submit unanswered")
        elif lost.get(job, 0) < extra:
            problems.append(f"job {job} paid {extra + 1}x but summary.json lists {lost.get(job)}")
    return problems


def run_started_at(out: Path) -> float:
    """Epoch time of the last `run` record: when the latest run had replayed the ledger and
    was about to submit (its resume time is this minus when its process was started)."""
    last = 0.0
    with (out / "ledger.jsonl").open("rb") as handle:
        for raw in handle:
            if b'"event":"run"' in raw:
                last = float(json.loads(raw)["t"])
    return last
