"""A local emulator of Segmind's v1/v2 API: the server every batchgen test talks to.

Use it from tests (``async with Emulator(EmulatorConfig(...)) as emu``), from the shell
(``batchgen emulator --port 8765``), or as an aiohttp app (``create_app``). Only `wire` and
`models` are imported from the rest of batchgen, so it stays an independent stand-in server.
"""

from __future__ import annotations

from batchgen.emulator.app import create_app
from batchgen.emulator.config import EmulatorConfig, FaultRule, parse_fault
from batchgen.emulator.server import Emulator, serve

__all__ = ["Emulator", "EmulatorConfig", "FaultRule", "create_app", "parse_fault", "serve"]
