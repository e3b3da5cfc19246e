"""Reading output folders' ledgers into the catalogue: at the end of every run, and on demand.

The ledger is the source of truth for what a folder holds, so the catalogue is filled from it,
never from the run's memory: `batchgen catalog add DIR` indexes a folder made before the catalogue
existed exactly as a run indexes its own, and a catalogue lost or damaged is rebuilt the same way.

Each ledger is read from where its last indexing stopped (kept in the catalogue with a hash of its
first line, so a ledger moved aside and started over is read from the start again). A killed run
leaves its records for the next run's indexing: nothing is missed, nothing is read twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import orjson

from batchgen.core.events import Event
from batchgen.core.fingerprint import public_location, row_fingerprint
from batchgen.core.folder import LEDGER_NAME, SHARDS_DIR
from batchgen.edges.catalog import Catalog, Entry
from batchgen.models.registry import schema_for

__all__ = ["folder_ledgers", "index_folder", "index_ledger", "ledger_entries"]

_HEAD_BYTES: Final = 4096


def folder_ledgers(folder: Path) -> list[Path]:
    """The ledgers of an output folder: its own, or its shards' (OUT/shards/I-of-N/)."""
    found = [folder / LEDGER_NAME] if (folder / LEDGER_NAME).is_file() else []
    found += sorted(p for p in (folder / SHARDS_DIR).glob(f"*/{LEDGER_NAME}") if p.is_file())
    return found


def ledger_entries(
    path: Path, location: str, start: int = 0, progress: list[int] | None = None
) -> Iterator[Entry]:
    """An entry for each reusable `completed` record from byte `start`.

    `progress[0]` is kept at the offset just past the last whole line read.
    Reads whole lines only (a line being written, or torn by a crash, is left for next time).
    Lines that do not parse are skipped: this is an index of what can be checked later, and
    every entry is checked against its file before any reuse.
    """
    params_of: dict[str, frozenset[str] | None] = {}
    with path.open("rb") as handle:
        handle.seek(start)
        offset = start
        for raw in handle:
            if not raw.endswith(b"\n"):
                return
            offset += len(raw)
            if progress is not None:
                progress[0] = offset
            if b'"completed"' not in raw:
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            yield from _entries(record, location, params_of)


def _entries(
    record: Any, location: str, params_of: dict[str, frozenset[str] | None]
) -> Iterator[Entry]:
    """One entry per image of a `completed` record: its `file`, or each of its `files` (a job
    that made several, `{id}-{k}.{ext}`), with its index and their count."""
    entry = _entry(record, location, params_of)
    if entry is None:
        return
    files = record.get("files")
    if type(files) is not list or len(files) < 2:
        yield entry
        return
    images: list[tuple[str, str]] = []
    for f in files:
        name, sha256 = (f.get("file"), f.get("sha256")) if type(f) is dict else (None, None)
        if type(name) is not str or type(sha256) is not str:
            return  # a damaged list: none of them, rather than a job short of some images
        images.append((name, sha256))
    for k, (name, sha256) in enumerate(images):
        # `bytes` of such a record is the sum of its images: no image's own size.
        yield replace(entry, file=name, sha256=sha256, index=k, images=len(images), size=None)


def _entry(record: Any, location: str, params_of: dict[str, frozenset[str] | None]) -> Entry | None:
    if type(record) is not dict or record.get("event") != Event.COMPLETED:
        return None
    row, file, sha256 = record.get("row"), record.get("file"), record.get("sha256")
    if type(row) is not dict or type(file) is not str or type(sha256) is not str:
        return None
    model = row.get("model")
    if type(model) is not str:
        return None
    if model not in params_of:
        schema = schema_for(model)
        params_of[model] = frozenset(schema.params) if schema is not None else None
    fingerprint = row_fingerprint(row, params_of[model])
    if fingerprint is None:
        return None
    metrics = record.get("metrics")
    metrics = metrics if type(metrics) is dict else {}
    cost, inference = metrics.get("cost"), metrics.get("inference_time")
    reused = record.get("reused")
    if type(reused) is dict:  # a reused image cost nothing here; keep what it cost first
        cost, inference = reused.get("cost"), reused.get("inference_time")
    size, t, request_id, job = (record.get(k) for k in ("bytes", "t", "request_id", "job"))
    return Entry(
        fingerprint,
        location,
        file,
        sha256,
        size if type(size) is int else None,
        request_id if type(request_id) is str and request_id else None,
        _number(cost),
        _number(t) or 0.0,
        job if type(job) is str else None,
        _number(inference),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and type(value) is not bool else None


def _head(path: Path) -> str | None:
    with path.open("rb") as handle:
        first = handle.readline(_HEAD_BYTES)
    return hashlib.sha256(first).hexdigest() if first.endswith(b"\n") else None


def index_ledger(catalog: Catalog, path: Path, location: str, *, full: bool = False) -> int:
    """Add `path`'s new completed images (at `location`) to `catalog`; returns how many.

    `full`: read from the start whatever was read before (after a rebuild)."""
    if not path.is_file():
        return 0
    head = _head(path)
    if head is None:
        return 0
    key = str(path.resolve())
    start = 0 if full else catalog.ledger_offset(key, head)
    progress = [start]
    added = catalog.add(ledger_entries(path, location, start, progress))
    catalog.set_ledger_offset(key, head, progress[0])
    return added


def index_folder(
    catalog: Catalog, folder: Path, *, full: bool = False, images: str | None = None
) -> int:
    """Index every ledger of an output folder: images in the folder itself, or at `images` (the
    bucket URL of an object-store run whose ledgers are in its --ledger-dir)."""
    location = public_location(images) if images else str(folder.resolve())
    return sum(index_ledger(catalog, p, location, full=full) for p in folder_ledgers(folder))
