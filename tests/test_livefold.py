"""The dashboard's ledger fold, without sockets: byte-at-a-time feeding agrees with one feed,
a torn last line waits for its end, damage is counted (a view never stops), and states follow
lifecycle's replay on the same lines."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from batchgen.core.lifecycle import State, replay
from batchgen.edges.storage import LocalStore
from batchgen.views.livefold import Board
from batchgen.views.livesource import Source
from batchgen.views.livestate import Part, failures, glance, headline, throughput


def _line(**record: object) -> bytes:
    return (json.dumps({"v": 1, **record}) + "\n").encode()


def ledger(jobs: int = 6) -> bytes:
    """A run: every job submitted; even ones complete, odd ones fail; one released unanswered."""
    out = [_line(t=100.0, event="run", model="m", manifest="jobs/x.yaml")]
    for n in range(jobs):
        job = f"j{n}"
        out.append(_line(t=100.0 + n, event="intent", job=job, attempt=1))
        out.append(_line(t=100.5 + n, event="submitted", job=job, request_id=f"r{n}"))
        row = {"id": job, "prompt": f"p {n}", "guidance": n % 3}
        if n % 2 == 0:
            out.append(_line(t=102.0 + n, event="completed", job=job, request_id=f"r{n}",
                             file=f"{job}.png", seed=n, metrics={"cost": 0.1,
                             "queue_time": 0.2, "inference_time": 1.0},
                             row={**row, "file_name": f"{job}.png"}))  # fmt: skip
        else:
            out.append(_line(t=102.0 + n, event="failed", job=job, kind="server",
                             error=f"boom {n}", row=row))  # fmt: skip
    out.append(_line(t=120.0, event="intent", job="late", attempt=1))
    out.append(_line(t=120.1, event="released", job="late", reason="stop"))
    return b"".join(out)


def test_any_split_into_chunks_folds_as_one_feed():
    data = ledger()
    whole = Board()
    assert whole.feed(data) == len(data)
    rng = random.Random(7)
    for _ in range(20):
        board, offset, end = Board(), 0, 0
        while offset < len(data):  # bytes arrive a few at a time, lines cut anywhere
            end = min(len(data), end + rng.randint(1, 200))
            offset += board.feed(data[offset:end])  # the unconsumed tail is sent again
        assert board.jobs == whole.jobs
        assert board.events == whole.events
        assert board.states() == Counter(j.state for j in whole.jobs.values())  # kept as it goes
        assert (board.spend, list(board.failed)) == (whole.spend, list(whole.failed))


def test_states_agree_with_lifecycle_replay():
    data = ledger()
    board = Board()
    board.feed(data)
    resume = replay(data.splitlines(keepends=True))
    assert {k: j.state for k, j in board.jobs.items()} == {
        k: j.state for k, j in resume.jobs.items()
    }
    assert board.jobs["late"].state is State.PENDING  # released after an unanswered intent


def test_a_torn_last_line_is_left_for_the_next_look():
    data = ledger()
    torn = _line(t=130.0, event="intent", job="new", attempt=1)
    board = Board()
    used = board.feed(data + torn[:10])
    assert used == len(data)
    assert "new" not in board.jobs
    assert board.feed(torn[:10] + torn[10:]) == len(torn)
    assert board.jobs["new"].state is State.UNKNOWN


def test_damaged_lines_are_counted_not_fatal():
    board = Board()
    board.feed(_line(event="run") + b"{not json\n" + b"[1]\n" + _line(event="odd", job="a"))
    assert (board.damaged, board.runs) == (2, 1)
    assert board.jobs["a"].state is State.PENDING  # an event the view does not know: ignored


def test_finished_jobs_are_logged_in_order_and_once():
    board = Board()
    board.feed(ledger())
    order = board.since(0)
    assert order == [f"j{n}" for n in range(6)]
    seq = board.seq
    board.feed(_line(t=140.0, event="intent", job="j1", attempt=2))
    board.feed(_line(t=141.0, event="completed", job="j1", file="j1.png", row={"id": "j1"}))
    assert board.since(seq) == ["j1"]
    assert "j1" not in board.failed
    assert board.states()[State.FAILED] == 2
    assert board.jobs["j1"].state is State.COMPLETED
    assert board.jobs["j1"].error is None


def test_figures_from_the_ledger_alone():
    board = Board()
    board.feed(ledger())
    parts = [Part(None, board)]
    figures = glance(parts, None)
    assert (figures["completed"], figures["failed"], figures["waiting"]) == (3, 3, 1)
    assert figures["spend_usd"] == 0.3
    assert figures["latency_p50"] == 1.5  # submitted -> completed
    assert figures["retries"] is None
    assert figures["eta_seconds"] is None
    assert headline(parts) == {"counts": "3 images, 3 failed, 1 not finished yet",
                               "failures": "Failures (3)"}  # fmt: skip
    (group,) = failures(parts, "out dir")
    assert group["count"] == 3
    assert group["retry"] == ["batchgen run jobs/x.yaml --out 'out dir' --retry-failed"]
    chart = throughput(parts, now=130.0)
    assert sum(chart["counts"]) == 3


def test_the_run_figures_win_when_the_run_is_talking():
    board = Board()
    board.feed(ledger())
    sample = {"jobs": 10, "waiting": 4, "eta_seconds": 12.0, "retries": 2, "rate_limited": 5,
              "api_calls_per_job": 2.5, "budget_usd": 3.0, "projected_usd": 1.0}  # fmt: skip
    figures = glance([Part(None, board)], sample)
    assert (figures["waiting"], figures["retries"], figures["rate_limited"]) == (4, 2, 5)
    assert (figures["jobs"], figures["budget_usd"], figures["source"]) == (10, 3.0, "run")


def test_source_reads_only_what_was_appended(tmp_path: Path):
    """The offset moves to the end of the last whole line; a torn line is re-read, nothing else."""
    path = tmp_path / "ledger.jsonl"
    data = ledger()
    path.write_bytes(data)
    source = Source(LocalStore(tmp_path), name="out")
    assert source.refresh()
    assert source.offsets[""] == len(data)
    extra = _line(t=150.0, event="intent", job="z", attempt=1)
    with path.open("ab") as handle:
        handle.write(extra[:7])
    assert not source.refresh()  # nothing whole was added
    assert source.offsets[""] == len(data)
    reads: list[int] = []
    board = source.parts[""].board
    original = board.feed

    def counting(chunk: bytes) -> int:
        reads.append(len(chunk))
        return original(chunk)

    board.feed = counting  # type: ignore[method-assign]
    with path.open("ab") as handle:
        handle.write(extra[7:])
    assert source.refresh()
    assert reads == [len(extra)]  # the new line, not the ledger again
    assert source.parts[""].board.jobs["z"].state is State.UNKNOWN


def test_the_page_fills_each_placeholder_once():
    """A title holding "{{script}}" or markup is text: never a second script, never a tag."""
    from batchgen.views.livepage import render

    figures = {"title": "{{script}} <b>x</b>", "text": {"counts": "1 images, 0 failed",
               "failures": "Failures"}}  # fmt: skip
    page = render("live", figures, None)
    assert page.count("<script") == 1
    assert "{{script}} &lt;b&gt;x&lt;/b&gt;" in page
    snapshot = render("static", figures, {"items": [{"prompt": "</pre><script>alert(1)"}]})
    assert snapshot.count("<script>") == 1
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)" in snapshot
