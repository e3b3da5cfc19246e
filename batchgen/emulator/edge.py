"""The emulator's edge: what happens before a handler runs, in the order a real edge applies it.

Fault injection first (a gateway fails before auth), then the API key, then the rate limit. Also
the ways an answer can go wrong on the wire (reset, truncation, gateway HTML), so handlers only
speak the wire format and each rule lives in one place.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

from aiohttp import web

from batchgen.core.wire import API_KEY_HEADER, RESET_AT_HEADER, RETRY_AFTER_HEADER, format_reset_at
from batchgen.emulator.state import STATE, EmulatorState

__all__ = ["FAULT", "INVALID_KEY", "MISSING_KEY", "edge", "error", "fault_of"]

MISSING_KEY = "Missing Authorization or x-api-key in header"
INVALID_KEY = "Unauthorized. API key is invalid or may have expired. Please check your API key."
_POLL_ROUTES = frozenset({"status", "result", "credits"})
_SUBMIT_ROUTES = frozenset({"submit", "sync"})
_OPEN_ROUTES = frozenset({"media", "asset"})  # media and asset URLs are public, like a CDN's
# Where a fault the handler itself acts on ("short", "one-image") is left for it.
FAULT = web.RequestKey("batchgen_fault", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    route = request.match_info.route.name
    if route is None or route.startswith("admin-"):
        return await handler(request)
    state.stats.requests[route] += 1
    if _leaks_key(request, state, route):
        state.stats.media_with_api_key += 1
    now = state.clock.now()
    if state.first_request is None and route not in _OPEN_ROUTES:
        state.first_request = now
    arrival = state.log.arrive(now, route) if state.log is not None else None
    if route not in _OPEN_ROUTES and state.in_outage(now):
        state.stats.faults[f"{route}:outage"] += 1
        response: web.StreamResponse = _fault_response(503, state)
    else:
        response = await _guarded(request, handler, state, route)
    state.stats.responses[response.status] += 1
    if arrival is not None:
        arrival.status = response.status
    return response


def _leaks_key(request: web.Request, state: EmulatorState, route: str) -> bool:
    """A media download, or any request at the separate media origin, that carries the API key
    (the x-api-key header, or an accepted key anywhere in the URL or in any header)."""
    foreign = state.media_base is not None and str(request.url.origin()) == state.media_base
    if route != "media" and not foreign:
        return False
    if API_KEY_HEADER in request.headers:
        return True
    seen = [str(request.rel_url), *request.headers.values()]
    return any(key in text for key in state.config.keys for text in seen)


async def _guarded(
    request: web.Request, handler: Handler, state: EmulatorState, route: str
) -> web.StreamResponse:
    fault = state.faults.draw(route)
    if fault is not None:
        request[FAULT] = fault
        state.stats.faults[f"{route}:{fault}"] += 1
        if fault.isdigit():
            return _fault_response(int(fault), state)
        if fault == "reset":
            return _reset(request)
        if fault in ("slow", "hang"):
            delay = state.config.slow_seconds if fault == "slow" else state.config.hang_seconds
            await asyncio.sleep(delay)

    if route not in _OPEN_ROUTES:
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            return error(401, MISSING_KEY)
        if key not in state.config.keys:
            return error(401, INVALID_KEY)
        limited = _rate_limit(state, route, key)
        if limited is not None:
            return limited

    response = await handler(request)
    if fault == "truncate" and isinstance(response, web.Response) and response.status == 200:
        return await _truncate(request, response)
    if fault is not None and fault.startswith("accepted-"):
        # The work was done (and billed); the client never learns it.
        lost = fault.removeprefix("accepted-")
        return _reset(request) if lost == "reset" else _fault_response(int(lost), state)
    return response


def _rate_limit(state: EmulatorState, route: str, key: str) -> web.Response | None:
    if state.limiter is None:
        return None
    cfg = state.config
    counted = (
        route in _SUBMIT_ROUTES
        or (cfg.count_polls and route in _POLL_ROUTES)
        or (cfg.count_uploads and route == "upload")
    )
    if not counted:
        return None
    now = state.clock.now()
    free_at = state.limiter.try_acquire(key, now)
    if free_at is None:
        return None
    state.stats.rate_limited[route] += 1
    return _too_many(state, free_at - now)


def _too_many(state: EmulatorState, wait: float) -> web.Response:
    headers = {}
    if state.config.reset_header:
        headers[RESET_AT_HEADER] = format_reset_at(state.clock.wall() + wait)
    if state.config.retry_after:
        headers[RETRY_AFTER_HEADER] = str(max(1, int(-(-wait // 1))))
    return error(429, "Too many requests. Please slow down.", headers)


def _fault_response(status: int, state: EmulatorState) -> web.Response:
    if status == 429:
        return _too_many(state, state.config.fault_reset_seconds)
    if status in (502, 504):  # gateways answer in HTML, not JSON
        title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
        return web.Response(
            status=status,
            text=f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>",
            content_type="text/html",
        )
    message = "Service temporarily unavailable" if status == 503 else "Internal server error"
    return error(status, message)


async def _truncate(request: web.Request, full: web.Response) -> web.StreamResponse:
    """Announce the full Content-Length, send half the body, then cut the connection."""
    body = bytes(full.body) if isinstance(full.body, bytes | bytearray) else b""
    partial = web.StreamResponse(status=full.status, headers=full.headers)
    partial.content_length = len(body)
    await partial.prepare(request)
    await partial.write(body[: len(body) // 2])
    _reset(request)
    return partial


def _reset(request: web.Request) -> web.Response:
    """Abort the connection with a TCP RST, as a crashing proxy would: no status, no body."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=499)  # never reaches the client; counted as such


def fault_of(request: web.Request) -> str | None:
    """The fault drawn for this request, for the handlers that act on one themselves."""
    return request.get(FAULT)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
