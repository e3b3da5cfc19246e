"""The official `segmind` SDK, unchanged, against the emulator: the fidelity floor."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator

import httpx
import pytest
from PIL import Image
from segmind import SegmindClient
from segmind.exceptions import SegmindError
from segmind.files import Files
from segmind.v2 import InferenceFailed

from batchgen.emulator import Emulator

from .conftest import KEY


@pytest.fixture
def sdk() -> Iterator[Callable[..., SegmindClient]]:
    """Factory of SDK clients pointed at an emulator; their httpx clients are closed after."""
    made: list[SegmindClient] = []

    def make(emu: Emulator, key: str = KEY) -> SegmindClient:
        made.append(SegmindClient(api_key=key, base_url=f"{emu.base_url}/v1"))
        return made[-1]

    yield make
    for client in made:
        client._client.close()


SDK = Callable[..., SegmindClient]


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_submit_async_wait_returns_completed_body_with_downloadable_image(
    emu: Emulator, sdk: SDK
):
    """submit_async(...).wait() ends COMPLETED and `output` downloads to a decodable image."""
    client = sdk(emu)
    job = await asyncio.to_thread(client.submit_async, "qwen-image", prompt="a fox", seed=3)
    body = await asyncio.to_thread(job.wait, 10, 0.02)
    assert body["status"] == "COMPLETED"
    assert body["seed"] == 3
    image = decode(await asyncio.to_thread(lambda: httpx.get(body["output"]).content))
    assert image.format == "PNG"


async def test_run_returns_completed_body(emu: Emulator, sdk: SDK):
    """client.run(...) (submit + 1 s polling) returns the final body."""
    body = await asyncio.to_thread(sdk(emu).run, "qwen-image", prompt="a lighthouse")
    assert body["status"] == "COMPLETED"
    assert body["output"].startswith(emu.base_url)
    assert body["metrics"]["cost"] == pytest.approx(0.12)


async def test_run_sync_returns_image_bytes(emu: Emulator, sdk: SDK):
    """client.run_sync(...) (POST /v1) returns raw image bytes with the v1 headers."""
    resp = await asyncio.to_thread(
        sdk(emu).run_sync, "qwen-image", prompt="a cat", image_format="jpeg", seed=11
    )
    assert resp.headers["content-type"] == "image/jpeg"
    assert resp.headers["x-seed-value"] == "11"
    assert decode(resp.content).format == "JPEG"


async def test_fail_marker_raises_inference_failed(emu: Emulator, sdk: SDK):
    """A `[fail]` prompt ends FAILED and the SDK raises InferenceFailed with the server's text."""
    client = sdk(emu)
    job = await asyncio.to_thread(client.submit_async, "qwen-image", prompt="boom [fail]")
    with pytest.raises(InferenceFailed) as info:
        await asyncio.to_thread(job.wait, 10, 0.02)
    assert "content filter" in (info.value.detail or "")
    assert info.value.status_body["status"] == "FAILED"


async def test_bad_key_raises_segmind_error_401(emu: Emulator, sdk: SDK):
    """A wrong key is refused with 401 and the spec's message."""
    with pytest.raises(SegmindError) as info:
        await asyncio.to_thread(sdk(emu, "SG_0000000000000000").run, "qwen-image", prompt="x")
    assert info.value.status == 401
    assert "invalid" in (info.value.detail or "")
    assert emu.stats()["submits_accepted"] == 0


def _files_on(client: SegmindClient, emu: Emulator) -> Files:
    """The SDK's storage client with its storage host pointed at the emulator (as a user would
    point it at any Segmind-compatible storage): `files.upload` posts to STORAGE_BASE_URL."""
    files = client.files
    files.STORAGE_BASE_URL = emu.base_url
    return files


async def test_files_upload_then_edit_job_with_the_uploaded_url(emu: Emulator, sdk: SDK, tmp_path):
    """The official SDK uploads a local file to the emulator and submits an edit job with the URL
    it got back; the job COMPLETES and its output is the input, edited (same size, decodes)."""
    source = tmp_path / "cat.png"
    Image.new("RGB", (96, 64), (30, 160, 40)).save(source)
    client = sdk(emu)
    answer = await asyncio.to_thread(_files_on(client, emu).upload, source)
    (url,) = answer["file_urls"]
    assert url.startswith(f"{emu.base_url}/assets/")
    job = await asyncio.to_thread(
        client.submit_async, "qwen-image-edit", prompt="make it autumn", image=url, seed=4
    )
    body = await asyncio.to_thread(job.wait, 10, 0.02)
    assert body["status"] == "COMPLETED"
    edited = decode(await asyncio.to_thread(lambda: httpx.get(body["output"]).content))
    assert edited.size == (96, 64)
    stats = emu.stats()
    assert (stats["uploads"], stats["submits_accepted"], stats["inputs_refused"]) == (1, 1, 0)


async def test_files_upload_of_several_files_then_seedream_with_several_outputs(
    emu: Emulator, sdk: SDK, tmp_path
):
    """A batch upload (two files, one call) feeds a list slot; max_images 2 returns two images."""
    paths = []
    for name, colour in (("a.png", (200, 0, 0)), ("b.jpg", (0, 0, 200))):
        paths.append(tmp_path / name)
        Image.new("RGB", (40, 40), colour).save(paths[-1])
    client = sdk(emu)
    urls = (await asyncio.to_thread(_files_on(client, emu).upload, paths))["file_urls"]
    assert [u.rsplit(".", 1)[1] for u in urls] == ["png", "jpg"]
    body = await asyncio.to_thread(
        client.run, "seedream-4.5", prompt="a set", image_input=urls, max_images=2
    )
    assert len(body["output"]) == 2
    assert emu.stats()["upload_calls"] == 1


async def test_sdk_edit_job_with_a_foreign_url_is_refused(emu: Emulator, sdk: SDK):
    """An input the emulator cannot reach (any URL but its own assets) is a 400 SegmindError."""
    client = sdk(emu)
    with pytest.raises(SegmindError) as info:
        await asyncio.to_thread(
            client.submit_async, "qwen-image-edit", prompt="x", image="https://example.com/a.png"
        )
    assert info.value.status == 400
    assert "unreachable" in (info.value.detail or "")
