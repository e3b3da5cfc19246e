"""The dashboard's model of one ledger, folded one chunk of bytes at a time. Pure, no I/O.

`lifecycle.replay` folds a whole ledger into what *resume* needs; a page watching a run for hours
needs something else: each finished job's row, error, request id and timings, in the order they
landed, and a fold that takes only the bytes appended since the last look (a 1,000,000-event
ledger is read once, then a few new lines per update). `Board.feed` takes raw bytes, folds every
complete line and returns how many bytes it used: a torn last line (a write in progress, or a
crash) is left for the next call, exactly as `status` leaves it.

This is a view: a line it cannot read is counted in `damaged`, never fatal, and an event it does
not know is ignored (the engine owns the format; a view must not stop a run being watched).
States reuse `lifecycle.State`, with the same transitions as replay.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from batchgen.core.events import Event
from batchgen.core.lifecycle import TRANSITIONS, State

__all__ = ["BUCKET_SECONDS", "Board", "JobView"]

BUCKET_SECONDS: Final = 5  # the finest bar of the throughput chart


@dataclass(slots=True)
class JobView:
    """What the page shows about one job (only finished jobs carry a row)."""

    state: State = State.PENDING
    row: dict[str, Any] | None = None
    file: str | None = None  # its image (image 0 of a job with several)
    more: tuple[str, ...] = ()  # the images after the first, of a job with several (max_images)
    error: str | None = None
    kind: str | None = None
    request_id: str | None = None
    seed: Any = None
    intent_at: float | None = None
    submitted_at: float | None = None
    ended_at: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    seq: int = 0  # when it last changed into a finished state (0: never)
    open_intent: bool = False


@dataclass
class Board:
    """Every job of one ledger, plus the running figures the page charts."""

    jobs: dict[str, JobView] = field(default_factory=dict)
    seq: int = 0
    log: list[tuple[int, str]] = field(default_factory=list)  # (seq, job id) of finished jobs
    done_times: list[float] = field(default_factory=list)  # completion times, in ledger order
    latencies: list[float] = field(default_factory=list)  # submitted -> saved, seconds
    events: int = 0
    runs: int = 0
    damaged: int = 0
    manifest: str | None = None  # from the last `run` record: for the retry command
    first_at: float | None = None
    last_at: float | None = None
    # Kept as jobs change, so a page update costs the same at 100 jobs and at 1,000,000:
    counts: Counter[State] = field(default_factory=Counter)
    spend: float = 0.0  # the charged cost (metrics.cost) of the completed jobs
    failed: dict[str, None] = field(default_factory=dict)  # ids of failed jobs, in order
    done_buckets: Counter[int] = field(default_factory=Counter)  # completions per 5 s
    _latency: tuple[int, float | None, float | None] = (0, None, None)

    def feed(self, data: bytes) -> int:
        """Fold every complete line of `data`; returns the bytes consumed (the torn tail is not)."""
        end = data.rfind(b"\n") + 1
        if end == 0:
            return 0
        for raw in data[:end].splitlines():
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except ValueError:
                self.damaged += 1
                continue
            if isinstance(record, dict):
                self._fold(record)
            else:
                self.damaged += 1
        return end

    def since(self, seq: int) -> list[str]:
        """Ids of the jobs that finished (or changed) after `seq`, oldest first, each once."""
        start = bisect.bisect_right(self.log, (seq, "\U0010ffff"))
        seen: dict[str, None] = {}
        for _, job_id in self.log[start:]:
            seen.pop(job_id, None)
            seen[job_id] = None
        return [j for j in seen if self.jobs[j].seq > seq]

    def states(self) -> Counter[State]:
        return Counter({state: n for state, n in self.counts.items() if n})

    def latency(self) -> tuple[float | None, float | None]:
        """p50 and p95 of submitted -> saved, recomputed only when a job has completed since."""
        if self._latency[0] != len(self.latencies):
            ordered = sorted(self.latencies)
            self._latency = (len(ordered), _rank(ordered, 50), _rank(ordered, 95))
        return self._latency[1], self._latency[2]

    def _fold(self, record: dict[str, Any]) -> None:
        self.events += 1
        t = _number(record.get("t"))
        if t is not None:
            self.first_at = t if self.first_at is None else self.first_at
            self.last_at = t
        event = record.get("event")
        if event == Event.RUN:
            self.runs += 1
            manifest = record.get("manifest")
            self.manifest = manifest if isinstance(manifest, str) else self.manifest
            return
        job_id = record.get("job")
        if not isinstance(job_id, str):
            return
        job = self.jobs.get(job_id)
        if job is None:
            job = self.jobs[job_id] = JobView()
            self.counts[job.state] += 1
        before = job.state
        if event not in TRANSITIONS[before]:  # illegal here: replay calls it damage, a view
            self.damaged += event in _JOB_EVENTS  # skips it; an event it does not know: ignored
            return
        self._event(job_id, job, event, record, t)
        if job.state is not before:
            self.counts[before] -= 1
            self.counts[job.state] += 1
            if before is State.FAILED:
                self.failed.pop(job_id, None)
            elif job.state is State.FAILED:
                self.failed[job_id] = None

    def _event(
        self, job_id: str, job: JobView, event: Any, record: dict[str, Any], t: float | None
    ) -> None:
        if event == Event.INTENT:
            job.state, job.open_intent, job.intent_at = State.UNKNOWN, True, t
            job.attempts += 1
        elif event == Event.SUBMITTED:
            job.state, job.open_intent, job.submitted_at = State.IN_FLIGHT, False, t
            job.request_id = _text(record.get("request_id")) or job.request_id
        elif event == Event.UNKNOWN:
            job.state, job.open_intent = State.UNKNOWN, False
        elif event == Event.EXPIRED:
            job.state, job.open_intent = State.PENDING, False
        elif event == Event.RELEASED:
            if job.open_intent:
                job.state, job.open_intent = State.PENDING, False
        elif event == Event.COMPLETED:
            if job.state is State.COMPLETED:  # completed again (a re-download): one charge
                self.spend -= _number(job.metrics.get("cost")) or 0.0
            self._finish(job_id, job, State.COMPLETED, record, t)
            job.file = _text(record.get("file"))
            job.more = _more_files(record.get("files"), job.file)
            job.error = job.kind = None
            job.seed = record.get("seed")
            metrics = record.get("metrics")
            job.metrics = dict(metrics) if isinstance(metrics, dict) else {}
            self.spend += _number(job.metrics.get("cost")) or 0.0
            if t is not None:
                self.done_times.append(t)
                self.done_buckets[int(t // BUCKET_SECONDS)] += 1
                if job.submitted_at is not None:
                    self.latencies.append(max(0.0, t - job.submitted_at))
        elif event == Event.FAILED:
            self._finish(job_id, job, State.FAILED, record, t)
            job.kind = str(record.get("kind") or "unknown")
            job.error = f"{job.kind}: {record.get('error')}"

    def _finish(
        self, job_id: str, job: JobView, state: State, record: dict[str, Any], t: float | None
    ) -> None:
        job.state, job.open_intent, job.ended_at = state, False, t
        job.request_id = _text(record.get("request_id")) or job.request_id
        row = record.get("row")
        if isinstance(row, dict):
            job.row = row
        self.seq += 1
        job.seq = self.seq
        self.log.append((self.seq, job_id))


_JOB_EVENTS: Final = frozenset(e.value for e in Event if e is not Event.RUN)


def _rank(ordered: list[float], q: float) -> float | None:
    """`runstats.percentile` (nearest rank) on samples already sorted."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def _more_files(files: Any, first: str | None) -> tuple[str, ...]:
    """A several-image job's images after the first (`files` lists them all, image 0 too)."""
    if not isinstance(files, list):
        return ()
    names = (_text(f.get("file")) for f in files if isinstance(f, dict))
    return tuple(n for n in names if n is not None and n != first)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
