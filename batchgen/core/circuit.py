"""Telling an outage from a flaky call, as a pure state machine (times are passed in).

Per-call backoff is right for a stray 5xx, wrong for a server that is down: with C jobs in flight
each retrying on its own schedule, the run keeps sending C requests per backoff period into a
dead server, and every job spends its retry budget on the server's problem and fails one by one.
So the run watches the answers of all API calls together:

* closed (normal): every call goes; `threshold` failed calls in a row (5xx or no answer, across
  all jobs, with no answer in between) open the circuit;
* open (outage): one probe at a time, the gaps between probes growing from `probe_base` to
  `probe_cap` seconds; the first call the server answers closes it, and everyone goes again.
  Failures while it is open are excused: they spend neither a job's attempts nor its retry time;
* an outage that lasts more than `patience` seconds stops the run (a rerun resumes) instead of
  holding thousands of jobs forever.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Circuit", "OutagePolicy"]

MAX_EXCUSED = 4096  # streaks remembered (a few per job in flight per outage)
LEASE_GAPS = 6  # probe gaps a probe may stay out (hung) before the next one may go


@dataclass(frozen=True)
class OutagePolicy:
    threshold: int = 5  # failed calls in a row that mean "the server is down"
    probe_base: float = 1.0  # seconds to the first probe
    probe_cap: float = 10.0  # longest gap between probes: how late a recovery may be noticed
    patience: float = 1800.0  # seconds of outage before the run stops

    def scaled(self, factor: float) -> OutagePolicy:
        """The same policy with time compressed by `factor` (tests, the emulator's fast minute)."""
        return replace(
            self,
            probe_base=self.probe_base * factor,
            probe_cap=self.probe_cap * factor,
            patience=self.patience * factor,
        )


class Circuit:
    def __init__(self, policy: OutagePolicy | None = None) -> None:
        self.policy = policy or OutagePolicy()
        self.failures = 0  # in a row, across all calls
        self.opened_at: float | None = None
        self.outages: list[tuple[float, float]] = []  # past outages, [from, to)
        self._next_probe = 0.0
        self._probes = 0
        self._probe_sent: float | None = None  # when the probe now out was let through
        self._excused: dict[float, int] = {}  # streak start -> failures excused in it

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def failure(self, now: float) -> bool:
        """A call got a 5xx or no answer. True when this one opened the circuit."""
        self.failures += 1
        self._probe_sent = None  # an answer (or none): the probe, if it was one, is back
        if self.opened_at is None and self.failures >= self.policy.threshold:
            self.opened_at = now
            self._probes = 0
            self._next_probe = now + self.policy.probe_base
            return True
        return False

    def success(self, now: float) -> bool:
        """The server answered a call (any status below 500). True when this closed it."""
        self.failures = 0
        self._probe_sent = None
        if self.opened_at is None:
            return False
        self.outages.append((self.opened_at, now))
        self.opened_at = None
        return True

    def permit(self, now: float) -> float:
        """0 when a call may go now (taking the probe turn when open), else seconds to wait."""
        if self.opened_at is None:
            return 0.0
        lease = LEASE_GAPS * self.policy.probe_cap  # a probe that never reports back frees it
        if self._probe_sent is not None and now < self._probe_sent + lease:
            # One probe at a time: a hung probe must not be joined by another every gap. Look
            # again soon: its failure frees the turn before the lease ends.
            return min(self.policy.probe_base, self._probe_sent + lease - now)
        if now < self._next_probe:
            return self._next_probe - now
        self._probe_sent = now
        self._probes += 1
        gap = min(self.policy.probe_cap, self.policy.probe_base * 2.0**self._probes)
        self._next_probe = now + gap
        return 0.0

    def down_for(self, now: float) -> float:
        """Seconds the current outage has lasted (0 when the server is up)."""
        return 0.0 if self.opened_at is None else now - self.opened_at

    def over_patience(self, now: float) -> bool:
        return self.down_for(now) > self.policy.patience

    def excuse(self, streak: float) -> bool:
        """A call of the failure streak that began at `streak` failed: if the server is down,
        remember it as not the job's failure and return True."""
        if self.opened_at is None:
            return False
        if len(self._excused) >= MAX_EXCUSED:
            del self._excused[next(iter(self._excused))]  # the oldest streak
        self._excused[streak] = self._excused.get(streak, 0) + 1
        return True

    def charged(self, attempt: int, streak: float, now: float) -> tuple[int, float]:
        """(attempts, seconds) of a failure streak that count against its retry bounds: those
        spent while the server was down do not."""
        attempts = max(1, attempt - self._excused.get(streak, 0))
        down = sum(_overlap(a, b, streak, now) for a, b in self.outages)
        if self.opened_at is not None:
            down += _overlap(self.opened_at, now, streak, now)
        return attempts, max(0.0, now - streak - down)


def _overlap(a: float, b: float, start: float, end: float) -> float:
    return max(0.0, min(b, end) - max(a, start))
