"""`batchgen export DIR --parquet OUT`: the run's images and metadata as one Parquet file.

One file is easier to move, upload or load than tens of thousands of small ones. Images are
embedded as bytes in an `image` column (an edit's input in an `input` column) shaped like
`datasets`' Image feature ({bytes, path}), and the schema carries `datasets`' feature metadata,
so `load_dataset("parquet", ...)` gives decoded images and typed columns; any other Parquet
reader sees plain columns.

pyarrow is an optional extra (`batchgen[export]`): importing this module without it raises
ImportError, which the CLI turns into an install hint. Rows are written in batches so a large
run never sits in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-not-found,import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-not-found,import-untyped,unused-ignore]

from batchgen.views.rundata import RunData, image_path

__all__ = ["BATCH_ROWS", "write_parquet"]

BATCH_ROWS: Final = 256
# An edit job's input (metadata row `input_file_name`, its copy in the folder) becomes the
# `input` image column, as `datasets`' imagefolder names it from the same row.
INPUT_KEY: Final = "input_file_name"
INPUT_COLUMN: Final = "input"
_DTYPES: Final = {"int64": "int64", "double": "float64", "string": "string", "bool": "bool"}


def _rows(data: RunData) -> Iterator[dict[str, Any]]:
    for item in data.items:
        if item.state != "completed" or item.file is None:
            continue
        path = image_path(data.folder, item.file)
        if path is None or not path.is_file():
            continue
        row = dict(item.row)
        row["image"] = {"bytes": path.read_bytes(), "path": item.file}
        source = row.pop(INPUT_KEY, None)  # an edit's input: the second image column
        if isinstance(source, str):
            found = image_path(data.folder, source)
            if found is not None and found.is_file():
                row[INPUT_COLUMN] = {"bytes": found.read_bytes(), "path": source}
        yield row


def _schema(rows: list[dict[str, Any]], names: list[str]) -> pa.Schema:
    """Column types from all rows (images aside), plus the metadata that marks the images."""
    paired = INPUT_KEY in names
    names = [n for n in names if n != INPUT_KEY]
    table = pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows])
    table = table.append_column("image", pa.array([None] * len(rows), pa.null()))
    if paired:
        table = table.append_column(INPUT_COLUMN, pa.array([None] * len(rows), pa.null()))
    fields = []
    features: dict[str, Any] = {}
    for field in table.schema:
        if field.name in ("image", INPUT_COLUMN) and str(field.type) == "null":
            image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            field = pa.field(field.name, image)
            features[field.name] = {"_type": "Image"}
        else:
            dtype = _DTYPES.get(str(field.type))
            if dtype is None:  # nested or null: keep it as JSON text, readable anywhere
                field = pa.field(field.name, pa.string())
                dtype = "string"
            features[field.name] = {"dtype": dtype, "_type": "Value"}
        fields.append(field)
    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(fields, metadata=meta)


def _cast(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    out = {}
    for field in schema:
        value = row.get(field.name)
        if field.type == pa.string() and value is not None and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        elif field.type == pa.float64() and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[field.name] = value
    return out


def write_parquet(data: RunData, target: Path) -> int:
    """Write every completed image of `data` with its metadata row to `target`; returns the count.

    Column types come from all rows (the metadata rows are in memory already; only the image
    bytes are streamed); a value that does not fit its column raises rather than being dropped.
    """
    names: dict[str, None] = {}
    completed = [dict(item.row) for item in data.items if item.state == "completed"]
    for row in completed:
        names.update(dict.fromkeys(row))
    rows = _rows(data)
    head = [r for _, r in zip(range(BATCH_ROWS), rows, strict=False)]
    if not head:
        raise ValueError(f"no completed images in {data.folder} to export")
    schema = _schema(completed, list(names))
    count = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(target, schema) as writer:
        batch = head
        while batch:
            writer.write_table(pa.Table.from_pylist([_cast(r, schema) for r in batch], schema))
            count += len(batch)
            batch = [r for _, r in zip(range(BATCH_ROWS), rows, strict=False)]
    return count
