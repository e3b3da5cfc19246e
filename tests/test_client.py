"""The one-call transport against the emulator: typed answers, mapped errors, key confinement."""

from __future__ import annotations

import asyncio
import io
import socket

import pytest
from PIL import Image

from batchgen.core.errors import ApiError, MediaRefused, TransportError
from batchgen.edges.client import ApiClient, Timeouts
from batchgen.emulator import Emulator, FaultRule

from .conftest import KEY, StartEmulator


def client(emu: Emulator, key: str = KEY, **kw) -> ApiClient:
    return ApiClient(key, emu.base_url, **kw)


async def until_final(api: ApiClient, url: str):
    for _ in range(500):
        poll = await api.poll(url)
        if poll.state in ("COMPLETED", "FAILED"):
            return poll
        await asyncio.sleep(0.01)
    raise AssertionError("never final")


async def test_submit_poll_result_download(emu: Emulator):
    """Submit, poll the result URL directly to completion, download a real image."""
    async with client(emu) as api:
        job = await api.submit("qwen-image", {"prompt": "x", "seed": 2})
        first = await api.poll(job.response_url)
        assert first.state in ("QUEUED", "PROCESSING", "COMPLETED")
        done = await until_final(api, job.response_url)
        assert done.output is not None
        assert done.seed == 2
        data = await api.download(done.output)
    assert Image.open(io.BytesIO(data)).format == "PNG"
    stats = emu.stats()
    assert stats["media_with_api_key"] == 0
    assert stats["status_polls"] == 0  # the result URL answered everything


async def test_failed_job_is_a_poll_answer_not_an_error(emu: Emulator):
    """422 FAILED parses as a FAILED poll carrying the server's text."""
    async with client(emu) as api:
        job = await api.submit("qwen-image", {"prompt": "x [fail]"})
        done = await until_final(api, job.status_url)
    assert done.state == "FAILED"
    assert done.error is not None
    assert "content filter" in done.error


async def test_http_errors_become_api_errors(start_emulator: StartEmulator):
    """400 (validation), 401, 404 poll and 502 HTML map to ApiError with status and text."""
    emu = await start_emulator(faults=(FaultRule("credits", "502", 1.0),))
    async with client(emu) as api:
        with pytest.raises(ApiError) as bad:
            await api.submit("qwen-image", {"prompt": "x", "steps": 99})
        assert (bad.value.status, "from 1 to 50" in bad.value.message) == (400, True)
        with pytest.raises(ApiError) as gone:
            await api.poll(f"{emu.base_url}/v2/requests/nope/status")
        assert gone.value.status == 404
    async with client(emu, key="SG_wrong") as api:
        with pytest.raises(ApiError) as auth:
            await api.submit("qwen-image", {"prompt": "x"})
        assert auth.value.status == 401
        assert "SG_wrong" not in str(auth.value)


async def test_429_carries_the_servers_wait(start_emulator: StartEmulator):
    """A 429's reset time is read into ApiError.retry_after."""
    emu = await start_emulator(rpm=1)
    async with client(emu) as api:
        await api.submit("qwen-image", {"prompt": "x"})
        with pytest.raises(ApiError) as info:
            await api.submit("qwen-image", {"prompt": "y"})
    assert info.value.status == 429
    assert info.value.retry_after is not None
    assert 55 < info.value.retry_after <= 60


async def test_reset_and_refused_connections(start_emulator: StartEmulator):
    """A reset after sending may have reached the server; a refused connection surely did not."""
    emu = await start_emulator(faults=(FaultRule("submit", "reset", 1.0),))
    async with client(emu) as api:
        with pytest.raises(TransportError) as reset:
            await api.submit("qwen-image", {"prompt": "x"})
    assert reset.value.maybe_sent is True
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        async with ApiClient(KEY, f"http://127.0.0.1:{port}") as api:
            with pytest.raises(TransportError) as refused:
                await api.submit("qwen-image", {"prompt": "x"})
    assert refused.value.maybe_sent is False


async def test_timeouts_become_transport_errors(start_emulator: StartEmulator):
    """A hung answer past the deadline is a TransportError saying it timed out."""
    emu = await start_emulator(faults=(FaultRule("status", "hang", 1.0),))
    async with client(emu, timeouts=Timeouts(poll=0.2)) as api:
        job = await api.submit("qwen-image", {"prompt": "x"})
        with pytest.raises(TransportError, match="timed out"):
            await api.poll(job.status_url)


async def test_truncated_media_and_size_cap(start_emulator: StartEmulator):
    """A cut-short image is a TransportError; an image over the cap is refused."""
    emu = await start_emulator(faults=(FaultRule("media", "truncate", 1.0, limit=1),))
    async with client(emu) as api, client(emu, max_image_bytes=200) as capped:
        job = await api.submit("qwen-image", {"prompt": "x"})
        done = await until_final(api, job.response_url)
        assert done.output is not None
        with pytest.raises(TransportError):
            await api.download(done.output)
        assert len(await api.download(done.output)) > 200
        with pytest.raises(MediaRefused, match="cap") as refused:
            await capped.download(done.output)
    assert refused.value.kind == "too_large"


async def test_key_never_leaves_the_api_origin(start_emulator: StartEmulator):
    """Media on another origin gets no key; a poll URL on a foreign origin is re-rooted."""
    emu = await start_emulator(media_origin=True)
    other = await start_emulator()
    async with client(emu) as api:
        job = await api.submit("qwen-image", {"prompt": "x"})
        foreign = job.response_url.replace(emu.base_url, other.base_url)
        done = await until_final(api, foreign)  # `other` would answer 404: it was re-rooted
        assert done.output is not None
        assert done.output.startswith(emu.media_url)
        await api.download(done.output)
        assert KEY not in repr(api)
    assert emu.stats()["media_with_api_key"] == 0
    assert other.stats()["requests_total"] == 0


async def test_sync_call_bytes_and_base64(emu: Emulator):
    """v1 answers become SyncImage, from raw bytes or base64 JSON alike."""
    async with client(emu) as api:
        raw = await api.run_sync("qwen-image", {"prompt": "x", "seed": 5, "image_format": "jpeg"})
        b64 = await api.run_sync("qwen-image", {"prompt": "x", "seed": 5, "base64": True})
    assert (raw.content_type, raw.seed, raw.cost) == ("image/jpeg", 5, 0.12)
    assert Image.open(io.BytesIO(raw.data)).format == "JPEG"
    assert Image.open(io.BytesIO(b64.data)).format == "PNG"
