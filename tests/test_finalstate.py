"""The end of a run's compact fold (`core/finalstate.py`) agrees with the full replay.

Same states, same damage on the same line, same torn tail, the same metadata rows
(`final_rows` against `completed_rows`) and, for the jobs it details, the same `LedgerJob`s.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchgen.core import finalstate
from batchgen.core.digests import DigestMap
from batchgen.core.finalstate import fold_states
from batchgen.core.jobs import generated_key
from batchgen.core.lifecycle import LedgerDamage, Replay, State, replay
from batchgen.edges.ledgerread import final_rows, replay_of
from tests.test_lifecycle import PROPERTY, ledgers, lines_of, serialise

FIXTURE = Path(__file__).parent / "fixtures" / "ledger-v1.jsonl"


def check_agrees(lines: list[bytes]) -> None:
    """fold_states, final_rows and replay_of say what replay and completed_rows say."""
    full = replay(lines)
    got = fold_states(lines)
    assert (got.runs, got.events, got.valid_bytes, got.torn) == (
        full.runs,
        full.events,
        full.valid_bytes,
        full.torn,
    )
    ids = [j for j, _ in got.job_codes()]
    assert len(ids) == len(set(ids))  # a job is under its id or in `settled`, never both
    assert {j: got.state(j) for j in ids} == {j: job.state for j, job in full.jobs.items()}
    noteworthy = {j for j, job in full.jobs.items() if job.state is State.FAILED or job.ambiguous}
    assert got.noteworthy() == noteworthy
    assert got.started() == any(job.state is not State.PENDING for job in full.jobs.values())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.jsonl"
        path.write_bytes(b"".join(lines))
        assert list(final_rows(path, got)) == list(completed_rows(path, full))
        details = replay_of(path, noteworthy)
    # Everything but `completed_line`, which numbers the lines replayed (theirs and runs').
    unnumbered = {j: dataclasses.replace(job, completed_line=None) for j, job in full.jobs.items()}
    assert {
        j: dataclasses.replace(job, completed_line=None) for j, job in details.jobs.items()
    } == {j: unnumbered[j] for j in full.jobs if j in noteworthy}
    assert list(details.jobs) == [j for j in full.jobs if j in noteworthy]  # ledger order


@PROPERTY
@given(ledgers())
def test_the_compact_fold_agrees_with_replay(records: list[dict[str, Any]]):
    """On any ledger the engine can write: states, counts, rows and details all agree."""
    check_agrees(lines_of(records))


# The property ledgers' ids (tests/test_lifecycle.JOB_IDS) as generated ids, the zero one (no
# DigestMap key: kept by name) and an explicit id that only looks like one (upper case).
GENERATED = dict(
    zip(
        ("3f9a0c1e", "b7e2d4a9", "ümlaut-é", "日本-ジョブ"),
        ("j-000000003f9a0c1e", "j-b7e2d4a9b7e2d4a9", "j-0000000000000000", "j-B7E2D4A9B7E2D4A9"),
        strict=True,
    )
)


@PROPERTY
@given(ledgers(), st.sampled_from((1, 2, finalstate.SWEEP)))
def test_generated_ids_swept_to_the_digest_map_agree(records: list[dict[str, Any]], sweep: int):
    """Jobs moved to `settled` after every `sweep` jobs (and back by a later record) fold alike."""
    renamed = [{**r, "job": GENERATED[r["job"]]} if "job" in r else r for r in records]
    with mock.patch.object(finalstate, "SWEEP", sweep):
        check_agrees(lines_of(renamed))


def test_generated_key_is_the_ids_own_bits():
    """j- and 16 lower-case hex digits, one to one; anything else is no generated id."""
    assert generated_key("j-00000000000000ff") == 255
    assert generated_key("j-ffffffffffffffff") == 2**64 - 1
    for other in ("j-FFFFFFFFFFFFFFFF", "j-0x00000000000ff", "j-000000000000000", "job-1", "j-"):
        assert generated_key(other) is None


def test_digest_map_set_replaces_and_items_lists_each_once():
    """`set` overwrites in place; `items` yields every key once, across a growth."""
    table = DigestMap(capacity=2)
    for key in range(1, 50):
        table.set(key, key)
    table.set(7, 700)
    assert len(table) == 49
    assert dict(table.items()) == {**{k: k for k in range(1, 50)}, 7: 700}


@PROPERTY
@given(ledgers(min_size=1), st.data())
def test_a_torn_tail_is_ignored_alike(records: list[dict[str, Any]], data: Any):
    """A cut inside the last line: torn, and the rest folds as replay folds it."""
    lines = lines_of(records)
    cut = data.draw(st.integers(1, len(lines[-1]) - 1), label="cut")
    check_agrees([*lines[:-1], lines[-1][:cut]])


@PROPERTY
@given(ledgers(min_size=2), st.data())
def test_damage_is_refused_on_the_same_line(records: list[dict[str, Any]], data: Any):
    """Garbage or an illegal move before the last line: the same LedgerDamage as replay's."""
    lines = lines_of(records)
    i = data.draw(st.integers(0, len(lines) - 2), label="damaged line")
    lines[i] = data.draw(
        st.sampled_from(
            (
                b"not json\n",
                b'{"v":1,"event":"intent"}\n',
                b'{"v":1,"event":"paid","job":"x"}\n',
                b'{"v":1,"event":"uploaded","sha256":"x"}\n',
                b'{"v":1,"event":"expired","job":"new"}\n',  # not legal from PENDING
                b'{"v":1,"event":"submitted","job":"3f9a0c1e"}\n',  # maybe legal, maybe not
            )
        )
    )
    expected: LedgerDamage | None = None
    try:
        replay(lines)
    except LedgerDamage as exc:
        expected = exc
    if expected is None:
        fold_states(lines)  # and it does not raise either
        return
    with pytest.raises(LedgerDamage) as caught:
        fold_states(lines)
    assert (caught.value.line, str(caught.value)) == (expected.line, str(expected))


