"""A run's first line: the limits in force and where each came from (flag, manifest, default),
so a run slower than expected is explained before anyone waits for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgen.manifest.loader import Manifest

__all__ = ["limits_line"]


def limits_line(
    manifest: Manifest, overrides: Mapping[str, Any], expected: tuple[float, str]
) -> str:
    """The first line of a run: the limits in force and where each came from (flag, manifest,
    default), so a slow run can be explained before it is waited for."""
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
        f"expect {seconds:g} s per image ({where})",
    ]
    if s.budget_usd is not None:
        parts.append(f"budget ${s.budget_usd:g} ({source('budget_usd')})")
    if s.mode == "sync":
        parts.append(f"mode sync ({source('mode')})")
    return "limits: " + ", ".join(parts)
