"""`--rpm auto` in virtual time: AIMD against a strict sliding window of 50 a window."""

from __future__ import annotations

from batchgen.emulator.ratelimit import SlidingWindow
from batchgen.engine.ratecontrol import AUTO_START, RateControl
from batchgen.testing import SteppedClock

LIMIT, WINDOW = 50, 1.0


async def drive(rates: RateControl, clock: SteppedClock, windows: int) -> list[tuple[float, float]]:
    """Send as fast as the rate control allows for `windows` windows; (time, rate) per send."""
    server = SlidingWindow(LIMIT, WINDOW)
    seen: list[tuple[float, float]] = []
    while clock.now() < windows * WINDOW:
        await rates.wait_pause()
        limiter = rates.limiter
        assert limiter is not None
        await limiter.acquire()
        now = clock.now()
        rates.sent(now)
        assert rates.rate is not None
        seen.append((now, rates.rate))
        reset = server.try_acquire("key", now)
        if reset is not None:
            rates.on_rate_limited(reset - now)
    return seen


async def test_widens_from_the_lowest_plan_and_settles_just_under_the_limit():
    clock = SteppedClock()
    rates = RateControl(None, WINDOW, clock, auto=True)
    assert rates.rate == AUTO_START
    seen = await clock.run(drive(rates, clock, 20))
    assert rates.probe_refusals >= 1
    assert rates.known is not None
    assert 45 <= rates.known <= LIMIT
    late = [rate for t, rate in seen if t >= 10 * WINDOW]
    assert late
    assert all(45 <= rate <= LIMIT for rate in late)  # settled, never held above the limit
    # It found the limit within a few windows: the last send outside 45-50 is before the 8th.
    last_off = max(t for t, rate in seen if not 45 <= rate <= LIMIT)
    assert last_off < 8 * WINDOW


async def test_a_known_rate_starts_there_without_probing():
    clock = SteppedClock()
    rates = RateControl(None, WINDOW, clock, auto=True, start=48.0)
    await clock.run(drive(rates, clock, 6))
    assert rates.probe_refusals == 0
    assert rates.rate == 48.0
