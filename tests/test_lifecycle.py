"""Ledger replay: each event's effect (tables), and properties over generated ledgers (hypothesis).

Ledgers are generated as the engine writes them: per job, events follow the engine's legal
orders (intent -> (unknown -> intent)* -> submitted -> (expired -> intent ...) -> completed |
failed, `released` anywhere, a later run resuming where the last one left off), interleaved
across jobs with `run` records, and serialised byte for byte like `LedgerWriter`.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchgen.core.lifecycle import LedgerDamage, LedgerJob, Replay, State, replay

T0 = 1_700_000_000.0
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True)  # same cases every run

# Hex ids as the engine derives them, plus manifest-given ids with multi-byte UTF-8.
JOB_IDS = ("3f9a0c1e", "b7e2d4a9", "ümlaut-é", "日本-ジョブ")
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=10)  # Cs: not encodable
FAIL_KINDS = ("server", "invalid", "gave_up", "download", "expired")

# What may follow a job's last event (other than `released`, which may come anywhere and
# changes nothing). A later run resumes from the same state, so the table holds across runs:
# in flight is re-polled (expired/completed/failed), unknown/pending are resubmitted (intent),
# completed with a missing file and failed with --retry-failed are redone (intent).
NEXT: dict[str | None, tuple[str, ...]] = {
    None: ("intent",),
    "intent": ("intent", "unknown", "submitted", "failed"),
    "unknown": ("intent", "failed"),
    "submitted": ("expired", "completed", "failed"),
    "expired": ("intent", "failed"),
    "completed": ("intent",),
    "failed": ("intent",),
}


def serialise(record: dict[str, Any]) -> bytes:
    """Exactly `LedgerWriter.append`'s bytes for a record."""
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def job_fields(draw: st.DrawFn, event: str, job: str, n: int) -> dict[str, Any]:
    """The fields the engine writes for `event` (see `ledger.py`), with drawn values."""
    rid = f"req-{n:04x}"
    if event == "intent":
        return {"job": job, "attempt": draw(st.integers(0, 5))}
    if event == "unknown":
        return {"job": job, "error": draw(TEXT)}
    if event == "submitted":
        return {
            "job": job,
            "request_id": rid,
            "status_url": f"http://h/v2/requests/{rid}/status",
            "response_url": f"http://h/v2/requests/{rid}",
        }
    if event == "expired":
        return {"job": job, "request_id": rid}
    if event == "completed":
        fields: dict[str, Any] = {
            "job": job,
            "request_id": rid,
            "file": f"{job}.jpg",
            "sha256": f"{n:064x}",
            "bytes": draw(st.integers(1, 10**6)),
            "format": "jpeg",
            "seed": draw(st.integers(0, 2**31)),
            "metrics": {"inference_time": 1.5},
        }
        if draw(st.booleans()):  # not written by today's engine; replay keeps it if present
            fields["output"] = f"http://media/{rid}.jpg"
        return fields
    if event == "failed":
        request_id = draw(st.none() | st.just(rid))
        return {"job": job, "kind": draw(st.sampled_from(FAIL_KINDS)), "error": draw(TEXT),
                "request_id": request_id}  # fmt: skip
    assert event == "released"
    return {"job": job, "reason": draw(st.none() | TEXT)}


@st.composite
def ledgers(draw: st.DrawFn, min_size: int = 0, max_size: int = 24) -> list[dict[str, Any]]:
    """A valid ledger as a list of records: legal per-job orders, interleaved, with runs."""
    size = draw(st.integers(min_size, max_size))
    last: dict[str, str | None] = dict.fromkeys(JOB_IDS)  # last non-`released` event per job
    records: list[dict[str, Any]] = []
    for n in range(size):
        head = {"v": 1, "t": round(T0 + n * 0.125, 3)}
        job = draw(st.sampled_from((None, *JOB_IDS)))  # None: a `run` record
        if job is None:
            records.append({**head, "event": "run", "model": "qwen-image", "version": "0.1.0"})
            continue
        event = draw(st.sampled_from((*NEXT[last[job]], "released")))
        if event != "released":
            last[job] = event
        records.append({**head, "event": event, **job_fields(draw, event, job, n)})
    return records


