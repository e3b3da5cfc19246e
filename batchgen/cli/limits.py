"""Click types of the rate and in-flight limits: a number, or `auto` (learned while running)."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["CONCURRENCY", "RPM"]


class _AutoOrInt(click.ParamType[Any, Any]):
    """`auto`, or an integer >= 1."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is not 'auto' or an integer", param, ctx)
        if number < 1:
            self.fail(f"{number} is not >= 1", param, ctx)
        return number


class _AutoOrRate(click.ParamType[Any, Any]):
    """`auto`, or a number of requests a minute > 0."""

    name = "auto|RPM"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) or value == "auto":
            return value
        try:
            number = float(str(value))
        except ValueError:
            self.fail(f"{value!r} is not 'auto' or a number", param, ctx)
        if not number > 0:
            self.fail(f"{number:g} is not > 0", param, ctx)
        return number


CONCURRENCY = _AutoOrInt()
RPM = _AutoOrRate()
