"""Contact sheets, planned: which image goes in which cell of an X/Y grid. Pure, no I/O.

A sweep is read with the eyes (the AUTOMATIC1111 X/Y plot): one axis per swept parameter, every
other parameter held still. When other parameters vary too and `--where` does not pin them, the
grid is tiled into one panel per combination of them, each titled with its values, rather than
silently showing one combination; past `max_panels` it is an error that lists what varies.

Values are compared the way job ids compare them (`canonical_json`): guidance 4 and 4.0 are one
column. Numbers are sorted; other values keep the order in which the run first met them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from batchgen.core.jobs import canonical_json
from batchgen.models.registry import did_you_mean
from batchgen.views.rundata import Item

__all__ = [
    "DEFAULT_MAX_PANELS",
    "Cell",
    "GridError",
    "GridPlan",
    "Panel",
    "parse_where",
    "plan_grid",
    "show_value",
]

DEFAULT_MAX_PANELS: Final = 16
INPUT_AXIS: Final = "input"  # an edit's input (views/rundata.params_of): shown as an image too
INPUT_LABEL: Final = "(input)"
_ABSENT: Final = "\x00absent"  # the key of a parameter a job did not set


class GridError(ValueError):
    """The grid asked for cannot be drawn from this run; the message says what to change."""


@dataclass(frozen=True)
class Cell:
    status: Literal["image", "failed", "missing"]
    file: str | None = None
    error: str | None = None
    job_id: str | None = None
    more: int = 0  # other jobs with exactly these parameters (e.g. repeats): not shown


@dataclass(frozen=True)
class Panel:
    fixed: tuple[tuple[str, Any], ...]  # the other varying parameters, as set in this panel
    rows: tuple[tuple[Cell, ...], ...]  # rows[y index][x index]


@dataclass(frozen=True)
class GridPlan:
    x: str
    y: str
    xs: tuple[Any, ...]
    ys: tuple[Any, ...]
    panels: tuple[Panel, ...]
    where: tuple[tuple[str, Any], ...]  # the pinned parameters
    constant: tuple[tuple[str, Any], ...]  # parameters with one value across the grid

    def count(self, status: str) -> int:
        return sum(c.status == status for p in self.panels for row in p.rows for c in row)


def show_value(value: Any) -> str:
    """A value as a person types it in `--where` (4 not 4.0, true not True)."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return canonical_json(value) if not isinstance(value, float) else _number(value)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _key(params: dict[str, Any], name: str) -> str:
    return canonical_json(params[name]) if name in params else _ABSENT


