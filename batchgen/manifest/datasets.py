"""Input datasets: a manifest's `inputs:` turns a folder or table of images into jobs, one a row.

    inputs: {imagefolder: photos/}                      # every image of the folder, sorted;
                                                        # photos/metadata.jsonl (optional, keyed
                                                        # by file_name) adds columns per image
    inputs: {file: products.parquet, image_column: path}   # or a .jsonl; paths are relative
                                                            # to that file's folder
    slot: image          # (inside `inputs`) the model's image slot; default: its first one

Each row is a job entry: the image goes to the slot, and every other column becomes a job field:
a model parameter (say `prompt`) is sent, any other column is a template variable (`{caption}`)
and is recorded in the row's metadata with the input. Defaults, sweep and repeat apply to every
row as they do to `jobs:` entries, so `sweep: {prompt: [...]}` gives rows x prompts jobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from batchgen.core.errors import NO_VALUE, ManifestProblem, ProblemLog
from batchgen.manifest.entries import ENTRY_KEYS, Entry
from batchgen.manifest.sources import iter_jsonl
from batchgen.manifest.yamlload import LineDict
from batchgen.models.registry import schema_for

__all__ = ["DATASET_KEYS", "IMAGE_SUFFIXES", "dataset_entries"]

DATASET_KEYS: Final = frozenset({"imagefolder", "file", "image_column", "slot"})
IMAGE_SUFFIXES: Final = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
_METADATA: Final = "metadata.jsonl"
_SHAPE: Final = "must be {imagefolder: DIR} or {file: F, image_column: C}"
_NOT_A_PATH: Final = "must be an image path (the dataset's image_column)"

Row = tuple[str, int, str, dict[str, Any]]  # (file, line, image path, other columns)


def dataset_entries(
    manifest: Path, value: Any, line: int, model: str, log: ProblemLog
) -> list[Entry]:
    """The entries of the manifest's `inputs:` mapping (problems logged, naming `line`)."""
    file = str(manifest)

    def problem(field: str, bad: Any, message: str) -> list[Entry]:
        log.add(ManifestProblem(file, line, None, field, bad, message))
        return []

    if not isinstance(value, LineDict) or not ({"imagefolder", "file"} & set(value)):
        return problem("inputs", NO_VALUE, _SHAPE)
    unknown = sorted(str(k) for k in value if k not in DATASET_KEYS)
    if unknown:
        allowed = ", ".join(sorted(DATASET_KEYS))
        return problem("inputs", unknown, f"has unknown key(s); allowed: {allowed}")
    schema = schema_for(model)
    if schema is None or not schema.slots:
        return problem("inputs", NO_VALUE, f"{model} takes no image input (text-only or unknown)")
    slot = value.get("slot", next(iter(schema.slots)))
    if slot not in schema.slots:
        slots = ", ".join(schema.slots)
        return problem("inputs.slot", slot, f"is not an image slot of {model}: {slots}")
    many = schema.slots[slot].many
    base = manifest.parent
    if "imagefolder" in value:
        rows = _imagefolder(base / str(value["imagefolder"]), file, line, log)
    else:
        column = value.get("image_column")
        if not isinstance(column, str):
            return problem("inputs.image_column", column, "must name the column of image paths")
        rows = _table(base / str(value["file"]), column, file, line, log)
    entries = []
    for where, at, path, columns in rows:
        clash = sorted(set(columns) & ENTRY_KEYS)
        if clash:
            message = "a dataset column cannot set id, model or repeat"
            log.add(ManifestProblem(where, at, None, clash[0], columns[clash[0]], message))
            continue
        params = {**columns, slot: [path] if many else path}
        entry = Entry(params, where, at, Path(path).name, literal=True, columns=frozenset(columns))
        entries.append(entry)
    if not entries and not log:
        problem("inputs", NO_VALUE, "has no images")
    return entries


def _imagefolder(folder: Path, file: str, line: int, log: ProblemLog) -> list[Row]:
    if not folder.is_dir():
        log.add(
            ManifestProblem(file, line, None, "inputs.imagefolder", str(folder), "is not a folder")
        )
        return []
    columns: dict[str, tuple[int, dict[str, Any]]] = {}
    meta = folder / _METADATA
    if meta.is_file():
        for at, obj in iter_jsonl(meta, str(meta), log):
            name = obj.get("file_name")
            if not isinstance(name, str):
                message = "each metadata.jsonl row needs its file_name"
                log.add(ManifestProblem(str(meta), at, None, "file_name", NO_VALUE, message))
                continue
            columns[name] = (at, {k: v for k, v in obj.items() if k != "file_name"})
    images = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    rows: list[Row] = []
    for image in images:
        name = image.relative_to(folder).as_posix()
        at, extra = columns.get(name, (line, {}))
        rows.append((str(meta) if name in columns else file, at, str(image), extra))
    return rows


def _table(path: Path, column: str, file: str, line: int, log: ProblemLog) -> list[Row]:
    if not path.is_file():
        log.add(ManifestProblem(file, line, None, "inputs.file", str(path), "does not exist"))
        return []
    records: Iterator[tuple[int, Mapping[str, Any]]]
    if path.suffix.lower() == ".parquet":
        records = _parquet(path)
    else:
        records = iter_jsonl(path, str(path), log)
    rows: list[Row] = []
    for at, obj in records:
        value = obj.get(column)
        if not isinstance(value, str) or not value.strip():
            shown = value if column in obj else NO_VALUE
            log.add(ManifestProblem(str(path), at, None, column, shown, _NOT_A_PATH))
            continue
        extra = {k: v for k, v in obj.items() if k != column}
        rows.append((str(path), at, str(path.parent / value), extra))
    return rows


def _parquet(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Rows of a Parquet file, numbered from 1 (pyarrow: the `export` extra)."""
    import pyarrow.parquet as pq  # type: ignore[import-not-found,import-untyped,unused-ignore]

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield number, {k: _plain(v) for k, v in row.items()}


def _plain(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value
