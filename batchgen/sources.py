"""Reading manifest files: the only file I/O of the manifest layer.

YAML manifests are small and read whole. JSONL files may hold a million jobs, so they are read as
a generator of (line number, object), one line in memory at a time. Both report undecodable bytes
and syntax errors as `ManifestProblem`s with the line, instead of raising mid-way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from batchgen.errors import NO_VALUE, ManifestProblem, ProblemLog
from batchgen.yamlload import load_yaml

__all__ = ["iter_jsonl", "read_yaml"]


def _problem(file: str, line: int | None, message: str) -> ManifestProblem:
    return ManifestProblem(file, line, None, None, NO_VALUE, message)


def _open_error(file: str, exc: OSError) -> ManifestProblem:
    return _problem(file, None, f"cannot be read: {exc.strerror or exc}")


def read_yaml(path: Path, file: str, log: ProblemLog) -> Any:
    """The parsed YAML document at `path`, or None after recording why it is unusable."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        log.add(_open_error(file, exc))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        log.add(_problem(file, line, f"is not UTF-8 text (byte {raw[exc.start]:#04x})"))
        return None
    try:
        data, duplicates = load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where: int | None = mark.line + 1 if mark is not None else None
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        log.add(_problem(file, where, f"is not valid YAML: {what}"))
        return None
    except yaml.YAMLError as exc:
        log.add(_problem(file, None, f"is not valid YAML: {exc}"))
        return None
    for key, first, again in duplicates:
        log.add(
            ManifestProblem(
                file, again, None, str(key), NO_VALUE, f"is given twice (also on line {first})"
            )
        )
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a key is repeated: name the first repeat
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {key!r} is given twice")
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_reject_constant)
_LINE_ENDS = ("\n", "\r\n")


def _parse_object(text: str) -> dict[str, Any] | str:
    """The JSON object on one line, or why it is not one."""
    # Fast path for the usual line, `{...}` then at most a line break: exactly what decode()
    # returns for it, without its two whitespace scans. Anything else takes decode() below.
    try:
        obj, end = _DECODER.raw_decode(text)
    except ValueError:
        pass
    else:
        if isinstance(obj, dict) and (end == len(text) or text[end:] in _LINE_ENDS):
            return obj
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON: {exc.msg} (column {exc.colno})"
    except ValueError as exc:
        return f"is not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return 'must be a JSON object such as {"prompt": "..."}'
    return obj


def iter_jsonl(path: Path, file: str, log: ProblemLog) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each non-blank line of `path` as (line number, JSON object); bad lines go to `log`."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        log.add(_open_error(file, exc))
        return
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                log.add(_problem(file, number, f"is not UTF-8 text (byte {raw[exc.start]:#04x})"))
                continue
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            parsed = _parse_object(text)
            if isinstance(parsed, str):
                log.add(_problem(file, number, parsed))
                continue
            yield number, parsed
