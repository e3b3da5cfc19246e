"""Shared fixtures: a real emulator on an OS-chosen port, a plain aiohttp session to poke it,
and manifest files written into tmp_path.

Tests assert on what the server saw (its counters), never on mocks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batchgen.emulator import Emulator, EmulatorConfig
from batchgen.manifest.loader import Manifest, load_manifest
from tests.procs import emulator_process

KEY = "emulator-key"
AUTH = {"x-api-key": KEY}

StartEmulator = Callable[..., Awaitable[Emulator]]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="run the reliability campaign (tests/reliability) at full size",
    )


def pytest_configure(config: pytest.Config) -> None:
    """No catalogue outside a test's own (module-scoped fixtures run before `own_catalog`): the
    user's default one under ~/.cache would reuse images made by earlier runs on this machine."""
    os.environ["BATCHGEN_CATALOG"] = "off"


@pytest.fixture(autouse=True)
def own_catalog(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets a catalogue of its own (subprocesses inherit it through the environment):
    a shared one would reuse images across tests and hide the requests they count."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.sqlite"
    monkeypatch.setenv("BATCHGEN_CATALOG", str(path))
    return path


@pytest.fixture
def long_form(request: pytest.FixtureRequest) -> bool:
    """True under `--long`: reliability tests use their full sizes (README figures)."""
    return bool(request.config.getoption("--long"))


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    """Factory: `emu = await start_emulator(workers=1, rpm=5)`; all are closed in reverse order."""
    started: list[Emulator] = []

    async def start(**knobs: Any) -> Emulator:
        emu = await Emulator(EmulatorConfig(**knobs)).start()
        started.append(emu)
        return emu

    yield start
    for emu in reversed(started):
        await emu.close()


@pytest.fixture
async def emu(start_emulator: StartEmulator) -> Emulator:
    """An emulator with the default (fast, fault-free) scenario."""
    return await start_emulator()


@pytest.fixture
def emulator_url() -> Iterator[str]:
    """A `batchgen emulator` process that outlives every killed runner, so paid jobs can be
    re-attached; its own for each test (the counters are the test's)."""
    yield from emulator_process("--latency", "0.15", "--latency-jitter", "0.05", "--workers", "16")


@pytest.fixture(scope="module")
def module_emulator_url() -> Iterator[str]:
    """One quick `batchgen emulator` process for a whole module: each case sends its own prompts,
    so its own fingerprints in the counters."""
    yield from emulator_process("--latency", "0.05", "--workers", "16")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def submit(
    http: aiohttp.ClientSession, emu: Emulator, params: dict[str, Any], model: str = "qwen-image"
) -> dict[str, Any]:
    """POST /v2/{model}; asserts acceptance and returns the body."""
    async with http.post(f"{emu.base_url}/v2/{model}", json=params, headers=AUTH) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return dict(body)


async def wait_final(
    http: aiohttp.ClientSession, status_url: str, within: float = 5.0
) -> tuple[int, dict[str, Any]]:
    """Poll a status URL until COMPLETED/FAILED; returns (http status, body)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with http.get(status_url, headers=AUTH) as resp:
            body = await resp.json()
            if body.get("status") in ("COMPLETED", "FAILED"):
                return resp.status, dict(body)
        assert loop.time() < deadline, f"not final after {within}s: {body}"
        await asyncio.sleep(0.01)


async def generate(
    http: aiohttp.ClientSession, emu: Emulator, params: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """Submit, wait, fetch the result and the image: (result body, image bytes)."""
    accepted = await submit(http, emu, params)
    status, _ = await wait_final(http, accepted["status_url"])
    assert status == 200
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        result = dict(await resp.json())
    async with http.get(result["output"]) as resp:
        assert resp.status == 200
        return result, await resp.read()


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file in tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def load(write: Callable[..., Path]) -> Callable[..., Manifest]:
    """Write a manifest and load it."""

    def _load(name: str, content: str | bytes, **kwargs: object) -> Manifest:
        return load_manifest(write(name, content), **kwargs)  # type: ignore[arg-type]

    return _load
