"""Rate control: the pace of counted requests, how 429s move it, and 429 pauses.

* Pace: the clock's `Pacer` (aiolimiter's leaky bucket) handing out one token every
  window/rpm seconds. That paces requests evenly, so no window ever sees more than `rpm` of
  them — a bucket of `rpm` tokens would allow `rpm` at once plus `rpm` more within one window.
  The bucket holds an eighth of a token more (`LATE_CREDIT`): a send that comes late (the
  event loop was busy when its turn came) is made up by the next ones; without it each late
  wake-up was lost for good, 10 % of the rate at 50 sends a second, 1-2 % at 8. The pace is
  slowed by that eighth per window, so a window holds no more than it did without.
* 429: every counted request waits until the server's reset time; when 429s are a quarter or more
  of a window's requests the rate drops (x0.75, at most once per window), and after a quiet
  window it climbs back (x1.1 per window) towards the configured limit. Without a configured
  limit, the first such drop starts from the rate actually achieved. A 429 without a reset time
  costs the refused request its next token when paced; unpaced, a second of the window's minute.
* Auto (`--rpm auto`, the plan's limit unknown): start at the lowest documented rate
  (`AUTO_START`, the Free plan's 5/min) and double it after each quiet window (slow start) until
  the first 429; then settle just under what the server accepted (answered, not merely sent)
  in the window before the request it refused (`AUTO_BACKOFF` of it), pausing until the reset
  time it gave, and from there add one request per quiet window up to that accepted rate
  (`known`), never past it (additive increase, multiplicative decrease). 429s within a window
  of a rise are counted apart (`probe_refusals`): the price of learning the limit, not a fault.
* Spacing: a submit waits for its ledger fsync between its token and the wire; a second pacer at
  the same rate (`space`) spaces those sends again (group commit releases them in batches).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from batchgen.core.clock import Clock, Pacer
from batchgen.core.littles import AUTO_START_RPM

__all__ = ["RateControl"]

SAFETY: Final = 1.02  # pace 2% under the limit: clock skew and network jitter eat margins
# The credit a pacer holds for sends that went late (a busy loop, a timer's wake-up), in
# intervals: the next sends make it up, where without it every later send would lose it. The
# pace is slowed by as much (credit / window), so a window holds no more sends than without.
LATE_CREDIT: Final = 1 / 8
DECREASE: Final = 0.75
INCREASE: Final = 1.1
QUIET: Final = 1.0  # windows without a rate change before the rate rises again
CONGESTION: Final = 0.25  # share of 429s among a window's requests that means "over the limit"
AUTO_START: Final = AUTO_START_RPM  # requests a minute: Segmind's lowest documented plan
AUTO_BACKOFF: Final = 0.95  # of the accepted rate, after a 429 in auto mode


class RateControl:
    def __init__(
        self,
        rpm: float | None,
        window: float,
        clock: Clock,
        *,
        auto: bool = False,
        start: float | None = None,
    ) -> None:
        self.auto = auto
        self.ceiling = None if auto else (float(rpm) if rpm else None)  # never exceeded
        self.window = window
        self.clock = clock
        # current requests per window; auto: from a rate a past run learned, else the lowest
        self.rate: float | None = (start or AUTO_START) if auto else self.ceiling
        self.widening = auto and start is None  # slow start until the first 429
        self.probe_refusals = 0  # 429s met while widening (auto)
        self.known: float | None = start if auto else None  # auto: the rate the server allowed
        self._last_raise = -float("inf")
        self.limiter = self._pacer()
        self.spacer = self._pacer()  # re-spaces counted sends just before the wire
        self.pause_until = 0.0
        self._last_change = -float("inf")  # of the rate, down or up
        # fixed rate: 429 and send times within the last window, for the share refused
        self._refused: deque[float] = deque()
        self._recent: deque[float] = deque()
        # auto: wire times of counted requests the server accepted (the last two windows), and
        # of the latest it refused; what the limit is learned from
        self._accepted: deque[float] = deque()
        self._refused_sent: float | None = None

    async def wait_pause(self) -> None:
        # A later 429 may extend the pause while we sleep, hence the loop.
        while (delay := self.pause_until - self.clock.now()) > 0:
            await self.clock.sleep(delay)

    def sent(self, now: float) -> None:
        """A counted request got its token at `now`."""
        if not self.auto:  # auto learns from answers (`answered`), not from sends
            self._recent.append(now)
            _trim(self._recent, now - self.window)
        self._maybe_raise(now)

    async def space(self) -> None:
        # The rate changed while we waited: the old spacer's turn does not count, or its queue
        # and the new one's would both send, at two paces at once.
        while (spacer := self.spacer) is not None:
            await spacer.acquire()
            if spacer is self.spacer:
                return

    def answered(self, sent_at: float, *, refused: bool) -> None:
        """Auto: the server answered a counted request put on the wire at `sent_at`.

        The limit is learned from these, not from the sends: a request still in flight when a
        429 arrives may be refused too, so counting sends overstated the limit by the requests
        in flight (51 or 52 learned against 50 on a loaded machine)."""
        if refused:
            self._refused_sent = sent_at
            return
        self._accepted.append(sent_at)
        _trim(self._accepted, self.clock.now() - 2 * self.window)

    def on_rate_limited(self, wait: float | None, *, counted: bool = True) -> float:
        """A 429 arrived; returns how long the refused request should wait.

        For a request that counts against the shared limit (`counted`), every counted request
        pauses until the server's reset time, and the rate drops when 429s are a sizeable share
        of what was sent in the last window: that is a limit we are hitting, while a stray 429
        (a flaky gateway) only costs its own wait. A request that does not count (a poll, when
        polls are free) just waits itself.
        """
        now = self.clock.now()
        told = wait is not None
        if wait is None:  # no reset time from the server: one pacing interval, or a second
            wait = self.window / self.rate if self.rate else self.window / 60
        if not counted:
            return wait
        if self.auto:
            return self._auto_refused(now, wait, told)
        if told or self.limiter is None:
            # Everyone waits for a reset time the server gave. Without one, a paced run's next
            # token is wait enough (pausing all would cost a token per 429, the chaos soak's
            # 10 % of them a tenth of its throughput); an unpaced one must pause.
            self.pause_until = max(self.pause_until, now + wait)
        self._refused.append(now)
        _trim(self._refused, now - self.window)
        _trim(self._recent, now - self.window)
        share = len(self._refused) / max(1, len(self._recent))
        if share >= CONGESTION and now - self._last_change >= self.window:
            achieved = max(1.0, float(len(self._recent)))
            self._set_rate(max(1.0, (self.rate or achieved) * DECREASE), now)
        return wait

    def _auto_refused(self, now: float, wait: float, told: bool) -> float:
        """Auto: a 429 says where the limit is. Settle just under what the server accepted in
        the last window (at most once a window: the requests already paced at the old rate
        are refused too), and wait for the reset time."""
        self.pause_until = max(self.pause_until, now + wait) if told else self.pause_until
        if self.widening or now - self._last_raise < self.window:
            self.probe_refusals += 1
        if now - self._last_change < self.window / 2 and not self.widening:
            return wait
        edge = now if self._refused_sent is None else self._refused_sent
        accepted = max(1.0, float(self._accepted_before(edge)))
        self.known = accepted
        self.widening = False
        self._set_rate(max(1.0, min(self.rate or accepted, accepted) * AUTO_BACKOFF), now)
        return wait

    def _accepted_before(self, edge: float) -> int:
        """Accepted requests sent within the window before `edge` (a refused one's send): what
        the server let through just before it refused, so at most its limit. Answers still on
        their way are missed, which errs under the limit, the safe side."""
        return sum(1 for sent in self._accepted if edge - self.window < sent < edge)

    def _maybe_raise(self, now: float) -> None:
        """After a quiet window, climb back towards the configured limit (or without bound);
        auto: double while widening, else one more request a window."""
        if self.rate is None or now - self._last_change < QUIET * self.window:
            return
        if self.auto:
            if self.widening:
                self._raise(self.rate * 2, now)
            elif self.known is not None and self.rate < self.known:
                self._raise(min(self.known, self.rate + 1), now)
            return
        if self.ceiling is not None and self.rate >= self.ceiling:
            return
        raised = self.rate * INCREASE
        self._set_rate(raised if self.ceiling is None else min(self.ceiling, raised), now)

    def _raise(self, rate: float, now: float) -> None:
        self._last_raise = now
        self._set_rate(rate, now)

    def _set_rate(self, rate: float, now: float) -> None:
        self.rate = rate
        self._last_change = now
        self.limiter, self.spacer = self._pacer(), self._pacer()

    def _pacer(self) -> Pacer | None:
        if self.rate is None:
            return None
        interval = self.window / self.rate * SAFETY
        credit = interval * LATE_CREDIT
        # Paced that much slower, so no window holds more sends than with no credit at all.
        return self.clock.pacer(interval * (1 + credit / self.window), credit)


def _trim(times: deque[float], horizon: float) -> None:
    while times and times[0] <= horizon:
        times.popleft()
