"""Admission control: a submit needs an in-flight slot *and* a rate-limit token, taken before it
is sent, so backpressure reaches the producer instead of piling up requests.

* In flight: a semaphore of `concurrency` slots, held from submit until the job's image is stored
  or it fails.
* Rate: `aiolimiter` with a bucket of one token refilled every window/rpm seconds. That paces
  requests evenly, so no 60-second window ever sees more than `rpm` of them — a bucket of `rpm`
  tokens would allow `rpm` at once plus `rpm` more within the same minute.
* Probe: until the server has accepted one submit, only one submit is outstanding, so a wrong key,
  an unknown model or an empty account costs one request, not a burst.
* 429: every counted request waits until the server's reset time; when 429s are a quarter or more
  of a window's requests the rate drops (x0.75, at most once per window), and after a quiet
  window it climbs back (x1.1 per window) towards the configured limit. Without a configured
  limit, the first such drop starts from the rate actually achieved. A 429 without a reset time
  costs the refused request its next token when paced; unpaced, a second of the window's minute.
* Spacing: a submit waits for its ledger fsync between its token and the wire; `submit` spaces
  those sends again (group commit releases them in batches), so the server sees them paced.
* Outage: every API call passes the `circuit` gate first (before its token, so a recovery does
  not release a burst of tokens taken during the outage); `watch` feeds it each call's outcome.
  While the server is down only one probe at a time goes out (see `circuit.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from aiolimiter import AsyncLimiter

from batchgen.core.circuit import Circuit, OutagePolicy
from batchgen.core.errors import ApiError, TransportError

__all__ = ["Throttle"]

SAFETY: Final = 1.02  # pace 2% under the limit: clock skew and network jitter eat margins
DECREASE: Final = 0.75
INCREASE: Final = 1.1
QUIET: Final = 1.0  # windows without a rate change before the rate rises again
CONGESTION: Final = 0.25  # share of 429s among a window's requests that means "over the limit"

log = logging.getLogger("batchgen")
T = TypeVar("T")


class Throttle:
    def __init__(
        self,
        concurrency: int,
        rpm: int | None = None,
        *,
        window: float = 60.0,
        count_polls: bool = False,
        probe: bool = True,
        outage: OutagePolicy | None = None,
        on_outage: Callable[[str], None] | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.ceiling = float(rpm) if rpm else None  # the user's limit, never exceeded
        self.window = window
        self.count_polls = count_polls
        self.rate: float | None = self.ceiling  # current requests per window
        self._limiter = self._make_limiter()
        self._spacer = self._make_limiter()  # re-spaces counted sends just before the wire
        self._slots = asyncio.Semaphore(concurrency)
        self._open = not probe
        self._probing = False
        self._probe_done = asyncio.Condition()
        self._pause_until = 0.0
        self._last_change = -float("inf")  # of the rate, down or up
        self._refused: deque[float] = deque()  # 429 times within the last window
        self._recent: deque[float] = deque()  # send times within the last window
        self.rate_limited = 0
        self.circuit = Circuit(outage)
        self._recovered = asyncio.Event()
        self._on_outage = on_outage  # called once the outage outlasts patience: stop the run

    # -- slots --------------------------------------------------------------------------------

    async def acquire_slot(self, *, submits: bool = True) -> None:
        """Wait for an in-flight slot; the caller must `release_slot` when the job is done.

        `submits=False` is for a job already paid for (resumed): it sends no submit, so it
        neither waits for nor acts as the probe.
        """
        await self._slots.acquire()
        if not submits:
            return
        async with self._probe_done:
            while not self._open and self._probing:
                await self._probe_done.wait()
            if not self._open:
                self._probing = True

    def release_slot(self) -> None:
        self._slots.release()

    async def probe_result(self, accepted: bool) -> None:
        """Report the outcome of a submit: the first accepted one opens the gate."""
        if self._open:
            return
        async with self._probe_done:
            if accepted:
                self._open = True
            self._probing = False
            self._probe_done.notify_all()

    # -- rate ---------------------------------------------------------------------------------

    async def before_submit(self) -> None:
        """Wait for a rate-limit token (and any 429 pause) before sending a submit.

        Past the outage patience this waits until the server is back: the run is stopping, and
        the caller gives up waiting on the stop."""
        await self._take(give_up=False)

    async def before_poll(self) -> None:
        """Polls take tokens (and honour 429 pauses) only when the server counts them."""
        if self.count_polls:
            await self._take(give_up=True)
        else:
            await self._gate(give_up=True)

    async def _take(self, *, give_up: bool) -> None:
        loop = asyncio.get_running_loop()
        probe = False
        while True:
            probe = await self._gate(give_up=give_up, holding=probe)
            await self._wait_pause()
            limiter = self._limiter
            if limiter is not None:
                await limiter.acquire()
            if limiter is not self._limiter:
                continue  # the rate changed while we waited: queue at the new pace
            if self.circuit.is_open and not probe:
                continue  # the server went down while we waited: queue for a probe turn
            if loop.time() >= self._pause_until:  # no 429 arrived while we waited
                break
        now = loop.time()
        self._recent.append(now)
        _trim(self._recent, now - self.window)
        self._maybe_raise(now)

    async def _wait_pause(self) -> None:
        loop = asyncio.get_running_loop()
        # A later 429 may extend the pause while we sleep, hence the loop.
        while (delay := self._pause_until - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)

    def on_rate_limited(self, wait: float | None, *, counted: bool = True) -> float:
        """A 429 arrived; returns how long the refused request should wait.

        For a request that counts against the shared limit (`counted`), every counted request
        pauses until the server's reset time, and the rate drops when 429s are a sizeable share
        of what was sent in the last window: that is a limit we are hitting, while a stray 429
        (a flaky gateway) only costs its own wait. A request that does not count (a poll, when
        polls are free) just waits itself.
        """
        now = asyncio.get_running_loop().time()
        self.rate_limited += 1
        told = wait is not None
        if wait is None:  # no reset time from the server: one pacing interval, or a second
            wait = self.window / self.rate if self.rate else self.window / 60
        if not counted:
            return wait
        if told or self._limiter is None:
            # Everyone waits for a reset time the server gave. Without one, a paced run's next
            # token is wait enough (pausing all would cost a token per 429, the chaos soak's
            # 10 % of them a tenth of its throughput); an unpaced one must pause.
            self._pause_until = max(self._pause_until, now + wait)
        self._refused.append(now)
        _trim(self._refused, now - self.window)
        _trim(self._recent, now - self.window)
        share = len(self._refused) / max(1, len(self._recent))
        if share >= CONGESTION and now - self._last_change >= self.window:
            achieved = max(1.0, float(len(self._recent)))
            self.rate = max(1.0, (self.rate or achieved) * DECREASE)
            self._limiter, self._spacer = self._make_limiter(), self._make_limiter()
            self._last_change = now
        return wait

    # -- outage -------------------------------------------------------------------------------

    async def _gate(self, *, give_up: bool, holding: bool = False) -> bool:
        """Pass at once while the server is up; in an outage wait for a probe turn (True).
        `holding`: the caller already has the turn (it went round its loop before sending).

        Past the patience no probe goes out any more: the run is told to stop, and a caller
        that can `give_up` (a poll: its job is then released) gets a TransportError at once."""
        loop = asyncio.get_running_loop()
        if holding and self.circuit.is_open:
            return True
        while self.circuit.is_open:
            if (reason := self.outage_over()) is not None:
                if self._on_outage is not None:
                    self._on_outage(reason)
                if give_up:
                    raise TransportError(reason, maybe_sent=False)
                await self._recovered.wait()
                continue
            wait = self.circuit.permit(loop.time())
            if wait == 0.0:
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recovered.wait(), wait)
        return False

    async def submit(self, call: Awaitable[T]) -> T:
        """Send a submit (its token already taken): re-spaced, then watched.

        Between its token and the wire a submit waits for its ledger intent to be fsync'd, and
        group commit releases a whole batch of them at once: against a strict limit, sends
        bunched by a slow disk are a burst (the chaos soak saw 61 submits in a window of 50).
        A second bucket at the same rate spaces them again; when the disk is fast it never
        waits, so it costs no throughput."""
        await self._space()
        return await self.watch(call, spaced=True)

    async def _space(self) -> None:
        spacer = self._spacer
        if spacer is not None:
            await spacer.acquire()

    async def watch(self, call: Awaitable[T], *, spaced: bool = False) -> T:
        """Await an API call and tell the circuit whether the server answered it. Polls that
        count against the limit share the submits' spacing."""
        if self.count_polls and not spaced:
            await self._space()
        try:
            result = await call
        except ApiError as exc:
            self._outcome(exc.status < 500)
            raise
        except TransportError:
            self._outcome(False)
            raise
        self._outcome(True)
        return result

    def _outcome(self, answered: bool) -> None:
        now = asyncio.get_running_loop().time()
        if answered:
            if self.circuit.success(now):
                log.warning("the server answers again: resuming")
                self._recovered.set()
        elif self.circuit.failure(now):
            log.warning("the server is failing every call: probing it, one call at a time")
            self._recovered.clear()

    def outage_over(self) -> str | None:
        """Why the run should stop, once the server has been down for longer than patience."""
        if not self.circuit.over_patience(asyncio.get_running_loop().time()):
            return None
        minutes = self.circuit.policy.patience / 60
        return (
            f"the server has failed every call for over {minutes:.3g} minutes (outage): "
            "run the same command again later to resume"
        )

    def _maybe_raise(self, now: float) -> None:
        """After a quiet window, climb back towards the configured limit (or without bound)."""
        if self.rate is None or now - self._last_change < QUIET * self.window:
            return
        if self.ceiling is not None and self.rate >= self.ceiling:
            return
        raised = self.rate * INCREASE
        self.rate = raised if self.ceiling is None else min(self.ceiling, raised)
        self._last_change = now
        self._limiter, self._spacer = self._make_limiter(), self._make_limiter()

    def _make_limiter(self) -> AsyncLimiter | None:
        if self.rate is None:
            return None
        return AsyncLimiter(1, self.window / self.rate * SAFETY)


def _trim(times: deque[float], horizon: float) -> None:
    while times and times[0] <= horizon:
        times.popleft()
