"""Deterministic stand-in images: same (prompt, seed, params) -> same picture, any format.

Real pixels matter: the runner must verify that what it stores decodes and has the asked format,
and a sweep's contact sheet should show cells that visibly differ by seed and guidance. The
picture is drawn from a hash of the generation inputs only; `image_format` and `quality` change the
encoding, not the content, as with a real model.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from batchgen.models.qwen import QWEN_ASPECT_RATIOS

__all__ = ["CONTENT_TYPES", "image_size", "render"]

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_ENCODING_ONLY = {"image_format", "quality", "base64", "output_format", "output_quality"}
SMALL_DIVISOR = 8


def image_size(aspect_ratio: str, full_size: bool) -> tuple[int, int]:
    """Pixel size for an aspect ratio: native Qwen-Image size, or 1/8 of it for fast tests."""
    width, height = QWEN_ASPECT_RATIOS.get(aspect_ratio, QWEN_ASPECT_RATIOS["1:1"])
    if full_size:
        return width, height
    return max(8, width // SMALL_DIVISOR), max(8, height // SMALL_DIVISOR)


def render(
    params: Mapping[str, Any],
    seed: int,
    full_size: bool = False,
    *,
    size: tuple[int, int] | None = None,
    fmt: str | None = None,
    variant: int = 0,
) -> tuple[bytes, str]:
    """Encode the picture for (params, seed); returns (bytes, format) with format png|jpeg|webp.

    `size` and `fmt` override what qwen-image's parameters say (other models name them
    differently); `variant` k > 0 draws the k-th of several images of one job.
    """
    fmt = fmt or str(params.get("image_format", "png"))
    if fmt not in _PIL_FORMATS:
        fmt = "png"
    quality = params.get("quality", params.get("output_quality", 90))
    quality = quality if isinstance(quality, int) and not isinstance(quality, bool) else 90
    size = size or image_size(str(params.get("aspect_ratio", "16:9")), full_size)
    key = _content_key(params, seed)
    if variant:
        key = hashlib.sha256(key + variant.to_bytes(4, "big")).digest()
    picture = _draw(key, size, str(params.get("prompt", "")))
    buffer = io.BytesIO()
    if fmt == "png":
        picture.save(buffer, "PNG", optimize=False)
    else:
        picture.save(buffer, _PIL_FORMATS[fmt], quality=quality)
    return buffer.getvalue(), fmt


def _content_key(params: Mapping[str, Any], seed: int) -> bytes:
    content = {k: v for k, v in params.items() if k not in _ENCODING_ONLY and k != "seed"}
    blob = json.dumps([content, seed], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).digest()


def _draw(key: bytes, size: tuple[int, int], prompt: str) -> Image.Image:
    rng = random.Random(key)
    width, height = size
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    picture = Image.new("RGB", size)
    draw = ImageDraw.Draw(picture)
    for y in range(height):  # vertical gradient: smooth areas make JPEG quality visible
        t = y / max(1, height - 1)
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    for _ in range(6):  # shapes: high-frequency edges that differ per seed
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = (
            x0 + rng.randrange(2, max(3, width // 2)),
            y0 + rng.randrange(2, max(3, height // 2)),
        )
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
    if prompt and width >= 120:
        font = ImageFont.load_default(size=max(10, width // 24))
        draw.text(
            (4, 4),
            prompt[:60],
            fill=(255, 255, 255),
            font=font,
            stroke_width=1,
            stroke_fill=(0, 0, 0),
        )
    return picture
