"""Shard assignment and the shard settings: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from batchgen.core.lifecycle import LedgerJob, Replay, State
from batchgen.core.shard import Shard, ShardError, parse_label, parse_shard, resolve_shard, shard_of
from batchgen.views.merge import ShardView, merged_summary


def reference(job_id: str, count: int) -> int:
    """The documented formula, written out independently."""
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:16], 16) % count


def ids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"j-{rng.getrandbits(64):016x}" for _ in range(n)]


def test_shard_of_follows_the_documented_sha256_formula():
    """shard_of is sha256(id)[:8] as a big-endian integer, mod N: the same in every process."""
    for job_id in [*ids(500), "explicit-id", "ünïcode"]:
        for count in (1, 2, 3, 4, 7, 64):
            assert shard_of(job_id, count) == reference(job_id, count)


def test_shards_partition_the_jobs_evenly():
    """Every job lands in exactly one shard; 4000 ids split within 10% of an even share."""
    all_ids = ids(4000)
    shards = [Shard(i, 4) for i in range(4)]
    owners = [sum(s.owns(job_id) for s in shards) for job_id in all_ids]
    assert set(owners) == {1}
    sizes = Counter(shard_of(job_id, 4) for job_id in all_ids)
    assert sorted(sizes) == [0, 1, 2, 3]
    assert all(abs(n - 1000) < 100 for n in sizes.values()), sizes


def test_parse_shard_and_label():
    assert parse_shard("2/4") == Shard(2, 4)
    assert Shard(2, 4).label == "2-of-4"
    assert parse_label("2-of-4") == Shard(2, 4, "2-of-4")
    assert parse_label("4-of-4") is None
    assert parse_label("notes") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("4/4", "from 0 to 3"), ("1/0", "count 0"), ("x/4", "expected I/N"), ("-1/4", "expected")],
)
def test_bad_shard_specs_are_refused(text: str, message: str):
    with pytest.raises(ShardError, match=message):
        parse_shard(text)


def test_kubernetes_index_needs_a_count():
    """JOB_COMPLETION_INDEX carries no count: it comes from --shard-count or the variable."""
    env = {"JOB_COMPLETION_INDEX": "3"}
    with pytest.raises(ShardError, match="no shard count"):
        resolve_shard(None, None, env)
    assert resolve_shard(None, 5, env) == Shard(3, 5, "JOB_COMPLETION_INDEX")
    assert resolve_shard(None, None, {**env, "BATCHGEN_SHARD_COUNT": "4"}) == Shard(3, 4)
    with pytest.raises(ShardError, match="from 0 to 2"):
        resolve_shard(None, 3, env)


def test_slurm_array_ids_are_made_zero_based():
    """--array=1-4 and --array=0-3 both give shards 0..3."""
    one_based = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1",
                 "SLURM_ARRAY_TASK_COUNT": "4"}  # fmt: skip
    assert resolve_shard(None, None, one_based) == Shard(0, 4)
    zero_based = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert resolve_shard(None, None, zero_based) == Shard(3, 4)


def test_flag_and_environment_must_agree():
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert resolve_shard("2/4", None, env) == Shard(2, 4)
    with pytest.raises(ShardError, match="disagrees with SLURM_ARRAY_TASK_ID"):
        resolve_shard("1/4", None, env)
    with pytest.raises(ShardError, match="disagrees with --shard-count"):
        resolve_shard("1/4", 3, {})
    with pytest.raises(ShardError, match="needs a shard index"):
        resolve_shard(None, 4, {})
    with pytest.raises(ShardError, match="not a non-negative integer"):
        resolve_shard(None, 4, {"JOB_COMPLETION_INDEX": "two"})


def test_no_flag_no_environment_means_unsharded():
    assert resolve_shard(None, None, {"HOME": "/root"}) is None


def test_merged_spend_prices_jobs_the_server_did_not_cost():
    """A server that reports no metrics.cost: merge counts the shard's price, as budgets do."""
    costed = Replay(jobs={"a": LedgerJob(state=State.COMPLETED, cost=0.2)})
    uncosted = Replay(
        jobs={
            "b": LedgerJob(state=State.COMPLETED),
            "c": LedgerJob(state=State.COMPLETED),
            "d": LedgerJob(state=State.FAILED, failure="server: x"),
        }
    )
    views = [
        ShardView(Shard(0, 2), costed, {"price_per_image": 0.12}, "shards/0-of-2"),
        ShardView(Shard(1, 2), uncosted, {"price_per_image": 0.12}, "shards/1-of-2"),
    ]
    assert merged_summary(views)["spend_usd"] == pytest.approx(0.2 + 2 * 0.12)
