"""Test support: a hand-stepped clock and an in-memory `Api`: tests without sleeps or sockets.

The engine reads time only through a `core.clock.Clock` and talks to the server only through its
`Api` protocol (`engine.pipeline.Api`), so its decisions — backoff, 429 pauses, the outage gate,
pacing, retries, stops — can be tested in virtual time: nothing waits for real, and the same
test gives the same answer on a loaded machine. The HTTP tests against the emulator remain the
integration tier; this is the fast one.

    clock = SteppedClock()
    api = FakeApi(clock, latency=2.0)
    api.fail_next("submit", ApiError(503, "busy"))
    stats = await clock.run(engine.run(jobs))       # jumps time whenever every task waits on it
    await clock.advance(0.5)                         # or step it by hand (aiolimiter's tests)
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import io
import itertools
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Iterator, Mapping
from typing import Any, TypeVar

from PIL import Image

from batchgen.core.clock import Clock
from batchgen.core.errors import ApiError
from batchgen.core.wire import Poll, Submitted, SyncImage

__all__ = ["FakeApi", "SteppedClock", "SteppedPacer", "settle", "tiny_png"]

T = TypeVar("T")
SETTLE_ROUNDS = 20  # loop turns that let every task runnable now reach its next wait


async def settle() -> None:
    """Let every task that can run without time passing run until it waits again."""
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(0)


@contextlib.contextmanager
def _threads_tracked(loop: asyncio.AbstractEventLoop) -> Iterator[set[asyncio.Future[Any]]]:
    """The futures of every `run_in_executor` call (asyncio.to_thread and aiofiles go through
    it) still running, while the block runs."""
    busy: set[asyncio.Future[Any]] = set()
    original = loop.run_in_executor

    def tracked(executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        future = original(executor, func, *args)
        busy.add(future)
        future.add_done_callback(busy.discard)
        return future

    loop.run_in_executor = tracked  # type: ignore[method-assign,assignment]
    try:
        yield busy
    finally:
        loop.run_in_executor = original  # type: ignore[method-assign]


class SteppedPacer:
    """aiolimiter's leaky bucket (`SystemClock.pacer`) on a `Clock`: what `SteppedClock.pacer`
    hands out. One send per `interval`, with `tolerance` seconds of credit for late sends."""

    def __init__(self, interval: float, clock: Clock, tolerance: float = 0.0) -> None:
        self.interval = interval
        self.clock = clock
        self._capacity = 1 + tolerance / interval  # in sends
        self._level = 0.0  # sends not yet leaked away, as of `_at`
        self._at = clock.now()
        self._turn = asyncio.Lock()  # FIFO, and a cancelled waiter releases its place

    async def acquire(self) -> None:
        """Wait for this caller's turn; returns when it may send."""
        async with self._turn:
            while True:
                now = self.clock.now()
                self._level = max(0.0, self._level - (now - self._at) / self.interval)
                self._at = now
                wait = (self._level + 1 - self._capacity) * self.interval
                if wait <= 1e-12:
                    self._level += 1
                    return
                await self.clock.sleep(wait)


