"""The emulator's outage knob and arrival log, over real HTTP."""

from __future__ import annotations

import pytest

from batchgen.cli.emulator import _emulator_config
from batchgen.emulator.config import parse_outage

from .conftest import AUTH, StartEmulator, submit


async def test_scheduled_outage_answers_503_on_api_routes_only(start_emulator: StartEmulator, http):
    """From START s after the first request, for SECONDS: every API route 503, media still up;
    the arrival log records route and status of each request."""
    emu = await start_emulator(outage_start=0.0, outage_seconds=60.0, log_requests=True)
    async with http.post(f"{emu.base_url}/v2/qwen-image", json={"prompt": "x"}, headers=AUTH) as r:
        assert r.status == 503
    async with http.get(f"{emu.base_url}/v1/get-user-credits", headers=AUTH) as r:
        assert r.status == 503
    emu.advance(61.0)  # the outage is over
    accepted = await submit(http, emu, {"prompt": "x"})
    async with http.get(accepted["status_url"], headers=AUTH) as r:
        assert r.status == 200
    assert emu.stats()["faults"] == {"submit:outage": 1, "credits:outage": 1}
    async with http.get(f"{emu.base_url}/_emulator/requests") as r:
        log = await r.json()
    assert [(route, status) for _, route, status in log] == [
        ("submit", 503),
        ("credits", 503),
        ("submit", 200),
        ("status", 200),
    ]
    assert log == sorted(log)


async def test_outage_started_by_the_admin_route(start_emulator: StartEmulator, http):
    """POST /_emulator/outage starts one now; no log unless asked (404 says how)."""
    emu = await start_emulator()
    await submit(http, emu, {"prompt": "before"})
    async with http.post(f"{emu.base_url}/_emulator/outage", json={"seconds": 30}) as r:
        assert r.status == 200
    async with http.post(f"{emu.base_url}/v2/qwen-image", json={"prompt": "x"}, headers=AUTH) as r:
        assert r.status == 503
    emu.advance(31.0)
    await submit(http, emu, {"prompt": "after"})
    async with http.get(f"{emu.base_url}/_emulator/requests") as r:
        assert r.status == 404
        assert "--log-requests" in (await r.json())["error"]


def test_outage_flag_parses_and_maps_to_config():
    """--outage START:SECONDS; malformed values are refused with the expected form."""
    assert parse_outage("30:60") == (30.0, 60.0)
    for bad in ("60", "a:b", "-1:5", "5:0"):
        with pytest.raises(ValueError, match="START"):
            parse_outage(bad)
    config = _emulator_config(
        {"realistic": False, "keys": (), "models": (), "retired_model": (),
         "forbidden_model": (), "credits_status": "406", "no_reset_header": False,
         "faults": (), "outage": "2:3", "log_requests": True}
    )  # fmt: skip
    assert (config.outage_start, config.outage_seconds, config.log_requests) == (2.0, 3.0, True)
