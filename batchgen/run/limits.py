"""A run's first line: the limits in force and where each came from (flag, manifest, default),
so a run slower than expected is explained before anyone waits for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgen.manifest.loader import Manifest

__all__ = ["limits_line"]


def limits_line(
    manifest: Manifest,
    overrides: Mapping[str, Any],
    expected: tuple[float, str],
    by_model: Mapping[str, float] | None = None,
) -> str:
    """The first line of a run: the limits in force and where each came from (flag, manifest,
    default), so a slow run can be explained before it is waited for. `by_model`: each model's
    expected seconds, when the run has several (each is polled on its own plan)."""
    s = manifest.settings

    def source(name: str) -> str:
        if overrides.get(name) is not None:
            return "flag"
        return "manifest" if name in manifest.settings_in_file else "default"

    polls = "counted" if s.count_polls else "not counted"
    seconds, where = expected
    parts = [
        f"rpm {s.rpm if isinstance(s.rpm, str) else format(s.rpm, 'g')} ({source('rpm')})",
        f"concurrency {s.concurrency} ({source('concurrency')})",
        f"polls {polls} ({source('count_polls')})",
        f"expect {_expected(seconds, where, by_model)}",
    ]
    if s.budget_usd is not None:
        parts.append(f"budget ${s.budget_usd:g} ({source('budget_usd')})")
    if s.mode == "sync":
        parts.append(f"mode sync ({source('mode')})")
    return "limits: " + ", ".join(parts)


def _expected(seconds: float, where: str, by_model: Mapping[str, float] | None) -> str:
    """'28 s per image (default: qwen-image's typical time)', or each model's when they differ."""
    if not by_model or len(set(by_model.values())) < 2:
        return f"{seconds:g} s per image ({where})"
    each = ", ".join(f"{by_model[m]:g} s {m}" for m in sorted(by_model, key=by_model.__getitem__))
    source = where if where == "flag" or "emulator" in where else "default: each model's table"
    return f"{each} per image ({source})"