def reference(records: list[dict[str, Any]]) -> Replay:
    """The expected fold, written from the ledger's documented meaning of each event."""
    result = Replay()
    for number, r in enumerate(records, start=1):
        result.events += 1
        result.valid_bytes += len(serialise(r))
        if r["event"] == "run":
            result.runs += 1
            continue
        job = result.jobs.setdefault(r["job"], LedgerJob())
        if r["event"] == "intent" and job.open_intent_run not in (-1, result.runs):
            job.ambiguous += 1  # an earlier run died between this job's intent and its answer
        if r["event"] == "released" and job.open_intent_run != -1:
            job.state = State.PENDING  # released after a refused submit: nothing was paid
        job.open_intent_run = result.runs if r["event"] == "intent" else -1
        match r["event"]:
            case "intent":
                job.state, job.attempts = State.UNKNOWN, job.attempts + 1
            case "unknown":
                job.state, job.ambiguous = State.UNKNOWN, job.ambiguous + 1
            case "submitted":
                job.state, job.request_id = State.IN_FLIGHT, r["request_id"]
                job.status_url, job.response_url = r["status_url"], r["response_url"]
                job.submitted_at = r["t"]
            case "expired":
                job.state = State.PENDING
            case "completed":
                job.state, job.request_id, job.failure = State.COMPLETED, r["request_id"], None
                job.file, job.sha256, job.output = r["file"], r["sha256"], r.get("output")
                job.completed_at, job.completed_line = r["t"], number
            case "failed":
                job.state, job.failure = State.FAILED, f"{r['kind']}: {r['error']}"
    return result


def lines_of(records: list[dict[str, Any]]) -> list[bytes]:
    return [serialise(r) for r in records]


def file_lines(blob: bytes) -> list[bytes]:
    """The lines a binary file iterator yields for `blob` (split at b"\\n" only)."""
    return list(io.BytesIO(blob))


def assert_resumable(result: Replay) -> None:
    """Every job is in a state the engine can resume from, with what that state needs."""
    for job in result.jobs.values():
        assert job.state in set(State)
        if job.state is State.IN_FLIGHT:
            assert job.request_id
            assert job.response_url
        if job.state is State.COMPLETED:
            assert job.file
            assert job.sha256
        assert job.ambiguous >= 0
        assert job.attempts >= 0


# -- properties -----------------------------------------------------------------------------------


@PROPERTY
@given(ledgers())
def test_every_prefix_replays_to_the_reference_fold(records: list[dict[str, Any]]):
    """Replay of each line-prefix of a valid ledger equals the reference model's fold of it."""
    lines = lines_of(records)
    for k in range(len(lines) + 1):
        assert replay(lines[:k]) == reference(records[:k])


@PROPERTY
@given(ledgers(min_size=1), st.data())
def test_a_cut_inside_the_last_line_is_a_torn_tail(records: list[dict[str, Any]], data: Any):
    """Bytes cut anywhere in the last line: torn, same jobs as without it, valid_bytes = prefix."""
    lines = lines_of(records)
    k = data.draw(st.integers(0, len(lines) - 1), label="line cut")
    cut = data.draw(st.integers(0, len(lines[k])), label="byte offset in it")
    got = replay(file_lines(b"".join(lines[:k]) + lines[k][:cut]))
    if cut == len(lines[k]):  # exactly at the line end: nothing is torn
        assert got == reference(records[: k + 1])
    elif cut == len(lines[k]) - 1:  # only the newline is missing: a complete object, kept
        want = reference(records[: k + 1])
        want.valid_bytes -= 1
        assert got == want
    else:  # cut == 0 leaves no last line at all; otherwise a strict prefix of `{...}`
        want = reference(records[:k])
        want.torn = cut > 0
        assert got == want
        assert got.valid_bytes == len(b"".join(lines[:k]))


@PROPERTY
@given(ledgers(min_size=2), st.data())
def test_damage_before_the_last_line_names_it(records: list[dict[str, Any]], data: Any):
    """A non-record line anywhere but last raises LedgerDamage with that line's number."""
    lines = lines_of(records)
    i = data.draw(st.integers(0, len(lines) - 2), label="damaged line index")
    original = lines[i]
    garbage = data.draw(
        st.sampled_from(
            (
                b"\n",
                b"  \n",
                b"not json\n",
                b"null\n",
                b"[1, 2]\n",
                b'"text"\n',
                b'{"v":1,"t":1}\n',  # no event
                b'{"v":1,"event":"intent"}\n',  # a job event without a job id
                b'{"v":1,"event":"paid","job":"x"}\n',  # an event nobody writes
                b"\xff\xfe{}\n",  # not UTF-8
                b"\x00" * 8 + b"\n",  # a hole left by a crash on some filesystems
            )
        )
        | st.integers(0, len(original) - 2).map(lambda cut: original[:cut] + b"\n"),
        label="damage",
    )
    lines[i] = garbage
    with pytest.raises(LedgerDamage) as caught:
        replay(lines)
    assert caught.value.line == i + 1
    assert str(caught.value).startswith(f"line {i + 1}: ")


