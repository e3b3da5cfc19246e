"""A run output as the dashboard reads it: its ledger(s), followed by byte offset, and its images.

Read-only by construction: files are opened for reading only, through the same `Store` as
`merge` (a folder, or `s3://` via fsspec). A local ledger is followed from the byte offset of
the last look, so each update reads only what was appended; an object store has no append and
no ranged tail here, so a remote ledger (the copy a run publishes when it ends) is fetched whole
when the page refreshes it, and only the bytes past the offset are folded.

A sharded output (`OUT/shards/I-of-N/ledger.jsonl`) is one part per shard; shards appearing
later are picked up. `image` hands out only files that a ledger records as a finished job's
image, and, on disk, only when the real path (symlinks resolved) is still inside the folder.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from batchgen.core.folder import LEDGER_NAME, SHARDS_DIR, SUMMARY_NAME
from batchgen.core.lifecycle import State
from batchgen.core.shard import parse_label
from batchgen.edges.storage import LocalStore, Store
from batchgen.views.livefold import Board
from batchgen.views.livestate import (
    Part,
    as_item,
    failures,
    glance,
    headline,
    input_copies,
    item_json,
    throughput,
)
from batchgen.views.rundata import Item, image_path

__all__ = ["CHUNK", "MAX_ITEMS", "Source"]

CHUNK: Final = 4 << 20  # bytes read from a ledger per step
MAX_ITEMS: Final = 5000  # finished jobs a browser gets when it connects; later ones stream in


class Source:
    """One output (local folder or store) and what the page knows of it so far."""

    def __init__(self, store: Store, *, name: str, images: Store | None = None) -> None:
        self.store = store
        self.images = images  # where the images are, when not beside the ledgers (run --serve
        # on an s3:// output keeps its ledger on local disk)
        self.name = name  # shown as the title, and used in retry commands
        self.parts: dict[str, Part] = {}  # prefix ("" or "shards/I-of-N") -> part
        self.offsets: dict[str, int] = {}
        self.cursors: dict[str, int] = {}  # prefix -> the board seq already logged
        self.seq = 0
        self.log: list[tuple[int, str, str]] = []  # (seq, prefix, job id): finished jobs in order
        self.files: set[str] = set()
        self.finished: dict[tuple[str, str], Item] = {}  # kept as jobs finish, for the grid

    @property
    def local(self) -> Path | None:
        """The folder of a local output (None: an object store, or images kept elsewhere)."""
        if self.images is not None or not isinstance(self.store, LocalStore):
            return None
        return self.store.root

    def refresh(self) -> bool:
        """Read what was appended since the last call; True if anything the page shows changed."""
        changed = False
        for prefix in self._prefixes():
            part = self.parts.get(prefix)
            if part is None:
                label = prefix.rsplit("/", 1)[-1] if prefix else None
                part = self.parts[prefix] = Part(label, Board())
                self.offsets[prefix] = self.cursors[prefix] = 0
                changed = True
            changed |= self._follow(prefix, part)
            summary = self._summary(prefix)
            if summary != part.summary:
                part.summary, changed = summary, True
        return changed

    def image(self, relative: str) -> bytes | None:
        """The bytes of a recorded image, or None (not recorded, outside the folder, missing)."""
        if relative not in self.files:
            return None
        if self.images is not None:
            return self.images.read(relative)
        root = self.local
        if root is None:
            return self.store.read(relative)
        path = image_path(root, relative)
        if path is None:
            return None
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(root.resolve(strict=True)) or not real.is_file():
                return None
            return real.read_bytes()
        except OSError:
            return None

    def latest(
        self, links: Callable[[str], dict[str, str | None]], limit: int = MAX_ITEMS
    ) -> list[dict[str, Any]]:
        """The newest `limit` finished jobs (a browser is not sent 1,000,000 cards at once)."""
        start = max(0, len(self.log) - limit)
        return self.items_since(self.log[start - 1][0] if start else 0, links)

    def figures(self, sample: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parts of the state that are small: counts, chart, failures, shards, summary."""
        parts = list(self.parts.values())
        now = time.time()
        shards = [
            {"label": p.label, "glance": glance([p], None)} for p in parts if p.label is not None
        ]
        summary = parts[0].summary if len(parts) == 1 else _merged(parts)
        return {
            "title": self.name,
            "seq": self.seq,
            "text": headline(parts),
            "glance": glance(parts, sample),
            "throughput": throughput(parts, now),
            "shards": sorted(shards, key=lambda s: _shard_key(s["label"])),
            "failures": failures(parts, self.name),
            "summary": summary,
            "damaged_lines": sum(p.board.damaged for p in parts),
            "finished": sum(len(p.board.failed) + p.board.counts[State.COMPLETED] for p in parts),
        }

    def items_since(
        self, seq: int, links: Callable[[str], dict[str, str | None]]
    ) -> list[dict[str, Any]]:
        """The finished jobs logged after `seq`, each once, oldest first."""
        start = bisect.bisect_right(self.log, (seq, "\U0010ffff", ""))
        seen: dict[tuple[str, str], None] = {}
        for _, prefix, job_id in self.log[start:]:
            seen.pop((prefix, job_id), None)
            seen[(prefix, job_id)] = None
        out = []
        for prefix, job_id in seen:
            part = self.parts[prefix]
            out.append(item_json(job_id, part.board.jobs[job_id], part.label, links))
        return out

    def grid_items(self) -> list[Item]:
        """The finished jobs as `gridplan` takes them: a copy, safe to plan in another thread."""
        return list(self.finished.values())

    def _prefixes(self) -> list[str]:
        if LEDGER_NAME in self.store.listdir(""):
            return [""]
        found = []
        for name in self.store.listdir(SHARDS_DIR):
            if parse_label(name) is not None and LEDGER_NAME in self.store.listdir(
                f"{SHARDS_DIR}/{name}"
            ):
                found.append(f"{SHARDS_DIR}/{name}")
        return found

    def _follow(self, prefix: str, part: Part) -> bool:
        name = f"{prefix}/{LEDGER_NAME}" if prefix else LEDGER_NAME
        before = part.board.seq, part.board.events
        offset = self.offsets[prefix]
        root = self.local
        if root is None:
            data = self.store.read(name) or b""
            offset += part.board.feed(data[offset:])
        else:
            with (root / name).open("rb") as handle:
                handle.seek(offset)
                pending = b""
                while chunk := handle.read(CHUNK):
                    data = pending + chunk
                    used = part.board.feed(data)
                    offset += used
                    pending = data[used:]  # a torn tail waits for the rest of its line
        self.offsets[prefix] = offset
        for job_id in part.board.since(self.cursors[prefix]):
            self.seq += 1
            self.log.append((self.seq, prefix, job_id))
            job = part.board.jobs[job_id]
            if job.file:  # what `image` may hand out: the job's images and its inputs' copies
                self.files.add(job.file)
                self.files.update(job.more)
                self.files.update(copy for _, _, copy in input_copies(job.row or {}))
            item = as_item(job_id, job)
            if item is not None:
                self.finished[(prefix, job_id)] = item
            else:
                self.finished.pop((prefix, job_id), None)
        self.cursors[prefix] = part.board.seq
        return (part.board.seq, part.board.events) != before

    def _summary(self, prefix: str) -> dict[str, Any] | None:
        raw = self.store.read(f"{prefix}/{SUMMARY_NAME}" if prefix else SUMMARY_NAME)
        try:
            value = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def _merged(parts: list[Part]) -> dict[str, Any] | None:
    """Each shard's last summary, side by side (`batchgen merge` writes the combined one)."""
    found = {p.label or "": p.summary for p in parts if p.summary is not None}
    return dict(sorted(found.items(), key=lambda kv: _shard_key(kv[0]))) or None


def _shard_key(label: str | None) -> tuple[int, int]:
    shard = parse_label(label or "")
    return (shard.count, shard.index) if shard is not None else (0, 0)
