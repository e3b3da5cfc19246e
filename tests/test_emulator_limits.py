"""Rate limiting and fault injection: the emulator behaviours the runner's retries are tested on."""

from __future__ import annotations

import time

import aiohttp
import pytest

from batchgen.core.wire import parse_reset_at
from batchgen.emulator import Emulator, FaultRule, parse_fault
from batchgen.emulator.faults import FaultPlan
from batchgen.emulator.ratelimit import SlidingWindow

from .conftest import AUTH, StartEmulator, submit, wait_final


async def post(http: aiohttp.ClientSession, emu: Emulator, params=None) -> aiohttp.ClientResponse:
    async with http.post(
        f"{emu.base_url}/v2/qwen-image", json=params or {"prompt": "x"}, headers=AUTH
    ) as resp:
        await resp.read()
        return resp


# -- sliding window, pure -----------------------------------------------------------------------


def test_sliding_window_counts_any_window_strictly():
    """No more than N in any window of W: a slot frees exactly W after the oldest accept."""
    window = SlidingWindow(limit=2, window=60.0)
    assert window.try_acquire("k", 0.0) is None
    assert window.try_acquire("k", 30.0) is None
    assert window.try_acquire("k", 59.9) == 60.0  # refused: frees when the first ages out
    assert window.try_acquire("k", 60.0) is None  # the t=0 request is now out of the window
    assert window.try_acquire("k", 60.5) == 90.0
    assert window.try_acquire("other", 60.5) is None  # per key


def test_refused_requests_do_not_consume_the_window():
    """A 429 does not count: hammering does not push the reset time further out."""
    window = SlidingWindow(limit=1, window=10.0)
    assert window.try_acquire("k", 0.0) is None
    for t in (1.0, 2.0, 9.0):
        assert window.try_acquire("k", t) == 10.0
    assert window.try_acquire("k", 10.0) is None


# -- rate limit over HTTP -----------------------------------------------------------------------


async def test_rate_limit_429_with_reset_header(start_emulator: StartEmulator, http):
    """Past rpm submits in the window, 429 says when a slot frees; then the submit passes."""
    emu = await start_emulator(rpm=3)
    for _ in range(3):
        assert (await post(http, emu)).status == 200
    refused = await post(http, emu)
    assert refused.status == 429
    assert "Retry-After" not in refused.headers
    reset = parse_reset_at(refused.headers["x-rate-limit-reset-at-utc"])
    assert reset is not None
    assert 59.0 < reset - time.time() <= 60.0
    emu.advance(60.0)
    assert (await post(http, emu)).status == 200
    stats = emu.stats()
    assert (stats["rate_limited"], stats["submits_accepted"]) == (1, 4)


async def test_retry_after_and_no_reset_header_knobs(start_emulator: StartEmulator, http):
    """retry_after adds Retry-After in whole seconds; reset_header=False drops the reset time."""
    emu = await start_emulator(rpm=1, rate_window=2.5, retry_after=True, reset_header=False)
    await post(http, emu)
    refused = await post(http, emu)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "3"
    assert "x-rate-limit-reset-at-utc" not in refused.headers


@pytest.mark.parametrize("count_polls", [False, True])
async def test_count_polls_switch(start_emulator: StartEmulator, http, count_polls):
    """Polls count against the limit only with count_polls."""
    emu = await start_emulator(rpm=2, count_polls=count_polls)
    accepted = await submit(http, emu, {"prompt": "x"})
    statuses = []
    for _ in range(3):
        async with http.get(accepted["status_url"], headers=AUTH) as resp:
            statuses.append(resp.status)
    assert statuses == ([200, 429, 429] if count_polls else [200, 200, 200])
    assert emu.stats()["rate_limited_by_route"] == ({"status": 2} if count_polls else {})


async def test_sync_calls_count_against_the_limit(start_emulator: StartEmulator, http):
    """v1 sync calls are submits too."""
    emu = await start_emulator(rpm=1)
    url = f"{emu.base_url}/v1/qwen-image"
    async with http.post(url, json={"prompt": "x"}, headers=AUTH) as resp:
        assert resp.status == 200
    async with http.post(url, json={"prompt": "x"}, headers=AUTH) as resp:
        assert resp.status == 429


# -- fault plan, pure ---------------------------------------------------------------------------


def test_parse_fault_forms_and_errors():
    """ROUTE:KIND=P[xN] parses; bad routes, kinds, probabilities and placements are refused."""
    assert parse_fault("status:503=0.05") == FaultRule("status", "503", 0.05)
    assert parse_fault("*:reset=1x2") == FaultRule("*", "reset", 1.0, 2)
    for bad in [
        "status:503",
        "nowhere:503=1",
        "status:418=1",
        "status:503=1.5",
        "status:accepted-500=1",
        "status:truncate=1",
        "submit:503=1x0",
    ]:
        with pytest.raises(ValueError, match=r"fault|route|probability|limit"):
            parse_fault(bad)