@PROPERTY
@given(ledgers(), st.data())
def test_any_prefix_or_torn_cut_is_resumable(records: list[dict[str, Any]], data: Any):
    """Any byte prefix of a valid ledger replays to states the engine can resume from."""
    blob = b"".join(lines_of(records))
    cut = data.draw(st.integers(0, len(blob)), label="byte prefix")
    got = replay(file_lines(blob[:cut]))
    assert_resumable(got)
    assert got.valid_bytes <= cut
    assert blob[: got.valid_bytes].endswith(b"\n") or got.valid_bytes in (0, cut)


def test_every_offset_of_a_multibyte_last_line_is_torn():
    """Exhaustively: each cut strictly inside a UTF-8 last line (but its newline) is torn."""
    head = serialise({"v": 1, "t": T0, "event": "intent", "job": "日本-ジョブ", "attempt": 0})
    last = serialise({"v": 1, "t": T0 + 1, "event": "unknown", "job": "日本-ジョブ",
                      "error": "接続がリセットされました ✂"})  # fmt: skip
    for cut in range(1, len(last) - 1):
        got = replay([head, last[:cut]])
        assert got.torn, cut
        assert got.valid_bytes == len(head)
        assert got.jobs["日本-ジョブ"] == LedgerJob(state=State.UNKNOWN, attempts=1)


# -- each event's effect (tables) ------------------------------------------------------------------


def rec(event: str, **fields: Any) -> bytes:
    return serialise({"v": 1, "t": T0 + 7, "event": event, **fields})


SUBMITTED = rec("submitted", job="j", request_id="r1", status_url="s1", response_url="u1")
IN_FLIGHT = [rec("intent", job="j", attempt=0), SUBMITTED]
FLYING = {"request_id": "r1", "status_url": "s1", "response_url": "u1", "submitted_at": T0 + 7}


@pytest.mark.parametrize(
    ("before", "event", "want"),
    [
        ([], rec("intent", job="j", attempt=0), {"state": State.UNKNOWN, "attempts": 1}),
        (
            [rec("intent", job="j", attempt=0)],
            rec("unknown", job="j", error="reset"),
            {"state": State.UNKNOWN, "attempts": 1, "ambiguous": 1},
        ),
        (
            [rec("intent", job="j", attempt=0)],
            SUBMITTED,
            {"state": State.IN_FLIGHT, "attempts": 1, **FLYING},
        ),
        (
            IN_FLIGHT,
            rec("expired", job="j", request_id="r1"),
            {"state": State.PENDING, "attempts": 1, **FLYING},
        ),
        (
            IN_FLIGHT,
            rec("completed", job="j", request_id="r1", file="j.png", sha256="ab", bytes=3),
            {
                "state": State.COMPLETED,
                "attempts": 1,
                **FLYING,
                "file": "j.png",
                "sha256": "ab",
                "completed_at": T0 + 7,
            },
        ),
        (
            IN_FLIGHT,
            rec("completed", job="j", file="j.png", sha256="ab", output="http://m/j.png"),
            {
                "state": State.COMPLETED,
                "attempts": 1,
                **FLYING,
                "file": "j.png",
                "sha256": "ab",
                "output": "http://m/j.png",
                "completed_at": T0 + 7,
            },
        ),  # no request_id in the record: the submitted one is kept
        (
            IN_FLIGHT,
            rec("failed", job="j", kind="server", error="FAILED", request_id="r1"),
            {"state": State.FAILED, "attempts": 1, **FLYING, "failure": "server: FAILED"},
        ),
        (
            [rec("intent", job="j", attempt=0)],
            rec("failed", job="j", kind="invalid", error="422: bad", request_id=None),
            {"state": State.FAILED, "attempts": 1, "failure": "invalid: 422: bad"},
        ),
        (
            IN_FLIGHT,
            rec("released", job="j", reason="interrupted"),
            {"state": State.IN_FLIGHT, "attempts": 1, **FLYING},
        ),
        ([], rec("released", job="j", reason=None), {}),
        (
            [*IN_FLIGHT, rec("failed", job="j", kind="server", error="x")],
            rec("intent", job="j", attempt=0),
            {"state": State.UNKNOWN, "attempts": 2, **FLYING, "failure": "server: x"},
        ),  # a retried failure keeps its old reason until it completes
        (
            [*IN_FLIGHT, rec("failed", job="j", kind="server", error="x"), *IN_FLIGHT],
            rec("completed", job="j", request_id="r1", file="f", sha256="s"),
            {
                "state": State.COMPLETED,
                "attempts": 2,
                **FLYING,
                "file": "f",
                "sha256": "s",
                "completed_at": T0 + 7,
            },
        ),  # completion clears the failure
    ],
    ids=[
        "intent",
        "unknown",
        "submitted",
        "expired",
        "completed",
        "completed-with-output-no-rid",
        "failed-in-flight",
        "failed-at-submit",
        "released-in-flight",
        "released-first",
        "intent-after-failed",
        "completed-after-retry",
    ],
)
def test_event_effect(before: list[bytes], event: bytes, want: dict[str, Any]):
    """Each event moves a job to the documented state and records the documented fields."""
    got = replay([*before, event])
    if want.get("state") is State.COMPLETED:
        want = {**want, "completed_line": len(before) + 1}  # where its metadata row is
    assert got.jobs["j"] == LedgerJob(**want)
    assert (got.events, got.torn) == (len(before) + 1, False)
    assert got.valid_bytes == sum(map(len, before)) + len(event)