class SteppedClock:
    """A `Clock` that moves only when told: `sleep` waits until `advance` passes its deadline."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.slept: list[float] = []  # every positive sleep asked for, in order

    def now(self) -> float:
        return self._now

    def pacer(self, interval: float, tolerance: float = 0.0) -> SteppedPacer:
        return SteppedPacer(interval, self, tolerance)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        self.slept.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking sleepers in deadline order; each woken task runs
        (and may sleep again) before time moves past the next deadline."""
        target = self._now + seconds
        await settle()
        while (when := self._next_deadline()) is not None and when <= target:
            self._wake(when)
            await settle()
        self._now = target
        await settle()

    async def run(self, awaitable: Awaitable[T], *, limit: float = 1e6) -> T:
        """Await `awaitable`, jumping time to the next deadline whenever every task waits on the
        clock (at most `limit` virtual seconds: a test that never ends fails instead).

        Work handed to a thread (a ledger write, an image check, aiofiles) is waited for before
        time moves: otherwise how far the clock jumps while a file is written depends on the
        machine's load, and the same test gives a different count of polls from run to run."""
        task = asyncio.ensure_future(awaitable)
        end = self._now + limit
        with _threads_tracked(asyncio.get_running_loop()) as threads:
            while not task.done():
                await settle()
                if threads:
                    await asyncio.wait(set(threads))
                    continue
                if task.done():
                    break
                when = self._next_deadline()
                if when is None:
                    await asyncio.sleep(0)
                    continue
                if when > end:
                    task.cancel()
                    raise TimeoutError(f"still running after {limit:g} s of virtual time")
                self._wake(when)
        return task.result()

    def _next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def _wake(self, when: float) -> None:
        self._now = max(self._now, when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            future = heapq.heappop(self._sleepers)[2]
            if not future.done():
                future.set_result(None)


def tiny_png(size: int = 8) -> bytes:
    """A valid PNG of `size` x `size` pixels (what an image check accepts)."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


class FakeApi:
    """An in-memory `engine.Api`: every submit is accepted and completes `latency` seconds of
    clock time later (`latencies`: seconds by model, for runs that mix models; others take
    `latency`); `fail_next(method, *errors)` makes the next calls of a method raise.
    A finished job reports the server's own `total_time`, as Segmind's result URL does;
    `timing=False` is a server that does not (a poll then only bounds the latency).

    `calls` counts calls per method, as the emulator's counters do over HTTP; per request,
    `model_of` its model, `polls` the polls it got and `seen_at` when a poll first found it
    done (what a poll plan is judged by: calls, and how late it looks).
    """

    def __init__(
        self,
        clock: SteppedClock,
        *,
        latency: float = 1.0,
        timing: bool = True,
        latencies: Mapping[str, float] | None = None,
    ) -> None:
        self.clock = clock
        self.latency = latency
        self.latencies = dict(latencies or {})
        self.timing = timing
        self.image = tiny_png()
        self.calls: Counter[str] = Counter()
        self.faults: defaultdict[str, deque[BaseException]] = defaultdict(deque)
        self.done_at: dict[str, float] = {}  # request id -> when it completes
        self.took: dict[str, float] = {}  # request id -> its latency
        self.forget: set[str] = set()  # request ids the server no longer knows (404)
        self.model_of: dict[str, str] = {}
        self.polls: Counter[str] = Counter()
        self.seen_at: dict[str, float] = {}

    def fail_next(self, method: str, *errors: BaseException) -> None:
        self.faults[method].extend(errors)

    def _call(self, method: str) -> None:
        self.calls[method] += 1
        if self.faults[method]:
            raise self.faults[method].popleft()

    async def submit(self, model: str, params: dict[str, Any]) -> Submitted:
        self._call("submit")
        request_id = f"req-{self.calls['submit']}"
        latency = self.latencies.get(model, self.latency)
        self.done_at[request_id] = self.clock.now() + latency
        self.took[request_id] = latency
        self.model_of[request_id] = model
        return Submitted(request_id, f"fake://status/{request_id}", f"fake://result/{request_id}")

    async def poll(self, url: str) -> Poll:
        self._call("poll")
        request_id = url.rsplit("/", 1)[-1]
        if request_id not in self.done_at or request_id in self.forget:
            raise ApiError(404, "request not found")
        self.polls[request_id] += 1
        if self.clock.now() < self.done_at[request_id]:
            return Poll("PROCESSING")
        self.seen_at.setdefault(request_id, self.clock.now())
        metrics = {"total_time": self.took[request_id]} if self.timing else {}
        return Poll("COMPLETED", output=f"fake://media/{request_id}.png", metrics=metrics)

    async def download(self, url: str) -> bytes:
        self._call("download")
        return self.image

    async def run_sync(self, model: str, params: dict[str, Any]) -> SyncImage:
        self._call("run_sync")
        return SyncImage(self.image, "image/png", f"sync-{self.calls['run_sync']}", 1, None, 0.1)
