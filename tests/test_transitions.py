"""The transition table: every (state, event) pair replays as the table says, or is damage that
names its line; records serialise exactly like the lines older code wrote."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchgen.cli.main import main
from batchgen.core import events
from batchgen.core.errors import ApiError, MediaRefused
from batchgen.core.events import Event, FailureKind, record_fields
from batchgen.core.lifecycle import TRANSITIONS, LedgerDamage, State, replay
from batchgen.core.policy import decide_media
from batchgen.edges.ledger import LedgerWriter, encode

FIXTURE = Path(__file__).parent / "fixtures" / "ledger-v1.jsonl"
T0 = 1_700_000_000.0


def rec(event: str, **fields: Any) -> bytes:
    return encode({"v": 1, "t": T0, "event": event, "job": "j", **fields})


INTENT = rec("intent", attempt=0)
SUBMITTED = rec("submitted", request_id="r", status_url="s", response_url="u")
# A shortest legal history that leaves job "j" in each state (the intent answered, where one is).
REACH: dict[State, list[bytes]] = {
    State.PENDING: [],
    State.UNKNOWN: [INTENT, rec("unknown", error="reset")],
    State.IN_FLIGHT: [INTENT, SUBMITTED],
    State.COMPLETED: [INTENT, SUBMITTED, rec("completed", request_id="r", file="f", sha256="s")],
    State.FAILED: [INTENT, rec("failed", kind="server", error="FAILED")],
}
JOB_EVENTS = [event for event in Event if event is not Event.RUN]


def test_the_table_covers_every_state_and_only_job_events():
    assert set(TRANSITIONS) == set(State)
    for moves in TRANSITIONS.values():
        assert set(moves) <= set(JOB_EVENTS)
        assert Event.RELEASED in moves  # a stop may release a job in any state
    for state, lines in REACH.items():  # the histories below do reach their states
        job = replay(lines).jobs.get("j")
        assert (job.state if job else State.PENDING) is state


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", JOB_EVENTS)
def test_each_pair_replays_as_the_table_says(state: State, event: Event):
    """A legal pair leads where the table says; any other is LedgerDamage naming the line."""
    fields = {
        Event.INTENT: {"attempt": 1},
        Event.SUBMITTED: {"request_id": "r2", "status_url": "s", "response_url": "u"},
        Event.UNKNOWN: {"error": "e"},
        Event.EXPIRED: {"request_id": "r"},
        Event.COMPLETED: {"request_id": "r", "file": "f", "sha256": "s"},
        Event.FAILED: {"kind": "gave_up", "error": "e"},
        Event.RELEASED: {"reason": "stop"},
    }[event]
    lines = [rec("run", model="m"), *REACH[state], rec(event.value, **fields), rec("run")]
    target = TRANSITIONS[state].get(event)
    if target is None:
        with pytest.raises(LedgerDamage) as caught:
            replay(lines)
        assert caught.value.line == len(REACH[state]) + 2
        assert f"'{event}' for job 'j' in state {state}: not a legal transition" in str(
            caught.value
        )
    else:
        assert replay(lines).jobs["j"].state is target


def test_an_illegal_line_in_the_middle_of_a_real_ledger_is_named(tmp_path: Path):
    """A real ledger with one record moved out of order stops replay at that record."""
    lines = FIXTURE.read_bytes().splitlines(keepends=True)[:-1]
    first = next(i for i, raw in enumerate(lines) if b'"event":"completed"' in raw)
    job = json.loads(lines[first])["job"]
    expired = encode({"v": 1, "t": T0, "event": "expired", "job": job, "request_id": "r"})
    lines.insert(1, expired)  # before the job was ever submitted
    with pytest.raises(LedgerDamage, match=r"^line 2: 'expired' for job .* in state pending"):
        replay(lines)


def typed(record: dict[str, Any]) -> events.LedgerRecord:
    """The typed record of a parsed ledger line."""
    kind = {
        cls.EVENT.value: cls
        for cls in (events.RunStarted, events.Intent, events.Submitted, events.Unknown,
                    events.Expired, events.Completed, events.Failed, events.Released)
    }[record["event"]]  # fmt: skip
    values = {f.name: record[f.name] for f in dataclasses.fields(kind) if f.name in record}
    if "kind" in values:
        values["kind"] = FailureKind(values["kind"])
    return kind(**values)


def test_records_serialise_like_the_lines_older_code_wrote():
    """Each fixture line, rebuilt as a typed record, gives the same bytes (same `t`)."""
    for raw in FIXTURE.read_bytes().splitlines(keepends=True)[:-1]:
        record = json.loads(raw)
        fields = record_fields(typed(record))
        head = {"v": record["v"], "t": record["t"], "event": record["event"]}
        assert encode({**head, **fields}) == raw


def test_the_writer_appends_typed_records(tmp_path: Path):
    """LedgerWriter.append(record) writes the record's line; replay reads it back."""
    path = tmp_path / "ledger.jsonl"

    async def write() -> None:
        async with LedgerWriter(path) as ledger:
            await ledger.append(events.RunStarted(model="m", manifest="x.yaml"))
            await ledger.append(events.Intent(job="j", attempt=0))
            await ledger.append(events.Failed("j", FailureKind.TOO_LARGE, "big", None, {"id": 1}))

    asyncio.run(write())
    lines = path.read_bytes().splitlines()
    assert [json.loads(raw)["event"] for raw in lines] == ["run", "intent", "failed"]
    assert json.loads(lines[2])["kind"] == "too_large"
    got = replay(path.read_bytes().splitlines(keepends=True))
    assert (got.runs, got.jobs["j"].state, got.jobs["j"].failure) == (
        1,
        State.FAILED,
        "too_large: big",
    )


