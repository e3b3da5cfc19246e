"""Edited images: the input, visibly changed by the prompt and seed, so a grid shows the edit.

The first input is fitted to the output size and tinted with a colour drawn from (prompt, seed,
output index); further inputs are pasted as thumbnails along the bottom; the prompt is written
in a band. Deterministic (same inputs and parameters, same bytes) and cheap: no model, just PIL.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["MAX_INPUT_PIXELS", "InputError", "derive", "image_format", "input_size", "open_inputs"]

MAX_INPUT_PIXELS = 40_000_000  # a bigger input FAILS the job, as a decompression bomb would
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_TINT = 0.4  # share of the tint colour in each pixel: strong enough to see in a thumbnail


class InputError(ValueError):
    """An input that cannot be used as an image (does not decode, or is too large)."""


def _header(data: bytes) -> Image.Image:
    """Open without decoding; our own pixel limit (checked by callers) replaces Pillow's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def _open(data: bytes) -> Image.Image:
    try:
        picture = _header(data)
        if picture.width * picture.height > MAX_INPUT_PIXELS:
            raise InputError(f"input image is {picture.width}x{picture.height}: too large")
        picture.load()
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"input image could not be decoded ({exc})") from None
    return picture.convert("RGB")


def image_format(data: bytes) -> str | None:
    """The file format of an input as Pillow names it, lower case ("jpeg"), or None if unknown."""
    try:
        with _header(data) as picture:
            return picture.format.lower() if picture.format else None
    except (OSError, SyntaxError, Image.DecompressionBombError):
        return None


def input_size(data: bytes) -> tuple[int, int]:
    """Width and height of an input (decoding only its header)."""
    try:
        with _header(data) as picture:
            return picture.size
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"input image could not be decoded ({exc})") from None


def open_inputs(inputs: Sequence[bytes]) -> list[Image.Image]:
    """Decode a job's inputs once (RGB), for all of its outputs; InputError if one is unusable."""
    return [_open(data) for data in inputs]


def derive(
    inputs: Sequence[Image.Image],
    prompt: str,
    seed: int,
    index: int,
    size: tuple[int, int],
    fmt: str,
    quality: int = 90,
) -> bytes:
    """Encode output `index` of an edit of `inputs` (decoded, at least one) as `fmt` at `size`."""
    key = hashlib.sha256(f"{prompt}\0{seed}\0{index}".encode()).digest()
    tint = (key[0], key[1], key[2])
    base = ImageOps.fit(inputs[0], size)
    picture = Image.blend(base, Image.new("RGB", size, tint), _TINT)
    width, height = size
    thumb = max(8, min(width, height) // 4)
    for k, extra in enumerate(inputs[1:4]):  # later inputs: thumbnails bottom-left onwards
        small = ImageOps.fit(extra, (thumb, thumb))
        picture.paste(small, (2 + k * (thumb + 2), height - thumb - 2))
    draw = ImageDraw.Draw(picture)
    draw.rectangle([0, 0, width - 1, height - 1], outline=tint, width=max(1, width // 64))
    if width >= 120 and prompt:
        font = ImageFont.load_default(size=max(10, width // 24))
        label = prompt[:60] if index == 0 else f"#{index + 1} {prompt[:56]}"
        draw.text((4, 4), label, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=0)
    buffer = io.BytesIO()
    if fmt == "png":
        picture.save(buffer, "PNG", optimize=False)
    else:
        picture.save(buffer, _PIL_FORMATS.get(fmt, "PNG"), quality=quality)
    return buffer.getvalue()
