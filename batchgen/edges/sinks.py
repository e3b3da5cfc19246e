"""Image output: verify that bytes are the image asked for, then store them atomically.

A file under its final name is always complete: bytes go to a hidden temp file in the same
folder, are fsync'd, renamed over the final name, and the folder is fsync'd so the rename itself
survives a power cut. Resume trusts a file only with the sha256 the ledger recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import secrets
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiofiles
from PIL import Image

from batchgen.core.folder import METADATA_NAME, PART_SUFFIX
from batchgen.edges.crashpoints import crashpoint, fault

__all__ = [
    "ImageInfo",
    "InvalidImage",
    "MetadataWriter",
    "file_intact",
    "remove_partials",
    "store_atomic",
    "verify_image",
    "write_jsonl_atomic",
]

_FORMATS: Final = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif"}
EXTENSIONS: Final = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif"}


class InvalidImage(ValueError):
    """The bytes are not a complete image of an accepted format."""


@dataclass(frozen=True)
class ImageInfo:
    format: str  # png | jpeg | webp | gif
    width: int
    height: int
    sha256: str
    size: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def verify_image(data: bytes, expected: str | None = None) -> ImageInfo:
    """Decode `data` fully (truncation shows here) with Pillow's decompression-bomb guard on.

    `expected` (png|jpeg|webp) is the format the job asked for; a server that answers another
    format is reported rather than silently stored under the wrong extension.
    """
    if not data:
        raise InvalidImage("empty body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                fmt = _FORMATS.get(image.format or "")
                width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:  # fmt: skip
        raise InvalidImage(f"not a decodable image: {exc}") from None
    if fmt is None:
        raise InvalidImage("unsupported image format")
    if expected is not None and fmt != expected:
        raise InvalidImage(f"expected {expected}, got {fmt}")
    return ImageInfo(fmt, width, height, hashlib.sha256(data).hexdigest(), len(data))


async def store_atomic(path: Path, data: bytes, tag: str = "") -> None:
    """Write `data` to `path` so that `path` is either absent, old, or complete and durable.

    `tag` marks the temp file as this process's (a shard's), so `remove_partials(folder, tag)`
    in another shard sharing the folder leaves it alone.
    """
    folder = path.parent
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    temp = folder / f".{path.name}.{_temp_mark(tag)}{secrets.token_hex(4)}{PART_SUFFIX}"
    try:
        async with aiofiles.open(temp, "wb") as handle:
            fault("write", "image")  # test hooks, off in production (see crashpoints.py)
            await handle.write(data)
            await handle.flush()
            fault("fsync", "image")
            await asyncio.to_thread(os.fsync, handle.fileno())
        crashpoint("downloaded", path)
        await asyncio.to_thread(_publish, temp, path)
        crashpoint("renamed", path)
    except BaseException:
        await asyncio.to_thread(_discard, temp)
        raise


def _publish(temp: Path, path: Path) -> None:
    os.replace(temp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(temp: Path) -> None:
    temp.unlink(missing_ok=True)


class MetadataWriter:
    """Appends rows to `metadata.jsonl`; one open handle, rows written whole under a lock.

    Not fsync'd: the ledger is the durable record, and the metadata can be rebuilt from it.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / METADATA_NAME
        self._lock = asyncio.Lock()
        self._handle: Any = None

    async def __aenter__(self) -> MetadataWriter:
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._handle = await aiofiles.open(self.path, "a", encoding="utf-8")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            await self._handle.close()
            self._handle = None

    async def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
        async with self._lock:
            await self._handle.write(line)
            await self._handle.flush()


def file_intact(path: Path, sha256: str | None) -> bool:
    """True when `path` exists and hashes to `sha256` (what the ledger recorded for it)."""
    if sha256 is None:
        return False
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == sha256


def write_jsonl_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Replace `path` with these rows (temp file + fsync + rename); returns the row count."""
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
    count = 0
    try:
        with temp.open("w", encoding="utf-8") as handle:
            fault("write", "outputs")  # test hook, off in production (see crashpoints.py)
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temp, path)
    except BaseException:
        _discard(temp)
        raise
    return count


def _temp_mark(tag: str) -> str:
    return f"{tag}-" if tag else ""


def remove_partials(folder: Path, tag: str = "") -> int:
    """Delete temp files a killed run left behind (never visible under a final name).

    With a `tag`, only that process's (shards running at the same time share the folder).
    """
    count = 0
    if folder.is_dir():
        pattern = f".*.{_temp_mark(tag)}*{PART_SUFFIX}" if tag else f".*{PART_SUFFIX}"
        for temp in folder.rglob(pattern):
            _discard(temp)
            count += 1
    return count
