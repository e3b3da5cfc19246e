"""`batchgen status DIR`: what the ledger says about a run folder, without touching it.

Three small pieces, so each is tested alone:

- `read_ledger(path)` is the only I/O: it opens the ledger read-only, replays the bytes that
  existed when it was opened (a run may be appending meanwhile) and notes the last event's time.
- `summarize(replay, ...)` is a pure fold of a `lifecycle.Replay` into a `Status`.
- `status_lines(status)` renders it for people; `Status.as_dict()` is the `--json` shape.

Status never truncates a torn last line (only the run that resumes may repair the file): a line
being written right now looks exactly like a torn one, so it is reported and ignored.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from batchgen.core.folder import LEDGER_NAME
from batchgen.core.lifecycle import TRANSITIONS, Replay, State, replay

__all__ = [
    "EXIT_DAMAGED",
    "EXIT_MISSING",
    "LedgerSnapshot",
    "Status",
    "read_ledger",
    "status_lines",
    "summarize",
]

EXIT_DAMAGED: Final = 2  # a line before the last is not a ledger record
EXIT_MISSING: Final = 3  # no ledger in DIR (wrong folder, or no run yet)

_TAIL_CHUNK: Final = 64 * 1024

# The text form's order: outcomes first, then work left. Every state of the table, once.
_SHOWN: Final = (State.COMPLETED, State.IN_FLIGHT, State.UNKNOWN, State.PENDING, State.FAILED)
# Mid-run an UNKNOWN job is a submit on the wire; after a crash, one whose answer was lost.
_LABELS: Final = {State.UNKNOWN: "submitting", State.IN_FLIGHT: "in flight"}
_NOTES: Final = {State.UNKNOWN: "  (submit sent, answer not recorded yet)"}
assert set(_SHOWN) == set(TRANSITIONS), "status must show every state of lifecycle.TRANSITIONS"


@dataclass(frozen=True)
class LedgerSnapshot:
    """A replay of the ledger as it was when opened, plus what replay does not keep."""

    path: Path
    replay: Replay
    last_event_at: float | None  # `t` of the last complete record (epoch seconds)
    planned: int | None = None  # jobs the last run set out to do (its `run` record), if known


@dataclass(frozen=True)
class Status:
    """Counts of jobs by state, as the ledger records them (the `--json` keys match)."""

    ledger: str
    jobs: int
    pending: int
    unknown: int  # a submit was sent and its outcome is not recorded
    in_flight: int
    completed: int
    failed: int
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    events: int = 0
    possible_double_charges: int = 0  # sum of recorded ambiguous submits over all jobs
    last_event_at: float | None = None
    torn: bool = False  # the last line is incomplete: a write in progress, or a crash
    planned: int | None = None  # jobs of the last run's manifest (or shard): "N of TOTAL"

    def by_state(self) -> dict[State, int]:
        """The count of each state of `lifecycle.TRANSITIONS`."""
        return {
            State.PENDING: self.pending,
            State.UNKNOWN: self.unknown,
            State.IN_FLIGHT: self.in_flight,
            State.COMPLETED: self.completed,
            State.FAILED: self.failed,
        }

    def as_dict(self) -> dict[str, Any]:
        """The `--json` object: plain JSON types only, the time also as ISO 8601 UTC."""
        return {
            "ledger": self.ledger,
            "jobs": self.jobs,
            "pending": self.pending,
            "unknown": self.unknown,
            "in_flight": self.in_flight,
            "completed": self.completed,
            "failed": self.failed,
            "failed_by_kind": dict(self.failed_by_kind),
            "runs": self.runs,
            "events": self.events,
            "possible_double_charges": self.possible_double_charges,
            "last_event_at": self.last_event_at,
            "last_event": _iso(self.last_event_at),
            "torn": self.torn,
            "planned": self.planned,
        }


def read_ledger(folder: Path) -> LedgerSnapshot:
    """Replay `folder/ledger.jsonl` read-only.

    Only the bytes present at open time are read: a run appending meanwhile could otherwise hand
    us the first half of a line, then (on the next read) its second half as a line of its own,
    which replay would rightly call damage. Raises `FileNotFoundError` (or another `OSError`)
    and `lifecycle.LedgerDamage`.
    """
    path = folder / LEDGER_NAME
    planned: list[int] = []
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        result = replay(_run_totals(_lines_upto(handle, size), planned))
        last = _last_event_time(handle, result.valid_bytes)
    return LedgerSnapshot(path, result, last, planned[-1] if planned else None)


def _run_totals(lines: Iterator[bytes], found: list[int]) -> Iterator[bytes]:
    """Pass `lines` through, noting the `jobs` of each `run` record (one per run: cheap)."""
    for raw in lines:
        if b'"event":"run"' in raw:
            try:
                jobs = json.loads(raw).get("jobs")
            except (ValueError, AttributeError):
                jobs = None  # replay reports the damage
            if isinstance(jobs, int) and not isinstance(jobs, bool):
                found.append(jobs)
        yield raw


def summarize(
    result: Replay,
    *,
    ledger: str = "",
    last_event_at: float | None = None,
    planned: int | None = None,
) -> Status:
    """Count jobs by state; failed jobs also by kind (the part of `failure` before ': ')."""
    states: Counter[State] = Counter()
    kinds: Counter[str] = Counter()
    ambiguous = 0
    for job in result.jobs.values():
        states[job.state] += 1
        ambiguous += job.ambiguous
        if job.state is State.FAILED:
            kinds[(job.failure or "unknown").partition(": ")[0]] += 1
    return Status(
        ledger=ledger,
        jobs=len(result.jobs),
        pending=states[State.PENDING],
        unknown=states[State.UNKNOWN],
        in_flight=states[State.IN_FLIGHT],
        completed=states[State.COMPLETED],
        failed=states[State.FAILED],
        failed_by_kind=dict(sorted(kinds.items())),
        runs=result.runs,
        events=result.events,
        possible_double_charges=ambiguous,
        last_event_at=last_event_at,
        torn=result.torn,
        planned=planned,
    )


def status_lines(status: Status) -> list[str]:
    """Human-readable lines; zero counts are shown too, so the layout is stable to scan."""
    width = len(f"{status.jobs:,}")
    failed = ""
    if status.failed_by_kind:
        failed = "  (" + ", ".join(f"{k} {n:,}" for k, n in status.failed_by_kind.items()) + ")"
    of = f" of {status.planned:,}" if status.planned is not None else ""
    width = max(width, len(f"{status.planned or 0:,}"))
    counts = status.by_state()
    lines = [
        f"ledger: {status.ledger}",
        f"{status.jobs:,}{of} jobs, {status.runs:,} run(s), {status.events:,} events, "
        f"last event {_iso(status.last_event_at) or 'never'}",
    ]
    for state in _SHOWN:
        note = failed if state is State.FAILED else _NOTES.get(state, "")
        lines.append(f"  {_label(state):<10} {counts[state]:>{width},}{note}")
    if status.planned is not None and status.planned > status.jobs:
        lines.append(f"  not started {status.planned - status.jobs:>{width - 1},}")
    lines.append(f"possible double charges: {status.possible_double_charges:,}")
    if status.torn:
        lines.append("note: the last line is incomplete (a write in progress, or a crash); ignored")
    return lines


def _lines_upto(handle: IO[bytes], size: int) -> Iterator[bytes]:
    """The lines of the first `size` bytes of `handle`, newlines kept."""
    left = size
    for raw in handle:
        if len(raw) >= left:
            yield raw[:left]
            return
        left -= len(raw)
        yield raw


def _last_event_time(handle: IO[bytes], end: int) -> float | None:
    """`t` of the record that ends at byte `end` (the last valid one), read backwards."""
    start = end
    tail = b""
    while start > 0:  # grow the window until it holds the whole last line
        start = max(0, start - _TAIL_CHUNK)
        handle.seek(start)
        tail = handle.read(end - start)
        if tail.rstrip(b"\n").rfind(b"\n") >= 0:
            break
    if not tail.strip():
        return None
    try:
        record = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    except ValueError:
        return None  # replay accepted it, so this is unreachable short of a race; not worth a crash
    t = record.get("t") if isinstance(record, dict) else None
    return float(t) if isinstance(t, int | float) and not isinstance(t, bool) else None


def _label(state: State) -> str:
    """A state's name for people: its ledger value, unless that reads wrong to a person."""
    return _LABELS.get(state, state.value)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
