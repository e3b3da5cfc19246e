"""The emulator's per-app state, shared by the edge middleware and the route handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from batchgen.emulator.config import EmulatorConfig
from batchgen.emulator.faults import FaultPlan
from batchgen.emulator.ratelimit import SlidingWindow
from batchgen.emulator.stats import Stats
from batchgen.emulator.store import Clock, JobStore

__all__ = ["STATE", "EmulatorState"]


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
