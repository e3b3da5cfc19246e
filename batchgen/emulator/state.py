"""The emulator's per-app state, shared by the edge middleware and the route handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from batchgen.emulator.assets import AssetStore
from batchgen.emulator.config import EmulatorConfig
from batchgen.emulator.faults import FaultPlan
from batchgen.emulator.ratelimit import SlidingWindow
from batchgen.emulator.requestlog import RequestLog
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
    log: RequestLog | None = None  # arrivals, when the scenario records them
    first_request: float | None = None  # emulator time of the first API request
    outage: tuple[float, float] | None = None  # [from, until) in emulator time: all API 503
    assets: AssetStore = field(default_factory=lambda: AssetStore(0))  # uploads

    def in_outage(self, now: float) -> bool:
        """Whether `now` falls in the outage (scheduled from the first request, or started)."""
        cfg = self.config
        if self.outage is None and cfg.outage_start is not None and self.first_request is not None:
            begin = self.first_request + cfg.outage_start
            self.outage = (begin, begin + cfg.outage_seconds)
        return self.outage is not None and self.outage[0] <= now < self.outage[1]

    def snapshot(self, detail: bool = True) -> dict[str, Any]:
        view = self.stats.snapshot(remaining_credits=self.store.credits, detail=detail)
        view.update(self.assets.counts())
        if detail:
            view["uploads_by_content"] = dict(self.assets.by_content)
        return view


STATE = web.AppKey("batchgen_emulator_state", EmulatorState)
