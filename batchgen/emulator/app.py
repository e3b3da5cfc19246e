"""The emulator's HTTP surface: Segmind's v1/v2 routes plus `/_emulator/*` admin routes.

One middleware applies, in the order a real edge would, what happens before a handler runs:
fault injection (a gateway fails before auth), then the API key, then the rate limit. Handlers
only speak the wire format, so each rule lives in exactly one place.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from batchgen.emulator.config import EmulatorConfig
from batchgen.emulator.faults import FaultPlan
from batchgen.emulator.images import CONTENT_TYPES
from batchgen.emulator.ratelimit import SlidingWindow
from batchgen.emulator.stats import Stats
from batchgen.emulator.store import Clock, JobRecord, JobStore
from batchgen.models import schema_for
from batchgen.wire import (
    API_KEY_HEADER,
    RESET_AT_HEADER,
    RETRY_AFTER_HEADER,
    V1_HEADERS,
    format_reset_at,
)

__all__ = ["STATE", "EmulatorState", "create_app"]

MISSING_KEY = "Missing Authorization or x-api-key in header"
INVALID_KEY = "Unauthorized. API key is invalid or may have expired. Please check your API key."
_POLL_ROUTES = frozenset({"status", "result", "credits"})
_SUBMIT_ROUTES = frozenset({"submit", "sync"})
_OPEN_ROUTES = frozenset({"media"})  # media URLs are public, like a CDN's

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class EmulatorState:
    config: EmulatorConfig
    clock: Clock
    stats: Stats
    store: JobStore
    faults: FaultPlan
    limiter: SlidingWindow | None
    media_base: str | None = None  # origin of the media site, when it is a separate one

    def snapshot(self, detail: bool = True) -> dict[str, Any]:
        return self.stats.snapshot(remaining_credits=self.store.credits, detail=detail)


STATE = web.AppKey("batchgen_emulator_state", EmulatorState)


def create_app(config: EmulatorConfig, clock: Clock | None = None) -> web.Application:
    """An aiohttp application emulating the Segmind API under `config`."""
    clock = clock or Clock()
    stats = Stats()
    state = EmulatorState(
        config=config,
        clock=clock,
        stats=stats,
        store=JobStore(config, clock, stats),
        faults=FaultPlan(config.faults, config.seed),
        limiter=SlidingWindow(config.rpm, config.rate_window) if config.rpm else None,
    )
    app = web.Application(middlewares=[_edge], client_max_size=16 * 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/v2/{model}", _submit, name="submit")
    app.router.add_get("/v2/requests/{request_id}/status", _status, name="status")
    app.router.add_get("/v2/requests/{request_id}", _result, name="result")
    app.router.add_get("/v1/get-user-credits", _credits, name="credits")
    app.router.add_post("/v1/{model}", _sync, name="sync")
    app.router.add_get("/media/{media_id}.{ext}", _media, name="media")
    app.router.add_get("/_emulator/stats", _admin_stats, name="admin-stats")
    app.router.add_post("/_emulator/advance", _admin_advance, name="admin-advance")
    app.cleanup_ctx.append(_workers)
    return app


async def _workers(app: web.Application) -> Any:
    task = asyncio.create_task(app[STATE].store.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- the edge: faults, auth, rate limit ------------------------------------------------------


@web.middleware
async def _edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    route = request.match_info.route.name
    if route is None or route.startswith("admin-"):
        return await handler(request)
    state.stats.requests[route] += 1
    response = await _guarded(request, handler, state, route)
    state.stats.responses[response.status] += 1
    return response


async def _guarded(
    request: web.Request, handler: Handler, state: EmulatorState, route: str
) -> web.StreamResponse:
    fault = state.faults.draw(route)
    if fault is not None:
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
            return _error(401, MISSING_KEY)
        if key not in state.config.keys:
            return _error(401, INVALID_KEY)
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
    if route not in _SUBMIT_ROUTES and not (state.config.count_polls and route in _POLL_ROUTES):
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
    return _error(429, "Too many requests. Please slow down.", headers)


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
    return _error(status, message)


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


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


# -- v2 queue ---------------------------------------------------------------------------------


async def _submit(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    accepted = await _accept(request, state)
    if isinstance(accepted, web.Response):
        return accepted
    state.stats.submits_accepted += 1
    body = {"request_id": accepted.request_id, "status": "QUEUED", **_urls(request, accepted)}
    body["poll_url"] = body["status_url"]
    return web.json_response(body)


async def _accept(request: web.Request, state: EmulatorState) -> JobRecord | web.Response:
    """The checks shared by v1 and v2 submits, in the real service's order; then bill the job."""
    cfg = state.config
    model = request.match_info["model"]
    if model in cfg.retired_models:
        return _error(410, f"Model {model} has been retired and is no longer available")
    if model not in cfg.models:
        return _error(404, f"Model {model} not found")
    if model in cfg.forbidden_models:
        return _error(403, f"This API key does not have access to model {model}")
    if request.content_type != "application/json":
        return _error(406, "Content-Type must be application/json")
    try:
        params = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _error(400, "Request body is not valid JSON")
    if not isinstance(params, dict):
        return _error(400, "Request body must be a JSON object of model parameters")
    invalid = None
    schema = schema_for(model)
    if schema is not None:
        problems = schema.validate(params)
        if problems:
            invalid = "; ".join(str(p) for p in problems)
            if not cfg.accept_invalid:
                return _error(400, f"Invalid parameters: {invalid}")
            invalid = f"Validation failed: {invalid}"
    if not state.store.can_afford():
        return _error(cfg.credits_status, "Insufficient credits. Please top up your account.")
    return state.store.submit(model, params, invalid)


