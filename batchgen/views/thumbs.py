"""Gallery thumbnails: made once per image with Pillow, then served from a cache.

The cache of a local folder is `DIR/.thumbs/` (one JPEG per image, named by a hash of its
path): a hidden folder of the dashboard's own, apart from everything a run owns. The dashboard
never writes the ledger, the images or the metadata; `datasets`' imagefolder skips hidden folders,
and `remove_partials` only removes `.*.part` files, which these are not. When the folder cannot
be written (read-only media) or the output is an object store, thumbnails are kept in memory
instead (bounded), so the page still works and DIR is left exactly as it was.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps

__all__ = ["THUMB_DIR", "THUMB_SIDE", "Thumbs", "thumbnail_jpeg"]

THUMB_DIR: Final = ".thumbs"
THUMB_SIDE: Final = 256
_MEMORY_BYTES: Final = 64 << 20


def thumbnail_jpeg(data: bytes, side: int = THUMB_SIDE) -> bytes | None:
    """A JPEG at most `side` px on its longer side, or None if `data` is not a readable image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            small = ImageOps.contain(image.convert("RGB"), (side, side))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


class Thumbs:
    """Thumbnails of the images `read` hands out (it returns None for anything not servable)."""

    def __init__(self, read: Callable[[str], bytes | None], folder: Path | None) -> None:
        self.read = read
        self.folder = folder / THUMB_DIR if folder is not None else None
        self.lock = threading.Lock()  # `get` runs in worker threads, two at a time
        self.memory: OrderedDict[str, bytes] = OrderedDict()
        self.memory_bytes = 0
        self.made = 0  # thumbnails encoded (a cache hit does not count)

    def get(self, relative: str) -> bytes | None:
        """The thumbnail of image `relative` (blocking: call it from a worker thread)."""
        key = hashlib.sha256(relative.encode("utf-8")).hexdigest()[:40]
        with self.lock:
            if key in self.memory:
                self.memory.move_to_end(key)
                return self.memory[key]
        target = self.folder / f"{key}.jpg" if self.folder is not None else None
        if target is not None and target.is_file():
            try:
                return target.read_bytes()
            except OSError:
                pass
        data = self.read(relative)
        small = thumbnail_jpeg(data) if data is not None else None
        if small is None:
            return None
        with self.lock:
            self.made += 1
        if target is None or not self._store(target, small):
            self._remember(key, small)
        return small

    def _store(self, target: Path, data: bytes) -> bool:
        temp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp")
        try:
            target.parent.mkdir(exist_ok=True)
            temp.write_bytes(data)
            os.replace(temp, target)
            return True
        except OSError:  # read-only media, a full disk: keep it in memory instead
            temp.unlink(missing_ok=True)
            self.folder = None
            return False

    def _remember(self, key: str, data: bytes) -> None:
        with self.lock:
            self._keep(key, data)

    def _keep(self, key: str, data: bytes) -> None:
        self.memory[key] = data
        self.memory_bytes += len(data)
        while self.memory_bytes > _MEMORY_BYTES and len(self.memory) > 1:
            _, old = self.memory.popitem(last=False)
            self.memory_bytes -= len(old)
