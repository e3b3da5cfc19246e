"""Two small readings of ledger lines for replay (`lifecycle.py`), kept apart to keep it short:
an `uploaded` record (a folder fact) and the other images of a several-image `completed`."""

from __future__ import annotations

from typing import Any

__all__ = ["more_files", "upload_of"]


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
