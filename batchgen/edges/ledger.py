"""The results ledger: `DIR/ledger.jsonl`, one JSON object per job event, append-only.

It is the run's memory across crashes. The API has no idempotency key, so a `request_id` must be
on disk before the job counts as in flight: `append` returns only once its line is fsync'd.
Appends from many tasks are grouped into one write + one fsync (group commit), which keeps that
guarantee cheap. A failed write or fsync is never retried: the page cache may have dropped the
data, so the writer breaks and every later append raises `LedgerError`; the run stops.

Every record is a typed one from `core/events.py` (its docstrings and field lists are the record
shapes); on disk each line is `{"v", "t" (epoch seconds), "event", <the record's fields>}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import orjson

from batchgen.core.errors import LedgerError
from batchgen.core.events import LedgerRecord, record_fields
from batchgen.core.finalstate import FinalStates, fold_states
from batchgen.core.folder import LEDGER_NAME, LOCK_NAME
from batchgen.core.lifecycle import LedgerDamage
from batchgen.edges.crashpoints import crashpoint, fault

__all__ = [
    "LEDGER_NAME",
    "LEDGER_VERSION",
    "LOCK_NAME",
    "LedgerWriter",
    "encode",
    "folder_lock",
    "load_states",
]

LEDGER_VERSION: Final = 1


class LedgerWriter:
    """Durable, batched appends to one ledger file from many tasks of one event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._broken: BaseException | None = None
        self._closing = False
        self.records = 0
        self.syncs = 0

    async def __aenter__(self) -> LedgerWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._task = asyncio.create_task(self._flusher(), name="ledger-flusher")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._closing = True  # the flusher drains what is pending, then returns
            self._wake.set()
            await self._task
            self._task = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def append(self, record: LedgerRecord) -> None:
        """Add one record and wait until it is on disk (written and fsync'd)."""
        if self._broken is not None:
            raise LedgerError(f"the ledger is unusable after an earlier failure: {self._broken}")
        if self._closing or self._task is None:
            raise LedgerError("the ledger is closed")
        event, fields = record.EVENT.value, record_fields(record)
        line = encode({"v": LEDGER_VERSION, "t": round(time.time(), 3), "event": event, **fields})
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line, future))
        self._wake.set()
        await future
        crashpoint(event)  # test hooks (off in production): die right after a durable record
        crashpoint("ledger")

    async def _flusher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                if self._closing:
                    return
                continue
            self._wake.set()  # look again after this batch: appends may arrive meanwhile
            try:
                await asyncio.to_thread(self._write, [line for line, _ in batch])
            except OSError as exc:
                self._broken = exc
                error = LedgerError(f"could not write the ledger {self.path}: {exc}")
                for _, future in batch + self._pending:
                    if not future.done():
                        future.set_exception(error)
                self._pending.clear()
                return
            self.records += len(batch)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _write(self, lines: list[bytes]) -> None:
        assert self._fd is not None
        data = b"".join(lines)
        view = memoryview(data)
        while view:
            fault("write", "ledger")
            written = os.write(self._fd, view)
            view = view[written:]
        fault("fsync", "ledger")
        os.fsync(self._fd)
        self.syncs += 1


def encode(record: dict[str, Any]) -> bytes:
    """One ledger line: compact JSON, UTF-8 as is (ids and prompts stay readable), newline.

    orjson writes the same compact form several times faster (six lines a job), except that a
    float's exponent has no padding (1e-7, not 1e-07) and a non-finite float (a server's NaN in
    `metrics`) becomes null, where the stdlib wrote a NaN no JSON reader but Python's accepts.
    What orjson refuses (an int past 64 bits, a non-str key) the stdlib writes, as before.
    """
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def load_states(path: Path, *, repair: bool = True) -> FinalStates:
    """Fold `path` to each job's final state (`finalstate.fold_states`). `repair`: for a run that
    will append to it, a torn last line is cut off first (a dry run reads it as it is).

    Raises LedgerError when a line before the last is damaged (the message names it): resuming
    past damage could pay twice for jobs or lose them, so a person should look.
    """
    if not path.exists():
        return FinalStates()
    with path.open("rb") as handle:
        try:
            result = fold_states(handle)
        except LedgerDamage as exc:
            raise LedgerError(
                f"{path}: {exc}; the ledger is damaged before its last line. Move it aside to "
                "start over (completed images stay), or repair that line."
            ) from None
    if not repair:
        return result
    size = path.stat().st_size
    if result.torn or size != result.valid_bytes:
        with path.open("r+b") as handle:
            handle.truncate(result.valid_bytes)
            os.fsync(handle.fileno())
    elif size and not _ends_with_newline(path):
        # A whole record whose newline was lost: keep it, and end the line before appending.
        with path.open("ab") as handle:
            handle.write(b"\n")
            os.fsync(handle.fileno())
    return result


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


@contextlib.contextmanager
def folder_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on an output folder for the length of a run.

    Two runs on one folder would each replay the same ledger and each pay for every pending job;
    the second one fails at once instead. The lock is released by the OS if the process dies.
    `shared`: shards of one dataset hold the output folder's lock together (each also holds its
    own shard folder's lock exclusively), which still keeps an unsharded run out.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LedgerError(
                f"another batchgen run is using {folder}; wait for it to finish or stop it "
                "(two runs on one folder would pay twice for every pending job)"
            ) from None
        yield
    finally:
        os.close(fd)
