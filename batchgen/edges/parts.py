"""Large runs split into subfolders of at most `folder_size` images, each a loadable dataset.

Tens of thousands of files in one folder are slow to list, to copy and to browse, and the
Hugging Face Hub limits files per folder (10,000). A run with more jobs than `folder_size` puts
its images into `data/00000/`, `data/00001/`, …; small runs stay flat (`{id}.{ext}` in DIR).

Which part an image goes to is decided when it is written (`PartAllocator.take`): the lowest
part with room, counted from the ledger's recorded files, so a resumed or grown run never
overfills a folder, and the path is recorded in the ledger like any other.

`datasets`' imagefolder reads every `metadata.jsonl` under the folder it is given, each one's
`file_name` relative to it. So each part gets its own `metadata.jsonl` (loadable alone) and DIR's
own lists only the images directly in DIR (loading DIR reads them all, none twice). All of them
must have the same columns and types, or `datasets` refuses to combine them: rows are written
with the union of keys, and a numeric column holding any float holds floats everywhere.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final

from batchgen.core.folder import METADATA_NAME, PART_ROOT, PART_SUFFIX
from batchgen.edges.sinks import write_jsonl_atomic

__all__ = [
    "DEFAULT_FOLDER_SIZE",
    "PartAllocator",
    "count_parts",
    "part_index",
    "part_of",
    "write_metadata",
]

DEFAULT_FOLDER_SIZE: Final = 10_000
_PART_RE: Final = re.compile(rf"({PART_ROOT}/(?:\d+-of-\d+/)?\d{{5}})/(.+)")


def part_of(file_name: str) -> tuple[str, str] | None:
    """("data/00003", "name.png") for a file inside a part (a shard's: "data/1-of-4/00003"),
    else None."""
    match = _PART_RE.fullmatch(file_name)
    return (match.group(1), match.group(2)) if match else None


def part_index(file_name: str) -> int | None:
    """The number of the part a recorded file is in (3 for "data/00003/x.png"), else None."""
    found = part_of(file_name)
    return int(found[0].rsplit("/", 1)[1]) if found is not None else None


def count_parts(files: Iterable[str]) -> Counter[int]:
    """How many of `files` each part holds: what `PartAllocator` starts from."""
    return Counter(index for f in files if (index := part_index(f)) is not None)


class PartAllocator:
    """Hands out part folders, each at most `size` images, lowest first. Not thread-safe: one
    event loop calls `take` with no await between the check and the count. `counts`: the images
    each part already holds (`count_parts` of the ledger's recorded files)."""

    def __init__(
        self, size: int, counts: Mapping[int, int] | None = None, root: str = PART_ROOT
    ) -> None:
        if size < 1:
            raise ValueError("folder_size must be >= 1")
        self.size = size
        self.root = root  # a shard's own, "data/I-of-N": shards count only their own images
        self._counts: dict[int, int] = dict(counts or {})
        self._next = 0

    def take(self) -> str:
        """The folder (relative to DIR) for the next image; counts it."""
        while self._counts.get(self._next, 0) >= self.size:
            self._next += 1
        self._counts[self._next] = self._counts.get(self._next, 0) + 1
        return f"{self.root}/{self._next:05d}"


def write_metadata(out_dir: Path, rows: Callable[[], Iterator[dict[str, Any]]]) -> None:
    """Rebuild DIR/metadata.jsonl, and each part's own when the run has parts.

    `rows` is called once (flat runs: the file is exactly as before) or twice (runs with parts:
    a first pass learns the columns and their types, a second writes the files).
    """
    target = out_dir / METADATA_NAME
    if not (out_dir / PART_ROOT).is_dir():
        write_jsonl_atomic(target, rows())
        return
    keys: dict[str, None] = {}
    floats: set[str] = set()
    for row in rows():
        keys.update(dict.fromkeys(row))
        floats.update(k for k, v in row.items() if type(v) is float)
    handles: dict[str, tuple[Path, IO[str]]] = {}
    try:
        for row in rows():
            found = part_of(str(row.get("file_name", "")))
            folder, name = found if found is not None else ("", row.get("file_name"))
            if folder not in handles:
                path = out_dir / folder / METADATA_NAME
                temp = path.parent / f".{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
                handles[folder] = (path, temp.open("w", encoding="utf-8"))
            line = _normalized(row, name, keys, floats)
            handles[folder][1].write(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            handles[folder][1].write("\n")
        for path, handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(handle.name, path)
    finally:
        for _, handle in handles.values():
            handle.close()
            Path(handle.name).unlink(missing_ok=True)
    if "" not in handles:  # every image is in a part: a stale DIR list would repeat them
        target.unlink(missing_ok=True)


def _normalized(
    row: dict[str, Any], name: Any, keys: dict[str, None], floats: set[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        value = row.get(key)
        if key == "file_name":
            value = name
        elif key in floats and type(value) is int:
            value = float(value)
        out[key] = value
    return out
