"""Hostile responses (issue 8): results whose image is a trap (other schemes, private and
metadata addresses, redirects, oversized, endless or wrong bodies, decompression bombs) fail
their job with a clear failure kind and leave nothing on disk, while the run goes on.

One run, one emulator: every trap is a job of the same manifest (`[hostile:KIND]` prompts), next
to plain jobs and a legitimate redirect to a CDN on another host, which must succeed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from batchgen.core.errors import TransportError
from batchgen.core.folder import LOCK_NAME
from batchgen.edges.client import ANSWER_LIMIT, ApiClient
from batchgen.emulator.hostile import HOSTILE_KINDS
from batchgen.run.runner import MediaLimits, run_manifest
from tests.conftest import StartEmulator
from tests.helpers import write_jsonl

CAP = 256 * 1024  # bytes: the emulator's images are a few KB; its oversized traps are 4x this
DEADLINE = 4.0  # seconds per image: the trickling body is cut there

EXPECTED = {
    "file-url": ("unsafe_url", "uses 'file'; only http and https"),
    "ftp-url": ("unsafe_url", "uses 'ftp'; only http and https"),
    "data-url": ("unsafe_url", "uses 'data'; only http and https"),
    "metadata-ip": ("unsafe_url", "link-local"),
    "private-ip": ("unsafe_url", "a private address, while the API is not on one"),
    "link-local-v6": ("unsafe_url", "link-local"),
    "decimal-ip": ("unsafe_url", "the image URL is malformed"),  # 169.254.169.254 in decimal
    "credentials-url": ("unsafe_url", "carries a user name or password"),
    "redirect-metadata": ("unsafe_url", "link-local"),
    "redirect-file": ("unsafe_url", "uses 'file'"),
    "redirect-loop": ("unsafe_url", "more than 5 redirects"),
    "oversized": ("too_large", f"over the {CAP:,} cap"),
    "oversized-chunked": ("too_large", f"over the {CAP:,}-byte cap"),
    "wrong-format": ("bad_image", "expected png, got jpeg"),
    "not-image": ("bad_image", "not a decodable image"),
    "bomb": ("bad_image", "decompression bomb"),
    "trickle": ("timeout", f"did not arrive within {DEADLINE:g} s"),
}
FINE = ("redirect-cdn", "plain-1", "plain-2")


async def test_hostile_results_fail_cleanly_and_the_run_goes_on(
    start_emulator: StartEmulator, tmp_path: Path
):
    """Each trap: its failure kind in ledger, failed.jsonl and summary; no file; others done."""
    # Every trap is covered: huge-result (a poll answer, retried as a transport error) by the
    # client-level test below, where it does not wait out the backoff.
    assert set(EXPECTED) | {"redirect-cdn", "huge-result"} == set(HOSTILE_KINDS)
    emu = await start_emulator(
        media_origin=True, media_host="127.0.0.2", hostile_bytes=4 * CAP, hang_seconds=60
    )
    manifest = tmp_path / "hostile.jsonl"
    rows = [{"id": k, "prompt": f"a fox [hostile:{k}]"} for k in (*EXPECTED, "redirect-cdn")]
    rows += [{"id": name, "prompt": f"a fox {name}"} for name in FINE[1:]]
    write_jsonl(manifest, rows)
    out = tmp_path / "out"

    result = await run_manifest(
        manifest,
        api_key="emulator-key",
        base_url=emu.base_url,
        out=out,
        overrides={"concurrency": 8, "rpm": 60_000},
        expect_seconds=0.05,
        quiet=True,
        media=MediaLimits(max_bytes=CAP, deadline=DEADLINE),
    )

    assert result.exit_code == 1
    failed = {}
    for line in (out / "ledger.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "failed":
            failed[event["job"]] = (event["kind"], event["error"])
    assert set(failed) == set(EXPECTED)
    for job, (kind, fragment) in EXPECTED.items():
        assert failed[job][0] == kind, (job, failed[job])
        assert fragment in failed[job][1], (job, failed[job])
    retry = [json.loads(x) for x in (out / "failed.jsonl").read_text().splitlines()]
    assert {r["_job"] for r in retry} == set(EXPECTED)
    by_kind: dict[str, int] = {}
    for kind, _ in EXPECTED.values():
        by_kind[kind] = by_kind.get(kind, 0) + 1
    assert result.stats.failed == by_kind
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v["count"] for k, v in summary["failures"].items()} == by_kind

    records = {"ledger.jsonl", "metadata.jsonl", "summary.json", "failed.jsonl", LOCK_NAME}
    written = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert written - records == {f"{name}.png" for name in FINE}  # nothing else, no .part
    stats = emu.stats(detail=False)
    assert stats["media_with_api_key"] == 0
    assert stats["completed"] == len(rows)  # the server finished (and billed) every job


async def test_a_huge_api_answer_is_cut_off_not_read(start_emulator: StartEmulator):
    """A result body past the answer limit is a TransportError (retried per policy), read only
    up to the limit: a server cannot make the client hold gigabytes."""
    emu = await start_emulator(hostile_bytes=2 * ANSWER_LIMIT)
    async with ApiClient("emulator-key", emu.base_url) as api:
        job = await api.submit("qwen-image", {"prompt": "a fox [hostile:huge-result]"})
        for _ in range(1000):  # the job takes ~50 ms; the bound only stops a broken emulator
            if (await api.poll(job.status_url)).state == "COMPLETED":
                break
            await asyncio.sleep(0.02)
        with pytest.raises(TransportError, match=f"an answer over {ANSWER_LIMIT:,} bytes"):
            await api.poll(job.response_url)
