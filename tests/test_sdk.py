"""The SDK-shaped async client: submit/wait/download, failures and timeouts as exceptions."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import batchgen
from batchgen.core.policy import Backoff
from batchgen.emulator import Emulator, parse_fault

from .conftest import KEY, StartEmulator


def client(emu: Emulator) -> batchgen.Client:
    return batchgen.Client(KEY, emu.base_url, backoff=Backoff(0.01, 0.1), typical_seconds=0.05)


async def test_submit_wait_download(emu: Emulator):
    """submit + wait returns the final body; download gives the image."""
    async with client(emu) as c:
        job = await c.submit("qwen-image", prompt="a fox", seed=4)
        result = await job.wait(timeout=10)
        data = await c.download(result["output"])
    assert (result["status"], result["seed"]) == ("COMPLETED", 4)
    assert Image.open(io.BytesIO(data)).format == "PNG"


async def test_failed_job_raises_inference_failed(emu: Emulator):
    """A FAILED job raises InferenceFailed carrying the server's text and the request id."""
    async with client(emu) as c:
        with pytest.raises(batchgen.InferenceFailed) as info:
            await c.run("qwen-image", prompt="x [fail]")
    assert "content filter" in info.value.error
    assert info.value.request_id


async def test_timeout_raises_inference_timeout(start_emulator: StartEmulator):
    """A job still pending at the deadline raises InferenceTimeout."""
    emu = await start_emulator(latency=5.0, latency_jitter=0.0)
    async with client(emu) as c:
        job = await c.submit("qwen-image", prompt="slow")
        with pytest.raises(batchgen.InferenceTimeout):
            await job.wait(timeout=0.3)


async def test_transient_errors_are_retried(start_emulator: StartEmulator):
    """503s on polls and a 429 on submit are retried, not raised."""
    emu = await start_emulator(
        faults=(parse_fault("status:503=1x3"), parse_fault("submit:429=1x1"))
    )
    async with client(emu) as c:
        result = await c.run("qwen-image", prompt="x")
    assert result["status"] == "COMPLETED"
    assert emu.stats()["faults_total"] == 4


async def test_missing_key_is_refused_up_front(monkeypatch: pytest.MonkeyPatch):
    """No key anywhere: a clear error before any request."""
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    with pytest.raises(ValueError, match="SEGMIND_API_KEY"):
        batchgen.Client()


def test_public_surface():
    """The package exports exactly its documented API."""
    assert sorted(batchgen.__all__) == sorted(
        ["ApiError", "AsyncJob", "BatchgenError", "Client", "InferenceFailed", "InferenceTimeout",
         "LedgerError", "ManifestError", "MediaLimits", "MediaRefused", "RunOptions", "RunResult",
         "TransportError",
         "__version__", "load_manifest", "run_manifest"]
    )  # fmt: skip
    for name in batchgen.__all__:
        assert hasattr(batchgen, name)
