"""Sharded runs on one local output folder, and `batchgen merge` of their shards."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from batchgen.core.lifecycle import replay
from batchgen.core.shard import shard_of
from batchgen.emulator import Emulator
from tests.scale import cli, local_hashes, run, run_shards, write_prompts


async def test_three_local_shards_merge_into_the_unsharded_dataset(tmp_path: Path, emu: Emulator):
    """3 shards running at once on one folder give, merged, the unsharded run's images."""
    manifest = write_prompts(tmp_path / "jobs.jsonl", 24)
    # The reference run stays out of the catalogue: the shards must generate, not reuse it.
    whole = await run(manifest, tmp_path / "whole", emu, catalog=False)
    assert whole.exit_code == 0
    out = tmp_path / "sharded"
    results = await run_shards(manifest, out, emu, 3)
    assert [r.exit_code for r in results] == [0, 0, 0]
    assert sum(r.stats.completed for r in results) == 24
    for i in range(3):
        state = out / "shards" / f"{i}-of-3"
        with (state / "ledger.jsonl").open("rb") as handle:
            jobs = replay(handle).jobs
        assert jobs
        assert all(shard_of(job_id, 3) == i for job_id in jobs)
        summary = json.loads((state / "summary.json").read_text())
        assert summary["shard"] == {"index": i, "count": 3, "jobs": len(jobs)}
        status = cli("status", str(state), "--json")
        assert json.loads(status.output)["completed"] == len(jobs)
    assert not (out / "ledger.jsonl").exists()
    merged = cli("merge", str(out), "--verify")
    assert merged.exit_code == 0, merged.output
    assert local_hashes(out) == local_hashes(tmp_path / "whole")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == {"jobs": 24, "completed": 24, "failed": 0}
    assert [s["shard"] for s in summary["shards"]] == ["0-of-3", "1-of-3", "2-of-3"]
    assert summary["latency_seconds"]["inference"]["p50"] is not None


def test_sharded_and_unsharded_runs_do_not_mix_on_one_folder(tmp_path: Path):
    """Each would keep its own ledger and pay again for the other's jobs: refused, exit 3."""
    manifest = write_prompts(tmp_path / "jobs.jsonl", 4)
    sharded, whole = tmp_path / "sharded", tmp_path / "whole"
    base = ["run", str(manifest), "--emulator", "--rpm", "600", "--quiet"]
    assert cli(*base, "--out", str(sharded), "--shard", "0/2").exit_code == 0
    assert cli(*base, "--out", str(whole)).exit_code == 0
    refused = [
        (cli(*base, "--out", str(sharded)), "holds the ledgers of a sharded run"),
        (cli(*base, "--out", str(sharded), "--shard", "0/3"), "holds shards of N=2"),
        (cli(*base, "--out", str(whole), "--shard", "1/2"), "holds an unsharded run's ledger"),
        (cli(*base, "--out", str(whole), "--shard", "2/2"), "from 0 to 1"),
    ]
    for result, message in refused:
        assert result.exit_code == 3, result.output
        assert message in result.output


async def test_merge_refuses_missing_incomplete_and_duplicated_shards(
    tmp_path: Path, emu: Emulator
):
    """Nothing is written, exit 2, and each problem is named."""
    manifest = write_prompts(tmp_path / "jobs.jsonl", 12)
    out = tmp_path / "out"
    await run_shards(manifest, out, emu, 3)
    shards = out / "shards"
    gone = tmp_path / "gone"
    shutil.move(shards / "2-of-3", gone)
    missing = cli("merge", str(out))
    assert missing.exit_code == 2
    assert "shard 2-of-3 is missing: run it (--shard 2/3)" in missing.output
    assert not (out / "metadata.jsonl").exists()
    shutil.move(gone, shards / "2-of-3")
    summary_path = shards / "1-of-3" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["shard"]["jobs"] += 1  # the manifest had one more job for it than it ran
    summary_path.write_text(json.dumps(summary))
    incomplete = cli("merge", str(out))
    assert incomplete.exit_code == 2
    assert "shard 1-of-3 is incomplete: 1 job(s) not finished" in incomplete.output
    summary["shard"]["jobs"] -= 1
    summary_path.write_text(json.dumps(summary))
    with (shards / "1-of-3" / "ledger.jsonl").open("ab") as target:
        target.write((shards / "0-of-3" / "ledger.jsonl").read_bytes())
    duplicated = cli("merge", str(out))
    assert duplicated.exit_code == 2
    assert "is claimed by shards 0-of-3 and 1-of-3" in duplicated.output
    assert "hashes to another shard" in duplicated.output
    assert not (out / "metadata.jsonl").exists()


async def test_shards_fill_their_own_part_folders(tmp_path: Path, emu: Emulator):
    """Past folder_size, each shard writes data/I-of-N/NNNNN/: no folder gets more than
    folder_size images however many shards share the output, and the merge still loads."""
    manifest = tmp_path / "jobs.yaml"
    seeds = list(range(1, 13))
    manifest.write_text(f"folder_size: 2\nsweep:\n  seed: {seeds}\njobs:\n  - prompt: a kite\n")
    out = tmp_path / "out"
    results = await run_shards(manifest, out, emu, 3)
    assert [r.exit_code for r in results] == [0, 0, 0]
    images = [p for p in (out / "data").rglob("*.png")]
    assert len(images) == 12
    per_folder = Counter(p.parent.relative_to(out / "data").as_posix() for p in images)
    assert max(per_folder.values()) <= 2
    assert {folder.split("/")[0] for folder in per_folder} <= {"0-of-3", "1-of-3", "2-of-3"}
    merged = cli("merge", str(out), "--verify")
    assert merged.exit_code == 0, merged.output
    assert len(local_hashes(out)) == 12