def test_run_records_count_runs_and_touch_no_job():
    """`run` records are counted and create no job."""
    got = replay([rec("run", model="m"), rec("run", model="m")])
    assert (got.runs, got.events, got.jobs) == (2, 2, {})


def test_a_submitted_without_urls_or_time_stores_none():
    """Empty strings, wrong types and booleans are recorded as missing, not as values."""
    event = serialise({"v": 1, "t": True, "event": "submitted", "job": "j", "request_id": "",
                       "status_url": 3, "response_url": None})  # fmt: skip
    job = replay([event]).jobs["j"]
    assert (job.request_id, job.status_url, job.response_url, job.submitted_at) == (None,) * 4


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        ([rec("run"), b"\n", rec("run")], 2, "empty line"),
        ([rec("run"), b"garbage\n"], 2, "not a ledger record"),  # complete, so not torn
        ([b'{"event":"intent"}\n', rec("run")], 1, "'intent' record without a job id"),
        ([b'{"event":"x","job":"j"}'], 1, "unknown event 'x'"),  # parses: not a torn write
        ([b'{"event":5}\n', rec("run")], 1, "not a ledger record"),
    ],
    ids=["blank", "complete-garbage-last", "no-job-id", "unknown-event-last", "event-not-text"],
)
def test_damage_messages(lines: list[bytes], line: int, reason: str):
    """Damage is reported with the line number and what is wrong with it."""
    with pytest.raises(LedgerDamage, match=f"^line {line}: {reason}"):
        replay(lines)


def test_empty_input_and_lone_torn_line():
    """No lines is an empty replay; a lone unterminated fragment is only a torn tail."""
    assert replay([]) == Replay()
    assert replay([b'{"v":1,"t"']) == Replay(torn=True)


# -- the JSON fast path agrees with json.loads -----------------------------------------------------

RUN = rec("run", model="m")
INTENT = '{"v":1,"t":1700000000.0,"event":"intent","job":"j","attempt":0}'


def verdict(raw: bytes) -> tuple[str, Any]:
    """What the unoptimised rule says of a non-last line: its record, or the damage message."""
    try:
        record = json.loads(raw)
    except ValueError as exc:
        return (
            "damage",
            "line 1: empty line" if not raw.strip() else f"line 1: not a ledger record ({exc})",
        )
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return "damage", "line 1: not a ledger record (not a ledger record)"
    return "record", record


