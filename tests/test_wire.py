"""Wire helpers: the time formats a liberal client must read."""

from __future__ import annotations

import pytest

from batchgen.emulator import EmulatorConfig
from batchgen.wire import format_reset_at, parse_reset_at, parse_retry_after

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
