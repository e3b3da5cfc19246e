"""`batchgen merge OUT`: the shards of one output as one dataset.

Each shard `I-of-N` keeps its own ledger under `OUT/shards/I-of-N/` (see `layout.py`); the
images already share `OUT`. Merge reads every shard's ledger (the source of truth, as for a
single run) and writes the dataset view at the top of `OUT`: `metadata.jsonl` covering all shards
(an imagefolder again), `failed.jsonl`, and `summary.json`.

It refuses, writing nothing, when the view would be wrong: a shard missing, shards of different
counts, a shard not finished (jobs pending, in flight, or never run), a job id claimed by two
shards, or (with `verify`) an image missing or changed. Three small parts, each tested alone:
`read_shards` (I/O through a `Store`), `problems` and `merged_summary` (pure), `write_view`.

The merged summary adds what can be added (counts, spend, API calls, retries) and recomputes the
latency percentiles that can be recomputed (queue and inference times are in the ledgers); the
end-to-end latency and the time floor are not in the ledgers and are left out, saying so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from batchgen.core.folder import FAILED_NAME, LEDGER_NAME, METADATA_NAME, SHARDS_DIR, SUMMARY_NAME
from batchgen.core.lifecycle import LedgerDamage, Replay, State, replay
from batchgen.core.runstats import percentile
from batchgen.core.shard import Shard, parse_label
from batchgen.edges.storage import Store, iter_lines

__all__ = ["MergeError", "ShardView", "merge_output", "merged_summary", "problems", "read_shards"]

_SUMMED: Final = ("retries", "rate_limited", "resubmits_after_expiry", "reattached", "refetched")


@dataclass
class ShardView:
    """What merge knows about one shard: its ledger replayed and its last summary."""

    shard: Shard
    replay: Replay
    summary: dict[str, Any] | None
    prefix: str  # shards/I-of-N
    samples: dict[str, list[float]] = field(default_factory=lambda: {"queue": [], "inference": []})
    reused: int = 0  # completed from the catalogue, not generated (counted by `_rows`)

    @property
    def states(self) -> Counter[State]:
        return Counter(job.state for job in self.replay.jobs.values())

    @property
    def expected(self) -> int | None:
        """How many manifest jobs hash to this shard, as its last run counted them."""
        info = (self.summary or {}).get("shard")
        jobs = info.get("jobs") if isinstance(info, dict) else None
        return jobs if isinstance(jobs, int) else None


class MergeError(ValueError):
    """No shards at the location, or a ledger that cannot be read."""


def read_shards(store: Store) -> list[ShardView]:
    """Every `shards/I-of-N/` in `store`, ledgers replayed (streamed), sorted by count and index."""
    views: list[ShardView] = []
    for name in store.listdir(SHARDS_DIR):
        shard = parse_label(name)
        if shard is None:
            continue
        prefix = f"{SHARDS_DIR}/{name}"
        ledger = f"{prefix}/{LEDGER_NAME}"
        if store.read(f"{prefix}/{SUMMARY_NAME}") is None and not _exists(store, ledger):
            continue
        try:
            result = replay(iter_lines(store, ledger)) if _exists(store, ledger) else Replay()
        except LedgerDamage as exc:
            raise MergeError(f"{store.url}/{ledger}: damaged at {exc}") from None
        raw = store.read(f"{prefix}/{SUMMARY_NAME}")
        summary = json.loads(raw) if raw is not None else None
        views.append(ShardView(shard, result, summary, prefix))
    if not views:
        raise MergeError(
            f"no shards in {store.url}/{SHARDS_DIR}/ (runs with --shard I/N make them)"
        )
    return sorted(views, key=lambda v: (v.shard.count, v.shard.index))


def _exists(store: Store, name: str) -> bool:
    return LEDGER_NAME in store.listdir(name.rsplit("/", 1)[0])


def problems(views: list[ShardView]) -> list[str]:
    """Why these shards do not make one complete dataset (empty: they do). Pure."""
    found: list[str] = []
    counts = sorted({v.shard.count for v in views})
    if len(counts) > 1:
        found.append(
            f"shards of different counts: {', '.join(map(str, counts))} (one N per output)"
        )
        return found
    count = counts[0]
    present = {v.shard.index for v in views}
    for index in range(count):
        if index not in present:
            found.append(f"shard {index}-of-{count} is missing: run it (--shard {index}/{count})")
    owner: dict[str, str] = {}
    for view in views:
        label = view.shard.label
        for job_id in view.replay.jobs:
            if job_id in owner:
                found.append(f"job {job_id} is claimed by shards {owner[job_id]} and {label}")
            owner[job_id] = label
            if not view.shard.owns(job_id):
                found.append(f"job {job_id} in shard {label} hashes to another shard")
        states = view.states
        open_jobs = states[State.PENDING] + states[State.UNKNOWN] + states[State.IN_FLIGHT]
        ended = states[State.COMPLETED] + states[State.FAILED]
        expected = view.expected
        if view.summary is None:
            found.append(f"shard {label} never finished a run (no summary.json): rerun it")
        elif open_jobs or (expected is not None and ended < expected):
            left = max(open_jobs, (expected or 0) - ended)
            found.append(f"shard {label} is incomplete: {left} job(s) not finished; rerun it")
    return found


def merged_summary(views: list[ShardView]) -> dict[str, Any]:
    """One summary for the dataset: summed where sums mean something, recomputed otherwise."""
    failures: Counter[str] = Counter()
    completed = failed = double = 0
    spend = 0.0
    calls: Counter[str] = Counter()
    last: Counter[str] = Counter()
    samples: dict[str, list[float]] = {"queue": [], "inference": []}
    for view in views:
        price = (view.summary or {}).get("price_per_image")
        for job in view.replay.jobs.values():
            completed += job.state is State.COMPLETED
            double += job.ambiguous
            if job.state is State.COMPLETED:  # the charged cost, else the price (as budgets do)
                cost = job.cost if job.cost is not None else price
                spend += cost if isinstance(cost, int | float) else 0.0
            if job.state is State.FAILED:
                failed += 1
                failures[(job.failure or "unknown").partition(": ")[0]] += 1
        for name, values in view.samples.items():
            samples[name].extend(values)
        summary = view.summary or {}
        for key, value in (summary.get("api_calls") or {}).items():
            if key != "per_job" and isinstance(value, int):
                calls[key] += value
        for key in _SUMMED:
            value = summary.get(key)
            if isinstance(value, int):
                last[key] += value
    api = sum(n for kind, n in calls.items() if kind != "download")
    finished = completed + failed
    return {
        "shards": [_shard_line(view) for view in views],
        "outcome": {"jobs": finished, "completed": completed, "failed": failed},
        "reused": sum(view.reused for view in views),  # of completed: copied, not generated
        "failures": dict(sorted(failures.items())),
        "latency_seconds": {
            name: {"p50": percentile(values, 50), "p95": percentile(values, 95)}
            for name, values in samples.items()
        },
        "spend_usd": round(spend, 4),
        "possible_double_charges": double,
        "last_runs": {
            "api_calls": {"per_job": round(api / finished, 3) if finished else 0.0, **calls},
            **last,
            "wall_seconds_max": max(
                (float((v.summary or {}).get("wall_seconds") or 0) for v in views), default=0.0
            ),
        },
        "omitted": {
            "latency_seconds.total": "end-to-end times are not in the ledgers",
            "floor_seconds": "depends on each shard's limits; see each shard's summary.json",
        },
    }


def _shard_line(view: ShardView) -> dict[str, Any]:
    states = view.states
    summary = view.summary or {}
    return {
        "shard": view.shard.label,
        "jobs": view.expected,
        "completed": states[State.COMPLETED],
        "failed": states[State.FAILED],
        "runs": view.replay.runs,
        "exit_code": summary.get("exit_code"),
        "wall_seconds": summary.get("wall_seconds"),
    }


def _rows(store: Store, view: ShardView) -> Iterator[dict[str, Any]]:
    """The metadata rows of the shard's completed jobs, in ledger order; notes their timings."""
    wanted = {
        job.completed_line
        for job in view.replay.jobs.values()
        if job.state is State.COMPLETED and job.completed_line is not None
    }
    for number, raw in enumerate(iter_lines(store, f"{view.prefix}/{LEDGER_NAME}"), start=1):
        if number not in wanted:
            continue
        record = json.loads(raw)
        metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
        for key, name in (("queue_time", "queue"), ("inference_time", "inference")):
            value = metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                view.samples[name].append(float(value))
        view.reused += isinstance(record.get("reused"), dict)
        if isinstance(record.get("row"), dict):
            yield record["row"]


def _unintact(store: Store, views: list[ShardView]) -> list[str]:
    found: list[str] = []
    for view in views:
        for job_id, job in view.replay.jobs.items():
            if job.state is State.COMPLETED and not (
                job.file and store.intact(job.file, job.sha256)
            ):
                found.append(f"job {job_id}: image {job.file} is missing or changed; rerun shard")
    return found


def merge_output(store: Store, *, verify: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Check the shards in `store`, then write the dataset view; returns (summary, problems).

    When there are problems nothing is written. Raises MergeError when there is nothing to merge.
    """
    views = read_shards(store)
    found = problems(views)
    if not found and verify:
        found = _unintact(store, views)
    if found:
        return {}, found
    lines = (
        (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        for view in views
        for row in _rows(store, view)
    )
    store.write(METADATA_NAME, lines)
    failed = [store.read(f"{view.prefix}/{FAILED_NAME}") or b"" for view in views]
    if any(failed):
        store.write(FAILED_NAME, failed)
    else:
        store.delete(FAILED_NAME)
    summary = merged_summary(views)
    store.write(SUMMARY_NAME, [(json.dumps(summary, indent=2) + "\n").encode()])
    return summary, []
