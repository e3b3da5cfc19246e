"""The Segmind wire format in one place: paths, header names, states, time formats.

The emulator and the client both import this module, so a header name or a timestamp format is
written once and a change to the spec is a change here. It is pure: no sockets, no clocks (callers
pass the time in), which keeps parsing testable on its own.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = [
    "API_KEY_HEADER",
    "FINAL_STATES",
    "PENDING_STATES",
    "RESET_AT_HEADER",
    "RETRY_AFTER_HEADER",
    "V1_HEADERS",
    "format_reset_at",
    "parse_reset_at",
    "parse_retry_after",
]

API_KEY_HEADER: Final = "x-api-key"
RESET_AT_HEADER: Final = "x-rate-limit-reset-at-utc"
RETRY_AFTER_HEADER: Final = "Retry-After"

# Headers of a sync (v1) image response, by meaning.
V1_HEADERS: Final = {
    "request_id": "x-request-id",
    "cost": "x-cost",
    "remaining_credits": "x-remaining-credits",
    "generation_time": "x-generation-time",
    "seed": "x-seed-value",
}

PENDING_STATES: Final = frozenset({"QUEUED", "PROCESSING"})
FINAL_STATES: Final = frozenset({"COMPLETED", "FAILED"})


def format_reset_at(epoch_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-11-23T22:30:00.123Z``.

    Milliseconds matter: with short, scaled-down windows in tests a whole-second value would round
    the reset into the past and invite a second 429.
    """
    stamp = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_reset_at(value: str) -> float | None:
    """Epoch seconds from an ``x-rate-limit-reset-at-utc`` value, or None if unreadable.

    Liberal on purpose: servers and proxies write ``Z`` or ``+00:00``, with or without fractions,
    and some send a bare epoch number; a timestamp without a zone is taken as UTC, as the header's
    name says.
    """
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) and number > 0 else None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def parse_retry_after(value: str, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), or None."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now_epoch)
    return max(0.0, seconds) if math.isfinite(seconds) else None
