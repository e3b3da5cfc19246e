"""Decisions, backoff and poll timing: pure functions, no network, no sleeping."""

from __future__ import annotations

import pytest

from batchgen.core.policy import (
    Action,
    Backoff,
    decide,
    rate_limit_wait,
    seeded_rand,
)
from batchgen.core.wire import format_reset_at

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("status", "phase", "action"),
    [
        (None, "submit", Action.RETRY),
        (None, "poll", Action.RETRY),
        (429, "submit", Action.RATE_LIMITED),
        (429, "poll", Action.RATE_LIMITED),
        (500, "submit", Action.RETRY),
        (502, "poll", Action.RETRY),
        (503, "media", Action.RETRY),
        (504, "submit", Action.RETRY),
        (400, "submit", Action.FAIL_JOB),
        (422, "submit", Action.FAIL_JOB),
        (401, "submit", Action.STOP_RUN),
        (403, "submit", Action.STOP_RUN),
        (404, "submit", Action.STOP_RUN),
        (410, "submit", Action.STOP_RUN),
        (401, "poll", Action.STOP_RUN),
        (402, "submit", Action.STOP_SUBMITTING),
        (406, "submit", Action.STOP_SUBMITTING),
        (406, "sync", Action.STOP_SUBMITTING),
        (404, "poll", Action.RESUBMIT),
        (404, "media", Action.FAIL_JOB),
        (418, "poll", Action.FAIL_JOB),
    ],
)
def test_decision_table_follows_the_spec(status, phase, action):
    """Each status in each phase maps to the spec's action."""
    assert decide(status, phase=phase).action is action


def test_stop_reasons_say_what_to_do():
    """A run-stopping decision tells the user the fix, not just the code."""
    assert "SEGMIND_API_KEY" in decide(401, phase="submit").reason
    assert "top up" in decide(406, phase="submit").reason
    assert "possible charge" in decide(None, phase="submit", maybe_sent=True).reason


def test_rate_limit_wait_reads_reset_time_and_retry_after():
    """Reset time and Retry-After both count; the later wins; neither gives None."""
    reset = {"x-rate-limit-reset-at-utc": format_reset_at(NOW + 12.5)}
    assert rate_limit_wait(reset, NOW) == pytest.approx(12.5, abs=1e-3)
    both = {**reset, "Retry-After": "20"}
    assert rate_limit_wait(both, NOW) == pytest.approx(20.0)
    assert rate_limit_wait({"Retry-After": "3"}, NOW) == pytest.approx(3.0)
    assert rate_limit_wait({"x-rate-limit-reset-at-utc": format_reset_at(NOW - 5)}, NOW) == 0.0
    assert rate_limit_wait({"x-rate-limit-reset-at-utc": "garbage"}, NOW) is None
    assert rate_limit_wait({}, NOW) is None


def test_backoff_full_jitter_grows_and_is_bounded():
    """Delays are uniform in [0, min(cap, base*2^(n-1))); attempts and elapsed time bound them."""
    policy = Backoff(base=1.0, cap=8.0, max_attempts=5, max_elapsed=100.0)
    top = lambda: 0.999999  # noqa: E731 - the largest jitter draw
    ceilings = [policy.delay(n, 0.0, top) for n in range(1, 6)]
    assert ceilings == pytest.approx([1.0, 2.0, 4.0, 8.0, 8.0], rel=1e-5)
    assert policy.delay(6, 0.0, top) is None  # out of attempts
    assert policy.delay(2, 100.0, top) is None  # out of time
    assert policy.delay(4, 97.0, top) == pytest.approx(3.0)  # never past the time budget
    rand = seeded_rand(1)
    draws = [policy.delay(3, 0.0, rand) for _ in range(200)]
    assert all(0 <= d < 4.0 for d in draws)
    assert len({round(d, 6) for d in draws}) > 150  # jittered, not a fixed step


def test_backoff_immediate_for_tests():
    """The test mode removes waiting but keeps the attempt bound."""
    policy = Backoff.immediate(max_attempts=2)
    assert [policy.delay(n, 0.0, seeded_rand(0)) for n in (1, 2, 3)] == [0.0, 0.0, None]
