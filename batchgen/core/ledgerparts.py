"""Small readings of ledger lines for replay (`lifecycle.py`), kept apart to keep it short: the
checked stdlib parse, an `uploaded` record (a folder fact) and the other images of a several-image
`completed`."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["more_files", "parse_record", "upload_of"]


def upload_of(record: dict[str, Any]) -> tuple[str, str, str] | None:
    """(host, sha256, url) of an `uploaded` record (events.Uploaded), or None when malformed."""
    digest, url, host = record.get("sha256"), record.get("url"), record.get("host")
    if type(digest) is str and type(url) is str and url and type(host) is str:
        return host, digest, url
    return None


def more_files(files: Any) -> tuple[tuple[str, str], ...]:
    """(file, sha256) of images 1.. of a `completed` record's `files` (image 0 is its `file`)."""
    if type(files) is not list:
        return ()
    return tuple(
        (str(f.get("file")), str(f.get("sha256"))) for f in files[1:] if isinstance(f, dict)
    )


def parse_record(raw: bytes) -> dict[str, Any]:
    """`json.loads(raw)`, checked to be a ledger record (a dict with a text `event`).

    `replay` tries `orjson.loads` first (about twice as fast as the stdlib on ledger lines, and
    the parse is most of a replay). orjson is stricter than json.loads, never looser: valid UTF-8
    JSON only, no NaN, no BOM, 64-bit integers, no lone surrogates; what it accepts, json.loads
    reads as the same object. Everything it refuses comes here, so the verdict and the message
    are `json.loads`'s own (tests/test_lifecycle.py checks this on arbitrary byte edits).
    """
    record = json.loads(raw)
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        raise ValueError("not a ledger record")
    return record
