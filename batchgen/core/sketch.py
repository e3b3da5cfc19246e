"""Latency percentiles in fixed memory: exact while small, a log-bucket sketch past that.

A run keeps the latency of every finished job only to report p50/p95 at the end, and a
million-job run would hold millions of doubles (24 bytes a job for three series). A sketch of
logarithmic buckets (DDSketch's rule: bucket k holds values in (g^(k-1), g^k], g = (1+a)/(1-a))
answers any quantile within a relative error `a` (1 %), and the number of buckets is bounded by
the range of values, not the count: 1 µs to 11 days is under 1,400 buckets. Runs of up to
`EXACT` samples keep them all, so small runs (and their tests) report exact nearest-rank values.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterator
from typing import Final

__all__ = ["EXACT", "LatencySketch"]

EXACT: Final = 1024  # samples kept as they are before the sketch takes over
ACCURACY: Final = 0.01
_GAMMA: Final = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA: Final = math.log(_GAMMA)
_TINY: Final = 1e-6  # seconds; at or below this a value counts as zero


class LatencySketch:
    """Seconds per job: `append`, `len`, `quantile` (nearest rank, 0-100)."""

    __slots__ = ("_buckets", "_count", "_exact", "_zeros")

    def __init__(self) -> None:
        self._exact: array[float] | None = array("d")
        self._buckets: Counter[int] = Counter()
        self._zeros = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[float]:
        """The exact samples while there are few, else each bucket's representative value."""
        if self._exact is not None:
            yield from self._exact
            return
        yield from (0.0 for _ in range(self._zeros))
        for k in sorted(self._buckets):
            value = _value(k)
            yield from (value for _ in range(self._buckets[k]))

    def append(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            return
        self._count += 1
        if self._exact is not None:
            self._exact.append(seconds)
            if len(self._exact) > EXACT:
                exact, self._exact = self._exact, None
                for x in exact:
                    self._add(x)
            return
        self._add(seconds)

    def _add(self, seconds: float) -> None:
        if seconds <= _TINY:
            self._zeros += 1
        else:
            self._buckets[math.ceil(math.log(seconds) / _LOG_GAMMA)] += 1

    def quantile(self, q: float) -> float | None:
        """The q-th percentile (nearest rank), exact up to `EXACT` samples, else within 1 %."""
        if not self._count:
            return None
        rank = max(1, math.ceil(q / 100 * self._count))
        if self._exact is not None:
            return sorted(self._exact)[rank - 1]
        seen = self._zeros
        if rank <= seen:
            return 0.0
        for k in sorted(self._buckets):
            seen += self._buckets[k]
            if rank <= seen:
                return _value(k)
        return _value(max(self._buckets))

    @property
    def buckets(self) -> int:
        """Memory in use, in buckets (or exact samples while small)."""
        return len(self._exact) if self._exact is not None else len(self._buckets)


def _value(k: int) -> float:
    """The representative of bucket k: within ACCURACY of every value in it."""
    return 2 * _GAMMA**k / (_GAMMA + 1)