def test_fault_plan_is_seeded_limited_and_per_route():
    """Same seed, same draws; a limit caps injections; other routes are untouched."""
    rules = (FaultRule("status", "503", 0.5), FaultRule("submit", "reset", 1.0, limit=2))
    one, two = FaultPlan(rules, seed=7), FaultPlan(rules, seed=7)
    draws = [one.draw("status") for _ in range(200)]
    assert draws == [two.draw("status") for _ in range(200)]
    assert 70 <= draws.count("503") <= 130
    assert [one.draw("submit") for _ in range(4)] == ["reset", "reset", None, None]
    assert {one.draw("media") for _ in range(50)} == {None}


# -- faults over HTTP ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [
        ("500", "application/json"),
        ("502", "text/html"),
        ("503", "application/json"),
        ("504", "text/html"),
    ],
)
async def test_5xx_faults(start_emulator: StartEmulator, http, kind, content_type):
    """5xx faults answer the code (JSON or gateway HTML) without creating a job."""
    emu = await start_emulator(faults=(FaultRule("submit", kind, 1.0),))
    resp = await post(http, emu)
    assert resp.status == int(kind)
    assert resp.content_type == content_type
    stats = emu.stats()
    assert stats["submits_accepted"] == 0
    assert stats["faults"] == {f"submit:{kind}": 1}


async def test_429_fault_carries_a_near_reset_time(start_emulator: StartEmulator, http):
    """An injected 429 looks like the server's: reset header, no Retry-After, no job."""
    emu = await start_emulator(faults=(FaultRule("submit", "429", 1.0, limit=1),))
    refused = await post(http, emu)
    assert refused.status == 429
    reset = parse_reset_at(refused.headers["x-rate-limit-reset-at-utc"])
    assert reset is not None
    assert 0 < reset - time.time() <= 0.2
    assert (await post(http, emu)).status == 200
    assert emu.stats()["rate_limited"] == 0  # a fault, not the limiter


async def test_fault_limit_then_recovery(start_emulator: StartEmulator, http):
    """status:503=1x2 fails exactly the first two polls."""
    emu = await start_emulator(faults=(parse_fault("status:503=1x2"),))
    accepted = await submit(http, emu, {"prompt": "x"})
    codes = []
    for _ in range(3):
        async with http.get(accepted["status_url"], headers=AUTH) as resp:
            codes.append(resp.status)
    assert codes == [503, 503, 200]


async def test_star_route_applies_everywhere(start_emulator: StartEmulator, http):
    """`*` faults every API route, the credits one included."""
    emu = await start_emulator(faults=(parse_fault("*:503=1"),))
    async with http.get(f"{emu.base_url}/v1/get-user-credits", headers=AUTH) as resp:
        assert resp.status == 503
    assert (await post(http, emu)).status == 503


async def test_connection_reset(start_emulator: StartEmulator, http):
    """A reset fault cuts the connection: the client gets no HTTP status at all."""
    emu = await start_emulator(faults=(FaultRule("submit", "reset", 1.0),))
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(http, emu)
    assert emu.stats()["submits_accepted"] == 0


@pytest.mark.parametrize("kind", ["accepted-500", "accepted-reset"])
async def test_accepted_then_lost(start_emulator: StartEmulator, http, kind):
    """accepted-* faults create and bill the job, then lose the answer (the double-charge case)."""
    emu = await start_emulator(faults=(FaultRule("submit", kind, 1.0),))
    if kind == "accepted-reset":
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(http, emu)
    else:
        assert (await post(http, emu)).status == 500
    stats = emu.stats()
    assert stats["submits_accepted"] == 1
    assert stats["paid_submits"] == 1


@pytest.mark.parametrize("kind", ["slow", "hang"])
async def test_slow_and_hung_responses_time_out_the_client(start_emulator: StartEmulator, kind):
    """slow/hang delay the answer past a client's deadline; a later request is served normally."""
    emu = await start_emulator(faults=(FaultRule("credits", kind, 1.0, limit=1),), slow_seconds=2.0)
    url = f"{emu.base_url}/v1/get-user-credits"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as short:
        with pytest.raises(TimeoutError):
            async with short.get(url, headers=AUTH) as resp:
                await resp.read()
        async with short.get(url, headers=AUTH) as resp:
            assert resp.status == 200


async def test_slow_response_eventually_answers(start_emulator: StartEmulator, http):
    """A slow fault answers normally after slow_seconds."""
    emu = await start_emulator(faults=(FaultRule("credits", "slow", 1.0),), slow_seconds=0.2)
    started = time.monotonic()
    async with http.get(f"{emu.base_url}/v1/get-user-credits", headers=AUTH) as resp:
        assert resp.status == 200
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("route", ["media", "sync"])
async def test_truncated_image_body(start_emulator: StartEmulator, http, route):
    """truncate sends a full Content-Length, half the bytes, then cuts: the read fails."""
    emu = await start_emulator(faults=(FaultRule(route, "truncate", 1.0),))
    if route == "sync":
        request = http.post(f"{emu.base_url}/v1/qwen-image", json={"prompt": "x"}, headers=AUTH)
    else:
        accepted = await submit(http, emu, {"prompt": "x"})
        await wait_final(http, accepted["status_url"])
        async with http.get(accepted["response_url"], headers=AUTH) as resp:
            request = http.get((await resp.json())["output"])
    with pytest.raises(aiohttp.ClientPayloadError):
        async with request as resp:
            await resp.read()