def parse_where(texts: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """`PARAM=VALUE` strings as pairs; raises GridError for one without '='."""
    pairs = []
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise GridError(f"--where {text!r}: expected PARAM=VALUE, e.g. --where seed=1")
        pairs.append((name.strip(), value))
    return tuple(pairs)


def plan_grid(
    items: Sequence[Item],
    x: str,
    y: str,
    where: Sequence[tuple[str, str]] = (),
    *,
    max_panels: int = DEFAULT_MAX_PANELS,
) -> GridPlan:
    """Place `items` on an x by y grid (tiled by what else varies); raises GridError."""
    if not items:
        raise GridError("no finished jobs in this folder yet: nothing to put in a grid")
    rows = [(item, item.params) for item in items]
    known = _names(p for _, p in rows)
    for name, flag in ((x, "--x"), (y, "--y"), *((n, "--where") for n, _ in where)):
        if name not in known:
            raise GridError(
                f"{flag} {name!r}: no job has this parameter{did_you_mean(name, tuple(known))}; "
                f"parameters in this run: {', '.join(known)}"
            )
    if x == y:
        raise GridError(f"--x and --y are both {x!r}: pick two different parameters")
    pinned: list[tuple[str, Any]] = []
    for name, text in where:
        rows, value = _pin(rows, name, text)
        pinned.append((name, value))
    xs, ys = _axis(rows, x), _axis(rows, y)
    others = [n for n in known if n not in (x, y) and len({_key(p, n) for _, p in rows}) > 1]
    skip = {x, y, *others, *(n for n, _ in pinned)}
    constant = tuple((n, rows[0][1][n]) for n in known if n not in skip and n in rows[0][1])
    groups: dict[tuple[str, ...], list[tuple[Item, dict[str, Any]]]] = {}
    for item, params in rows:
        groups.setdefault(tuple(_key(params, n) for n in others), []).append((item, params))
    if len(groups) > max_panels:
        raise GridError(_too_many(others, rows, len(groups), x, y, max_panels))
    panels = tuple(_panel(members, others, x, xs, y, ys) for members in groups.values())
    if INPUT_AXIS in (x, y):
        panels = tuple(_with_inputs(p, rows, x == INPUT_AXIS, xs if x == INPUT_AXIS else ys)
                       for p in panels)  # fmt: skip
        if x == INPUT_AXIS:
            ys = [(_ABSENT + "input", INPUT_LABEL), *ys]
        else:
            xs = [(_ABSENT + "input", INPUT_LABEL), *xs]
    values = tuple(v for _, v in xs), tuple(v for _, v in ys)
    return GridPlan(x, y, *values, panels, tuple(pinned), constant)


def _with_inputs(
    panel: Panel, rows: list[tuple[Item, dict[str, Any]]], across: bool,
    axis: list[tuple[str, Any]],
) -> Panel:  # fmt: skip
    """`panel` with the input images themselves as a first row (`--x input`: a column per
    input, its outputs below it) or a first column (`--y input`: its outputs beside it)."""
    files: dict[str, str] = {}
    for item, params in rows:
        copy = item.row.get("input_file_name")
        if isinstance(copy, str):
            files.setdefault(_key(params, INPUT_AXIS), copy)
    inputs = tuple(
        Cell("image", file=files[key]) if key in files else Cell("missing") for key, _ in axis
    )
    if across:
        return Panel(panel.fixed, (inputs, *panel.rows))
    return Panel(
        panel.fixed, tuple((cell, *row) for cell, row in zip(inputs, panel.rows, strict=True))
    )


def _names(params: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for p in params:
        seen.update(dict.fromkeys(p))
    return list(seen)


def _pin(
    rows: list[tuple[Item, dict[str, Any]]], name: str, text: str
) -> tuple[list[tuple[Item, dict[str, Any]]], Any]:
    values = {_key(p, name): p.get(name) for _, p in rows}
    found = [k for k, v in values.items() if _matches(v, text, k == _ABSENT)]
    if not found and text:  # a long prompt may be given by its start
        found = [k for k, v in values.items() if isinstance(v, str) and v.startswith(text)]
        if len(found) > 1:
            raise GridError(f"--where {name}={text}: {len(found)} values start with that")
    if found:
        return [(i, p) for i, p in rows if _key(p, name) == found[0]], values[found[0]]
    shown = ", ".join(sorted({show_value(v) for v in values.values()}))
    raise GridError(f"--where {name}={text}: no job has that value; {name} is one of: {shown}")


def _matches(value: Any, text: str, absent: bool) -> bool:
    if absent:
        return text in ("", "(none)")
    if show_value(value) == text:
        return True
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return not isinstance(parsed, str) and canonical_json(parsed) == canonical_json(value)


def _axis(rows: list[tuple[Item, dict[str, Any]]], name: str) -> list[tuple[str, Any]]:
    """The (key, value) pairs of parameter `name`: numbers sorted, then the rest as first met."""
    seen: dict[str, Any] = {}
    for _, p in rows:
        seen.setdefault(_key(p, name), p.get(name))

    def numeric(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    numbers = sorted(((k, v) for k, v in seen.items() if numeric(v)), key=lambda kv: kv[1])
    return [*numbers, *((k, v) for k, v in seen.items() if not numeric(v))]


def _panel(
    members: list[tuple[Item, dict[str, Any]]],
    others: list[str],
    x: str,
    xs: list[tuple[str, Any]],
    y: str,
    ys: list[tuple[str, Any]],
) -> Panel:
    first = members[0][1]
    fixed = tuple((n, first.get(n)) for n in others)
    spots: dict[tuple[str, str], list[Item]] = {}
    for item, params in members:
        spots.setdefault((_key(params, x), _key(params, y)), []).append(item)
    grid = tuple(tuple(_cell(spots.get((xk, yk), [])) for xk, _ in xs) for yk, _ in ys)
    return Panel(fixed, grid)


def _cell(found: list[Item]) -> Cell:
    if not found:
        return Cell("missing")
    best = next((i for i in found if i.state == "completed"), found[0])
    more = len(found) - 1
    if best.state == "completed":
        return Cell("image", file=best.file, job_id=best.job_id, more=more)
    return Cell("failed", error=best.error, job_id=best.job_id, more=more)


def _too_many(
    others: list[str],
    rows: list[tuple[Item, dict[str, Any]]],
    panels: int,
    x: str,
    y: str,
    max_panels: int,
) -> str:
    lines = [
        f"besides {x} and {y}, these parameters vary ({panels} combinations, more panels than "
        f"--max-panels {max_panels}); pin them with --where PARAM=VALUE (a text value may be "
        "given by its start) or raise --max-panels:"
    ]
    for name in others:
        values = list(dict.fromkeys(show_value(p.get(name)) for _, p in rows))
        shown = ", ".join(_short(v) for v in values[:6]) + (" …" if len(values) > 6 else "")
        lines.append(f"  {name} ({len(values)} values): {shown}")
    return "\n".join(lines)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
