"""`--rpm auto` in virtual time: AIMD against a strict sliding window of 50 a window."""

from __future__ import annotations

import asyncio

from batchgen.emulator.ratelimit import SlidingWindow
from batchgen.engine.ratecontrol import AUTO_START, RateControl
from batchgen.testing import SteppedClock

LIMIT, WINDOW = 50, 1.0


async def drive(
    rates: RateControl, clock: SteppedClock, windows: int, latency: float = 0.0
) -> list[tuple[float, float]]:
    """Send as fast as the rate control allows for `windows` windows; (time, rate) per send.
    Each answer comes back `latency` after its send (the server counts it on arrival)."""
    server = SlidingWindow(LIMIT, WINDOW)
    seen: list[tuple[float, float]] = []
    answers: set[asyncio.Task[None]] = set()

    async def answer(sent: float, reset: float | None) -> None:
        await clock.sleep(latency)
        rates.answered(sent, refused=reset is not None)
        if reset is not None:
            rates.on_rate_limited(reset - clock.now())

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
        if latency:
            answers.add(task := asyncio.ensure_future(answer(now, reset)))
            task.add_done_callback(answers.discard)
            continue
        rates.answered(now, refused=reset is not None)
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


async def test_requests_in_flight_at_a_429_do_not_count_as_accepted():
    # Answers take 0.2 s: when a 429 comes back, the ten sends made since are still in flight
    # (refused too, or not yet counted). Counting sends learned up to 57 against 50 and held 54
    # for a while; only answered ones count.
    clock = SteppedClock()
    rates = RateControl(None, WINDOW, clock, auto=True)
    seen = await clock.run(drive(rates, clock, 20, latency=0.2))
    assert rates.probe_refusals >= 1
    assert rates.known is not None
    assert 45 <= rates.known <= LIMIT
    slow_start = {AUTO_START * 2**k for k in range(5)}
    assert all(45 <= rate <= LIMIT for _, rate in seen if rate not in slow_start)
