"""The v2 queue routes: submit, status and result, in the wire format of `segmind-v2-api.md`."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from batchgen.emulator.accept import accept
from batchgen.emulator.edge import error
from batchgen.emulator.hostile import hostile_output
from batchgen.emulator.images import CONTENT_TYPES
from batchgen.emulator.state import STATE
from batchgen.emulator.store import JobRecord

__all__ = ["result", "status", "submit"]


async def submit(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    accepted = await accept(request, state)
    if isinstance(accepted, web.Response):
        return accepted
    state.stats.submits_accepted += 1
    body = {"request_id": accepted.request_id, "status": "QUEUED", **_urls(request, accepted)}
    body["poll_url"] = body["status_url"]
    return web.json_response(body)


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


async def status(request: web.Request) -> web.StreamResponse:
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


async def result(request: web.Request) -> web.StreamResponse:
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
    base = state.media_base or request.url.origin()
    urls = [f"{base}/media/{item.file_name}" for item in record.outputs]
    if media.hostile is not None:  # a trap: a forbidden URL, or the usual one answering badly
        urls[0] = hostile_output(media.hostile, request.url.host or "", media.file_name) or urls[0]
    encoded = record.params.get("base64") is True
    outputs: list[str] = [
        base64.b64encode(item.data).decode() if encoded else url
        for item, url in zip(record.outputs, urls, strict=True)
    ]
    # One image: `output` is its URL (as documented); a job that asked for several gets a list
    # [choice: no page shows this body], even when fewer came back.
    body: dict[str, Any] = {
        "status": "COMPLETED",
        "request_id": record.request_id,
        "error": None,
        "output": outputs if record.asked > 1 else outputs[0],
        "images": [
            {
                "url": url,
                "content_type": CONTENT_TYPES[item.fmt],
                "file_name": item.file_name,
                "file_size": len(item.data),
            }
            for item, url in zip(record.outputs, urls, strict=True)
        ],
        "seed": record.seed,
        "metrics": {
            **_timings(record),
            "total_time": round((record.finished_at or 0.0) - record.submitted_at, 3),
            "cost": record.cost,
            "remaining_credits": round(state.store.credits, 6),
        },
    }
    if not state.config.report_cost:  # a stand-in that does not say what a job cost
        del body["metrics"]["cost"]
    if media.hostile == "huge-result":
        body["padding"] = " " * state.config.hostile_bytes
    return web.json_response(body)
