"""What the engine is given: the transport it talks through (`Api`) and its settings.

`Api` is the one seam between the engine and the network: `edges.client.ApiClient` is the real
one, `testing.FakeApi` the in-memory one of the fast tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from batchgen.core.circuit import OutagePolicy
from batchgen.core.policy import Backoff
from batchgen.core.wire import REQUEST_RETENTION, Poll, Submitted, SyncImage
from batchgen.edges.parts import PartAllocator
from batchgen.edges.storage import Store
from batchgen.models.registry import DEFAULT_MODEL, typical_seconds_of

__all__ = ["Api", "EngineConfig"]


class Api(Protocol):
    """What the engine needs from a transport (`client.ApiClient` is the real one)."""

    async def submit(self, model: str, params: dict[str, Any]) -> Submitted: ...
    async def poll(self, url: str) -> Poll: ...
    async def download(self, url: str) -> bytes: ...
    async def run_sync(self, model: str, params: dict[str, Any]) -> SyncImage: ...


@dataclass(frozen=True)
class EngineConfig:
    out_dir: Path
    concurrency: int | None = 4  # None: auto, rate x learned latency (`core.littles`)
    rpm: float | None = None
    window: float = 60.0  # seconds of the rpm window (scaled down against a fast emulator)
    outage: OutagePolicy = field(default_factory=OutagePolicy)  # when the server is down
    count_polls: bool = False
    filename: str = "{id}.{ext}"
    parts: PartAllocator | None = None  # subfolders of at most N images (large runs)
    # A job's expected seconds before any has finished (the first polls' timing): by model
    # (`model_seconds`, which the runner fills from the model tables, the emulator or a flag),
    # else `typical_seconds`. Each model's poll plan starts there (`core.pollplans`).
    typical_seconds: float = typical_seconds_of(DEFAULT_MODEL)
    model_seconds: Mapping[str, float] = field(default_factory=dict)
    writers: int = 8
    retention: float = REQUEST_RETENTION
    backoff: Backoff = field(default_factory=Backoff)
    seed: int = 0  # jitter stream: a run replays the same way
    sync: bool = False  # one blocking POST /v1/{model} per job instead of the v2 queue
    price_per_image: float | None = 0.12  # USD, for budget projections before costs are known
    # By model (a sweep over models): a job's price is its model's, else `price_per_image`.
    model_prices: Mapping[str, float | None] = field(default_factory=dict)  # per image
    most_images: Mapping[str, int] = field(default_factory=dict)  # a job of the model asks, if > 1
    budget_usd: float | None = None  # stop submitting before projected spend passes this
    spent_before: float = 0.0  # USD spent on this output folder by earlier runs
    store: Store | None = None  # where images go (None: the folder `out_dir`)
    upload_root: str | None = None  # where local inputs are uploaded (edges/uploads.py)
    uploaded: Mapping[str, str] = field(default_factory=dict)  # sha256 -> URL, from the ledger
    # Latencies earlier runs learned, by model: a resume's plans start there.
    known_latencies: Mapping[str, Sequence[float]] = field(default_factory=dict)
    rpm_auto: bool = False  # learn the rate limit (`ratecontrol`), from `rpm_start` if known
    rpm_start: float | None = None

    def price_of(self, model: str) -> float | None:
        """What a job of `model` costs when the server does not say (USD)."""
        return self.model_prices.get(model, self.price_per_image)

    def reserved_price(self) -> float | None:
        """The price the budget reserves per job in flight before any has cost something: the
        dearest job of the run's models, at the most images one asks for (a budget must not be
        passed because a cheap model's job was about to be sent while dear ones were in flight)."""
        known = [
            p * self.most_images.get(m, 1) for m, p in self.model_prices.items() if p is not None
        ]
        return max(known) if known else self.price_per_image
