"""The throttle: what every API call passes before the wire, composed of three small parts.

* `admission` — in-flight slots and the probe gate (taken before a job's task exists); with
  `concurrency=None` (auto) the slots follow the rate x the learned latency (`fit_concurrency`,
  `core.littles`), up to `ceiling`;
* `ratecontrol` — the pace of counted requests, 429 pauses and the adaptive rate;
* `outage` — the gate over `core.circuit`: one probe at a time while the server is down.

A submit needs an in-flight slot *and* a rate token, taken before it is sent, so backpressure
reaches the producer instead of piling up requests. This module only orders the parts: the
outage gate first (a recovery must not release a burst of tokens taken during the outage), then
any 429 pause, then a token; `watch` feeds each call's outcome back to the gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from batchgen.core.circuit import Circuit, OutagePolicy
from batchgen.core.clock import Clock, SystemClock
from batchgen.core.errors import ApiError, TransportError
from batchgen.core.littles import AUTO_CEILING, HEADROOM, in_flight_cap
from batchgen.engine.admission import Admission
from batchgen.engine.outage import OutageGate
from batchgen.engine.ratecontrol import RateControl

__all__ = ["Throttle"]

T = TypeVar("T")
POLLS_PER_JOB = 1.5  # counted polls a job costs, for the cap when polls take rate tokens


class Throttle:
    def __init__(
        self,
        concurrency: int | None,
        rpm: int | None = None,
        *,
        window: float = 60.0,
        count_polls: bool = False,
        probe: bool = True,
        outage: OutagePolicy | None = None,
        on_outage: Callable[[str], None] | None = None,
        clock: Clock | None = None,
        ceiling: int = AUTO_CEILING,
        typical_seconds: float = 28.0,
        rpm_auto: bool = False,
        rpm_start: float | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.count_polls = count_polls
        self.auto = concurrency is None
        self.ceiling = ceiling
        self.rates = RateControl(rpm, window, self.clock, auto=rpm_auto, start=rpm_start)
        self._held = (typical_seconds * HEADROOM, 0.0)  # latency high, poll delay: the prior
        self.admission = Admission(concurrency or self._fitted(), probe=probe)
        self.gate = OutageGate(outage, self.clock, on_outage)
        self.acquire_slot = self.admission.acquire_slot
        self.release_slot = self.admission.release_slot
        self.probe_result = self.admission.probe_result
        self.on_rate_limited = self.rates.on_rate_limited
        self.outage_over = self.gate.outage_over

    def fit_concurrency(
        self, latency_high: float | None = None, poll_delay: float | None = None
    ) -> None:
        """Auto concurrency: resize the slots for the current rate and the latest latency
        figures (the poll plan's); an explicit concurrency never moves."""
        high, delay = self._held
        self._held = (
            high if latency_high is None else latency_high,
            delay if poll_delay is None else poll_delay,
        )
        if self.auto:
            self.admission.resize(self._fitted())

    def _fitted(self) -> int:
        rate = self.rates.rate
        if rate is None:
            return self.ceiling
        per_job = 1.0 + (POLLS_PER_JOB if self.count_polls else 0.0)
        jobs_per_second = rate / self.rates.window / per_job
        return in_flight_cap(jobs_per_second, *self._held, ceiling=self.ceiling)

    @property
    def circuit(self) -> Circuit:
        return self.gate.circuit

    @property
    def rate(self) -> float | None:
        return self.rates.rate

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
            await self.gate.passage(give_up=True)

    async def _take(self, *, give_up: bool) -> None:
        rates, probe = self.rates, False
        while True:
            probe = await self.gate.passage(give_up=give_up, holding=probe)
            await rates.wait_pause()
            limiter = rates.limiter
            if limiter is not None:
                await limiter.acquire()
            if limiter is not rates.limiter:
                continue  # the rate changed while we waited: queue at the new pace
            if self.circuit.is_open and not probe:
                continue  # the server went down while we waited: queue for a probe turn
            if self.clock.now() >= rates.pause_until:  # no 429 arrived while we waited
                break
        before = rates.rate
        rates.sent(self.clock.now())
        if rates.rate != before:
            self.fit_concurrency()

    async def submit(self, call: Awaitable[T]) -> T:
        """Send a submit (its token already taken): re-spaced, then watched.

        Between its token and the wire a submit waits for its ledger intent to be fsync'd, and
        group commit releases a whole batch of them at once: against a strict limit, sends
        bunched by a slow disk are a burst (the chaos soak saw 61 submits in a window of 50).
        A second pacer at the same rate spaces them again; when the disk is fast it never
        waits, so it costs no throughput."""
        await self.rates.space()
        return await self.watch(call, spaced=True)

    async def watch(self, call: Awaitable[T], *, spaced: bool = False) -> T:
        """Await an API call and tell the outage gate whether the server answered it, and the
        rate control whether a counted call was accepted. Polls that count against the limit
        share the submits' spacing."""
        counted = spaced or self.count_polls
        if counted and not spaced:
            await self.rates.space()
        learns = counted and self.rates.auto  # `--rpm auto` learns the limit from answers
        sent_at = self.clock.now() if learns else 0.0
        try:
            result = await call
        except ApiError as exc:
            self.gate.outcome(exc.status < 500)
            if learns and exc.status < 500:
                self.rates.answered(sent_at, refused=exc.status == 429)
            raise
        except TransportError:
            self.gate.outcome(False)
            raise
        self.gate.outcome(True)
        if learns:
            self.rates.answered(sent_at, refused=False)
        return result
