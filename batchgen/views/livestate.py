"""What the dashboard page is given: boards (one per shard) in, plain JSON-able dicts out. Pure.

The same dicts feed the live page (streamed by `serve.py`) and the static snapshot (`report.py`
embeds them), so the two never show different figures. Figures a ledger cannot know (jobs still
to submit, 429s, retries, API calls) come from the run itself when the page runs beside it
(`sample`), else from the last `summary.json`, else they are left out (`None`), never guessed.

Every string here is user data (prompts, errors, parameters): the page renders them as text.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from batchgen.core.lifecycle import State
from batchgen.core.runstats import percentile
from batchgen.views.gridplan import GridError, plan_grid, show_value
from batchgen.views.livefold import BUCKET_SECONDS, Board, JobView
from batchgen.views.rundata import Item, params_of

__all__ = [
    "Part",
    "as_item",
    "failures",
    "glance",
    "grid_json",
    "headline",
    "input_copies",
    "item_json",
    "throughput",
]

_MAX_FAILED_SHOWN: Final = 50  # per kind; the count is always the whole
_BUCKETS: Final = (5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_RATE_SAMPLES: Final = 20_000  # completions per part the rate is measured over, at most


@dataclass
class Part:
    """One ledger of the output: the whole run, or one shard (`label` "I-of-N")."""

    label: str | None
    board: Board
    summary: Mapping[str, Any] | None = None


def item_json(
    job_id: str, job: JobView, label: str | None, links: Callable[[str], dict[str, str | None]]
) -> dict[str, Any]:
    """One finished job for the page; `links` gives its image's `url` and `thumb` to load."""
    row = job.row or {}
    params = params_of(row)
    metrics = job.metrics
    total = (
        job.ended_at - job.submitted_at
        if job.ended_at is not None and job.submitted_at is not None
        else None
    )
    return {
        "id": job_id,
        "state": job.state.value,
        "file": job.file,
        **(links(job.file) if job.file else {"url": None, "thumb": None}),
        "more": [{"file": f, **links(f)} for f in job.more],  # a several-image job's others
        "inputs": [  # an edit's inputs, as copied into the folder: the page shows input -> output
            {"name": name, "slot": slot, "file": copy, **links(copy)}
            for slot, name, copy in input_copies(row)
        ],
        "params": params,
        "seed": job.seed if job.seed is not None else params.get("seed"),
        "request_id": job.request_id,
        "error": job.error,
        "kind": job.kind,
        "shard": label,
        "t": job.ended_at,
        "attempts": job.attempts,
        "timings": {
            "queue_seconds": _num(metrics.get("queue_time")),
            "inference_seconds": _num(metrics.get("inference_time")),
            "accepted_to_saved_seconds": round(total, 3) if total is not None else None,
        },
        "cost_usd": _num(metrics.get("cost")),
    }


