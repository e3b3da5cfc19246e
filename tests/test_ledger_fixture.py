"""A ledger written by real runs of older code still replays to what that code's replay gave.

See tests/fixtures/README.md for how the fixture was made: budget stop, a killed run and its
resume, an expiry, a sync run, retried failures, every event kind, and a torn tail.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path
from typing import Any

from batchgen.core.lifecycle import LedgerJob, replay
from batchgen.edges.ledger import load_states
from batchgen.views.status import read_ledger, summarize

FIXTURES = Path(__file__).parent / "fixtures"
LEDGER = (FIXTURES / "ledger-v1.jsonl").read_bytes()
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "ledger-v1.expected.json").read_text())


V1_FIELDS = set(next(iter(EXPECTED["jobs"].values())))  # what the older replay recorded
# Read since from what v1 ledgers already wrote: a completed job's model, from its metadata row.
V1_MODELS = {
    record["job"]: record["row"]["model"]
    for record in map(json.loads, LEDGER.splitlines()[:-1])
    if record["event"] == "completed"
}


def fields(job: LedgerJob) -> dict[str, Any]:
    """The job's fields as the older replay had them; a field added since (e.g. `more_files`,
    several outputs per job) must hold its default on a ledger that older code wrote."""
    got: dict[str, Any] = {}
    for f in dataclasses.fields(job):
        if not f.compare:
            continue
        if f.name in V1_FIELDS:
            got[f.name] = getattr(job, f.name)
        elif f.name == "model":  # checked against the fixture's rows by the test below
            continue
        else:
            assert getattr(job, f.name) == f.default, f"{f.name} set by a v1 ledger"
    got["state"] = job.state.value
    return got


def test_the_fixture_has_every_event_kind_a_resume_and_a_torn_tail():
    """The fixture is what it claims to be (so the replay test below covers all of it)."""
    lines = LEDGER.splitlines(keepends=True)
    assert not lines[-1].endswith(b"\n")
    events = {json.loads(raw)["event"] for raw in lines[:-1]}
    kinds = ("run", "intent", "submitted", "unknown", "expired", "completed", "failed", "released")
    assert events == set(kinds)
    assert EXPECTED["runs"] >= 2


def test_replay_gives_the_recorded_jobs_counts_and_torn_tail():
    """Every job's fields, the counts and the torn tail equal the older replay's."""
    got = replay(io.BytesIO(LEDGER))
    assert {job_id: fields(job) for job_id, job in got.jobs.items()} == EXPECTED["jobs"]
    completed = {i: j.model for i, j in got.jobs.items() if j.state.value == "completed"}
    assert completed == {i: V1_MODELS[i] for i in completed}  # every one from its own row
    assert completed
    assert (got.runs, got.events, got.valid_bytes, got.torn) == (
        EXPECTED["runs"],
        EXPECTED["events"],
        EXPECTED["valid_bytes"],
        EXPECTED["torn"],
    )


def test_each_prefix_gives_the_recorded_state_of_the_job_it_touched():
    """Line by line, the job a record touches is in the state the older replay gave it."""
    lines = list(io.BytesIO(LEDGER))[:-1]
    for k, want in enumerate(EXPECTED["trace"], start=1):
        result = replay(lines[:k])
        if want is not None:
            job_id, state = want
            assert result.jobs[job_id].state.value == state, (k, lines[k - 1])


def test_a_resume_cuts_the_torn_tail_and_status_counts_it(tmp_path: Path):
    """load_states (a resuming run) truncates the torn tail; status reads the same counts."""
    shutil.copy(FIXTURES / "ledger-v1.jsonl", tmp_path / "ledger.jsonl")
    status = summarize(read_ledger(tmp_path).replay)
    assert status.torn
    assert (status.completed, status.failed, status.jobs) == (13, 1, 14)
    assert status.failed_by_kind == {"server": 1}
    assert status.possible_double_charges == 4
    loaded = load_states(tmp_path / "ledger.jsonl")
    assert (tmp_path / "ledger.jsonl").stat().st_size == EXPECTED["valid_bytes"]
    assert {job_id: str(loaded.state(job_id)) for job_id in EXPECTED["jobs"]} == {
        job_id: job["state"] for job_id, job in EXPECTED["jobs"].items()
    }
    assert len(loaded) == len(EXPECTED["jobs"])
    again = replay((tmp_path / "ledger.jsonl").read_bytes().splitlines(keepends=True))
    assert {job_id: fields(job) for job_id, job in again.jobs.items()} == EXPECTED["jobs"]
