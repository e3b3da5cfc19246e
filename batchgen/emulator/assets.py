"""Uploaded assets: what `POST /upload-asset` stores, and which input URLs the emulator accepts.

Uploads are content the client sends as data URLs; each gets its own URL (as Segmind's storage
gives a new one per upload) while the counters group them by content sha256, so a test can see
a client that uploads the same file twice. The emulator never fetches the network: an image
input is usable only if it is one of these assets, on this server's own origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["Asset", "AssetStore", "UploadError", "parse_data_url"]

# Extensions of the asset URLs, by the data URL's media type (others are stored as .bin).
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*;base64,")
_PATH = re.compile(r"^/assets/(?P<id>[0-9a-f]{32})\.(?P<ext>[a-z0-9]+)$")


class UploadError(ValueError):
    """A data URL that cannot be stored; the message names which one and why."""


@dataclass(frozen=True)
class Asset:
    asset_id: str
    data: bytes
    mime: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.asset_id}.{_EXTENSIONS.get(self.mime, 'bin')}"


def parse_data_url(text: object, index: int) -> tuple[bytes, str]:
    """(content, media type) of `data:<type>;base64,<data>`; UploadError otherwise."""
    if not isinstance(text, str):
        raise UploadError(f"data_urls[{index}] must be a string")
    match = _DATA_URL.match(text)
    if match is None:
        raise UploadError(f"data_urls[{index}] is not a base64 data URL (data:<type>;base64,...)")
    try:
        data = base64.b64decode(text[match.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise UploadError(f"data_urls[{index}] has invalid base64") from None
    if not data:
        raise UploadError(f"data_urls[{index}] is empty")
    return data, (match["mime"] or "application/octet-stream").lower()


class AssetStore:
    """Stored uploads by id, and the upload counters by content."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._assets: dict[str, Asset] = {}
        self._sequence = 0
        self.by_content: Counter[str] = Counter()  # sha256 -> times uploaded
        self.calls = 0  # POST /upload-asset requests that stored something

    def put(self, data: bytes, mime: str) -> Asset:
        self._sequence += 1
        asset_id = hashlib.sha256(f"{self._seed}:asset:{self._sequence}".encode()).hexdigest()
        digest = hashlib.sha256(data).hexdigest()
        asset = Asset(asset_id[:32], data, mime, digest)
        self._assets[asset.asset_id] = asset
        self.by_content[digest] += 1
        return asset

    def get(self, asset_id: str) -> Asset | None:
        return self._assets.get(asset_id)

    def resolve(self, url: object, origin: str) -> Asset | None:
        """The asset `url` names if it is one of ours on `origin`, else None (unreachable)."""
        if not isinstance(url, str) or not url.startswith(origin + "/"):
            return None
        path = url[len(origin) :]
        match = _PATH.match(path)
        if match is None:
            return None
        asset = self._assets.get(match["id"])
        if asset is None or asset.file_name != path.removeprefix("/assets/"):
            return None
        return asset

    def counts(self) -> dict[str, int]:
        uploads = sum(self.by_content.values())
        distinct = len(self.by_content)
        return {
            "upload_calls": self.calls,
            "uploads": uploads,
            "uploads_distinct": distinct,
            "uploads_duplicate": uploads - distinct,
        }
