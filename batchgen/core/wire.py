"""The Segmind wire format in one place: paths, header names, states, time formats.

The emulator and the client both import this module, so a header name or a timestamp format is
written once and a change to the spec is a change here. It is pure: no sockets, no clocks (callers
pass the time in), which keeps parsing testable on its own.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "API_KEY_HEADER",
    "FINAL_STATES",
    "MEDIA_RETENTION",
    "PENDING_STATES",
    "REQUEST_RETENTION",
    "RESET_AT_HEADER",
    "RETRY_AFTER_HEADER",
    "V1_HEADERS",
    "Poll",
    "Submitted",
    "SyncImage",
    "decode_base64",
    "error_text",
    "format_reset_at",
    "origin",
    "parse_poll",
    "parse_reset_at",
    "parse_retry_after",
    "parse_submit",
]

API_KEY_HEADER: Final = "x-api-key"
RESET_AT_HEADER: Final = "x-rate-limit-reset-at-utc"
RETRY_AFTER_HEADER: Final = "Retry-After"

# How long the server keeps what a submit made (segmind-v2-api.md, "Records expire"): a request
# record 1 h after submit (then polls answer 404: resume re-attaches only younger requests, the
# emulator expires its records after this), an `output` URL 7 days [2nd].
REQUEST_RETENTION: Final = 3600.0
MEDIA_RETENTION: Final = 7 * 24 * 3600.0

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


@dataclass(frozen=True)
class Submitted:
    """An accepted v2 submit: where to ask about the job from now on."""

    request_id: str
    status_url: str
    response_url: str


@dataclass(frozen=True)
class Poll:
    """What a status or result URL said about a job.

    `state` is QUEUED, PROCESSING, COMPLETED or FAILED. `output` is set when the body is a final
    result (an image URL, or base64 data when the job asked for it); a COMPLETED *status* body has
    none, and the caller must fetch the result URL.
    """

    state: str
    output: str | None = None
    error: str | None = None
    seed: int | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncImage:
    """A v1 (sync) answer: the image and what its headers say."""

    data: bytes
    content_type: str
    request_id: str | None
    seed: int | None
    cost: float | None
    generation_time: float | None


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased: what decides where the API key may go."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def error_text(body: Any, fallback: str) -> str:
    """The server's message: `error` of a JSON object, else a short excerpt, else `fallback`."""
    if isinstance(body, Mapping):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return fallback
    if isinstance(body, str) and body.strip():
        return " ".join(body.split())[:200]
    return fallback


def parse_submit(body: Any, api_root: str) -> Submitted:
    """Read a submit answer; raises ValueError when it names no request id.

    Liberal: the URLs are taken as given when present and built from the documented paths when
    a stand-in server leaves them out; the id is any non-empty string or number.
    """
    if not isinstance(body, Mapping):
        raise ValueError("the submit answer is not a JSON object")
    raw_id = body.get("request_id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        raise ValueError(f"the submit answer has no request_id (keys: {sorted(body)})")
    request_id = str(raw_id)
    base = f"{api_root.rstrip('/')}/v2/requests/{request_id}"
    status_url = body.get("status_url") or body.get("poll_url") or f"{base}/status"
    response_url = body.get("response_url") or base
    return Submitted(request_id, str(status_url), str(response_url))


def parse_poll(status: int, body: Any) -> Poll | None:
    """A status/result answer as a `Poll`, or None when it is not one (the caller decides).

    As the official SDK does, a body announcing COMPLETED or FAILED is final whatever the HTTP
    code (FAILED comes with 422). A body without a known state is not a poll answer.
    """
    if not isinstance(body, Mapping):
        return None
    state = body.get("status")
    if not isinstance(state, str) or state.upper() not in PENDING_STATES | FINAL_STATES:
        return None
    state = state.upper()
    if state in PENDING_STATES and not 200 <= status < 300:
        return None
    metrics = body.get("metrics")
    seed = body.get("seed")
    output = body.get("output")
    if not isinstance(output, str) or not output:
        output = _first_image_url(body)
    return Poll(
        state=state,
        output=output if state == "COMPLETED" else None,
        error=error_text(body, "the server reported FAILED without a message")
        if state == "FAILED"
        else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        metrics=metrics if isinstance(metrics, Mapping) else {},
    )


def _first_image_url(body: Mapping[str, Any]) -> str | None:
    images = body.get("images")
    if isinstance(images, list) and images and isinstance(images[0], Mapping):
        url = images[0].get("url")
        if isinstance(url, str) and url:
            return url
    output = body.get("output")
    if isinstance(output, list) and output and isinstance(output[0], str):
        return output[0]  # some models answer a list of URLs
    return None


def decode_base64(text: str) -> bytes:
    """Image bytes from a base64 `output` (or v1 `image`); ValueError when it is not base64.

    A data-URL prefix (``data:image/png;base64,``) is accepted, as some gateways add one.
    """
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None
