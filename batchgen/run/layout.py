"""Where one run keeps what: images in the store, its state (ledger, lock, metadata, summary) on
local disk, and, when they differ, a published copy of that state in the store.

    unsharded, local     OUT/{images, ledger.jsonl, .batchgen.lock, metadata.jsonl, summary.json}
    shard I of N, local  OUT/{images}  OUT/.batchgen.lock (shared by the shards)
                         OUT/shards/I-of-N/{ledger.jsonl, .batchgen.lock, metadata.jsonl, ...}
    --out s3://B/P       images at s3://B/P/...; the state in --ledger-dir DIR (or
                         DIR/shards/I-of-N), published to s3://B/P/[shards/I-of-N/] at the end of
                         every run, so `batchgen merge s3://B/P` sees every shard

A ledger is appended and fsync'd a few times a second; object stores have no append, so the
ledger lives on local disk and the store gets a copy. The lock is local too (a flock cannot be
taken on S3): two runs of the same shard are kept apart only when they share the ledger folder,
as a Slurm task or an Indexed Job pod (one per index) does with a node-local or volume path.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgen.core.folder import LEDGER_NAME, PART_SUFFIX, SHARDS_DIR, STATE_FILES
from batchgen.core.shard import Shard, parse_label
from batchgen.edges.ledger import folder_lock
from batchgen.edges.sinks import remove_partials
from batchgen.edges.storage import StorageError, Store, is_remote, open_store

__all__ = ["Layout", "plan_layout"]


@dataclass(frozen=True)
class Layout:
    store: Store  # the images (and, when remote, a copy of the state files)
    root: Path  # local folder whose lock all runs on this output share
    state_dir: Path  # this run's ledger, lock, metadata.jsonl, summary.json, failed.jsonl
    state_prefix: str  # where the state files are in the store: "" or "shards/I-of-N"
    shard: Shard | None
    publish: bool  # copy the state files to the store at the end (they are elsewhere)

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / LEDGER_NAME

    def stored(self, name: str) -> str:
        return f"{self.state_prefix}/{name}" if self.state_prefix else name

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One run per shard (or per unsharded output); shards of one output run side by side."""
        with folder_lock(self.root, shared=self.shard is not None):
            self._check_mode()
            if self.shard is None:
                yield
                return
            with folder_lock(self.state_dir):
                yield

    def _check_mode(self) -> None:
        """Refuse to mix sharded and unsharded runs, or shard counts, on one output: each would
        have its own ledger, so the second would pay again for every job the first has done."""
        counts = {
            shard.count
            for name in (p.name for p in (self.root / SHARDS_DIR).glob("*-of-*"))
            if (shard := parse_label(name)) is not None
            and (self.root / SHARDS_DIR / name / LEDGER_NAME).exists()
        }
        if self.shard is None and counts:
            raise StorageError(
                f"{self.root} holds the ledgers of a sharded run (shards/): run with --shard I/N, "
                "merge it (batchgen merge), or use another --out"
            )
        if self.shard is not None:
            if (self.root / LEDGER_NAME).exists():
                raise StorageError(
                    f"{self.root} holds an unsharded run's ledger: a sharded run there would pay "
                    "again for its jobs; use another --out (or --ledger-dir)"
                )
            others = counts - {self.shard.count}
            if others:
                raise StorageError(
                    f"{self.root} holds shards of N={min(others)}: use --shard I/{min(others)}, "
                    "or another --out"
                )

    def clean(self) -> None:
        """Remove what a killed run left half-written: this run's temp files only."""
        if self.shard is not None:
            remove_partials(self.state_dir)
        self.store.remove_partials()

    def restore_ledger(self) -> bool:
        """No local ledger but a published copy (a new pod or node): start from the copy.

        Jobs in flight after the copy was taken are not in it; they are submitted again.
        """
        if not self.publish or self.ledger_path.exists():
            return False
        name = self.stored(LEDGER_NAME)
        if self.store.read(name) is None:
            return False
        self.state_dir.mkdir(parents=True, exist_ok=True)
        temp = self.state_dir / f".{LEDGER_NAME}.restore{PART_SUFFIX}"
        with self.store.open_read(name) as source, temp.open("wb") as target:
            shutil.copyfileobj(source, target)
        temp.replace(self.ledger_path)
        return True

    def publish_state(self) -> None:
        """Copy the state files to the store (the ledger last, as the dataset's record)."""
        if not self.publish:
            return
        for name in (*STATE_FILES[1:], LEDGER_NAME):
            path = self.state_dir / name
            if path.exists():
                self.store.upload(self.stored(name), path)
            else:
                self.store.delete(self.stored(name))


def plan_layout(
    out: str | Path,
    shard: Shard | None = None,
    ledger_dir: Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> Layout:
    """The layout for `--out OUT [--shard I/N] [--ledger-dir DIR]`; StorageError if unusable."""
    remote = is_remote(out)
    if remote and ledger_dir is None:
        raise StorageError(
            f"--out {out}: the ledger stays on local disk; pass --ledger-dir DIR (keep it for "
            "resuming; a copy is also written to the store at the end of every run)"
        )
    tag = f"s{shard.index}of{shard.count}" if shard is not None else ""
    store = open_store(out, options, tag=tag)
    root = ledger_dir if ledger_dir is not None else Path(str(out).removeprefix("file://"))
    state_prefix = shard.state_dir.as_posix() if shard is not None else ""
    state_dir = root.joinpath(state_prefix) if state_prefix else root
    return Layout(store, root, state_dir, state_prefix, shard, publish=ledger_dir is not None)
