"""The pacer in virtual time: one send per interval, first come first served, and a waiter
that gives up passes its turn on (aiolimiter's one-token bucket, which the real clock uses)."""

from __future__ import annotations

import asyncio

from batchgen.testing import SteppedClock, settle


async def test_first_send_goes_at_once_then_one_per_interval():
    clock = SteppedClock(start=5.0)
    pacer = clock.pacer(2.0)
    order: list[tuple[int, float]] = []

    async def send(i: int) -> None:
        await pacer.acquire()
        order.append((i, clock.now()))

    await clock.run(asyncio.gather(*(send(i) for i in range(4))))
    assert order == [(0, 5.0), (1, 7.0), (2, 9.0), (3, 11.0)]


async def test_an_idle_pacer_does_not_bank_tokens():
    """After a quiet spell only one send goes at once: no burst of saved-up tokens."""
    clock = SteppedClock()
    pacer = clock.pacer(1.0)
    await pacer.acquire()
    await clock.advance(10.0)
    await pacer.acquire()  # at once
    second = asyncio.create_task(pacer.acquire())
    await clock.advance(0.99)
    assert not second.done()
    await clock.advance(0.02)
    assert second.done()


async def test_a_cancelled_waiter_passes_its_turn_on():
    clock = SteppedClock()
    pacer = clock.pacer(1.0)
    await pacer.acquire()
    first = asyncio.create_task(pacer.acquire())
    second = asyncio.create_task(pacer.acquire())
    await settle()
    first.cancel()
    await clock.advance(1.0)
    assert second.done()
    assert first.cancelled()
