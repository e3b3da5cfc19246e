"""The fast tier: engine decisions in virtual time (`batchgen.testing`), no sockets, no sleeps.

Every test here is marked `fast` (`pytest tests/fast` or `pytest -m fast`), and a real sleep
fails the test: time only moves when a `SteppedClock` is stepped.
"""

from __future__ import annotations

import asyncio

import pytest

_real_sleep = asyncio.sleep


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fast: decisions in virtual time, no sockets or sleeps")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fast/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.fast)


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio.sleep(0) yields; any longer real sleep is a bug in a fast test."""

    async def guarded(delay: float, result: object = None) -> object:
        if delay > 0:
            raise AssertionError(f"a real sleep of {delay} s in the fast tier")
        return await _real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", guarded)
