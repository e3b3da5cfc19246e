"""The `/_emulator/*` routes a test or scenario drives: counters, clock, outages, the arrival log.

They bypass faults, auth and the rate limit (see `edge.py`), so a test can always read them.
"""

from __future__ import annotations

from aiohttp import web

from batchgen.emulator.edge import error
from batchgen.emulator.state import STATE

__all__ = ["admin_advance", "admin_outage", "admin_requests", "admin_stats"]


async def admin_stats(request: web.Request) -> web.StreamResponse:
    detail = request.query.get("detail", "1") not in ("0", "false", "no")
    return web.json_response(request.app[STATE].snapshot(detail=detail))


async def admin_advance(request: web.Request) -> web.StreamResponse:
    """Move the emulator's clock forward: retention and rate windows pass without waiting."""
    try:
        seconds = float((await request.json())["seconds"])
    except (ValueError, KeyError, TypeError):
        return error(400, 'expected a JSON body {"seconds": N}')
    request.app[STATE].clock.advance(seconds)
    return web.json_response({"offset": request.app[STATE].clock.offset})


async def admin_outage(request: web.Request) -> web.StreamResponse:
    """Start an outage now: every API route answers 503 for the given seconds."""
    try:
        seconds = float((await request.json())["seconds"])
    except (ValueError, KeyError, TypeError):
        return error(400, 'expected a JSON body {"seconds": N}')
    state = request.app[STATE]
    now = state.clock.now()
    state.outage = (now, now + seconds)
    return web.json_response({"from": now, "until": now + seconds})


async def admin_requests(request: web.Request) -> web.StreamResponse:
    """The arrival log, [[time, route, status], ...] (emulator clock), if it is kept."""
    log = request.app[STATE].log
    if log is None:
        return error(404, "start the emulator with --log-requests to record arrivals")
    return web.json_response(log.as_json())
