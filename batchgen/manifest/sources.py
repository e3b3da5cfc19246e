"""Reading manifest files: the only file I/O of the manifest layer.

YAML manifests are small and read whole. JSONL files may hold a million jobs, so they are read as
a generator of (line number, object), one line in memory at a time. Both report undecodable bytes
and syntax errors as `ManifestProblem`s with the line, instead of raising mid-way.

Input may be hostile or broken, so nothing here is unbounded: a YAML file is refused by its size
before it is read (`MAX_YAML_BYTES`), and a JSONL line longer than `MAX_LINE_BYTES` is refused
after reading that much of it and skipping the rest in chunks: a 100 MB line costs 1 MB of memory.
Nesting too deep for the parsers is a problem on its line, never a RecursionError traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import yaml

from batchgen.core.errors import NO_VALUE, ManifestProblem, ProblemLog
from batchgen.manifest.yamlload import MAX_DEPTH, LineDict, LineList, YamlLimit, load_yaml

__all__ = ["MAX_LINE_BYTES", "MAX_YAML_BYTES", "TOO_BIG", "iter_jsonl", "read_yaml"]

MAX_YAML_BYTES: Final = 16 * 1024 * 1024  # large job lists belong in a JSONL `jobs_file`
MAX_LINE_BYTES: Final = 1024 * 1024  # one job; a prompt is a few hundred bytes
_SKIP_CHUNK: Final = 1 << 16
TOO_BIG: Final = (
    f"is larger than {MAX_YAML_BYTES // 2**20} MiB, the limit for a YAML manifest "
    "(put long job lists in a JSONL file and name it in `jobs_file`)"
)
# "\ud800" parses (JSON and YAML escapes) to a lone surrogate, which no UTF-8 encoder accepts:
# found here, it is a problem on its line, not a UnicodeEncodeError when the job id is hashed.
_SURROGATE: Final = "contains an escaped lone UTF-16 surrogate (such as \\ud800): not valid text"
_ESCAPED_SURROGATE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _problem(file: str, line: int | None, message: str) -> ManifestProblem:
    return ManifestProblem(file, line, None, None, NO_VALUE, message)


def _open_error(file: str, exc: OSError) -> ManifestProblem:
    return _problem(file, None, f"cannot be read: {exc.strerror or exc}")


def read_yaml(path: Path, file: str, log: ProblemLog) -> Any:
    """The parsed YAML document at `path`, or None after recording why it is unusable."""
    try:
        if path.stat().st_size > MAX_YAML_BYTES:  # a regular file: refused unread
            log.add(_problem(file, None, TOO_BIG))
            return None
        with path.open("rb") as handle:  # a pipe or a device (/dev/zero) has no size: bound it
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        log.add(_open_error(file, exc))
        return None
    if len(raw) > MAX_YAML_BYTES:
        log.add(_problem(file, None, TOO_BIG))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        log.add(_problem(file, line, f"is not UTF-8 text (byte {raw[exc.start]:#04x})"))
        return None
    try:
        data, duplicates = load_yaml(text)
    except YamlLimit as exc:
        mark = exc.problem_mark
        log.add(_problem(file, mark.line + 1 if mark else None, f"is refused: it {exc.problem}"))
        return None
    except yaml.reader.ReaderError as exc:  # a control character such as NUL: name its line
        line = text.count("\n", 0, exc.position) + 1
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "byte"
        log.add(_problem(file, line, f"is not valid YAML: {what} is not allowed in YAML text"))
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where: int | None = mark.line + 1 if mark is not None else None
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        log.add(_problem(file, where, f"is not valid YAML: {what}"))
        return None
    except yaml.YAMLError as exc:
        log.add(_problem(file, None, f"is not valid YAML: {exc}"))
        return None
    bad_text = _surrogate_line(data, 1)
    if bad_text is not None:
        log.add(_problem(file, bad_text, _SURROGATE))
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
    except (ValueError, RecursionError):
        pass
    else:
        if isinstance(obj, dict) and (end == len(text) or text[end:] in _LINE_ENDS):
            return obj
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON: {exc.msg} (column {exc.colno})"
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's guard against quadratic parsing
            return f"has an integer of more than {sys.get_int_max_str_digits()} digits"
        return f"is not valid JSON: {exc}"
    except RecursionError:
        return f"is nested deeper than {MAX_DEPTH} levels"
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
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                _skip_line(handle)
                log.add(_problem(file, number, f"is longer than {MAX_LINE_BYTES:,} bytes"))
                continue
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
            if not isinstance(parsed, str) and _too_deep(text, parsed):
                parsed = f"is nested deeper than {MAX_DEPTH} levels"
            if (
                not isinstance(parsed, str)
                and _ESCAPED_SURROGATE.search(text)
                and _surrogate_line(parsed, number) is not None
            ):
                parsed = _SURROGATE
            if isinstance(parsed, str):
                log.add(_problem(file, number, parsed))
                continue
            yield number, parsed


def _too_deep(text: str, obj: Any) -> bool:
    """True when `obj` nests past MAX_DEPTH, as YAML may not either: deeper values would pass
    here and then fail where the ledger is read back. Counting brackets first keeps the usual
    flat row at C speed."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    level: list[tuple[Any, int]] = [(obj, 1)]
    while level:
        value, depth = level.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        level.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _surrogate_line(data: Any, line: int) -> int | None:
    """The line of the first string (key or value) in `data` that is not encodable text."""
    stack: list[tuple[Any, int]] = [(data, line)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return at
        elif isinstance(value, dict):
            lines = value.key_lines if isinstance(value, LineDict) else {}
            for key, item in value.items():
                where = lines.get(key, at)
                stack.extend(((key, where), (item, where)))
        elif isinstance(value, list):
            rows = value.item_lines if isinstance(value, LineList) else []
            stack.extend((item, rows[i] if i < len(rows) else at) for i, item in enumerate(value))
    return None


def _skip_line(handle: Any) -> None:
    """Read to the end of the current line in bounded chunks, keeping none of it."""
    while chunk := handle.readline(_SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return
