"""Segmind's storage endpoint: `POST {upload}/upload-asset` turns local files into URLs.

The body is `{"data_urls": ["data:image/png;base64,...", ...]}` (several files per call); the
answer is `{"file_urls": [...]}` in the same order (some deployments say `urls`). An answer with
fewer URLs than files sent is an error that says so: pairing the rest by position could send a
job someone else's image. The key goes with the call (the upload host is trusted like the API);
retries are the engine's (`engine/uploading.py`), as for every other call.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Final, Protocol, runtime_checkable

from batchgen.core.errors import ApiError
from batchgen.core.wire import origin

__all__ = [
    "DEFAULT_UPLOAD_ROOT",
    "UPLOAD_DEADLINE",
    "Poster",
    "UploadShort",
    "data_url",
    "file_urls",
    "upload_files",
    "upload_root_for",
]

DEFAULT_UPLOAD_ROOT: Final = "https://workflows-api.segmind.com"
UPLOAD_DEADLINE: Final = 300.0  # seconds for one call: several images, base64, one way


@runtime_checkable
class Poster(Protocol):
    """What an upload needs from the transport (`client.ApiClient.post_json`)."""

    async def post_json(self, url: str, body: Any, deadline: float) -> tuple[int, Any]: ...


class UploadShort(ApiError):
    """The upload answered, but not with one URL per file sent (never retried: it stored them)."""


def upload_root_for(upload_url: str | None, api_root: str, *, api_given: bool) -> str:
    """Where uploads go: `--upload-url` if given; else the API's own origin when the API was
    pointed elsewhere (`--base-url`, `--emulator`); else Segmind's storage host."""
    if upload_url:
        return upload_url.rstrip("/")
    return origin(api_root) if api_given else DEFAULT_UPLOAD_ROOT


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def file_urls(body: Any, sent: int) -> list[str]:
    """The URLs of an upload answer, one per file sent; raises UploadShort otherwise."""
    urls = None
    if isinstance(body, dict):
        urls = body.get("file_urls", body.get("urls"))
    if not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
        raise UploadShort(200, f"the upload answer has no list of file_urls: {str(body)[:200]}")
    if len(urls) != sent:
        raise UploadShort(
            200, f"the upload answered {len(urls)} URL(s) for {sent} file(s) sent; none is used"
        )
    return list(urls)


async def upload_files(poster: Poster, root: str, files: Sequence[tuple[bytes, str]]) -> list[str]:
    """Upload `files` ((bytes, mime) each) in one call; their URLs in the same order."""
    body = {"data_urls": [data_url(data, mime) for data, mime in files]}
    _, answer = await poster.post_json(f"{root}/upload-asset", body, UPLOAD_DEADLINE)
    return file_urls(answer, len(files))
