"""The end of a run: the output folder's derived files, rebuilt from the ledger.

`metadata.jsonl` (one row per completed job), `failed.jsonl` (a manifest of the failed jobs, to
inspect, validate or run elsewhere) and `summary.json`. They are derived, never the source of
truth: every run ends by writing them anew, so a crash in the middle of one costs nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from batchgen.core.finalstate import fold_states
from batchgen.core.folder import FAILED_NAME, LEDGER_NAME, PART_SUFFIX, SUMMARY_NAME
from batchgen.core.inputs import read_params
from batchgen.core.jobs import Job
from batchgen.core.lifecycle import Replay, State
from batchgen.edges.ledgerread import final_rows, replay_of
from batchgen.edges.parts import write_metadata
from batchgen.edges.sinks import write_jsonl_atomic

__all__ = [
    "Finished",
    "double_charge_list",
    "failed_row",
    "finish_outputs",
    "write_summary",
]

_GENERATED_ID_PREFIX: Final = "j-"


def failed_row(job: Job, failure: str | None) -> dict[str, Any]:
    """A JSONL manifest row that reproduces `job`, with its last error as an annotation.

    Generated ids (`j-…`) are reserved, so they travel as the `_job` annotation; explicit ids are
    kept as `id`. The seed is the resolved one, so a rerun makes the same image.
    """
    row: dict[str, Any] = {}
    if not job.id.startswith(_GENERATED_ID_PREFIX):
        row["id"] = job.id
    row["model"] = job.model
    # Local inputs as the paths they were read from, so the file runs from the output folder.
    row.update(read_params(job.params, job.inputs) if job.inputs else job.params)
    row.update(job.annotations)
    row["_job"] = job.id
    row["_error"] = failure or "failed"
    return row


@dataclass(frozen=True)
class Finished:
    """What the end of a run learnt from the ledger."""

    details: Replay  # the jobs that ended FAILED or may have been paid twice, in full
    started: bool  # some job got further than PENDING (a submit was sent, or one was reused)


def finish_outputs(out_dir: Path, jobs: Iterator[Job]) -> Finished:
    """Rewrite metadata.jsonl and failed.jsonl from the ledger.

    `jobs` is the manifest's job stream, read only to find the failed jobs' parameters. The
    ledger is folded to each job's final state only (`core/finalstate.py`: a generated id's 64
    bits, where a full replay holds ~1 KB a completed job), then read again for the metadata
    rows, and replayed in full only for the few jobs whose details the end needs.
    """
    ledger_path = out_dir / LEDGER_NAME
    if not ledger_path.exists():
        return Finished(Replay(), started=False)
    with ledger_path.open("rb") as handle:
        states = fold_states(handle)
    write_metadata(out_dir, lambda: final_rows(ledger_path, states))  # and each part's
    final = replay_of(ledger_path, states.noteworthy())
    failed = {job_id for job_id, job in final.jobs.items() if job.state is State.FAILED}
    target = out_dir / FAILED_NAME
    if failed:
        rows = (failed_row(job, final.jobs[job.id].failure) for job in jobs if job.id in failed)
        write_jsonl_atomic(target, rows)
    else:
        target.unlink(missing_ok=True)  # nothing failed (any more): no stale list
    return Finished(final, states.started())


def double_charge_list(final: Replay) -> list[dict[str, Any]]:
    """Every job of the folder that may have been paid twice, from the ledger, in ledger order.

    The ledger and not the run's counters: a submit whose answer died with a killed run is only
    known as such to the run that resubmits it, and the summary of any later run must still list
    it. `lost_answers` is how many submits' answers were lost; `request_id` is the request the
    job kept (the lost ones' ids were never seen: the provider's billing shows them).
    """
    return [
        {"job": job_id, "lost_answers": job.ambiguous, "request_id": job.request_id}
        for job_id, job in final.jobs.items()
        if job.ambiguous
    ]


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """Replace summary.json whole (temp file + rename): a crash or a full disk never leaves half."""
    text = json.dumps(summary, indent=2) + "\n"
    temp = out_dir / f".{SUMMARY_NAME}.{secrets.token_hex(4)}{PART_SUFFIX}"
    try:
        temp.write_text(text, encoding="utf-8")
        temp.replace(out_dir / SUMMARY_NAME)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