def canonical_line(record: dict[str, Any]) -> bytes:
    """`record` re-serialised plainly (ASCII, so lone surrogates survive): the fast path's input."""
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def check_like_json_loads(raw: bytes) -> None:
    """replay([raw, RUN]) says what json.loads says of raw: damage (same message) or its record."""
    kind, want = verdict(raw)
    if kind == "damage":
        with pytest.raises(LedgerDamage, match=f"^{re.escape(want)}$"):
            replay([raw, RUN])
        return
    try:
        got = replay([raw, RUN])
    except LedgerDamage as exc:  # a record the fold rejects: its canonical line is rejected too
        with pytest.raises(LedgerDamage, match=f"^{re.escape(str(exc))}$"):
            replay([canonical_line(want), RUN])
        return
    assert kind == "record", want
    canonical = replay([canonical_line(want), RUN])
    assert got.jobs == canonical.jobs
    assert (got.events, got.runs, got.torn) == (2, canonical.runs, False)
    assert got.valid_bytes == len(raw) + len(RUN)


@pytest.mark.parametrize(
    "raw",
    [
        INTENT.encode() + b"\n",
        INTENT.encode() + b"\r\n",  # CRLF: whitespace to json.loads
        b"  " + INTENT.encode() + b" \t\n",
        codecs.BOM_UTF8 + INTENT.encode() + b"\n",
        INTENT.encode("utf-16") + b"\n",
        INTENT.encode("utf-16-le"),
        INTENT.encode("utf-32"),
        INTENT.replace('"j"', '"\\ud800"').encode() + b"\n",  # an escaped lone surrogate
        INTENT.replace('"j"', '"\ud800"').encode("utf-8", "surrogatepass") + b"\n",
        INTENT.encode() + INTENT.encode() + b"\n",  # two records on one line
        INTENT.encode() + b"\n\n",
        b'{"event":"intent","job":"j","job":"k"}\n',  # duplicate key: the last one wins
        b'{"event":"intent","job":"j","t":NaN}\n',
        b"\n",
    ],
    ids=[
        "plain",
        "crlf",
        "spaces",
        "utf8-bom",
        "utf16-bom",
        "utf16-le",
        "utf32",
        "escaped-surrogate",
        "raw-surrogate",
        "two-records",
        "two-newlines",
        "dup-key",
        "nan",
        "empty",
    ],
)
def test_odd_encodings_get_json_loads_verdict(raw: bytes):
    """Lines off the fast path (BOMs, UTF-16/32, spaces, extra data) replay as json.loads reads."""
    check_like_json_loads(raw)


@PROPERTY
@given(ledgers(min_size=1, max_size=1), st.data())
def test_any_byte_edit_gets_json_loads_verdict(records: list[dict[str, Any]], data: Any):
    """A line with any bytes replaced gets exactly the verdict (and message) json.loads gives it."""
    line = lines_of(records)[0]
    at = data.draw(st.integers(0, len(line)), label="at")
    width = data.draw(st.integers(0, 3), label="bytes replaced")
    new = data.draw(st.binary(max_size=4), label="new bytes")
    check_like_json_loads(line[:at] + new + line[at + width :])


RUN = rec("run", model="qwen-image", version="0.1.0")


@pytest.mark.parametrize(
    ("records", "ambiguous"),
    [
        ([RUN, rec("intent", job="j", attempt=0), rec("intent", job="j", attempt=1)], 0),
        ([RUN, rec("intent", job="j", attempt=0), RUN, rec("intent", job="j", attempt=0)], 1),
        ([RUN, rec("intent", job="j", attempt=0), RUN, RUN, rec("intent", job="j", attempt=0)], 1),
        ([RUN, rec("intent", job="j", attempt=0), rec("released", job="j", reason="x"), RUN,
          rec("intent", job="j", attempt=0)], 0),
        ([RUN, rec("intent", job="j", attempt=0), rec("unknown", job="j", error="reset"), RUN,
          rec("intent", job="j", attempt=0)], 1),
        ([RUN, *IN_FLIGHT, RUN, rec("intent", job="j", attempt=0)], 0),
        ([RUN, rec("intent", job="j", attempt=0), rec("failed", job="j", kind="invalid",
          error="400"), RUN, rec("intent", job="j", attempt=0)], 0),
    ],
    ids=["retry-in-one-run", "crash", "crash-then-idle-run", "released-after-a-refusal",
         "unknown-counted-once", "answered", "refused"],
)  # fmt: skip
def test_a_submit_whose_run_died_unanswered_is_a_possible_double_charge(
    records: list[bytes], ambiguous: int
):
    """An intent that finds the job's last intent unanswered from an earlier run counts once."""
    assert replay(records).jobs["j"].ambiguous == ambiguous
