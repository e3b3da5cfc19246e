"""What the catalogue holds and how it fails: its row (`Entry`), its errors, its default place.

Apart from `catalog.py` (the SQLite file itself) so the reuse step and the CLI can name them
without the database code; `catalog.py` exports them too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from batchgen.core.errors import BatchgenError

__all__ = ["CATALOG_ENV", "CatalogError", "CatalogUnavailable", "Entry", "default_catalog_path"]

CATALOG_ENV: Final = "BATCHGEN_CATALOG"


class CatalogError(BatchgenError, ValueError):
    """The catalogue cannot be used as it is (damaged, another version, unwritable): exit 3."""


class CatalogUnavailable(CatalogError):
    """The catalogue file cannot be opened or written here (permissions, locked, no space)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One image in the catalogue: whose fingerprint, where it is, what it was."""

    fingerprint: bytes
    location: str  # a folder path or a store URL (no credentials)
    file: str  # relative to `location`
    sha256: str
    size: int | None = None
    request_id: str | None = None
    cost: float | None = None  # what the server charged for it, if it said
    created: float = 0.0  # epoch seconds
    job: str | None = None  # its job id in that folder
    inference: float | None = None  # the server's inference_time, seconds (for its metadata row)
    index: int = 0  # its place among its job's images (`{id}-{k}.{ext}`: k)
    images: int | None = 1  # how many images its job stored; None: unknown (an older catalogue)

    @property
    def where(self) -> str:
        return f"{self.location.rstrip('/')}/{self.file}"


def default_catalog_path(env: Mapping[str, str] | None = None) -> Path | None:
    """$BATCHGEN_CATALOG, else $XDG_CACHE_HOME/batchgen/, else ~/.cache/batchgen/catalog.sqlite.

    `BATCHGEN_CATALOG=off` (or `none`) turns the catalogue off: None.
    """
    env = os.environ if env is None else env
    chosen = env.get(CATALOG_ENV)
    if chosen is not None and chosen.strip():
        return None if chosen.strip().lower() in ("off", "none") else Path(chosen).expanduser()
    cache = env.get("XDG_CACHE_HOME") or ""
    root = Path(cache) if cache.strip() else Path.home() / ".cache"
    return root / "batchgen" / "catalog.sqlite"
