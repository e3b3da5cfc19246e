"""Every job's final state from a ledger, in a few bytes a job: what a run's start and end need.

`lifecycle.replay` keeps per job every detail a job could be picked up by (request id, URLs,
file, sha256, output, times, cost): about a kilobyte for a completed job, 200 MB at the end of
a 200,000-job run. A resume (`run/history.py`) needs the details of a few jobs only, and the
end of a run (`run/finish.py`) needs less: which jobs ended completed, and which of a job's
`completed` records is its last (metadata.jsonl lists that one's row); which failed and which
may have been paid twice, and for those few the details. `fold_states` is the same fold over
the same table (`lifecycle.TRANSITIONS`), so it refuses the same damage on the same line and
reaches the same state; but while a job is settled (no unanswered intent, no possible double
charge) it keeps one small int, state + 8 x its `completed` records so far. A generated id
(`j-` + 16 hex digits) is those 64 bits exactly, so a settled job with one ends up as a
`DigestMap` slot (12 bytes, the table at most half full), where its id string and a dict slot
were ~100 bytes: at 200,000 jobs the fold's peak goes from 22 MB (most of the 30 MB such a
run may add over a 2,000-job one) to 9 MB. Jobs are folded under their id (a run's records of
one job are close together, and a dict look-up is cheaper than a digest probe), and every
`SWEEP` jobs the settled generated ones move to the table. An explicit id stays a dict key. An
unsettled job holds a short list (state, the run of its open intent, possible double charges,
completed records). The jobs whose details the end needs are replayed in full from their own
records (`lifecycle.replay` over the ledger's `run` lines and theirs), which gives exactly what
the whole replay would give them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from batchgen.core.digests import DigestMap
from batchgen.core.events import FolderEvent
from batchgen.core.jobs import generated_id_of, generated_key
from batchgen.core.ledgerparts import LedgerDamage, LedgerLines, rate_of, upload_of
from batchgen.core.lifecycle import _BY_EVENT, State, _refused

__all__ = ["UNSETTLED", "FinalStates", "fold_states"]

_STATES: Final = tuple(State)  # a state's index: its code's low 3 bits
_INDEX: Final = {state: k for k, state in enumerate(_STATES)}
_PENDING: Final = _INDEX[State.PENDING]
_FAILED: Final = _INDEX[State.FAILED]
# The table by state index: event name -> (index -> index, or None where it is not allowed).
_MOVES: Final = {
    event: tuple(_INDEX[moves[s]] if s in moves else None for s in _STATES)
    for event, moves in _BY_EVENT.items()
}
_UPLOADED: Final = FolderEvent.UPLOADED.value
UNSETTLED: Final = 0xFFFF_FFFF  # in `settled`: the job is under its id in `codes` again
SWEEP: Final = 4096  # jobs under their id before the settled generated ones move to `settled`


def _state_of(code: Any) -> int:
    """A job code's state index (the low 3 bits of a settled int, or an unsettled list's first)."""
    return int(code & 7 if type(code) is int else code[0])


@dataclass
class FinalStates:
    """Per job: `code`, an int (state index + 8 x completed records) while settled, else a list
    [state index, run of the open intent or -1, possible double charges, completed]. Jobs are
    folded under their id in `codes`; every `SWEEP` or so, the settled ones with a generated id
    move to `settled`, under the id's 64 bits (`jobs.generated_key`). A job's later record
    brings it back to `codes`, leaving `UNSETTLED` behind. `codes` is looked in first."""

    codes: dict[str, Any] = field(default_factory=dict)
    settled: DigestMap = field(default_factory=DigestMap)
    runs: int = 0
    events: int = 0
    valid_bytes: int = 0
    torn: bool = False
    # Folder facts, as `lifecycle.Replay` has them (a resume needs both).
    uploads: dict[str, dict[str, str]] = field(default_factory=dict)
    rate: float | None = None

    def _code(self, job_id: str) -> Any:
        code = self.codes.get(job_id)
        if code is None and (key := generated_key(job_id)):
            code = self.settled.get(key)
            return None if code == UNSETTLED else code
        return code

    def state(self, job_id: str) -> State | None:
        code = self._code(job_id)
        if code is None:
            return None
        return _STATES[_state_of(code)]

    def completed_records(self, job_id: str) -> int:
        """How many `completed` records the job has if it ended COMPLETED (its row is in the last
        of them), else 0: one look-up for each record `final_rows` reads."""
        records, state = self.completions(job_id)
        return records if state is State.COMPLETED else 0

    def completions(self, job_id: str) -> tuple[int, State | None]:
        """How many `completed` records the job has, whatever its final state, and that state
        (None: not in the ledger)."""
        code = self._code(job_id)
        if code is None:
            return 0, None
        if type(code) is int:
            return code >> 3, _STATES[code & 7]
        return code[3], _STATES[code[0]]

    def job_codes(self) -> Iterator[tuple[str, Any]]:
        """Every job's (id, code), in no particular order."""
        yield from self.codes.items()
        for key, code in self.settled.items():
            if code != UNSETTLED:
                yield generated_id_of(key), code

    def ids_in(self, state: State) -> set[str]:
        """The jobs that ended in `state` (for the few states a resume needs the details of)."""
        index = _INDEX[state]
        return {job_id for job_id, code in self.job_codes() if _state_of(code) == index}

    def __len__(self) -> int:
        """How many jobs the ledger names."""
        return len(self.codes) + sum(1 for _, code in self.settled.items() if code != UNSETTLED)

    def noteworthy(self) -> set[str]:
        """The jobs that ended FAILED or may have been paid twice: the ones the end details."""
        return {
            job_id
            for job_id, code in self.job_codes()
            if _state_of(code) == _FAILED or (type(code) is not int and code[2])
        }

    def started(self) -> bool:
        """Whether any job got further than PENDING (else nothing was ever accepted)."""
        return any(_state_of(code) != _PENDING for _, code in self.job_codes())