def test_the_v1_fixture_folds_alike():
    """The ledger older code wrote (every event kind, a resume, a torn tail)."""
    check_agrees(list(io.BytesIO(FIXTURE.read_bytes())))


def completed_ledger(jobs: int, id_form: str = "j-{:016x}") -> list[bytes]:
    """What a run of `jobs` jobs writes: a run line, then intent, submitted, completed each."""
    lines = [b'{"v":1,"t":1.0,"event":"run","model":"qwen-image","manifest":"m.jsonl"}\n']
    for n in range(jobs):
        job, rid = id_form.format(n + 1), f"{n:032x}"
        url = f"https://api.segmind.com/v2/requests/{rid}"
        lines += [
            serialise({"v": 1, "t": 2.0, "event": "intent", "job": job, "attempt": 0}),
            serialise(
                {
                    "v": 1,
                    "t": 2.5,
                    "event": "submitted",
                    "job": job,
                    "request_id": rid,
                    "status_url": url + "/status",
                    "response_url": url,
                }
            ),
            serialise(
                {
                    "v": 1,
                    "t": 3.5,
                    "event": "completed",
                    "job": job,
                    "request_id": rid,
                    "file": f"{job}.png",
                    "sha256": "ab" * 32,
                    "bytes": 12345,
                    "format": "png",
                    "seed": n,
                    "metrics": {"cost": 0.01},
                    "output": f"https://cdn.segmind.com/{rid}.png",
                    "row": {
                        "file_name": f"{job}.png",
                        "model": "qwen-image",
                        "prompt": f"prompt {n}",
                        "request_id": rid,
                    },
                }
            ),
        ]
    return lines


def retained_bytes(fold: Any, lines: list[bytes]) -> int:
    """Python memory the result of `fold(lines)` holds (tracemalloc: exact, deterministic)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fold(lines)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del result
    return held


def test_finished_jobs_cost_a_digest_map_slot_or_their_id_and_a_slot():
    """Folding 20,000 completed jobs keeps no record: a generated id costs its 64 bits in a
    table at most half full, an explicit id ~100 bytes (its string and a dict slot), where a
    full `replay` (for resume) holds a kilobyte a job."""
    jobs = 20_000
    lines = completed_ledger(jobs)
    states = fold_states(lines)
    assert len(states.codes) <= finalstate.SWEEP
    assert len(states.settled) >= jobs - finalstate.SWEEP
    assert all(type(code) is int for _, code in states.job_codes())  # settled: a shared int
    generated = retained_bytes(fold_states, lines) / jobs
    explicit = retained_bytes(fold_states, completed_ledger(jobs, "job-{:08d}")) / jobs
    full = retained_bytes(replay, lines) / jobs
    # 65,536 slots of 12 bytes at this size (39 a job), and the last < SWEEP jobs by name
    assert generated < 64, generated
    assert explicit < 120, explicit  # a 12-character id is 61 bytes, its slot about 30
    assert full > 10 * generated, (full, generated)
    assert full > 5 * explicit, (full, explicit)


# The rows a full replay gives (what `finish_outputs` read before `final_rows`): the oracle.
def completed_rows(path: Path, result: Replay) -> Iterator[dict[str, Any]]:
    """The metadata row of each job's last `completed` record, in ledger order, streamed."""
    wanted = {
        job.completed_line
        for job in result.jobs.values()
        if job.state is State.COMPLETED and job.completed_line is not None
    }
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number in wanted:
                record = json.loads(raw)
                rows = record.get("rows")  # a job with several images: one row each
                for row in rows if isinstance(rows, list) else [record.get("row")]:
                    if isinstance(row, dict):
                        yield row
