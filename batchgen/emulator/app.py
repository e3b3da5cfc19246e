"""The emulator's HTTP surface: Segmind's v1/v2 routes plus `/_emulator/*` admin routes.

Faults, auth and the rate limit are applied before these handlers by the middleware in
`edge.py`; the handlers only speak the wire format of `segmind-v2-api.md`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

from aiohttp import web

from batchgen.core.wire import V1_HEADERS
from batchgen.emulator.config import EmulatorConfig
from batchgen.emulator.edge import edge, error
from batchgen.emulator.faults import FaultPlan
from batchgen.emulator.hostile import HOP, hostile_media, hostile_output
from batchgen.emulator.images import CONTENT_TYPES
from batchgen.emulator.ratelimit import SlidingWindow
from batchgen.emulator.requestlog import RequestLog
from batchgen.emulator.state import STATE, EmulatorState
from batchgen.emulator.stats import Stats
from batchgen.emulator.store import Clock, JobRecord, JobStore
from batchgen.models.registry import schema_for

__all__ = ["create_app"]


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
        log=RequestLog() if config.log_requests else None,
    )
    app = web.Application(middlewares=[edge], client_max_size=16 * 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/v2/{model}", _submit, name="submit")
    app.router.add_get("/v2/requests/{request_id}/status", _status, name="status")
    app.router.add_get("/v2/requests/{request_id}", _result, name="result")
    app.router.add_get("/v1/get-user-credits", _credits, name="credits")
    app.router.add_post("/v1/{model}", _sync, name="sync")
    app.router.add_get("/media/{media_id}.{ext}", _media, name="media")
    app.router.add_get("/_emulator/stats", _admin_stats, name="admin-stats")
    app.router.add_post("/_emulator/advance", _admin_advance, name="admin-advance")
    app.router.add_post("/_emulator/outage", _admin_outage, name="admin-outage")
    app.router.add_get("/_emulator/requests", _admin_requests, name="admin-requests")
    app.cleanup_ctx.append(_workers)
    return app


async def _workers(app: web.Application) -> Any:
    task = asyncio.create_task(app[STATE].store.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
        return error(410, f"Model {model} has been retired and is no longer available")
    if model not in cfg.models:
        return error(404, f"Model {model} not found")
    if model in cfg.forbidden_models:
        return error(403, f"This API key does not have access to model {model}")
    if request.content_type != "application/json":
        return error(406, "Content-Type must be application/json")
    try:
        params = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return error(400, "Request body is not valid JSON")
    if not isinstance(params, dict):
        return error(400, "Request body must be a JSON object of model parameters")
    invalid = None
    schema = schema_for(model)
    if schema is not None:
        problems = schema.validate(params)
        if problems:
            invalid = "; ".join(str(p) for p in problems)
            if not cfg.accept_invalid:
                return error(400, f"Invalid parameters: {invalid}")
            invalid = f"Validation failed: {invalid}"
    if not state.store.can_afford():
        return error(cfg.credits_status, "Insufficient credits. Please top up your account.")
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
        return error(404, f"Request {request_id} not found")
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
            return error(404, f"Request {record.request_id} not found")
        if early == "425":
            return error(425, "Result not ready")
        return web.json_response(_pending_body(request, record))
    media = record.media
    url = f"{state.media_base or request.url.origin()}/media/{media.file_name}"
    if media.hostile is not None:  # a trap: a forbidden URL, or the usual one answering badly
        url = hostile_output(media.hostile, request.url.host or "", media.file_name) or url
    output = base64.b64encode(media.data).decode() if record.params.get("base64") is True else url
    body: dict[str, Any] = {
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
    if media.hostile == "huge-result":
        body["padding"] = " " * state.config.hostile_bytes
    return web.json_response(body)


async def _media(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.stats.media_downloads += 1
    media = state.store.media(request.match_info["media_id"])
    if media is None or request.match_info["ext"] != media.fmt:
        return error(404, "Not found")
    if media.hostile is not None and HOP not in request.query:
        base = state.media_base or str(request.url.origin())
        cfg = state.config
        return await hostile_media(
            request, media.hostile, base, cfg.hostile_bytes, cfg.hang_seconds
        )
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
        return error(422, accepted.error or "Image generation failed")
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
        return error(400, 'expected a JSON body {"seconds": N}')
    request.app[STATE].clock.advance(seconds)
    return web.json_response({"offset": request.app[STATE].clock.offset})


async def _admin_outage(request: web.Request) -> web.StreamResponse:
    """Start an outage now: every API route answers 503 for the given seconds."""
    try:
        seconds = float((await request.json())["seconds"])
    except (ValueError, KeyError, TypeError):
        return error(400, 'expected a JSON body {"seconds": N}')
    state = request.app[STATE]
    now = state.clock.now()
    state.outage = (now, now + seconds)
    return web.json_response({"from": now, "until": now + seconds})


async def _admin_requests(request: web.Request) -> web.StreamResponse:
    """The arrival log, [[time, route, status], ...] (emulator clock), if it is kept."""
    log = request.app[STATE].log
    if log is None:
        return error(404, "start the emulator with --log-requests to record arrivals")
    return web.json_response(log.as_json())
