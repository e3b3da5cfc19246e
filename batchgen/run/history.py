"""What a resume needs of its folder's ledger, in a few bytes per finished job.

A full `lifecycle.replay` keeps every job's fields (request id, URLs, file, sha256, output, times,
cost): a resume of a finished 20,000-job folder peaked at 114 MB where the run that made it
peaked at 59, about 2.7 KB per completed job, half a gigabyte at 200,000. Picking jobs up
needs much less. Most jobs need only their final state (`finalstate.fold_states`): pending and
unknown ones are submitted, failed ones left alone or retried, completed ones skipped if their
files are intact. Only two kinds need their records: a job in flight (its request is polled
again) and a completed job whose file is lost (fetched again from the recorded URL), and a
crashed run leaves few of those. So a resume folds the ledger to states, reads it once more
for each job's last `completed` record (its files checked in threads, its cost summed, its
latency kept among its model's latest, its part counted), and replays in full only the records
of the jobs it must pick up by their details.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from batchgen.core.finalstate import FinalStates
from batchgen.core.ledgerparts import as_number, as_text, cost_of, model_of, more_files
from batchgen.core.lifecycle import LedgerJob, State
from batchgen.edges.ledger import load_states
from batchgen.edges.ledgerread import completions, replay_of
from batchgen.edges.parts import part_index
from batchgen.edges.storage import Store

__all__ = ["History", "read_history"]

LATEST: Final = 256  # latencies kept per model: what a resume seeds its poll plan with
CHECKS: Final = 1024  # completed jobs whose files are checked together, in threads
FileList = tuple[tuple[str | None, str | None], ...]  # (file, sha256) of each image of a job

# A job known by its state alone (`resume.plan` reads no other field of these): one shared,
# never changed, record per state.
_BARE: Final = {state: LedgerJob(state=state) for state in State}


@dataclass
class History:
    """The folder's ledger as a resume reads it (`read_history`)."""

    states: FinalStates = field(default_factory=FinalStates)
    details: dict[str, LedgerJob] = field(default_factory=dict)  # in flight, or file lost
    lost: set[str] = field(default_factory=set)  # completed jobs whose files are not intact
    # Submit-to-completed seconds of the latest completed jobs by model (None: a record from
    # before models were recorded); an upper bound of each latency: it includes the download.
    latencies: dict[str | None, deque[float]] = field(default_factory=dict)
    cost: float = 0.0  # what the completed jobs that recorded one cost
    uncosted: Counter[str | None] = field(default_factory=Counter)  # the others, by model
    parts: Counter[int] = field(default_factory=Counter)  # recorded images per part folder

    def record(self, job_id: str) -> LedgerJob | None:
        """What `resume.plan` needs of the job: its details where it needs them, else its state
        (None: the ledger never named it)."""
        detail = self.details.get(job_id)
        if detail is not None:
            return detail
        state = self.states.state(job_id)
        return None if state is None else _BARE[state]

    def intact(self, job_id: str) -> bool:
        """Whether a completed job's files are all there as recorded."""
        return job_id not in self.lost

    def known_latencies(self, default_model: str) -> dict[str, tuple[float, ...]]:
        """The latest latencies by model, so a resume plans each model's polls from its own
        jobs; those of records that name no model count as `default_model`'s, the manifest's."""
        merged: dict[str, deque[float]] = {}
        for model, spans in self.latencies.items():
            merged.setdefault(model or default_model, deque(maxlen=LATEST)).extend(spans)
        return {model: tuple(spans) for model, spans in merged.items()}

    def spent(self, price_of: Callable[[str], float | None], default_model: str) -> float:
        """What earlier runs spent on the folder's completed jobs: each one's recorded cost, else
        its own model's price (`default_model`'s for a record that names none)."""
        priced = (
            (price_of(model or default_model) or 0.0) * n for model, n in self.uncosted.items()
        )
        return self.cost + sum(priced)


def read_history(path: Path, store: Store, *, writable: bool, workers: int = 16) -> History:
    """The ledger at `path` for a resume whose images are in `store`. `writable`: for a run that
    will append to it (a torn last line is cut off: `edges/ledger.load_states`), else read-only
    (a dry run). Raises LedgerError when a line before the last is damaged."""
    if not path.exists():
        return History()
    states = load_states(path, repair=writable)
    history = History(states)
    with ThreadPoolExecutor(workers) as pool:
        for batch in _batches(_completed(path, history), CHECKS):
            flags = pool.map(lambda item: all(store.intact(f, h) for f, h in item[1]), batch)
            history.lost.update(
                job_id for (job_id, _), ok in zip(batch, flags, strict=True) if not ok
            )
    # Picked up by their records: re-attached (in flight) or fetched again (file lost).
    history.details = replay_of(path, states.ids_in(State.IN_FLIGHT) | history.lost).jobs
    return history


def _completed(path: Path, history: History) -> Iterator[tuple[str, FileList]]:
    """Each completed job's (id, files to check), from its last `completed` record; on the way,
    what the resume sums up from those records, into `history`."""
    states = history.states
    for job_id, record, submitted_at in completions(path, states, submits=True):
        file = as_text(record.get("file"))
        if file is not None and (index := part_index(file)) is not None:
            history.parts[index] += 1
        if states.state(job_id) is not State.COMPLETED:
            continue
        model, cost = model_of(record), cost_of(record)
        if cost is None:
            history.uncosted[model] += 1
        else:
            history.cost += cost
        completed_at = as_number(record.get("t"))
        if completed_at is not None and submitted_at and completed_at >= submitted_at:
            spans = history.latencies.setdefault(model, deque(maxlen=LATEST))
            spans.append(completed_at - submitted_at)
        if file is None:
            history.lost.add(job_id)
            continue
        yield job_id, ((file, as_text(record.get("sha256"))), *more_files(record.get("files")))


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(itertools.islice(items, size)):
        yield batch
