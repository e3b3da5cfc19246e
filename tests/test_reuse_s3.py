"""Reuse between object-store outputs (a real S3-compatible server, moto, on 127.0.0.1): the copy
happens inside the store, keeps the sha256 resume trusts, and no credential reaches the catalogue.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from batchgen.emulator import Emulator
from tests.scale import cli, local_hashes, run, write_prompts
from tests.test_s3 import BUCKET, SECRET, get, objects, s3  # noqa: F401 - `s3` is a fixture


def completed(ledger: Path) -> list[dict[str, Any]]:
    records = [json.loads(x) for x in ledger.read_text().splitlines()]
    return [r for r in records if r["event"] == "completed"]


async def test_bucket_to_bucket_reuse_is_a_server_side_copy(
    tmp_path: Path,
    emu: Emulator,
    s3: str,  # noqa: F811
):
    manifest = write_prompts(tmp_path / "jobs.jsonl", 6)
    first = await run(manifest, f"s3://{BUCKET}/a", emu, ledger_dir=tmp_path / "la")
    assert first.stats.completed == 6
    paid = emu.stats()["paid_submits"]
    second = await run(manifest, f"s3://{BUCKET}/b", emu, ledger_dir=tmp_path / "lb")
    assert emu.stats()["paid_submits"] == paid
    assert second.stats.reused == 6
    records = completed(tmp_path / "lb" / "ledger.jsonl")
    assert {r["reused"]["how"] for r in records} == {"server-copy"}
    assert {r["reused"]["from"].rsplit("/", 1)[0] for r in records} == {f"s3://{BUCKET}/a"}
    for record in records:  # the checksum resume trusts travelled with the copy
        key = f"b/{record['file']}"
        assert objects(key)[key]["Metadata"]["sha256"] == record["sha256"]
        assert hashlib.sha256(get(key)).hexdigest() == record["sha256"]
    resumed = await run(manifest, f"s3://{BUCKET}/b", emu, ledger_dir=tmp_path / "lb")
    assert resumed.skipped == 6
    local = await run(manifest, tmp_path / "local", emu)  # bucket -> folder: bytes, checked
    assert local.stats.reused == 6
    assert emu.stats()["paid_submits"] == paid
    assert {r["reused"]["how"] for r in completed(tmp_path / "local" / "ledger.jsonl")} == {"copy"}
    assert sorted(local_hashes(tmp_path / "local").values()) == sorted(r["sha256"] for r in records)
    catalogue = Path(os.environ["BATCHGEN_CATALOG"])
    stored = b"".join(p.read_bytes() for p in catalogue.parent.iterdir())
    assert SECRET.encode() not in stored
    assert b"moto-key-id" not in stored


async def test_catalog_add_of_a_bucket_run_from_its_ledger_dir(
    tmp_path: Path,
    emu: Emulator,
    s3: str,  # noqa: F811
):
    manifest = write_prompts(tmp_path / "jobs.jsonl", 4)
    await run(manifest, f"s3://{BUCKET}/old", emu, ledger_dir=tmp_path / "lo", catalog=False)
    paid = emu.stats()["paid_submits"]
    added = cli("catalog", "add", str(tmp_path / "lo"), "--images", f"s3://{BUCKET}/old")
    assert "4 image(s) added" in added.output
    again = await run(manifest, f"s3://{BUCKET}/new", emu, ledger_dir=tmp_path / "ln")
    assert again.stats.reused == 4
    assert emu.stats()["paid_submits"] == paid
