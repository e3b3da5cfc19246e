"""Run settings: how a manifest wants to be run (output folder, rate limit, budget, ...).

They live in the manifest so that an overnight run is reproducible from one file, and command-line
flags override them for one-off changes; `merge_settings` is that override, validated by the same
rules as the manifest so a bad flag fails as clearly as a bad YAML key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from batchgen.core.errors import BatchgenError
from batchgen.core.jobs import DEFAULT_NAME_TEMPLATE, name_template_problem
from batchgen.core.littles import AUTO_START_RPM
from batchgen.models.registry import ModelSchema, schema_for

__all__ = [
    "DEFAULT_MAX_JOBS",
    "SETTING_NAMES",
    "RunSettings",
    "SettingsError",
    "merge_settings",
    "setting_problem",
]

DEFAULT_MAX_JOBS: Final = 1_000_000


class SettingsError(BatchgenError, ValueError):
    """A run setting (from a flag or the Python API) has an unacceptable value."""


@dataclass(frozen=True)
class RunSettings:
    """How to run a manifest. Defaults are safe for Segmind's Free plan (5 requests/minute)."""

    output: str = "out"
    concurrency: int | str = "auto"  # "auto": rate x learned latency (`core.littles`)
    rpm: float | str = 5  # "auto": learn the plan's limit from 429s (`engine.ratecontrol`)
    count_polls: bool = False  # do status polls count against `rpm`? (undocumented: see docs)
    budget_usd: float | None = None  # stop submitting once this much would be spent
    price_per_image: float | None = None  # None: the model's published price
    max_jobs: int = DEFAULT_MAX_JOBS  # refuse manifests that expand to more jobs than this
    filename: str = DEFAULT_NAME_TEMPLATE
    mode: str = "queue"  # "queue": v2 submit + poll; "sync": one blocking v1 call per job
    folder_size: int = 10_000  # runs with more jobs put images in data/NNNNN/ of this many

    @property
    def fixed_rpm(self) -> float | None:
        """The rate limit the user set, or None for auto."""
        return None if isinstance(self.rpm, str) else self.rpm

    @property
    def planned_rpm(self) -> float:
        """The rate to plan on: the set one, or auto's starting rate (the lowest plan's)."""
        return AUTO_START_RPM if isinstance(self.rpm, str) else self.rpm

    @property
    def fixed_concurrency(self) -> int | None:
        """The in-flight cap the user set, or None for auto."""
        return self.concurrency if isinstance(self.concurrency, int) else None

    def price_for(self, schema: ModelSchema | None) -> float | None:
        """Price per image for estimates: the setting, else the model's, else unknown."""
        if self.price_per_image is not None:
            return self.price_per_image
        return schema.price_usd if schema is not None else None

    def price_of(self, model: str) -> float | None:
        """Price per image of a job of `model`: the setting, else that model's, else unknown."""
        return self.price_for(schema_for(model))


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


_RULES: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "output": (lambda x: isinstance(x, str) and bool(x.strip()), "a non-empty folder path"),
    "concurrency": (
        lambda x: x == "auto" or (_int(x) and 1 <= x <= 10_000),
        "'auto' or an integer from 1 to 10000",
    ),
    "rpm": (
        lambda x: x == "auto" or (_number(x) and x > 0),
        "'auto' or a number > 0 (requests per minute)",
    ),
    "count_polls": (lambda x: isinstance(x, bool), "true or false"),
    "budget_usd": (lambda x: x is None or (_number(x) and x >= 0), "a number >= 0 (dollars)"),
    "price_per_image": (lambda x: x is None or (_number(x) and x >= 0), "a number >= 0"),
    "max_jobs": (lambda x: _int(x) and x >= 1, "an integer >= 1"),
    "filename": (lambda x: isinstance(x, str), "a file name template such as '{id}.{ext}'"),
    "mode": (lambda x: x in ("queue", "sync"), "'queue' (v2 submit + poll) or 'sync' (v1)"),
    "folder_size": (lambda x: _int(x) and x >= 1, "an integer >= 1 (images per subfolder)"),
}

SETTING_NAMES: Final = frozenset(_RULES)


def setting_problem(name: str, value: Any) -> str | None:
    """Why `value` is not acceptable for setting `name`, or None."""
    ok, allowed = _RULES[name]
    if not ok(value):
        return f"must be {allowed}"
    if name == "filename":
        return name_template_problem(value)
    return None


def merge_settings(base: RunSettings, overrides: Mapping[str, Any]) -> RunSettings:
    """`base` with every non-None override applied (CLI flags over manifest values)."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(changes) - SETTING_NAMES)
    if unknown:
        raise SettingsError(f"unknown run setting(s): {', '.join(unknown)}")
    for name, value in changes.items():
        problem = setting_problem(name, value)
        if problem:
            raise SettingsError(f"{name} = {value!r}: {problem}")
    return dataclasses.replace(base, **changes)
