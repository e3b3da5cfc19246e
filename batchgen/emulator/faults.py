"""Seeded fault injection: which request gets which fault, decided without I/O.

Each route has its own random stream, so adding traffic on one route does not shift the faults
drawn on another, and a failing seed replays the same decisions for the same request order.
"""

from __future__ import annotations

import random
from collections import Counter

from batchgen.emulator.config import ROUTES, FaultRule

__all__ = ["FaultPlan"]


class FaultPlan:
    def __init__(self, rules: tuple[FaultRule, ...], seed: int) -> None:
        self._rules = {r: [rule for rule in rules if r in rule.routes()] for r in ROUTES}
        self._rng = {r: random.Random(f"{seed}:{r}") for r in ROUTES}
        self._used: Counter[FaultRule] = Counter()

    def draw(self, route: str) -> str | None:
        """The fault to inject into this request to `route`, or None."""
        rules = self._rules.get(route)
        if not rules:
            return None
        roll = self._rng[route].random()
        edge = 0.0
        for rule in rules:
            if rule.limit is not None and self._used[rule] >= rule.limit:
                continue  # spent: as if the rule were gone
            edge += rule.probability
            if roll < edge:
                self._used[rule] += 1
                return rule.kind
        return None