def _urls(request: web.Request, record: JobRecord) -> dict[str, str]:
    root = f"{request.url.origin()}/v2/requests/{record.request_id}"
    return {"status_url": f"{root}/status", "response_url": root}


def _lookup(request: web.Request, route: str) -> JobRecord | web.Response:
    state = request.app[STATE]
    request_id = request.match_info["request_id"]
    record = state.store.get(request_id)
    if record is None:
        state.stats.not_found_polls += 1
        return _error(404, f"Request {request_id} not found")
    state.stats.polls[request_id] += 1
    if route == "status":
        state.stats.status_polls += 1
    else:
        state.stats.result_polls += 1
    return record


def _pending_body(request: web.Request, record: JobRecord) -> dict[str, Any]:
    return {
        "status": record.state,
        "request_id": record.request_id,
        **_urls(request, record),
        "metrics": {},
    }


def _failed(record: JobRecord) -> web.Response:
    body = {
        "status": "FAILED",
        "request_id": record.request_id,
        "error": record.error,
        "metrics": _timings(record),
    }
    return web.json_response(body, status=422)


def _timings(record: JobRecord) -> dict[str, float]:
    return {
        "inference_time": round(record.inference_time, 3),
        "queue_time": round(record.queue_time, 3),
    }


async def _status(request: web.Request) -> web.StreamResponse:
    record = _lookup(request, "status")
    if isinstance(record, web.Response):
        return record
    if record.state == "FAILED":
        return _failed(record)
    if record.state == "COMPLETED":
        body = {
            "status": "COMPLETED",
            "request_id": record.request_id,
            "metrics": {"inference_time": round(record.inference_time, 3)},
        }
        return web.json_response(body)
    return web.json_response(_pending_body(request, record))


async def _result(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    record = _lookup(request, "result")
    if isinstance(record, web.Response):
        return record
    if record.state == "FAILED":
        return _failed(record)
    if record.state != "COMPLETED" or record.media is None:
        early = state.config.early_result
        if early == "404":
            return _error(404, f"Request {record.request_id} not found")
        if early == "425":
            return _error(425, "Result not ready")
        return web.json_response(_pending_body(request, record))
    media = record.media
    url = f"{state.media_base or request.url.origin()}/media/{media.file_name}"
    output = base64.b64encode(media.data).decode() if record.params.get("base64") is True else url
    body = {
        "status": "COMPLETED",
        "request_id": record.request_id,
        "error": None,
        "output": output,
        "images": [
            {
                "url": url,
                "content_type": CONTENT_TYPES[media.fmt],
                "file_name": media.file_name,
                "file_size": len(media.data),
            }
        ],
        "seed": record.seed,
        "metrics": {
            **_timings(record),
            "total_time": round((record.finished_at or 0.0) - record.submitted_at, 3),
            "cost": record.cost,
            "remaining_credits": round(state.store.credits, 6),
        },
    }
    return web.json_response(body)


async def _media(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.stats.media_downloads += 1
    if API_KEY_HEADER in request.headers:
        state.stats.media_with_api_key += 1
    media = state.store.media(request.match_info["media_id"])
    if media is None or request.match_info["ext"] != media.fmt:
        return _error(404, "Not found")
    return web.Response(body=media.data, content_type=CONTENT_TYPES[media.fmt])


# -- v1 sync and account ----------------------------------------------------------------------


async def _sync(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    accepted = await _accept(request, state)
    if isinstance(accepted, web.Response):
        return accepted
    state.stats.sync_accepted += 1
    await accepted.done.wait()
    if accepted.state == "FAILED" or accepted.media is None:
        return _error(422, accepted.error or "Image generation failed")
    media = accepted.media
    headers = {
        V1_HEADERS["request_id"]: accepted.request_id,
        V1_HEADERS["cost"]: str(accepted.cost),
        V1_HEADERS["remaining_credits"]: str(round(state.store.credits, 6)),
        V1_HEADERS["generation_time"]: str(round(accepted.inference_time, 3)),
        V1_HEADERS["seed"]: str(accepted.seed),
    }
    if accepted.params.get("base64") is True:
        body = {"image": base64.b64encode(media.data).decode()}
        return web.json_response(body, headers=headers)
    return web.Response(body=media.data, content_type=CONTENT_TYPES[media.fmt], headers=headers)


async def _credits(request: web.Request) -> web.StreamResponse:
    return web.json_response({"credits": round(request.app[STATE].store.credits, 6)})


# -- admin ------------------------------------------------------------------------------------


async def _admin_stats(request: web.Request) -> web.StreamResponse:
    detail = request.query.get("detail", "1") not in ("0", "false", "no")
    return web.json_response(request.app[STATE].snapshot(detail=detail))


async def _admin_advance(request: web.Request) -> web.StreamResponse:
    """Move the emulator's clock forward: retention and rate windows pass without waiting."""
    try:
        seconds = float((await request.json())["seconds"])
    except (ValueError, KeyError, TypeError):
        return _error(400, 'expected a JSON body {"seconds": N}')
    request.app[STATE].clock.advance(seconds)
    return web.json_response({"offset": request.app[STATE].clock.offset})
