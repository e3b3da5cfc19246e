"""Hostile answers on demand: a prompt containing ``[hostile:KIND]`` (the marker is a knob) gets
a COMPLETED result whose image is a trap, so a client's defences are tested over real HTTP.

URL kinds put a forbidden URL in `output` (the emulator never serves those hosts: a client that
fetches them fails on its own, or worse, reaches a real address). Served kinds point `output` at
the emulator's media URL as usual and make that answer hostile: redirects, oversized or endless
bodies, bytes that are not the image asked for.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from functools import lru_cache
from typing import Final

from aiohttp import web

from batchgen.emulator.images import render

__all__ = ["HOSTILE_KINDS", "URL_KINDS", "hostile_kind", "hostile_media", "hostile_output"]

URL_KINDS: Final = {
    "file-url": "file:///etc/passwd",
    "ftp-url": "ftp://{host}/media/{file}",
    "data-url": "data:image/png;base64,iVBORw0KGgo=",
    "metadata-ip": "http://169.254.169.254/latest/meta-data/{file}",
    "private-ip": "http://10.0.0.1/media/{file}",
    "link-local-v6": "http://[fe80::1]/media/{file}",
    "decimal-ip": "http://2852039166/media/{file}",  # 169.254.169.254 once resolved
    "credentials-url": "http://user:secret@{host}/media/{file}",
}
SERVED_KINDS: Final = (
    "huge-result",  # the result JSON itself padded to hostile_bytes
    "redirect-metadata",  # 302 to 169.254.169.254
    "redirect-file",  # 302 to file:///etc/passwd
    "redirect-cdn",  # 302 to the media origin (another host): legitimate, must work
    "redirect-loop",  # 302 to itself, forever
    "oversized",  # Content-Length over any sane cap (hostile_bytes)
    "oversized-chunked",  # the same without Content-Length
    "wrong-format",  # JPEG bytes for a PNG job, served as image/png
    "not-image",  # an HTML page, 200
    "bomb",  # a small PNG declaring 20,000 x 20,000 pixels
    "trickle",  # one byte every 50 ms, never finishing
)
HOSTILE_KINDS: Final = (*URL_KINDS, *SERVED_KINDS)
HOP: Final = "hop"  # query flag of a redirect's target: serve the real image there


def hostile_kind(prompt: object, marker: str) -> str | None:
    """The KIND of ``{marker}KIND]`` in `prompt` when it is a known kind, else None."""
    if not marker or not isinstance(prompt, str) or marker not in prompt:
        return None
    kind = prompt.split(marker, 1)[1].split("]", 1)[0]
    return kind if kind in HOSTILE_KINDS else None


def hostile_output(kind: str, host: str, file_name: str) -> str | None:
    """The `output` URL for a URL kind (None for served kinds: the usual media URL)."""
    template = URL_KINDS.get(kind)
    return template.format(host=host, file=file_name) if template is not None else None


async def hostile_media(
    request: web.Request, kind: str, media_base: str, size: int, hang: float
) -> web.StreamResponse:
    """The hostile answer of a served kind to a GET of its media URL."""
    here = request.url.with_query(None)
    if kind == "redirect-metadata":
        raise web.HTTPFound(f"http://169.254.169.254/latest/meta-data{here.path}")
    if kind == "redirect-file":
        raise web.HTTPFound("file:///etc/passwd")
    if kind == "redirect-cdn":
        raise web.HTTPFound(f"{media_base}{here.path}?{HOP}=1")
    if kind == "redirect-loop":
        raise web.HTTPFound(str(here))
    if kind == "wrong-format":
        data, _ = render({"prompt": "wrong format", "image_format": "jpeg"}, 0)
        return web.Response(body=data, content_type="image/png")
    if kind == "not-image":
        return web.Response(text="<html><body>Not an image</body></html>", content_type="image/png")
    if kind == "bomb":
        return web.Response(body=_bomb(), content_type="image/png")
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    if kind == "oversized":
        response.content_length = size
    await response.prepare(request)
    if kind == "trickle":
        loop = asyncio.get_running_loop()
        until = loop.time() + hang
        while loop.time() < until:
            await response.write(b"\0")
            await asyncio.sleep(0.05)
        return response
    chunk = b"\0" * (1 << 16)
    for start in range(0, size, len(chunk)):
        await response.write(chunk[: size - start])
    return response


@lru_cache(maxsize=1)
def _bomb() -> bytes:
    """A valid PNG of 20,000 x 20,000 black 1-bit pixels: ~50 KB that decode to 400 Mpixel."""
    width = height = 20_000
    row = b"\0" + b"\0" * (width // 8)
    packer = zlib.compressobj(6)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
    out.write(chunk(b"IDAT", body))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()
