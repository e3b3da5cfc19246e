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
