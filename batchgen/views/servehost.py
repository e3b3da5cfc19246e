"""Where the dashboard runs: on its own (`batchgen serve`) or in a thread beside a run.

Beside a run (`batchgen run --serve`) the server gets a thread and an event loop of its own, so
nothing it does (reading the ledger, encoding thumbnails, writing to a slow browser) runs in the
engine's loop. The only contact is `sample`: the server asks the run's loop for the live figures
(a few counters, as the progress line reads them) at most once per tick, and waits at most one
second for the answer; a run that is busy or gone is simply not asked again until the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from aiohttp import web

from batchgen.edges.storage import LocalStore, Store
from batchgen.views.livesource import Source
from batchgen.views.serve import Dashboard, Sampler

__all__ = ["Beside", "hosted", "is_loopback", "listen", "url_of"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: any free port); raises OSError (port taken...)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@contextlib.asynccontextmanager
async def hosted(
    source: Source, sock: socket.socket, *, sample: Sampler | None = None, interval: float = 0.5
) -> AsyncIterator[Dashboard]:
    """The dashboard answering on `sock` (from `listen`) until the block ends."""
    host = sock.getsockname()[0]
    board = Dashboard(source, interval=interval, sample=sample, loopback_only=is_loopback(host))
    runner = web.AppRunner(board.app(), access_log=None, handler_cancellation=True,
                           shutdown_timeout=0.5)  # fmt: skip
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield board
    finally:
        await runner.cleanup()


class Beside:
    """The dashboard in a daemon thread beside a run: `listen` first (before the run starts, so
    a port in use stops nothing), then `attach` from the run's loop once it knows its folder."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.url = url_of(sock)
        self.board: Dashboard | None = None
        self._sample: Callable[[], dict[str, Any]] | None = None
        self._run_loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def attach(self, folder: Path, images: Store, sample: Callable[[], dict[str, Any]]) -> None:
        """Called in the run's loop (see `run_manifest(watch=...)`): start serving the run whose
        ledgers are in `folder` and images in `images` (the same folder, or a bucket)."""
        self._sample, self._run_loop = sample, asyncio.get_running_loop()
        if self._thread is None:
            elsewhere = images if images.remote else None
            source = Source(LocalStore(folder), name=images.url, images=elsewhere)
            self._thread = threading.Thread(
                target=asyncio.run, args=(self._serve(source),), name="batchgen-dashboard",
                daemon=True,
            )  # fmt: skip
            self._thread.start()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in the caller raises KeyboardInterrupt)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()

    async def _ask(self) -> dict[str, Any] | None:
        sample, loop = self._sample, self._run_loop
        if sample is None or loop is None or loop.is_closed():
            return None
        done: Future[dict[str, Any]] = Future()

        def call() -> None:
            try:
                done.set_result(sample())
            except Exception as exc:  # a figure mid-update: skip this tick
                done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(call)
            return await asyncio.wait_for(asyncio.wrap_future(done), 1.0)
        except (RuntimeError, TimeoutError, ValueError, KeyError):
            return None  # the run's loop is closed, busy, or the figures were mid-update

    async def _serve(self, source: Source) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with hosted(source, self.sock, sample=self._ask) as board:
            self.board = board
            await self._stop.wait()
