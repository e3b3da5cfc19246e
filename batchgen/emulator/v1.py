"""The v1 routes: the blocking sync generation and the account's credits."""

from __future__ import annotations

import base64

from aiohttp import web

from batchgen.core.wire import V1_HEADERS
from batchgen.emulator.accept import accept
from batchgen.emulator.edge import error
from batchgen.emulator.images import CONTENT_TYPES
from batchgen.emulator.state import STATE

__all__ = ["credits", "sync"]


async def sync(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    accepted = await accept(request, state)
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


async def credits(request: web.Request) -> web.StreamResponse:
    return web.json_response({"credits": round(request.app[STATE].store.credits, 6)})
