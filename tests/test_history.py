"""A resume's reading of its ledger (`run/history.py`) picks every job up as a full replay would.

Same resume step for every job (`resume.plan`, at any time, with any files lost), the same
cost of earlier runs, the same latencies, the same part counts and the same folder facts; and
it holds only the jobs it must pick up by their details.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchgen.core import finalstate
from batchgen.core.jobs import Job
from batchgen.core.lifecycle import Replay, State, replay
from batchgen.core.resume import plan
from batchgen.core.wire import MEDIA_RETENTION, REQUEST_RETENTION
from batchgen.edges.parts import count_parts
from batchgen.run.history import History, read_history
from tests.test_lifecycle import JOB_IDS, PROPERTY, T0, job_fields, ledgers, lines_of

MODELS = (None, "qwen-image", "seedream-4.5")
PRICES = {"qwen-image": 0.04, "seedream-4.5": 0.2}
# A resume at once, after the requests expired, and after the recorded images expired.
NOWS = (T0 + 60, T0 + REQUEST_RETENTION + 60, T0 + MEDIA_RETENTION + 60)


class Files:
    """The store's one question of a resume (`Store.intact`): only the `present` files are."""

    def __init__(self, present: set[tuple[str, str]]) -> None:
        self.present = present

    def intact(self, name: str, sha256: str | None) -> bool:
        return (name, sha256 or "") in self.present


# Whole job histories as runs write them (resumes included), for ledgers where most jobs end
# completed, some in flight or lost: `ledgers()` alone seldom gets a job that far.
HISTORIES = (
    ("intent", "submitted", "completed"),
    ("intent", "submitted", "completed", "intent", "submitted", "completed"),  # file lost, redone
    ("intent", "submitted", "completed", "completed"),  # fetched again
    ("intent", "submitted"),  # in flight
    ("intent", "submitted", "completed", "intent", "submitted"),  # redone, in flight
    ("intent",),
    ("intent", "unknown"),
    ("intent", "released"),  # refused: nothing paid
    ("intent", "submitted", "failed"),
    ("intent", "submitted", "failed", "intent", "submitted", "completed"),  # retried
    ("intent", "submitted", "expired"),
    ("completed",),  # reused from the catalogue
)
SCRIPTED_IDS = ("j-000000003f9a0c1e", "j-b7e2d4a9b7e2d4a9", "a", "b", "ümlaut-é", "日本")


