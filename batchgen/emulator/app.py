"""The emulator's HTTP surface: the route table and the app's state, nothing else.

Handlers live by what they serve: `queue` (v2 submit/status/result), `v1` (sync, credits), `cdn`
(media URLs), `uploads` (`/upload-asset` and the assets it stores), `admin` (`/_emulator/*`);
`edits` resolves a job's image inputs; `accept` holds the checks every submit shares. Faults, auth
and the rate limit are applied before any handler by the middleware in `edge.py`, so the handlers
only speak the wire format of `segmind-v2-api.md`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from batchgen.emulator.admin import admin_advance, admin_outage, admin_requests, admin_stats
from batchgen.emulator.assets import AssetStore
from batchgen.emulator.cdn import media
from batchgen.emulator.config import EmulatorConfig
from batchgen.emulator.edge import edge
from batchgen.emulator.faults import FaultPlan
from batchgen.emulator.queue import result, status, submit
from batchgen.emulator.ratelimit import SlidingWindow
from batchgen.emulator.requestlog import RequestLog
from batchgen.emulator.state import STATE, EmulatorState
from batchgen.emulator.stats import Stats
from batchgen.emulator.store import Clock, JobStore
from batchgen.emulator.uploads import asset, upload_asset
from batchgen.emulator.v1 import credits, sync

__all__ = ["MAX_BODY_BYTES", "create_app"]

# Largest request body: uploads carry base64 images (4/3 of their size), several per call.
MAX_BODY_BYTES = 64 * 1024 * 1024


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
        assets=AssetStore(config.seed),
    )
    app = web.Application(middlewares=[edge], client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.router.add_post("/v2/{model}", submit, name="submit")
    app.router.add_get("/v2/requests/{request_id}/status", status, name="status")
    app.router.add_get("/v2/requests/{request_id}", result, name="result")
    app.router.add_get("/v1/get-user-credits", credits, name="credits")
    app.router.add_post("/v1/{model}", sync, name="sync")
    app.router.add_get("/media/{media_id}.{ext}", media, name="media")
    app.router.add_post("/upload-asset", upload_asset, name="upload")
    app.router.add_get("/assets/{asset_id}.{ext}", asset, name="asset")
    app.router.add_get("/_emulator/stats", admin_stats, name="admin-stats")
    app.router.add_post("/_emulator/advance", admin_advance, name="admin-advance")
    app.router.add_post("/_emulator/outage", admin_outage, name="admin-outage")
    app.router.add_get("/_emulator/requests", admin_requests, name="admin-requests")
    app.cleanup_ctx.append(_workers)
    return app


async def _workers(app: web.Application) -> Any:
    task = asyncio.create_task(app[STATE].store.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
