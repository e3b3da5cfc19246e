"""Shards: which jobs one of N cooperating processes runs, and where it keeps its state. Pure.

A big dataset is built by N processes (Kubernetes Indexed Job pods, Slurm array tasks) that must
split the work without talking to each other. Job ids are already stable (see docs/manifests.md
"Job ids"), so the split is a pure function of the id:

    shard_of(id, N) = int.from_bytes(sha256(id as UTF-8)[:8], "big") mod N

sha256 rather than Python's `hash()`, which is salted per process: every process, on every
machine and Python version, puts a job in the same shard. Every shard reads the whole manifest
and keeps the jobs that hash to it, so no process needs a list from the others, and a shard can be
rerun alone. Shard `I` of `N` keeps its own ledger, lock, metadata and summary under
`shards/I-of-N/` (`state_dir`); the images of all shards share one folder or prefix, because ids
(hence file names) are unique.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final

from batchgen.core.errors import BatchgenError
from batchgen.core.folder import SHARDS_DIR

__all__ = [
    "Shard",
    "ShardError",
    "parse_label",
    "parse_shard",
    "resolve_shard",
    "shard_of",
]

_SPEC: Final = re.compile(r"(\d+)/(\d+)")
_LABEL: Final = re.compile(r"(\d+)-of-(\d+)")
MAX_SHARDS: Final = 100_000


class ShardError(BatchgenError, ValueError):
    """A shard setting is malformed or contradicts the environment (exit code 3)."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` (0-based) of `count`."""

    index: int
    count: int
    source: str = field(default="--shard", compare=False)  # where it came from, for messages

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ShardError(f"shard count {self.count} must be from 1 to {MAX_SHARDS}")
        if not 0 <= self.index < self.count:
            raise ShardError(
                f"shard index {self.index} must be from 0 to {self.count - 1} "
                f"(0-based, fewer than the count {self.count}; from {self.source})"
            )

    @property
    def label(self) -> str:
        """`I-of-N`: the shard's folder name under `shards/`."""
        return f"{self.index}-of-{self.count}"

    @property
    def state_dir(self) -> PurePosixPath:
        """Where the shard's ledger, lock, metadata and summary live, relative to the output."""
        return PurePosixPath(SHARDS_DIR, self.label)

    def owns(self, job_id: str) -> bool:
        return shard_of(job_id, self.count) == self.index


def shard_of(job_id: str, count: int) -> int:
    """The shard (0..count-1) that runs `job_id`: sha256 of the id, first 8 bytes, mod count."""
    digest = hashlib.sha256(job_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str, source: str = "--shard") -> Shard:
    """`I/N` (0-based I) -> Shard; anything else is a ShardError saying what is expected."""
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise ShardError(f"{source} {text!r}: expected I/N, e.g. 0/4 (shard 0 of 4; I is 0-based)")
    return Shard(int(match[1]), int(match[2]), source)


def parse_label(text: str) -> Shard | None:
    """`I-of-N` (a `shards/` folder name) -> Shard, or None for any other name."""
    match = _LABEL.fullmatch(text)
    if match is None:
        return None
    try:
        return Shard(int(match[1]), int(match[2]), text)
    except ShardError:
        return None


def resolve_shard(flag: str | None, count: int | None, env: Mapping[str, str]) -> Shard | None:
    """The shard this process runs, from `--shard I/N`, `--shard-count` and the environment.

    * Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` is the index; it carries no count, so the
      count comes from `--shard-count` or `BATCHGEN_SHARD_COUNT` (set it to the Job's
      `completions`).
    * Slurm job array: index = `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` (so `--array=1-4` and
      `--array=0-3` both give 0..3), count = `SLURM_ARRAY_TASK_COUNT`.
    * `--shard I/N` wins only when it agrees with those variables: a disagreement is a mistake in
      a job script, and running the wrong share of the work is worse than not starting.

    None: not sharded (no flag, no variables).
    """
    found = _from_env(count, env)
    if flag is not None:
        chosen = parse_shard(flag)
        if count is not None and count != chosen.count:
            raise ShardError(f"--shard {flag} disagrees with --shard-count {count}")
        if found is not None and found != chosen:
            raise ShardError(
                f"--shard {flag} disagrees with {found.source} (shard {found.index}/{found.count});"
                " drop one of them"
            )
        return chosen
    if found is None and count is not None:
        raise ShardError(
            "--shard-count (or BATCHGEN_SHARD_COUNT) needs a shard index: --shard I/N or "
            "JOB_COMPLETION_INDEX"
        )
    return found


def _from_env(count: int | None, env: Mapping[str, str]) -> Shard | None:
    shards: list[Shard] = []
    k8s = env.get("JOB_COMPLETION_INDEX")
    if k8s is not None:
        if count is None:
            count = _opt_int(env, "BATCHGEN_SHARD_COUNT")
        if count is None:
            raise ShardError(
                f"JOB_COMPLETION_INDEX={k8s} but no shard count: pass --shard-count N or set "
                "BATCHGEN_SHARD_COUNT to the Job's completions"
            )
        shards.append(
            Shard(_opt_int(env, "JOB_COMPLETION_INDEX") or 0, count, "JOB_COMPLETION_INDEX")
        )
    if env.get("SLURM_ARRAY_TASK_ID") is not None:
        task = _opt_int(env, "SLURM_ARRAY_TASK_ID") or 0
        low = _opt_int(env, "SLURM_ARRAY_TASK_MIN") or 0
        total = _opt_int(env, "SLURM_ARRAY_TASK_COUNT")
        if total is None:
            raise ShardError("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")
        shards.append(Shard(task - low, total, "SLURM_ARRAY_TASK_ID"))
    if len(shards) == 2 and shards[0] != shards[1]:
        raise ShardError("JOB_COMPLETION_INDEX and SLURM_ARRAY_TASK_ID name different shards")
    return shards[0] if shards else None


def _opt_int(env: Mapping[str, str], name: str) -> int | None:
    """The variable as a non-negative integer; None when unset or empty."""
    text = env.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ShardError(f"{name}={text!r} is not a non-negative integer")
    return int(text)