@st.composite
def scripted(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Each job one of `HISTORIES`, the jobs interleaved, `run` records between."""
    todo = {job: list(draw(st.sampled_from(HISTORIES))) for job in SCRIPTED_IDS}
    records: list[dict[str, Any]] = []
    while any(todo.values()):
        job = draw(st.sampled_from([None, *(j for j, left in todo.items() if left)]))
        n = len(records)
        head = {"v": 1, "t": round(T0 + n * 0.125, 3)}
        if job is None:
            records.append({**head, "event": "run", "model": "qwen-image", "version": "0"})
            continue
        event = todo[job].pop(0)
        records.append({**head, "event": event, **job_fields(draw, event, job, n)})
    return records


@st.composite
def folders(draw: st.DrawFn) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """A valid ledger whose completed records carry costs, models and parts, and which of
    their files are still there."""
    records = draw(st.one_of(ledgers(), scripted()))
    files: list[tuple[str, str]] = []
    for r in records:
        if r["event"] == "completed":
            model = draw(st.sampled_from(MODELS))
            r["row"] = {"id": r["job"]} | ({"model": model} if model else {})
            if draw(st.booleans()):
                r["metrics"] = {"cost": draw(st.sampled_from((0.0, 0.01, 0.5)))}
            if draw(st.booleans()):
                r["file"] = f"data/{draw(st.integers(0, 2)):05d}/{r['file']}"
            files.append((r["file"], r["sha256"]))
    present = {f for f in files if draw(st.booleans())}
    return records, present


def expected_plan(full: Replay, files: Files, job_id: str, now: float, retry: bool) -> Any:
    past = full.jobs.get(job_id)
    intact = None
    if past is not None and past.state is State.COMPLETED:
        intact = past.file is not None and all(
            files.intact(f, h) for f, h in ((past.file, past.sha256), *past.more_files)
        )
    job = Job(id=job_id, model="qwen-image", params={"prompt": "p"})
    return plan(job, past, now=now, retention=REQUEST_RETENTION, file_intact=intact,
                retry_failed=retry)  # fmt: skip


def got_plan(history: History, job_id: str, now: float, retry: bool) -> Any:
    record = history.record(job_id)
    completed = record is not None and record.state is State.COMPLETED
    job = Job(id=job_id, model="qwen-image", params={"prompt": "p"})
    return plan(job, record, now=now, retention=REQUEST_RETENTION,
                file_intact=history.intact(job_id) if completed else None,
                retry_failed=retry)  # fmt: skip


@PROPERTY
@given(folders(), st.sampled_from((1, finalstate.SWEEP)))
def test_every_job_is_picked_up_as_a_full_replay_would(
    folder: tuple[list[dict[str, Any]], set[tuple[str, str]]], sweep: int
):
    """Same step, request, age and URL for every job, any time, lost files or not (with the
    settled generated ids in the fold's digest table, or not)."""
    records, present = folder
    lines = lines_of(records)
    full = replay(lines)
    files = Files(present)
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(finalstate, "SWEEP", sweep):
        path = Path(tmp) / "ledger.jsonl"
        path.write_bytes(b"".join(lines))
        history = read_history(path, files, writable=True)  # type: ignore[arg-type]
    for job_id in (*JOB_IDS, *SCRIPTED_IDS, "never-seen"):
        for now in NOWS:
            for retry in (False, True):
                assert got_plan(history, job_id, now, retry) == expected_plan(
                    full, files, job_id, now, retry
                )
    # Only the jobs picked up by their records are held in full: in flight, or file lost.
    assert set(history.details) <= {
        j for j, job in full.jobs.items() if job.state in (State.IN_FLIGHT, State.COMPLETED)
    }
    assert len(history.states) == len(full.jobs)
    assert history.states.runs == full.runs


@PROPERTY
@given(folders())
def test_costs_latencies_and_parts_are_those_of_the_full_replay(
    folder: tuple[list[dict[str, Any]], set[tuple[str, str]]],
):
    """What earlier runs spent, each model's latencies, and the images each part holds."""
    records, _ = folder
    lines = lines_of(records)
    full = replay(lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.jsonl"
        path.write_bytes(b"".join(lines))
        history = read_history(path, Files(set()), writable=False)  # type: ignore[arg-type]
    done = [job for job in full.jobs.values() if job.state is State.COMPLETED]
    price_of = PRICES.get
    spent = sum(j.cost if j.cost is not None else price_of(j.model or "qwen-image") or 0.0
                for j in done)  # fmt: skip
    assert history.spent(price_of, "qwen-image") == pytest.approx(spent)
    spans: dict[str, list[float]] = {}
    for j in done:
        if j.completed_at and j.submitted_at and j.completed_at >= j.submitted_at:
            spans.setdefault(j.model or "qwen-image", []).append(j.completed_at - j.submitted_at)
    known = history.known_latencies("qwen-image")
    assert {m: sorted(xs) for m, xs in known.items()} == {m: sorted(xs) for m, xs in spans.items()}
    assert history.parts == count_parts(j.file for j in full.jobs.values() if j.file)


def test_a_finished_folder_holds_no_job_in_full(tmp_path: Path):
    """All completed, files intact: no job's records are held, only states."""
    records = []
    for n in range(50):
        job = f"j-{n:016x}"
        records += [
            {"v": 1, "t": T0 + n, "event": "intent", "job": job, "attempt": 0},
            {"v": 1, "t": T0 + n, "event": "submitted", "job": job, "request_id": f"r{n}",
             "status_url": "s", "response_url": "u"},
            {"v": 1, "t": T0 + n + 2.5, "event": "completed", "job": job, "request_id": f"r{n}",
             "file": f"{job}.png", "sha256": f"{n:064x}", "row": {"model": "qwen-image"},
             "metrics": {"cost": 0.01}},
        ]  # fmt: skip
    path = tmp_path / "ledger.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    files = Files({(f"j-{n:016x}.png", f"{n:064x}") for n in range(50) if n != 7})
    history = read_history(path, files, writable=True)  # type: ignore[arg-type]
    assert set(history.details) == history.lost == {"j-0000000000000007"}
    assert history.known_latencies("x") == {"qwen-image": (2.5,) * 50}
    assert history.spent(PRICES.get, "x") == pytest.approx(0.5)
    assert history.details["j-0000000000000007"].file == "j-0000000000000007.png"  # to refetch
    assert Counter(history.states.state(f"j-{n:016x}") for n in range(50)) == {State.COMPLETED: 50}
