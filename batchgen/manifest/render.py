"""One job's parameters: templates rendered against the merged values, then checked.

Both report through the `problem` callback of `Expander._jobs`, which knows where each value came
from (the entry, the sweep or the defaults) and so which line to name.
"""

from __future__ import annotations

from typing import Any

from batchgen.core.errors import NO_VALUE
from batchgen.core.jobs import canonical_json
from batchgen.core.templates import TemplateError, placeholders, render
from batchgen.manifest.entries import Entry
from batchgen.models.registry import ModelSchema

__all__ = ["render_params", "validate_params"]


def render_params(
    entry: Entry, merged: dict[str, Any], problem: Any
) -> tuple[dict[str, Any], set[str]]:
    rendered: dict[str, Any] = {}
    referenced: set[str] = set()
    for key, value in merged.items():
        if not isinstance(value, str) or (entry.literal and key in entry.params):
            rendered[key] = value
            continue
        try:
            names = placeholders(value)
            missing = [n for n in names if n not in merged]
            if missing:
                raise TemplateError(
                    f"uses template variable(s) {', '.join(missing)} that no sweep, "
                    "default or job defines"
                )
            rendered[key] = render(value, merged)
        except TemplateError as exc:
            problem(key, value, str(exc))
            rendered[key] = value
            continue
        referenced.update(names)
    return rendered, referenced


def validate_params(
    schema: ModelSchema | None,
    params: dict[str, Any],
    rendered: dict[str, Any],
    locate: Any,
    problem: Any,
) -> None:
    if schema is None:
        try:
            canonical_json(rendered)
        except (TypeError, ValueError) as exc:
            problem(None, NO_VALUE, f"values must be plain JSON data ({exc})")
        return
    for p in schema.validate(params):
        shared = locate(p.field)[2]
        value = p.value if p.field in params else NO_VALUE
        problem(p.field, value, p.message, shared=shared)
