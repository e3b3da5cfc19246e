"""The emulator's knobs: one frozen dataclass, plus the text form of fault rules used by the CLI.

Every odd behaviour a real or stand-in server may show is a knob here, so a test states the
scenario it needs in one place and the emulator's code never branches on "test mode".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from batchgen.core.wire import MEDIA_RETENTION, REQUEST_RETENTION
from batchgen.models.registry import schema_for, typical_seconds_of

__all__ = [
    "DEFAULT_COST",
    "FAULT_KINDS",
    "ROUTES",
    "EmulatorConfig",
    "FaultRule",
    "parse_fault",
    "parse_outage",
]

# Routes as the emulator counts and faults them. "*" in a fault rule means every one of these.
ROUTES = ("submit", "status", "result", "media", "sync", "credits", "upload", "asset")

# What a fault does. HTTP codes answer that code without doing the work; "accepted-NNN" and
# "accepted-reset" (submit/sync/upload only) do the work (bill the job, store the upload), then
# lose the answer, which is the case a client cannot tell from a plain failure and must count as
# a possible double charge. "short" (upload only) stores every file but answers one URL fewer;
# "one-image" (submit/sync only) makes the job return one image however many it asked for.
FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "slow",
    "hang",
    "truncate",
    "accepted-500",
    "accepted-502",
    "accepted-503",
    "accepted-504",
    "accepted-reset",
    "short",
    "one-image",
)
_ONLY_ON = {
    "truncate": ("media", "sync"),
    "short": ("upload",),
    "one-image": ("submit", "sync"),
}

DEFAULT_COST = 0.12  # USD per job of a model without a price: qwen-image's

IdFormat = Literal["hex32", "uuid", "sequential"]
EarlyResult = Literal["status", "404", "425"]


@dataclass(frozen=True)
class FaultRule:
    """Inject `kind` into `probability` of the requests to `route`, at most `limit` times."""

    route: str
    kind: str
    probability: float
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.route != "*" and self.route not in ROUTES:
            raise ValueError(
                f"unknown route {self.route!r}; expected one of *, {', '.join(ROUTES)}"
            )
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}"
            )
        if self.kind.startswith("accepted-") and self.route not in ("submit", "sync", "upload"):
            raise ValueError(
                f"fault {self.kind!r} only applies to the submit, sync and upload routes"
            )
        only = _ONLY_ON.get(self.kind)
        if only is not None and self.route not in only:
            raise ValueError(f"fault {self.kind!r} only applies to the {' and '.join(only)} routes")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability must be in [0, 1], got {self.probability}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"fault limit must be >= 1, got {self.limit}")

    def routes(self) -> tuple[str, ...]:
        return ROUTES if self.route == "*" else (self.route,)


_FAULT_RE = re.compile(r"^(?P<route>[*a-z]+):(?P<kind>[a-z0-9-]+)=(?P<p>[0-9.]+)(?:x(?P<n>\d+))?$")


def parse_fault(text: str) -> FaultRule:
    """Parse ``ROUTE:KIND=P`` or ``ROUTE:KIND=PxN`` (at most N times), e.g. ``status:503=0.05``."""
    match = _FAULT_RE.match(text.strip())
    if match is None:
        raise ValueError(
            f"bad fault rule {text!r}: expected ROUTE:KIND=PROBABILITY[xLIMIT], "
            "e.g. submit:429=0.1 or media:truncate=1x2"
        )
    limit = match["n"]
    return FaultRule(
        route=match["route"],
        kind=match["kind"],
        probability=float(match["p"]),
        limit=int(limit) if limit else None,
    )


def parse_outage(text: str) -> tuple[float, float]:
    """Parse ``START:SECONDS`` (an outage SECONDS long, START seconds after the first request)."""
    try:
        start, seconds = (float(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"bad outage {text!r}: expected START:SECONDS, e.g. 30:60") from None
    if start < 0 or seconds <= 0:
        raise ValueError(f"bad outage {text!r}: START must be >= 0 and SECONDS > 0")
    return start, seconds


@dataclass(frozen=True)
class EmulatorConfig:
    """Scenario for one emulator instance. Defaults are fast and fault-free, for tests."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: the OS picks a free port
    keys: tuple[str, ...] = ("emulator-key",)
    seed: int = 0

    # Models: qwen-image is validated against its table; extra models accept any parameters.
    models: tuple[str, ...] = ("qwen-image",)
    # Also serve every model with a table in batchgen/models (the editing models), validated.
    known_models: bool = True
    retired_models: tuple[str, ...] = ()  # 410
    forbidden_models: tuple[str, ...] = ()  # 403
    accept_invalid: bool = False  # accept a bad body, then FAIL the job (as some endpoints do)

    # The queue: `workers` jobs process at once; the rest stay QUEUED.
    workers: int = 8
    latency: float = 0.05  # mean processing seconds
    latency_jitter: float = 0.02  # uniform +/- around the mean
    # When set, each model's mean is its table's typical seconds times this (qwen-image 28 s,
    # seedream 32 s, flux-kontext-dev 11 s, ...; UNKNOWN_MODEL_SECONDS for others), with the
    # jitter in the proportion latency_jitter / latency: a client must learn each model apart.
    model_latency_scale: float | None = None
    fail_rate: float = 0.0  # seeded probability that a job ends FAILED
    fail_marker: str = "[fail]"  # a prompt containing this always FAILS

    retention: float = REQUEST_RETENTION  # seconds after submit that a request record lives
    media_retention: float = MEDIA_RETENTION
    id_format: IdFormat = "hex32"
    early_result: EarlyResult = "status"  # what GET /v2/requests/{id} answers before completion

    # Images
    full_size: bool = False  # native resolution instead of 1/8 of it

    # Billing
    credits: float = 10_000.0
    # USD billed per image made; None: the model's price in its table (seedream $0.04, ...),
    # or DEFAULT_COST for models whose page gives none and for pass-through models.
    cost_per_image: float | None = None
    report_cost: bool = True  # False: results carry no metrics.cost (the client prices them)
    credits_status: Literal[402, 406] = 406

    # Rate limit: at most `rpm` accepted requests per key in any `rate_window` seconds.
    rpm: int | None = None
    rate_window: float = 60.0
    count_polls: bool = False
    count_uploads: bool = False  # POST /upload-asset counts against `rpm` (undocumented)
    retry_after: bool = False  # send Retry-After alongside x-rate-limit-reset-at-utc
    reset_header: bool = True  # send x-rate-limit-reset-at-utc at all

    # Faults
    faults: tuple[FaultRule, ...] = ()
    slow_seconds: float = 1.0
    hang_seconds: float = 3600.0
    fault_reset_seconds: float = 0.2  # reset time announced by an injected 429
    # An outage: every API route (not media) answers 503 for `outage_seconds`, starting
    # `outage_start` seconds after the first API request (or at POST /_emulator/outage).
    outage_start: float | None = None
    outage_seconds: float = 0.0

    # Record each API request's arrival time, route and status (GET /_emulator/requests).
    log_requests: bool = False

    # Media served from a second origin (another port, optionally another loopback host), so a
    # client that leaks its API key to a foreign host is caught.
    media_origin: bool = False
    media_host: str | None = None

    # Hostile results: a prompt containing "[hostile:KIND]" gets a trap for an image (hostile.py).
    hostile_marker: str = "[hostile:"
    hostile_bytes: int = 80 * 1024 * 1024  # size of the "oversized" bodies: past a 64 MiB cap

    def latency_of(self, model: str) -> tuple[float, float]:
        """(mean, jitter) processing seconds of a job of `model`."""
        if self.model_latency_scale is None:
            return self.latency, self.latency_jitter
        mean = typical_seconds_of(model) * self.model_latency_scale
        share = self.latency_jitter / self.latency if self.latency > 0 else 0.0
        return mean, mean * min(1.0, share)

    def cost_of(self, model: str) -> float:
        """USD billed for one completed job of `model`."""
        if self.cost_per_image is not None:
            return self.cost_per_image
        schema = schema_for(model)
        price = schema.price_usd if schema is not None else None
        return DEFAULT_COST if price is None else price

    def __post_init__(self) -> None:
        problems = []
        if not self.keys:
            problems.append("keys must not be empty")
        if self.workers < 1:
            problems.append("workers must be >= 1")
        if self.model_latency_scale is not None and self.model_latency_scale < 0:
            problems.append("model_latency_scale must be >= 0")
        if self.latency < 0 or self.latency_jitter < 0:
            problems.append("latency and latency_jitter must be >= 0")
        if not 0.0 <= self.fail_rate <= 1.0:
            problems.append("fail_rate must be in [0, 1]")
        if self.retention <= 0 or self.media_retention <= 0:
            problems.append("retention and media_retention must be > 0")
        if self.rpm is not None and self.rpm < 1:
            problems.append("rpm must be >= 1")
        if self.rate_window <= 0:
            problems.append("rate_window must be > 0")
        if self.outage_seconds < 0 or (self.outage_start is not None and self.outage_start < 0):
            problems.append("outage_start and outage_seconds must be >= 0")
        if self.credits < 0 or (self.cost_per_image is not None and self.cost_per_image < 0):
            problems.append("credits and cost_per_image must be >= 0")
        if problems:
            raise ValueError("invalid emulator config: " + "; ".join(problems))
