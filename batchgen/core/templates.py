"""Prompt templates: `"a {animal} in {style}"`, filled from swept or defined variables.

The syntax is Python's `str.format` restricted to plain names (`{animal}`, `{guidance:.1f}`);
`{{` and `}}` write literal braces. Attribute access, indexing and positional fields are refused:
a manifest is data, and `{0.__class__}` has no business in it. So are widths or precisions of
1000 and more: `{animal:>999999999}` is a one-line manifest that asks for a gigabyte per job.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["MAX_SPEC_DIGITS", "TemplateError", "placeholders", "render", "spec_problem"]

MAX_SPEC_DIGITS = 3  # widths and precisions up to 999: enough for any zero-padding


class TemplateError(ValueError):
    """A template that cannot be parsed or filled; the message says why."""


@lru_cache(maxsize=1024)
def placeholders(text: str) -> tuple[str, ...]:
    """The variable names `text` refers to, in order of first use ('' has none)."""
    if "{" not in text and "}" not in text:
        return ()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        msg = f"is not a valid template ({exc}); write {{{{ and }}}} for literal braces"
        raise TemplateError(msg) from exc
    names: list[str] = []
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise TemplateError(f"has placeholder {{{name}}}: placeholders must be plain names")
        if spec and "{" in spec:
            raise TemplateError(f"has a nested placeholder in {{{name}:{spec}}}")
        if spec and (problem := spec_problem(spec)):
            raise TemplateError(f"has {{{name}:{spec}}}, which {problem}")
        if name not in names:
            names.append(name)
    return tuple(names)


def spec_problem(spec: str) -> str | None:
    """Why a format spec is refused (a width or precision of 1000 or more), or None."""
    if re.search(rf"\d{{{MAX_SPEC_DIGITS + 1}}}", spec):
        return "pads or rounds to 1000 characters or more"
    return None


def render(text: str, variables: Mapping[str, Any]) -> str:
    """`text` with its placeholders filled from `variables` (all must be present)."""
    if not placeholders(text):
        return text
    try:
        return text.format_map(variables)
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"cannot be filled ({exc})") from exc
