"""Running the emulator: on an OS-chosen port inside a test, or in the foreground from the CLI.

Binding the socket ourselves (port 0) and handing it to aiohttp means the port is known before
the first request, with no race against another process picking the same number.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import TracebackType
from typing import Any

from aiohttp import web

from batchgen.emulator.app import create_app
from batchgen.emulator.config import EmulatorConfig
from batchgen.emulator.state import STATE, EmulatorState

__all__ = ["Emulator", "serve"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def _origin(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Emulator:
    """A live emulator in the current event loop.

    >>> async with Emulator(EmulatorConfig(rpm=5)) as emu:
    ...     client = SegmindClient(api_key="emulator-key", base_url=f"{emu.base_url}/v1")
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.app = create_app(self.config)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.media_url = ""

    @property
    def state(self) -> EmulatorState:
        return self.app[STATE]

    async def start(self) -> Emulator:
        # handler_cancellation: a client that gives up on a hung response frees its handler.
        self._runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        api_sock = _bind(self.config.host, self.config.port)
        await web.SockSite(self._runner, api_sock).start()
        self.base_url = _origin(api_sock)
        self.media_url = self.base_url
        if self.config.media_origin:
            media_sock = _bind(self.config.media_host or self.config.host, 0)
            await web.SockSite(self._runner, media_sock).start()
            self.media_url = _origin(media_sock)
            self.state.media_base = self.media_url
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def stats(self, detail: bool = True) -> dict[str, Any]:
        """The server's counters (see `Stats.snapshot`)."""
        return self.state.snapshot(detail=detail)

    def outage(self, seconds: float) -> None:
        """Start an outage now: every API route answers 503 for `seconds`."""
        now = self.state.clock.now()
        self.state.outage = (now, now + seconds)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (retention, rate windows) without waiting."""
        self.state.clock.advance(seconds)


async def serve(config: EmulatorConfig, announce: Any = print) -> None:
    """Run in the foreground until SIGINT/SIGTERM; `announce` gets the one-line address."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Emulator(config) as emu:
        media = f", media at {emu.media_url}" if emu.media_url != emu.base_url else ""
        keys = "API key: emulator-key" if config.keys == ("emulator-key",) else "custom keys"
        announce(f"batchgen emulator listening on {emu.base_url}{media} ({keys})")
        await stop.wait()
