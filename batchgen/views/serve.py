"""`batchgen serve DIR`: the dashboard page over HTTP, updated by server-sent events.

One ticker per server follows the ledger(s) every `interval` seconds (reading only what was
appended) and wakes the browsers when something changed; each browser's stream then sends what
it has not seen yet. Nothing queues up per browser: a slow one is sent the newest figures plus
every job it missed in one event when it catches up (drop to latest), and one that stops reading
for `WRITE_TIMEOUT` seconds is dropped. When the page runs beside a run, the run's own figures
(jobs left, ETA, 429s, retries) are asked for with `sample`, which the run answers in its loop.

What it serves, and nothing else: the page and its two assets, the state as JSON, the event
stream, and the images and thumbnails of jobs the ledger records as finished (see
`Source.image`: inside DIR only, symlinks resolved). It binds 127.0.0.1 unless told otherwise,
and, bound there, answers only requests addressed to a loopback name (a web page on another site
cannot reach it by re-pointing its DNS). The API key is never in its reach: the server reads run
folders, not the environment. Read-only: thumbnails go to `DIR/.thumbs/` (see `thumbs.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from batchgen.views.livepage import ASSETS, asset, render
from batchgen.views.livesource import Source
from batchgen.views.livestate import grid_json
from batchgen.views.thumbs import Thumbs

__all__ = ["CSP", "Dashboard"]

WRITE_TIMEOUT: Final = 10.0
PING_SECONDS: Final = 15.0
MAX_STREAMS: Final = 32  # open pages at once; each costs one write per update
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_TYPES: Final = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp", ".gif": "image/gif"}  # fmt: skip
Sampler = Callable[[], Awaitable[dict[str, Any] | None]]


def links(file: str) -> dict[str, str | None]:
    """Relative URLs (they work behind a tunnel or a path prefix), each path segment quoted."""
    path = quote(file, safe="/")
    return {"url": f"file/{path}", "thumb": f"thumb/{path}"}


class Dashboard:
    """The aiohttp application for one `Source`; `app()` builds it, `ticker()` follows it."""

    def __init__(
        self,
        source: Source,
        *,
        interval: float = 0.5,
        sample: Sampler | None = None,
        loopback_only: bool = True,
    ) -> None:
        self.source = source
        self.interval = interval
        self.sample = sample
        self.loopback_only = loopback_only
        self.thumbs = Thumbs(source.image, source.local)
        self.figures: dict[str, Any] = {}
        self.wakes: set[asyncio.Event] = set()
        self.closing = False
        self.updates = 0
        self._thumb_slots = asyncio.Semaphore(2)
        self._task: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._asset)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/grid", self._grid)
        app.router.add_get("/events", self._events)
        app.router.add_get("/file/{path:.+}", self._file)
        app.router.add_get("/thumb/{path:.+}", self._thumb)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._stop)
        return app

    async def tick(self) -> bool:
        """Read what is new and recompute the figures; wake the streams if anything changed."""
        changed = self.source.refresh() or not self.figures
        sample = await self.sample() if self.sample is not None else None
        figures = self.source.figures(sample)
        if changed or figures["glance"] != self.figures.get("glance"):
            self.figures = figures
            self.updates += 1
            for wake in self.wakes:
                wake.set()
            return True
        return False

    async def ticker(self) -> None:
        while not self.closing:
            started = time.monotonic()
            with contextlib.suppress(OSError):  # a file mid-rotation: the next tick reads it
                await self.tick()
            spent = time.monotonic() - started  # a huge ledger: tick less often, never pile up
            await asyncio.sleep(max(self.interval, 4 * spent))

    async def _start(self, app: web.Application) -> None:
        await self.tick()
        self._task = asyncio.create_task(self.ticker(), name="dashboard-ticker")

    async def _stop(self, app: web.Application) -> None:
        # A last tick first: a run that ends between two ticks (`--no-serve-linger`) would
        # otherwise close the page without its last images.
        with contextlib.suppress(OSError):
            await self.tick()
        self.closing = True
        for wake in self.wakes:
            wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        host = _hostname(request.host or "")
        if self.loopback_only and host not in _LOOPBACK:
            return web.Response(status=421, text="this dashboard answers on 127.0.0.1 only\n")
        response = await handler(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _index(self, request: web.Request) -> web.Response:
        page = render("live", self.figures, None)
        return web.Response(text=page, content_type="text/html")

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.Response(text=asset(name), content_type=ASSETS[name])

    async def _state(self, request: web.Request) -> web.Response:
        await self.tick()  # a script asking gets the ledger as it is now, not as of the last tick
        body = {**self.figures, "items": self.source.latest(links)}
        return web.json_response(body, dumps=_dumps)

    async def _grid(self, request: web.Request) -> web.Response:
        x, y = request.query.get("x", ""), request.query.get("y", "")
        items = self.source.grid_items()  # copied here, planned in a thread: the loop stays free
        plan = await asyncio.to_thread(grid_json, items, x, y)
        return web.json_response(plan, dumps=_dumps)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self.wakes) >= MAX_STREAMS:
            raise web.HTTPServiceUnavailable(text="too many open dashboard pages\n")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        wake = asyncio.Event()
        self.wakes.add(wake)
        seen = self.source.seq
        try:
            await self._send(
                response, "state", {**self.figures, "items": self.source.latest(links)}
            )
            while not self.closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), PING_SECONDS)
                if not wake.is_set():
                    await asyncio.wait_for(response.write(b": ping\n\n"), WRITE_TIMEOUT)
                    continue
                wake.clear()
                items = self.source.items_since(seen, links)  # closing: the last tick's news
                seen = self.source.seq
                await self._send(response, "update", {**self.figures, "items": items})
        except (ConnectionError, TimeoutError):
            pass  # the browser went away, or stopped reading: its stream just ends
        finally:
            self.wakes.discard(wake)
        return response

    @staticmethod
    async def _send(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
        text = f"event: {event}\ndata: {_dumps(data)}\n\n"
        await asyncio.wait_for(response.write(text.encode("utf-8")), WRITE_TIMEOUT)

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        data = await asyncio.to_thread(self.source.image, path)
        if data is None:
            raise web.HTTPNotFound()
        kind = _TYPES.get(path[path.rfind(".") :].lower(), "application/octet-stream")
        return web.Response(body=data, content_type=kind, headers={"Cache-Control": "max-age=3600"})

    async def _thumb(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if path not in self.source.files:
            raise web.HTTPNotFound()
        async with self._thumb_slots:  # at most two encodes at once, whatever the browser asks
            data = await asyncio.to_thread(self.thumbs.get, path)
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/jpeg",
                            headers={"Cache-Control": "max-age=3600"})  # fmt: skip


def _hostname(host: str) -> str:
    """The name part of a Host header: `[::1]:8000` -> `[::1]`, `localhost:9000` -> `localhost`."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