def input_copies(row: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(slot, name, copy) of each input a metadata row names (`core.inputs.input_columns`)
    that has a copy in the folder; a URL input has none and is shown by name only."""
    found = []
    for ref in row.get("inputs") or ():
        if isinstance(ref, Mapping) and isinstance(ref.get("copy"), str) and ref["copy"]:
            found.append((str(ref.get("slot") or ""), str(ref.get("name") or ""), ref["copy"]))
    return found


def glance(parts: Sequence[Part], sample: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run at a glance, for the parts given (one shard, or all of them)."""
    states: dict[State, int] = dict.fromkeys(State, 0)
    spend = 0.0
    done_times: list[float] = []
    for part in parts:
        for state, n in part.board.counts.items():
            states[state] += n
        spend += part.board.spend
        done_times.extend(part.board.done_times[-_RATE_SAMPLES:])
    if len(parts) == 1:
        p50, p95 = parts[0].board.latency()
    else:
        latencies = [x for p in parts for x in p.board.latencies]
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    summaries = [p.summary for p in parts if p.summary is not None]
    out: dict[str, Any] = {
        "completed": states[State.COMPLETED],
        "failed": states[State.FAILED],
        "in_flight": states[State.IN_FLIGHT] + states[State.UNKNOWN],
        "waiting": states[State.PENDING],
        "jobs": None,
        "images_per_minute": _per_minute(done_times),
        "eta_seconds": None,
        "spend_usd": round(spend, 4),
        "projected_usd": None,
        "budget_usd": None,
        "rate_limited": _summed(summaries, "rate_limited"),
        "retries": _summed(summaries, "retries"),
        "api_calls_per_job": _calls_per_job(summaries),
        "latency_p50": p50,
        "latency_p95": p95,
        "source": "summary.json" if summaries else "ledger",
    }
    if sample is not None:  # the run itself is talking: its figures win
        for key in ("waiting", "in_flight", "images_per_minute", "eta_seconds", "projected_usd",
                    "budget_usd", "rate_limited", "retries", "api_calls_per_job"):  # fmt: skip
            if key in sample:
                out[key] = sample[key]
        out["jobs"] = sample.get("jobs")
        out["source"] = "run"
    return out


def headline(parts: Sequence[Part]) -> dict[str, str]:
    """The sentences the page shows (and the static snapshot has in its HTML before any script)."""
    states: dict[State, int] = dict.fromkeys(State, 0)
    for part in parts:
        for state, n in part.board.counts.items():
            states[state] += n
    done, failed = states[State.COMPLETED], states[State.FAILED]
    left = sum(states.values()) - done - failed
    counts = f"{done} images, {failed} failed" + (f", {left} not finished yet" if left else "")
    return {"counts": counts, "failures": f"Failures ({failed})" if failed else "Failures"}


def throughput(parts: Sequence[Part], now: float, bars: int = 40) -> dict[str, Any]:
    """Images completed per time bucket since the first event: a small bar chart's data."""
    buckets: Counter[int] = Counter()
    for part in parts:
        buckets.update(part.board.done_buckets)
    starts = [p.board.first_at for p in parts if p.board.first_at is not None]
    if not buckets or not starts:
        return {"bucket_seconds": 0, "counts": []}
    start = min(starts)
    span = max(now, (max(buckets) + 1) * BUCKET_SECONDS) - start
    width = next((b for b in _BUCKETS if span / b <= bars), _BUCKETS[-1])
    counts = [0] * (int(span // width) + 1)
    for bucket, n in buckets.items():
        index = int((bucket * BUCKET_SECONDS - start) // width)
        counts[min(len(counts) - 1, max(0, index))] += n
    return {"bucket_seconds": width, "counts": counts[-bars * 3 :]}


def failures(parts: Sequence[Part], out: str) -> list[dict[str, Any]]:
    """Failed jobs grouped by kind, each group with a few of its errors and the retry command."""
    groups: dict[str, dict[str, Any]] = {}
    for part in parts:
        for job_id in part.board.failed:
            job = part.board.jobs[job_id]
            kind = job.kind or "unknown"
            group = groups.setdefault(
                kind, {"kind": kind, "count": 0, "jobs": [], "retry": [], "shards": []}
            )
            group["count"] += 1
            if len(group["jobs"]) < _MAX_FAILED_SHOWN:
                prompt = (job.row or {}).get("prompt")
                text = prompt if isinstance(prompt, str) else None
                group["jobs"].append(
                    {"id": job_id, "error": job.error, "shard": part.label, "prompt": text}
                )
            if part.label not in group["shards"]:
                group["shards"].append(part.label)
                group["retry"].append(retry_command(part, out))
    return sorted(groups.values(), key=lambda g: (-g["count"], g["kind"]))


def retry_command(part: Part, out: str) -> str:
    """The command that runs a part's failed jobs again (the manifest its last run used)."""
    manifest = part.board.manifest or "MANIFEST"
    words = ["batchgen", "run", manifest, "--out", out, "--retry-failed"]
    if part.label is not None:
        index, _, count = part.label.partition("-of-")
        words += ["--shard", f"{index}/{count}"]
    return " ".join(shlex.quote(w) for w in words)


def as_item(job_id: str, job: JobView) -> Item | None:
    """A finished job with a row, as `gridplan` takes it (None: not finished, or no row)."""
    if job.row is None:
        return None
    if job.state is State.COMPLETED and job.file:
        return Item(job_id, "completed", job.row, file=job.file)
    if job.state is State.FAILED:
        return Item(job_id, "failed", job.row, error=job.error)
    return None


def grid_json(
    items: Sequence[Item], x: str, y: str, where: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """`batchgen grid`'s plan as JSON; cells are image / failed / missing, as the sheet has them."""
    try:
        plan = plan_grid(items, x, y, where)
    except GridError as exc:
        return {"error": str(exc)}
    return {
        "x": plan.x,
        "y": plan.y,
        "xs": [show_value(v) for v in plan.xs],
        "ys": [show_value(v) for v in plan.ys],
        "constant": [[n, show_value(v)] for n, v in plan.constant],
        "panels": [
            {
                "fixed": [[n, show_value(v)] for n, v in panel.fixed],
                "rows": [
                    [
                        {
                            "status": c.status,
                            "id": c.job_id,
                            "error": c.error,
                            "more": c.more,
                            "file": c.file if c.job_id is None else None,
                        }  # an input's picture
                        for c in row
                    ]
                    for row in panel.rows
                ],
            }
            for panel in plan.panels
        ],
        "counts": {s: plan.count(s) for s in ("image", "failed", "missing")},
    }


def _per_minute(times: list[float], window: float = 300.0) -> float:
    """Completions per minute over the last `window` seconds that saw completions."""
    if len(times) < 2:
        return 0.0
    end = max(times)
    recent = sorted(t for t in times if t >= end - window)
    span = end - recent[0]
    return round((len(recent) - 1) / span * 60, 2) if span > 0 else 0.0


def _summed(summaries: Sequence[Mapping[str, Any]], key: str) -> int | None:
    values = [s.get(key) for s in summaries]
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return sum(numbers) if numbers else None


def _calls_per_job(summaries: Sequence[Mapping[str, Any]]) -> float | None:
    values = [(s.get("api_calls") or {}).get("per_job") for s in summaries]
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return round(sum(numbers) / len(numbers), 3) if numbers else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
