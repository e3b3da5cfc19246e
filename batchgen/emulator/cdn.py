"""The media URLs that `output` points to: public, like a CDN's (no key needed or wanted)."""

from __future__ import annotations

from aiohttp import web

from batchgen.emulator.edge import error
from batchgen.emulator.hostile import HOP, hostile_media
from batchgen.emulator.images import CONTENT_TYPES
from batchgen.emulator.state import STATE

__all__ = ["media"]


async def media(request: web.Request) -> web.StreamResponse:
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
