"""`batchgen serve s3://...`: the dashboard of a sharded output on a real S3-compatible server
(moto's server mode), read through the same storage layer as `merge`: every shard's published
ledger, the images streamed from the bucket, thumbnails kept in memory (nothing written to the
bucket), and no credential in anything served."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from batchgen.edges.storage import open_store
from batchgen.emulator import Emulator
from batchgen.views.livesource import Source
from batchgen.views.servehost import hosted, listen, url_of
from tests.scale import run_shards, write_prompts
from tests.test_s3 import BUCKET, SECRET, get, objects, s3  # noqa: F401 - s3 is a fixture


async def test_serve_an_s3_output_with_its_shards(tmp_path: Path, emu: Emulator, s3: str):  # noqa: F811
    manifest = write_prompts(tmp_path / "jobs.jsonl", 12)
    url = f"s3://{BUCKET}/dash"
    results = await run_shards(manifest, url, emu, 2, ledger_dir=tmp_path / "ledgers")
    assert [r.exit_code for r in results] == [0, 0]
    before = set(objects("dash/"))
    sock = listen("127.0.0.1", 0)
    async with (
        hosted(Source(open_store(url), name=url), sock) as board,
        aiohttp.ClientSession() as session,
    ):
        base = url_of(sock)
        async with session.get(f"{base}api/state") as resp:
            state = json.loads(await resp.read())
        assert [s["label"] for s in state["shards"]] == ["0-of-2", "1-of-2"]
        assert state["glance"]["completed"] == 12
        item = state["items"][0]
        async with session.get(base + item["url"]) as resp:
            assert resp.status == 200
            assert await resp.read() == get(f"dash/{item['file']}")
        async with session.get(base + item["thumb"]) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "image/jpeg"
        assert board.thumbs.folder is None  # an object store: thumbnails stay in memory
        assert board.thumbs.made == 1
        for path in ("", "api/state", "static/page.js"):
            async with session.get(base + path) as resp:
                assert SECRET.encode() not in await resp.read()
        async with session.get(f"{base}file/shards/0-of-2/ledger.jsonl") as resp:
            assert resp.status == 404  # only recorded images are served
    assert set(objects("dash/")) == before  # read-only: nothing added to the bucket


async def test_run_serve_on_an_s3_output_shows_the_images_from_the_bucket(
    tmp_path: Path,
    emu: Emulator,
    s3: str,  # noqa: F811
):
    """`run --serve` with `--out s3://`: the ledger is local (--ledger-dir), the images are in the
    bucket; the page reads each from where it is."""
    from batchgen.views.servehost import Beside
    from tests.scale import run

    beside = Beside(listen("127.0.0.1", 0))
    try:
        url = f"s3://{BUCKET}/beside"
        manifest = write_prompts(tmp_path / "jobs.jsonl", 4)
        result = await run(manifest, url, emu, ledger_dir=tmp_path / "state", watch=beside.attach)
        assert result.exit_code == 0
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{beside.url}api/state") as resp:
                state = json.loads(await resp.read())
            assert state["title"] == url
            assert state["glance"]["completed"] == 4
            item = state["items"][0]
            async with session.get(beside.url + item["url"]) as resp:
                assert resp.status == 200
                assert await resp.read() == get(f"beside/{item['file']}")
    finally:
        beside.stop()
