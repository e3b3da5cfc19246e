"""Outputs to object storage: a real S3-compatible server (moto's server mode) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from batchgen.core.lifecycle import State, replay
from batchgen.core.shard import Shard
from batchgen.edges.storage import StorageError, open_store
from batchgen.emulator import Emulator
from tests.procs import emulator_process, finish, start_run, wait_for_events
from tests.scale import cli, local_hashes, run, run_shards, write_prompts

BUCKET = "datasets"
SECRET = "moto-secret-key-never-logged"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on an OS-chosen port with one bucket; yields its endpoint URL.

    Credentials and the endpoint reach batchgen (and its subprocesses) through the standard
    AWS variables only.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "moto-key-id", "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    client().create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def client() -> Any:
    return boto3.client("s3")


def objects(prefix: str) -> dict[str, dict[str, Any]]:
    """Key -> HEAD of every object under the prefix (ETag, LastModified, Metadata)."""
    found = {}
    for page in client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = client().head_object(Bucket=BUCKET, Key=item["Key"])
    return found


def get(key: str) -> bytes:
    return bytes(client().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def s3_hashes(prefix: str) -> dict[str, str]:
    """id -> sha256 of the object each row of the merged metadata.jsonl names (downloaded)."""
    rows = [json.loads(x) for x in get(f"{prefix}/metadata.jsonl").decode().splitlines()]
    return {r["id"]: hashlib.sha256(get(f"{prefix}/{r['file_name']}")).hexdigest() for r in rows}


async def test_four_shards_on_s3_merge_to_the_unsharded_images(
    tmp_path: Path, emu: Emulator, s3: str
):
    """4 shards uploading to one prefix + merge == the unsharded run: same ids, same sha256."""
    manifest = write_prompts(tmp_path / "jobs.jsonl", 32)
    # The reference run stays out of the catalogue: the shards must generate, not reuse it.
    whole = await run(manifest, tmp_path / "whole", emu, catalog=False)
    assert whole.exit_code == 0
    url = f"s3://{BUCKET}/ds"
    ledgers = tmp_path / "ledgers"
    results = await run_shards(manifest, url, emu, 4, ledger_dir=ledgers)
    assert [r.exit_code for r in results] == [0] * 4
    assert not list(ledgers.rglob("*.png"))  # no local copy of the images
    merged = cli("merge", url, "--verify")
    assert merged.exit_code == 0, merged.output
    assert s3_hashes("ds") == local_hashes(tmp_path / "whole")
    stored = objects("ds/")
    images = {k: v for k, v in stored.items() if k.endswith(".png")}
    assert len(images) == 32
    for key, head in images.items():  # the checksum resume trusts travels with the object
        assert head["Metadata"]["sha256"] == hashlib.sha256(get(key)).hexdigest()
    for i in range(4):  # each shard's state is published next to the images
        assert f"ds/shards/{i}-of-4/ledger.jsonl" in stored
        assert (
            get(f"ds/shards/{i}-of-4/ledger.jsonl")
            == (ledgers / "shards" / f"{i}-of-4" / "ledger.jsonl").read_bytes()
        )
    written = b"".join(p.read_bytes() for p in ledgers.rglob("*") if p.is_file())
    written += b"".join(get(k) for k in stored if not k.endswith(".png"))
    assert SECRET.encode() not in written  # credentials are never recorded
    state = ledgers / "shards" / "1-of-4"
    with (state / "ledger.jsonl").open("rb") as handle:
        mine = {j.file: j.sha256 for j in replay(handle).jobs.values()}
    damaged = sorted(mine)[0]
    client().put_object(Bucket=BUCKET, Key=f"ds/{damaged}", Body=b"overwritten")
    again = await run(manifest, url, emu, shard=Shard(1, 4), ledger_dir=ledgers)
    assert (again.exit_code, again.skipped, again.stats.refetched) == (0, len(mine) - 1, 1)
    assert hashlib.sha256(get(f"ds/{damaged}")).hexdigest() == mine[damaged]
    shutil.rmtree(ledgers / "shards" / "2-of-4")  # a new node: the local ledger is gone
    fresh = await run(manifest, url, emu, shard=Shard(2, 4), ledger_dir=ledgers)
    assert (fresh.exit_code, fresh.stats.jobs, fresh.skipped) == (0, 0, results[2].stats.completed)


def ledger(state: Path) -> bytes:
    return (state / "ledger.jsonl").read_bytes()


def test_a_killed_shard_reruns_alone_without_touching_the_others(tmp_path: Path, s3: str):
    """SIGKILL shard 1 of 4 mid-run (on S3); the others finish; shard 1 rerun alone completes
    its part; no other shard's ledger or object changes; merge --verify then succeeds."""
    manifest = write_prompts(tmp_path / "jobs.jsonl", 40)
    url = f"s3://{BUCKET}/killed"
    ledgers = tmp_path / "ledgers"
    states = [ledgers / "shards" / f"{i}-of-4" for i in range(4)]
    emulator = emulator_process("--latency", "1.0", "--latency-jitter", "0.1", "--workers", "64")
    base = next(emulator)
    try:
        procs = [
            start_run(manifest, url, base, "--shard", f"{i}/4", "--ledger-dir", str(ledgers))
            for i in range(4)
        ]  # type: ignore[arg-type]
        wait_for_events(states[1], 4, procs[1])  # a run record and submits: jobs take >= 0.9 s
        procs[1].send_signal(signal.SIGKILL)
        procs[1].communicate()
        with (states[1] / "ledger.jsonl").open("rb") as handle:
            killed = replay(handle).jobs
        assert any(job.state is not State.COMPLETED for job in killed.values())
        for i in (0, 2, 3):
            code, _, stderr = finish(procs[i])
            assert code == 0, stderr
        assert cli("merge", url).exit_code == 2  # shard 1 is not finished
        others = {i: ledger(states[i]) for i in (0, 2, 3)}
        before = {k: v["ETag"] + str(v["LastModified"]) for k, v in objects("killed/").items()}
        code, _, stderr = finish(
            start_run(manifest, url, base, "--shard", "1/4", "--ledger-dir", str(ledgers))
        )  # type: ignore[arg-type]
        assert code == 0, stderr
    finally:
        emulator.close()
    assert {i: ledger(states[i]) for i in (0, 2, 3)} == others
    after = {k: v["ETag"] + str(v["LastModified"]) for k, v in objects("killed/").items()}
    changed = {k for k in before if after.get(k) != before[k]}
    assert all(k.startswith("killed/shards/1-of-4/") for k in changed), changed
    merged = cli("merge", url, "--verify", "--json")
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.output)["outcome"]["completed"] == 40


def test_object_storage_needs_the_extra_and_a_ledger_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without fsspec an s3:// output is refused with the extra's name; without --ledger-dir
    (the ledger stays local) it is refused too: both exit 3, nothing sent."""
    manifest = write_prompts(tmp_path / "jobs.jsonl", 2)
    no_dir = cli("run", str(manifest), "--emulator", "--out", f"s3://{BUCKET}/x")
    assert no_dir.exit_code == 3
    assert "pass --ledger-dir DIR" in no_dir.output
    monkeypatch.setitem(sys.modules, "fsspec.core", None)  # as if batchgen[s3] were not installed
    with pytest.raises(StorageError, match=r"pip install 'batchgen\[s3\]'"):
        open_store(f"s3://{BUCKET}/x")
