"""Sweeps: the grid of parameter combinations a manifest asks for, counted before it is built.

A sweep is a list of axes. A plain key (`guidance: [3, 5, 7]`) is an axis of its own; a `zip`
group (`zip: {prompt: [...], negative_prompt: [...]}`) pairs equal-length lists element-wise into
one axis. Combinations are the cartesian product of the axes in the order they are written, the
first axis varying slowest (like nested for-loops), so the job order is predictable.

The size is a product of lengths, known before anything is expanded: a typo that would create
10⁹ jobs is refused arithmetically, not after filling memory.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from batchgen.core.errors import NO_VALUE, ManifestProblem, ProblemLog
from batchgen.manifest.yamlload import LineDict, LineList

__all__ = ["GLOB_KEY", "ZIP_KEY", "Axis", "Sweep", "glob_points", "parse_sweep"]

ZIP_KEY: Final = "zip"
GLOB_KEY: Final = "glob"
MAX_GLOB_FILES: Final = 1_000_000


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: each point sets every key in `keys` (several for a zip)."""

    keys: tuple[str, ...]
    points: tuple[tuple[Any, ...], ...]
    lines: tuple[int, ...]  # YAML line of each point


@dataclass(frozen=True)
class Sweep:
    """The whole grid; an empty sweep has exactly one (empty) combination."""

    axes: tuple[Axis, ...] = ()

    @property
    def size(self) -> int:
        """Number of combinations, computed without expanding."""
        return math.prod(len(a.points) for a in self.axes)

    @property
    def keys(self) -> frozenset[str]:
        """Every key some combination sets."""
        return frozenset(k for a in self.axes for k in a.keys)

    def combinations(self) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        """Each combination as (values by key, YAML line by key), first axis slowest."""
        indexed = [range(len(a.points)) for a in self.axes]
        for choice in itertools.product(*indexed):
            values: dict[str, Any] = {}
            lines: dict[str, int] = {}
            for axis, i in zip(self.axes, choice, strict=True):
                for key, value in zip(axis.keys, axis.points[i], strict=True):
                    values[key] = value
                    lines[key] = axis.lines[i]
            yield values, lines


def _points(value: Any, line: int) -> tuple[list[Any], list[int]]:
    if isinstance(value, LineList):
        return list(value), list(value.item_lines)
    return [value], [line]  # a single value is a one-point axis (handy for a template)


def parse_sweep(data: Any, file: str, line: int, log: ProblemLog) -> Sweep:
    """Build a Sweep from the manifest's `sweep:` mapping, recording every problem in `log`."""

    def problem(at: int, field: str, value: Any, message: str) -> None:
        log.add(ManifestProblem(file, at, None, field, value, message))

    if not isinstance(data, LineDict):
        problem(line, "sweep", data, "must be a mapping of parameter names to lists of values")
        return Sweep()
    axes: list[Axis] = []
    for key, value in data.items():
        at = data.line_of(key)
        if key == ZIP_KEY:
            groups = value if isinstance(value, LineList) else [value]
            for group in groups:
                axis = _zip_axis(group, at, file, log)
                if axis is not None:
                    axes.append(axis)
            continue
        if not isinstance(key, str):
            problem(at, str(key), NO_VALUE, "sweep keys must be names")
            continue
        if isinstance(value, LineDict) and GLOB_KEY in value:
            files = glob_points(value, file, at, f"sweep.{key}", log)
            if files:
                axes.append(Axis((key,), tuple((f,) for f in files), (at,) * len(files)))
            continue
        points, lines = _points(value, at)
        if not points:
            problem(at, f"sweep.{key}", value, "is an empty list: the sweep would make no jobs")
            continue
        axes.append(Axis((key,), tuple((p,) for p in points), tuple(lines)))
    return Sweep(tuple(axes))


def glob_points(value: LineDict, file: str, line: int, field: str, log: ProblemLog) -> list[str]:
    """`{glob: "inputs/*.png"}`: the matching files, sorted, as paths relative to the manifest's
    folder (so the jobs' values, and the manifest, stay movable). A pattern that matches nothing
    is a problem: a typo would otherwise run an empty (or smaller) batch."""
    pattern = value.get(GLOB_KEY)
    extra = sorted(str(k) for k in value if k != GLOB_KEY)
    if extra or not isinstance(pattern, str) or not pattern.strip():
        message = "must be {glob: 'folder/*.png'}: one pattern relative to the manifest's folder"
        log.add(ManifestProblem(file, line, None, field, dict(value), message))
        return []
    base = Path(file).parent
    if Path(pattern).is_absolute():
        found = sorted(p for p in Path(pattern).parent.glob(Path(pattern).name) if p.is_file())
        names = [str(p) for p in found]
    else:
        names = sorted(p.relative_to(base).as_posix() for p in base.glob(pattern) if p.is_file())
    if not names:
        message = f"matches no file (looked in {base / pattern})"
        log.add(ManifestProblem(file, line, None, field, pattern, message))
    elif len(names) > MAX_GLOB_FILES:
        message = f"matches {len(names):,} files, more than {MAX_GLOB_FILES:,}"
        log.add(ManifestProblem(file, line, None, field, pattern, message))
        return []
    return names


def _zip_axis(group: Any, line: int, file: str, log: ProblemLog) -> Axis | None:
    def problem(field: str, value: Any, message: str) -> None:
        log.add(ManifestProblem(file, line, None, field, value, message))

    if not isinstance(group, LineDict) or not group:
        problem("sweep.zip", group, "must be a mapping of names to equal-length lists")
        return None
    columns: dict[str, list[Any]] = {}
    lines: list[int] = []
    for key, value in group.items():
        if not isinstance(value, LineList) or not value:
            problem(f"sweep.zip.{key}", value, "must be a non-empty list")
            return None
        columns[str(key)] = list(value)
        lines = lines or list(value.item_lines)
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        problem("sweep.zip", NO_VALUE, f"lists must have the same length to be paired: {shown}")
        return None
    points = tuple(zip(*columns.values(), strict=True))
    return Axis(tuple(columns), points, tuple(lines))
