"""Segmind's storage endpoint on the emulator's own origin: `POST /upload-asset`, and the assets.

The body is `{"data_urls": ["data:image/png;base64,...", ...]}`; the answer is
`{"file_urls": [...], "message": ...}` in request order (as the SDK's `files.upload` reads it).
A bad body stores nothing. The "short" fault stores every file but answers one URL fewer.
"""

from __future__ import annotations

import json

from aiohttp import web

from batchgen.emulator.assets import UploadError, parse_data_url
from batchgen.emulator.edge import error, fault_of
from batchgen.emulator.state import STATE

__all__ = ["asset", "upload_asset"]

MAX_FILES = 64  # files in one upload call [choice: no limit is documented]


async def upload_asset(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return error(400, "Request body is not valid JSON")
    urls = body.get("data_urls") if isinstance(body, dict) else None
    if not isinstance(urls, list) or not urls:
        return error(400, 'expected a JSON body {"data_urls": ["data:<type>;base64,...", ...]}')
    if len(urls) > MAX_FILES:
        return error(400, f"at most {MAX_FILES} files per upload, got {len(urls)}")
    try:
        decoded = [parse_data_url(text, i) for i, text in enumerate(urls)]
    except UploadError as exc:
        return error(400, str(exc))
    origin = str(request.url.origin())
    stored = [state.assets.put(data, mime) for data, mime in decoded]
    state.assets.calls += 1
    file_urls = [f"{origin}/assets/{a.file_name}" for a in stored]
    if fault_of(request) == "short":
        file_urls = file_urls[:-1]
    return web.json_response({"file_urls": file_urls, "message": "Files uploaded successfully"})


async def asset(request: web.Request) -> web.StreamResponse:
    """An uploaded file, served back at the URL the upload answered (public, like a CDN's)."""
    state = request.app[STATE]
    state.stats.asset_downloads += 1
    found = state.assets.get(request.match_info["asset_id"])
    name = f"{request.match_info['asset_id']}.{request.match_info['ext']}"
    if found is None or found.file_name != name:
        return error(404, "Not found")
    return web.Response(body=found.data, content_type=found.mime)
