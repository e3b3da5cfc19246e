"""`batchgen emulator` as a user starts it: a real process, a real port, curl-like calls."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from batchgen.cli.emulator import _emulator_config

from .conftest import AUTH

ANNOUNCE = "batchgen emulator listening on "


@pytest.fixture
async def emulator_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`batchgen emulator --port 0 ...` in a subprocess; yields (process, base URL)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "batchgen",
        "emulator",
        "--port",
        "0",
        "--latency",
        "0.01",
        "--media-origin",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    assert line.startswith(ANNOUNCE), line
    base_url = line.removeprefix(ANNOUNCE).split(",")[0].split(" ")[0]
    try:
        yield proc, base_url
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_cli_emulator_serves_a_job_end_to_end(emulator_process):
    """A submit to the CLI emulator completes and links to a real image; SIGTERM stops it."""
    proc, base_url = emulator_process
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/v2/qwen-image", json={"prompt": "a fox"}, headers=AUTH
        ) as r:
            accepted = await r.json()
        for _ in range(500):
            async with http.get(accepted["status_url"], headers=AUTH) as r:
                if (await r.json())["status"] == "COMPLETED":
                    break
            await asyncio.sleep(0.01)
        async with http.get(accepted["response_url"], headers=AUTH) as r:
            output = (await r.json())["output"]
        assert not output.startswith(base_url)  # --media-origin: another port
        async with http.get(output) as r:
            image = Image.open(io.BytesIO(await r.read()))
            assert image.format == "PNG"
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0


def test_cli_options_map_to_config():
    """Flags become config fields; --realistic sets the qwen-image latency."""
    config = _emulator_config(
        {
            "host": "127.0.0.1",
            "port": 0,
            "keys": (),
            "seed": 3,
            "models": ("flux",),
            "retired_model": ("old",),
            "forbidden_model": (),
            "accept_invalid": True,
            "workers": 2,
            "latency": 0.05,
            "latency_jitter": 0.02,
            "realistic": True,
            "fail_rate": 0.0,
            "fail_marker": "[fail]",
            "retention": 3600.0,
            "id_format": "uuid",
            "early_result": "status",
            "full_size": False,
            "credits": 5.0,
            "cost_per_image": 0.12,
            "credits_status": "402",
            "rpm": 5,
            "rate_window": 60.0,
            "count_polls": True,
            "retry_after": False,
            "no_reset_header": True,
            "faults": ("status:503=0.1",),
            "slow_seconds": 1.0,
            "hang_seconds": 3600.0,
            "media_origin": False,
            "media_host": None,
        }
    )
    assert config.keys == ("emulator-key",)
    assert config.models == ("qwen-image", "flux")
    assert (config.latency, config.latency_jitter) == (28.0, 4.0)
    assert (config.credits_status, config.reset_header, config.rpm) == (402, False, 5)
    assert config.faults[0].kind == "503"


async def test_cli_rejects_a_bad_fault_rule():
    """A malformed --fault is invalid input (exit 3) and shows the expected form."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "batchgen",
        "emulator",
        "--fault",
        "status:teapot=1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 3  # invalid input, as everywhere in batchgen (issue 17)
    assert b"unknown fault 'teapot'" in err
