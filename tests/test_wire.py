"""Wire helpers: the time formats a liberal client must read."""

from __future__ import annotations

import pytest

from batchgen.core.wire import (
    Poll,
    Submitted,
    error_text,
    format_reset_at,
    origin,
    parse_poll,
    parse_reset_at,
    parse_retry_after,
    parse_submit,
)
from batchgen.emulator import EmulatorConfig

EPOCH = 1_795_000_000.25  # 2026-11-18T11:06:40.250Z


def test_reset_at_round_trips_with_milliseconds():
    """What the emulator writes, the client reads back to the millisecond."""
    text = format_reset_at(EPOCH)
    assert text.endswith("Z")
    assert ".250" in text
    assert parse_reset_at(text) == pytest.approx(EPOCH, abs=1e-3)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-18T11:06:40.250Z",
        "2026-11-18T11:06:40.250+00:00",
        "2026-11-18T11:06:40.250",  # no zone: UTC, as the header's name says
        "2026-11-18T12:06:40.250+01:00",
        " 1795000000.25 ",  # bare epoch seconds
    ],
)
def test_reset_at_accepts_common_spellings(text):
    """Z, +00:00, no zone, other offsets and bare epochs all parse to the same instant."""
    assert parse_reset_at(text) == pytest.approx(EPOCH, abs=1e-3)


@pytest.mark.parametrize("text", ["", "soon", "nan", "-5", "2026-13-40T00:00:00Z"])
def test_reset_at_unreadable_is_none(text):
    """Garbage yields None so the caller falls back to its own backoff."""
    assert parse_reset_at(text) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("Wed, 18 Nov 2026 11:06:50 GMT", 9.75), ("x", None)],
)
def test_retry_after_delta_and_http_date(text, seconds):
    """Retry-After is delta-seconds or an HTTP-date; negatives clamp to zero."""
    result = parse_retry_after(text, now_epoch=EPOCH)
    assert result == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("knobs", "needle"),
    [
        ({"keys": ()}, "keys"),
        ({"workers": 0}, "workers"),
        ({"fail_rate": 2.0}, "fail_rate"),
        ({"rpm": 0}, "rpm"),
        ({"retention": 0}, "retention"),
    ],
)
def test_emulator_config_rejects_nonsense(knobs, needle):
    """Bad knobs fail at construction with the knob's name, not later in a request."""
    with pytest.raises(ValueError, match=needle):
        EmulatorConfig(**knobs)


# -- parsing answers ------------------------------------------------------------------------------

ROOT = "http://api.example"


def test_parse_submit_takes_urls_as_given_or_builds_them():
    """Given URLs are used verbatim; missing ones are built from the documented paths."""
    given = parse_submit(
        {"request_id": "abc", "status_url": "http://x/s", "response_url": "http://x/r"}, ROOT
    )
    assert (given.status_url, given.response_url) == ("http://x/s", "http://x/r")
    built = parse_submit({"request_id": 17}, ROOT + "/")
    assert built == Submitted("17", f"{ROOT}/v2/requests/17/status", f"{ROOT}/v2/requests/17")


@pytest.mark.parametrize(
    "body", [[], {"status": "QUEUED"}, {"request_id": ""}, {"request_id": True}]
)
def test_parse_submit_without_id_is_an_error(body):
    """An answer that names no request id cannot be followed: ValueError."""
    with pytest.raises(ValueError, match=r"request_id|JSON object"):
        parse_submit(body, ROOT)


def test_parse_poll_states():
    """Pending, completed (status and result bodies) and failed answers parse; others are None."""
    assert parse_poll(200, {"status": "QUEUED", "metrics": {}}) == Poll("QUEUED")
    assert parse_poll(200, {"status": "processing"}) == Poll("PROCESSING")
    done = parse_poll(200, {"status": "COMPLETED", "metrics": {"inference_time": 1.5}})
    assert done is not None
    assert (done.state, done.output, done.metrics["inference_time"]) == ("COMPLETED", None, 1.5)
    result = parse_poll(200, {"status": "COMPLETED", "output": "http://m/1.png", "seed": 4})
    assert result == Poll("COMPLETED", output="http://m/1.png", seed=4)
    images = parse_poll(200, {"status": "COMPLETED", "images": [{"url": "http://m/2.png"}]})
    assert images is not None
    assert images.output == "http://m/2.png"
    failed = parse_poll(422, {"status": "FAILED", "error": "blocked"})
    assert failed == Poll("FAILED", error="blocked")
    assert parse_poll(500, {"status": "QUEUED"}) is None  # pending under an error code: not trusted
    assert parse_poll(200, {"error": "Request x not found"}) is None
    assert parse_poll(200, "<html>") is None


def test_error_text_and_origin():
    """The server's message is found in JSON or text; origins compare scheme, host and port."""
    assert error_text({"error": "bad key"}, "?") == "bad key"
    assert error_text("<h1>502  Bad\nGateway</h1>", "?") == "<h1>502 Bad Gateway</h1>"
    assert error_text(None, "fallback") == "fallback"
    assert origin("HTTP://Api.Example:8080/v2/x?y=1") == "http://api.example:8080"
