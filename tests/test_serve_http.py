"""`batchgen serve` over real HTTP on 127.0.0.1 (aiohttp's client against the real server), on
folders made by real runs against the emulator: what it serves, what it refuses (traversal,
symlink escapes, other hosts), that user text stays data, that it writes nothing a run owns,
and that the event stream brings new jobs without a reload."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from batchgen.core.shard import Shard
from batchgen.edges.storage import LocalStore
from batchgen.views.livesource import Source
from batchgen.views.servehost import hosted, listen, url_of
from batchgen.views.thumbs import THUMB_DIR
from tests.views import FOX, cells_manifest, run

SECRET = "sk-never-shown-0123456789"


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FOX images (a <script> in the prompt) and three failed BIRD jobs."""
    root = tmp_path_factory.mktemp("serve")
    out = root / "out"
    run(cells_manifest(root / "c.jsonl"), out)
    return out


@pytest.fixture
def folder(cells: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(cells, copy)
    return copy


async def _served(folder: Path, name: str = "out") -> AsyncIterator[tuple[str, Any]]:
    sock = listen("127.0.0.1", 0)
    async with hosted(Source(LocalStore(folder), name=name), sock, interval=0.05) as board:
        yield url_of(sock), board


async def _get(url: str, **kw: Any) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, **kw) as resp:
        return resp.status, await resp.read(), resp.headers


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def _files(folder: Path) -> dict[str, str]:
    """sha256 of everything in the folder except the dashboard's own cache."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and THUMB_DIR not in p.parts
    }


async def test_images_served_traversal_refused(folder: Path, tmp_path: Path):
    (tmp_path / "secret.txt").write_text(SECRET)
    images = _pngs(folder)
    assert len(images) == 2
    # a recorded image replaced by a symlink to a file outside DIR: never followed out
    outside = tmp_path / "outside.png"
    shutil.copy(folder / images[1], outside)
    (folder / images[1]).unlink()
    (folder / images[1]).symlink_to(outside)
    async for base, _ in _served(folder):
        status, body, headers = await _get(f"{base}file/{images[0]}")
        assert status == 200
        assert body == (folder / images[0]).read_bytes()
        assert headers["Content-Type"] == "image/png"
        assert headers["X-Content-Type-Options"] == "nosniff"
        attempts = [
            f"file/{images[1]}",  # the symlink escape
            "file/../secret.txt", "file/%2e%2e/secret.txt", "file/%2E%2E%2Fsecret.txt",
            "file/..%2fsecret.txt", "file/..%5csecret.txt", f"file/{tmp_path}/secret.txt",
            f"file/%2F{str(tmp_path).lstrip('/')}/secret.txt", "file//etc/passwd",
            "file/ledger.jsonl", "file/metadata.jsonl", "file/summary.json", "file/%00",
            f"file/./{images[0]}", f"file/x/../{images[0]}", "thumb/../secret.txt",
            "thumb/ledger.jsonl", "static/../serve.py", "static/index.html", "static/%2e%2e",
            "../secret.txt", "%2e%2e/secret.txt",
        ]  # fmt: skip
        for attempt in attempts:
            status, body, _ = await _get(URL(base + attempt, encoded=True))
            assert status in (400, 404), (attempt, status)
            assert SECRET.encode() not in body


async def test_only_loopback_hosts_are_answered(folder: Path):
    async for base, _ in _served(folder):
        status, _, _ = await _get(base, headers={"Host": "attacker.example:8000"})
        assert status == 421  # a rebinding page on another site cannot read the run
        for host in ("localhost:9000", "127.0.0.1", "[::1]:8000"):  # e.g. through an SSH tunnel
            status, _, _ = await _get(base, headers={"Host": host})
            assert status == 200, host


async def test_user_text_is_data_and_secrets_are_not_there(
    folder: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SEGMIND_API_KEY", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    async for base, _ in _served(folder, name="<script>window.pwned=2</script>"):
        status, page, headers = await _get(base)
        assert status == 200
        assert b"<script>window.pwned" not in page
        assert b"&lt;script&gt;window.pwned=2&lt;/script&gt;" in page  # the title, as text
        assert "script-src 'self'" in headers["Content-Security-Policy"]  # no inline script runs
        assert page.count(b"<script") == 1  # only the page's own script file
        status, body, _ = await _get(f"{base}api/state")
        state = json.loads(body)
        prompts = {i["params"].get("prompt") for i in state["items"]}
        assert FOX in prompts  # delivered as a JSON string, for textContent
        assert state["failures"][0]["count"] == 3
        for path in (
            "",
            "api/state",
            "static/page.js",
            "static/page.css",
            "api/grid?x=guidance&y=prompt",
        ):
            _, body, _ = await _get(base + path)
            assert SECRET.encode() not in body, path


async def test_thumbnails_made_once_and_nothing_of_the_run_written(folder: Path):
    before = _files(folder)
    async for base, board in _served(folder):
        name = _pngs(folder)[0]
        first = await _get(f"{base}thumb/{name}")
        second = await _get(f"{base}thumb/{name}")
        assert first[0] == second[0] == 200
        assert first[1] == second[1]
        assert first[2]["Content-Type"] == "image/jpeg"
        assert board.thumbs.made == 1  # the second came from the cache
        assert list((folder / THUMB_DIR).glob("*.jpg"))
    assert _files(folder) == before  # ledger, images, metadata, summary: byte for byte


async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


async def test_the_stream_brings_new_jobs_without_a_reload(folder: Path):
    """Half the ledger, a browser connected, then the rest appended: one update brings it."""
    ledger = folder / "ledger.jsonl"
    lines = ledger.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    ledger.write_bytes(b"".join(lines[:half]))
    (folder / "summary.json").unlink()
    async for base, _ in _served(folder):
        async with aiohttp.ClientSession() as session, session.get(f"{base}events") as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            stream = _events(resp)
            kind, first = await asyncio.wait_for(anext(stream), 10)
            assert kind == "state"
            seen = {i["id"] for i in first["items"]}
            with ledger.open("ab") as handle:
                handle.write(b"".join(lines[half:]))
            while True:
                kind, update = await asyncio.wait_for(anext(stream), 10)
                assert kind == "update"
                seen |= {i["id"] for i in update["items"]}
                if update["glance"]["completed"] + update["glance"]["failed"] == 5:
                    break
            assert len(seen) == 5  # 2 images + 3 failures, each delivered
            assert update["text"]["failures"] == "Failures (3)"


async def test_a_server_that_stops_sends_what_came_since_its_last_tick(folder: Path):
    """`run --serve --no-serve-linger` stops the page as the run ends, often between two ticks:
    the last images still reach the open page before its stream closes."""
    ledger = folder / "ledger.jsonl"
    lines = ledger.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    ledger.write_bytes(b"".join(lines[:half]))
    sock = listen("127.0.0.1", 0)
    up, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with hosted(Source(LocalStore(folder), name="out"), sock, interval=3600):
            up.set()  # no tick after the first: only the stop can bring the rest
            await stop.wait()

    server = asyncio.create_task(serve())
    await up.wait()
    async with aiohttp.ClientSession() as session, session.get(f"{url_of(sock)}events") as resp:
        stream = _events(resp)
        kind, first = await asyncio.wait_for(anext(stream), 10)
        assert kind == "state"
        seen = {i["id"] for i in first["items"]}
        assert len(seen) < 5
        with ledger.open("ab") as handle:
            handle.write(b"".join(lines[half:]))
        stop.set()
        async for _kind, update in stream:  # until the server closes the stream
            seen |= {i["id"] for i in update["items"]}
    await server
    assert len(seen) == 5


async def test_a_browser_that_stops_reading_is_dropped_not_waited_for(
    folder: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("batchgen.views.serve.WRITE_TIMEOUT", 0.3)
    async for base, board in _served(folder):
        host, port = URL(base).host, URL(base).port
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        for _ in range(200):  # wait until the stream is registered
            if board.wakes:
                break
            await asyncio.sleep(0.01)
        assert board.wakes
        huge = {"glance": {"pad": "x" * 4_000_000}}
        for _ in range(30):  # updates far bigger than any socket buffer; the client reads none
            board.figures = {**board.figures, **huge}
            for wake in board.wakes:
                wake.set()
            await asyncio.sleep(0.05)
            if not board.wakes:
                break
        assert not board.wakes  # its stream ended; the ticker never waited on it
        writer.close()
        del reader


async def test_a_sharded_output_shows_each_shard_and_the_whole(tmp_path: Path):
    manifest = tmp_path / "m.jsonl"
    prompts = [f"a shard test {n}" for n in range(10)] + ["a blue bird [fail]", "a cat [fail]"]
    manifest.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    for index in (0, 1):
        asyncio_run = await asyncio.to_thread(_run_shard, manifest, tmp_path / "out", index)
        assert asyncio_run >= 0
    async for base, _ in _served(tmp_path / "out"):
        _, body, _ = await _get(f"{base}api/state")
        state = json.loads(body)
        labels = [s["label"] for s in state["shards"]]
        assert labels == ["0-of-2", "1-of-2"]
        per_shard = [s["glance"]["completed"] + s["glance"]["failed"] for s in state["shards"]]
        assert sum(per_shard) == 12
        assert all(n > 0 for n in per_shard)
        assert (state["glance"]["completed"], state["glance"]["failed"]) == (10, 2)
        assert {i["shard"] for i in state["items"]} == {"0-of-2", "1-of-2"}
        commands = [c for g in state["failures"] for c in g["retry"]]
        assert all("--shard" in c and "--retry-failed" in c for c in commands)
        image = next(i for i in state["items"] if i["url"])
        status, _, _ = await _get(base + image["url"])
        assert status == 200


def _run_shard(manifest: Path, out: Path, index: int) -> int:
    from batchgen.emulator import EmulatorConfig
    from batchgen.run.runner import run_manifest
    from tests.views import FAST

    result = asyncio.run(
        run_manifest(
            manifest,
            out=out,
            overrides=FAST,
            shard=Shard(index, 2),
            quiet=True,
            emulator=EmulatorConfig(seed=7 + index, latency=0.02),
        )
    )
    return result.stats.completed


def test_the_thumbnail_cache_is_not_part_of_the_dataset(folder: Path, tmp_path: Path):
    """`DIR/.thumbs/` is hidden: `datasets`' imagefolder still sees only the run's images."""
    from tests.test_dataset_compat import load

    async def thumbs() -> None:
        async for base, _ in _served(folder):
            for name in _pngs(folder):
                assert (await _get(f"{base}thumb/{name}"))[0] == 200

    asyncio.run(thumbs())
    assert len(list((folder / THUMB_DIR).glob("*.jpg"))) == 2
    rows = load(folder, tmp_path / "cache")
    lines = (folder / "metadata.jsonl").read_text().splitlines()
    assert sorted(rows["id"]) == sorted(json.loads(x)["id"] for x in lines)


async def test_cli_refuses_a_busy_port_before_the_run_and_a_missing_folder(tmp_path: Path):
    from tests.views import invoke

    sock = listen("127.0.0.1", 0)
    port = str(sock.getsockname()[1])
    try:
        manifest = cells_manifest(tmp_path / "c.jsonl")
        done = await asyncio.to_thread(
            invoke, "run", str(manifest), "--out", str(tmp_path / "o"), "--emulator",
            "--serve", port,
        )  # fmt: skip
        assert done.exit_code == 3
        assert "cannot listen" in done.output
        assert not (tmp_path / "o").exists()  # refused before anything was planned or sent
        done = await asyncio.to_thread(invoke, "serve", str(tmp_path / "o"), "--port", "0")
        assert done.exit_code == 3
        assert "not a folder" in done.output
    finally:
        sock.close()


def test_credentials_in_an_url_are_not_shown():
    from batchgen.cli.views import _public

    assert _public("s3://KEY:SECRET@bucket/prefix") == "s3://bucket/prefix"
    assert _public("s3://bucket/p@x") == "s3://bucket/p@x"
    assert _public("out/sweep") == "out/sweep"


def test_beside_a_run_the_page_asks_the_run_in_its_own_loop(tmp_path: Path):
    """`run_manifest(watch=...)`: the server thread asks the run's loop for its figures; after
    the run the page still answers, from the ledger and summary.json."""
    import threading
    import urllib.request

    from batchgen.emulator import EmulatorConfig
    from batchgen.run.runner import run_manifest
    from batchgen.views.servehost import Beside

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"prompt": f"beside {n}"}) + "\n" for n in range(6)))
    beside = Beside(listen("127.0.0.1", 0))
    asked: list[tuple[str, dict[str, Any]]] = []

    def watch(root: Path, store: Any, sample: Any) -> None:
        def counted() -> dict[str, Any]:
            figures = sample()
            asked.append((threading.current_thread().name, figures))
            return dict(figures)

        beside.attach(root, store, counted)

    try:
        result = asyncio.run(
            run_manifest(manifest, out=tmp_path / "out", quiet=True, watch=watch,
                         overrides={"rpm": 4, "concurrency": 8},  # about 1.5 s: 4 a second
                         emulator=EmulatorConfig(seed=3, latency=0.02, rpm=4, rate_window=1.0))
        )  # fmt: skip
        assert result.stats.completed == 6
        assert asked, "the dashboard never asked the run"
        assert {name for name, _ in asked} == {threading.main_thread().name}  # the run's loop
        assert asked[0][1]["jobs"] == 6
        assert {"retries", "budget_usd", "eta_seconds"} <= set(asked[0][1])
        with urllib.request.urlopen(beside.url + "api/state", timeout=10) as resp:
            state = json.load(resp)
        assert state["glance"]["completed"] == 6
    finally:
        beside.stop()


def test_run_serve_from_a_script_ends_with_the_run(tmp_path: Path):
    """Not at a terminal (a script, nohup, a bench): the run's exit code at once, page closed."""
    from tests.views import invoke

    manifest = cells_manifest(tmp_path / "c.jsonl")
    done = invoke("run", str(manifest), "--out", str(tmp_path / "o"), "--emulator", "--serve", "0")
    assert done.exit_code == 1, done.output  # the BIRD jobs fail
    assert "batchgen dashboard on http://127.0.0.1:" in done.output
    assert "stays up" not in done.output