def fold_states(lines: Iterable[bytes]) -> FinalStates:
    """`lifecycle.replay` to each job's final state only (same checks, same torn tail)."""
    result = FinalStates()
    codes, settled = result.codes, result.settled
    events = runs = 0
    limit = SWEEP
    reader = LedgerLines(lines)
    for number, record, event in reader:
        if event == "run":
            runs += 1
        elif event == _UPLOADED:
            if (upload := upload_of(record)) is None:
                raise LedgerDamage(number, "'uploaded' record without its sha256, url and host")
            result.uploads.setdefault(upload[0], {})[upload[1]] = upload[2]
        elif event == FolderEvent.RATE:
            result.rate = rate_of(record, result.rate)
        else:
            job_id = record.get("job")
            if type(job_id) is not str:
                raise LedgerDamage(number, f"'{event}' record without a job id")
            code = codes.get(job_id)
            if code is None and settled and (key := generated_key(job_id)):
                code = settled.get(key)
                if code is not None:  # swept out, and now a later record: back under its id
                    settled.set(key, UNSETTLED)
            if code is None:
                state, open_run, ambiguous, done = _PENDING, -1, 0, 0
            elif type(code) is int:
                state, open_run, ambiguous, done = code & 7, -1, 0, code >> 3
            else:
                state, open_run, ambiguous, done = code
            moves = _MOVES.get(event)
            to = None if moves is None else moves[state]
            if to is None:
                raise LedgerDamage(number, _refused(event, job_id, _STATES[state]))
            if event == "intent":
                if 0 <= open_run != runs:  # its run died before the answer came
                    ambiguous += 1
                open_run = runs
            elif event == "released":
                if open_run >= 0:  # released after a refused submit: nothing paid
                    open_run, to = -1, _PENDING
            else:
                open_run = -1
                if event == "completed":
                    done += 1
                elif event == "unknown":
                    ambiguous += 1
            codes[job_id] = (
                to | done << 3
                if open_run < 0 and not ambiguous
                else [to, open_run, ambiguous, done]
            )
            if len(codes) > limit:
                _sweep(codes, settled)
                limit = max(SWEEP, 2 * len(codes))  # what stays (explicit ids, unsettled)
        events += 1
    result.runs, result.events, result.valid_bytes = runs, events, reader.valid_bytes
    result.torn = reader.torn
    return result


def _sweep(codes: dict[str, Any], settled: DigestMap) -> None:
    """Move the settled jobs with generated ids from `codes` to `settled`."""
    moved = []
    for job_id, code in codes.items():
        if type(code) is int and code < UNSETTLED and (key := generated_key(job_id)):
            settled.set(key, code)
            moved.append(job_id)
    for job_id in moved:
        del codes[job_id]
