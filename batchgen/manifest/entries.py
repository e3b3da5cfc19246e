"""Entries: one job as written in a manifest (a YAML `jobs:` item or a JSONL row), before expansion.

The shapes and per-job keys that both the manifest loader and the two expansion paths (the
general `Expander` and the plain-JSONL fast path in `plainrows`) agree on live here, below both,
so neither path imports the other and a row is labelled and checked the same way by each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from batchgen.core.errors import NO_VALUE, ManifestProblem, ProblemLog

__all__ = [
    "ABSENT",
    "ENTRY_KEYS",
    "MAX_REPEAT",
    "Entry",
    "RawRow",
    "entry_from",
    "model_problem",
    "row_label",
]

ENTRY_KEYS: Final = frozenset({"id", "model", "repeat"})  # per-job keys that are not API params
MAX_REPEAT: Final = 100_000
_MODEL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
ABSENT: Final = object()


@dataclass(frozen=True)
class Entry:
    """One job as written (a `jobs:` item or a JSONL row), before defaults, sweep and repeat."""

    params: dict[str, Any]
    file: str
    line: int
    label: str
    key_lines: Mapping[str, int] = field(default_factory=dict)
    literal: bool = False  # JSONL values are data: never treated as templates
    id: Any = ABSENT
    model: str | None = None
    repeat: int | None = None
    columns: frozenset[str] = frozenset()  # an input dataset's own columns (manifest/datasets.py)


# A JSONL row as read: (file, line, parsed object). Rows reach the Expander in this raw form so
# that a plain million-row file (no defaults, no sweep) needs no per-row `Entry` object.
RawRow = tuple[str, int, dict[str, Any]]


def row_label(line: int, obj: Mapping[str, Any]) -> str:
    """How problems name a JSONL row: its id when it has one, else its line."""
    return repr(obj["id"]) if "id" in obj else f"row {line}"


def model_problem(value: Any) -> str | None:
    """Why `value` cannot name a model (it becomes part of the request URL), or None."""
    if isinstance(value, str) and _MODEL_RE.fullmatch(value) and ".." not in value:
        return None
    return "must be a model name such as 'qwen-image' (letters, digits, '.', '_', '-', '/')"


def entry_from(
    obj: Mapping[Any, Any],
    *,
    file: str,
    line: int,
    label: str,
    key_lines: Mapping[Any, int] | None,
    literal: bool,
    log: ProblemLog,
) -> Entry | None:
    """Split a raw job mapping into its per-job keys and params; None when unusable."""
    lines = key_lines or {}
    ok = True

    def problem(key: str, value: Any, message: str) -> None:
        nonlocal ok
        ok = False
        log.add(ManifestProblem(file, lines.get(key, line), label, key, value, message))

    params: dict[str, Any] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            problem(str(key), NO_VALUE, "keys must be strings")
        elif key not in ENTRY_KEYS:
            params[key] = value
    model = obj.get("model")
    if model is not None and model_problem(model):
        problem("model", model, model_problem(model) or "")
    repeat = obj.get("repeat")
    if repeat is not None and not (
        isinstance(repeat, int) and not isinstance(repeat, bool) and 1 <= repeat <= MAX_REPEAT
    ):
        problem("repeat", repeat, f"must be an integer from 1 to {MAX_REPEAT}")
    if not ok:
        return None
    return Entry(
        params=params,
        file=file,
        line=line,
        label=label,
        key_lines={str(k): v for k, v in lines.items()},
        literal=literal,
        id=obj.get("id", ABSENT),
        model=model,
        repeat=repeat,
    )
