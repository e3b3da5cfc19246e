"""resume.plan: each ledger state maps to the right way of picking a job up (pure, no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.core.jobs import Job
from batchgen.core.lifecycle import LedgerJob, State
from batchgen.core.resume import Step, plan
from batchgen.core.wire import MEDIA_RETENTION
from batchgen.edges.ledger import load_states

JOB = Job(id="j1", model="qwen-image", params={"prompt": "x", "seed": 1})
NOW = 1_800_000_000.0
HOUR = 3600.0


def past(state: State, **fields: object) -> LedgerJob:
    base: dict[str, object] = {
        "request_id": "r1",
        "status_url": "http://api/v2/requests/r1/status",
        "response_url": "http://api/v2/requests/r1",
        "submitted_at": NOW - 60,
    }
    base.update(fields)
    return LedgerJob(state=state, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "intact", "retry", "step", "flag"),
    [
        (None, None, False, Step.SUBMIT, None),
        (past(State.PENDING), None, False, Step.SUBMIT, None),
        (past(State.UNKNOWN), None, False, Step.SUBMIT, "ambiguous"),
        (past(State.IN_FLIGHT), None, False, Step.ATTACH, None),
        (past(State.IN_FLIGHT, submitted_at=NOW - HOUR - 1), None, False, Step.SUBMIT, "expired"),
        (past(State.FAILED), None, False, Step.FAILED, None),
        (past(State.FAILED), None, True, Step.SUBMIT, None),
        (past(State.COMPLETED), True, False, Step.DONE, None),
        (past(State.COMPLETED, output="http://m/1.png", completed_at=NOW - 10), False, False,
         Step.REFETCH, None),
        (past(State.COMPLETED, output="http://m/1.png", completed_at=NOW - MEDIA_RETENTION - 1),
         False, False, Step.ATTACH, None),
        (past(State.COMPLETED, submitted_at=NOW - 2 * HOUR), False, False, Step.SUBMIT, None),
    ],
)  # fmt: skip
def test_plan_table(record, intact, retry, step, flag):
    """Each recorded state gives the step the resume rules promise."""
    work = plan(JOB, record, now=NOW, retention=HOUR, file_intact=intact, retry_failed=retry)
    assert work.step is step
    assert work.ambiguous is (flag == "ambiguous")
    assert work.expired is (flag == "expired")


def test_attach_carries_the_recorded_request_and_its_age():
    """Re-attaching polls the recorded id and knows how old it is."""
    work = plan(JOB, past(State.IN_FLIGHT), now=NOW, retention=HOUR)
    assert work.request is not None
    assert work.request.request_id == "r1"
    assert work.age == pytest.approx(60)


def test_load_states_truncates_a_torn_tail_and_keeps_a_whole_unterminated_record(tmp_path: Path):
    """A torn last line is cut off; a complete last record that lost its newline is kept."""
    path = tmp_path / "ledger.jsonl"
    good = b'{"v":1,"t":1,"event":"intent","job":"a","attempt":0}\n'
    path.write_bytes(good + b'{"v":1,"t":2,"event":"subm')
    result = load_states(path)
    assert (result.torn, path.read_bytes()) == (True, good)
    path.write_bytes(good + b'{"v":1,"t":2,"event":"submitted","job":"a","request_id":"r"}')
    result = load_states(path)
    assert result.state("a") is State.IN_FLIGHT
    assert path.read_bytes().endswith(b'"r"}\n')