def test_every_failure_kind_the_media_edge_can_give_is_a_failure_kind():
    """`decide_media` kinds become FailureKind members at the engine's call: none may be missing."""
    source = (Path(events.__file__).parent.parent / "edges" / "media.py").read_text()
    refused = set(re.findall(r'MediaRefused\(\s*"([a-z_]+)"', source))
    assert refused, "no MediaRefused kinds found: the pattern is out of date"
    kinds = {decide_media(MediaRefused(kind, "x"))[1] for kind in refused}
    kinds |= {decide_media(exc)[1] for exc in (ApiError(410, "gone"), ValueError("bad"))}
    assert kinds <= {kind.value for kind in FailureKind}


def test_status_reports_an_illegal_transition_as_damage(tmp_path: Path):
    """`batchgen status` exits 2 and names the line of a record the table does not allow."""
    lines = [rec("run", model="m"), INTENT, rec("expired", request_id="r")]
    (tmp_path / "ledger.jsonl").write_bytes(b"".join(lines) + rec("run"))
    result = CliRunner().invoke(main, ["status", str(tmp_path)])
    assert result.exit_code == 2
    assert "line 3: 'expired' for job 'j' in state unknown" in result.stderr


def test_a_reused_image_is_completed_from_any_state_a_submit_starts_from():
    """The catalogue may supply any job this run would submit: `completed` with `reused`."""
    for state in (State.PENDING, State.UNKNOWN, State.IN_FLIGHT, State.FAILED, State.COMPLETED):
        line = rec("completed", request_id="r0", file="f", sha256="s", reused={"from": "x"})
        assert replay([*REACH[state], line]).jobs["j"].state is State.COMPLETED


def test_reused_is_written_only_when_set():
    """Older lines have no `reused` key; a record without one writes none."""
    plain = events.Completed("j", "r", "f", "s", 1, "png", None, {}, None, {})
    assert "reused" not in record_fields(plain)
    copied = dataclasses.replace(plain, reused={"from": "cat"})
    assert list(record_fields(copied))[-1] == "reused"
