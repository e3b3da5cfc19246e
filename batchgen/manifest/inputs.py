"""Image inputs in a manifest: a local path or an http(s) URL, checked offline before sending.

A model's schema names its image slots (`models/schema.py`: single or list, how many, formats).
For each value in a slot: an `http(s)://` URL is sent as written; any other scheme (`file:`,
`data:`, `ftp:`...) is refused; anything else is a path relative to the folder of the file that
wrote it (the manifest, or a `jobs_file`). A path must name a regular file that is not empty, not
over `MAX_INPUT_BYTES`, decodes with Pillow (header and pixels: a truncated file is caught here,
not by the server after payment), has at most `MAX_INPUT_PIXELS` (a 10,000 x 10,000 image is
refused from its header, before any decode) and is in a format the slot takes.

Each distinct file is read and decoded once per pass (`InputChecker` caches by path, size and
mtime), so a sweep of 6 files x 1,000 prompts decodes 6 images, not 6,000.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from PIL import Image, UnidentifiedImageError

from batchgen.core.inputs import InputRef
from batchgen.models.registry import ModelSchema

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_INPUT_PIXELS",
    "InputChecker",
    "InputProblem",
    "is_url",
]

MAX_INPUT_BYTES: Final = 30 * 1024 * 1024  # [choice] Segmind documents no limit; 30 MiB is huge
MAX_INPUT_PIXELS: Final = 40_000_000  # the emulator's limit too (a 10,000 x 10,000 is 100 MP)
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
_MIME: Final = {"jpeg": "image/jpeg", "mpo": "image/jpeg"}
_CACHE_LIMIT: Final = 100_000


@dataclass(frozen=True)
class InputProblem:
    """Why one image value of a job cannot be used (reported as a ManifestProblem by the caller)."""

    slot: str
    value: Any
    message: str


@dataclass(frozen=True)
class _File:
    path: str
    sha256: str
    size: int
    format: str  # Pillow's name, lower case: png, jpeg, webp...


def is_url(value: str) -> bool:
    """True for an http(s) URL (sent as written)."""
    match = _SCHEME.match(value)
    return match is not None and match.group(1).lower() in ("http", "https")


class InputChecker:
    """Resolves and checks the image inputs of jobs, one instance per pass over a manifest."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int, int], _File | str] = {}

    def resolve(
        self,
        schema: ModelSchema,
        params: Mapping[str, Any],
        folder_of: Callable[[str], Path],
    ) -> tuple[tuple[InputRef, ...], list[InputProblem]]:
        """The local inputs of `params` (slot order), and every problem with its image values.

        `folder_of(slot)` is the folder a relative path in that slot starts from. Values the
        schema already refused (not a string, too many) are left to the schema's own message.
        """
        refs: list[InputRef] = []
        problems: list[InputProblem] = []
        for slot_name, slot in schema.slots.items():
            value = params.get(slot_name)
            if value is None:
                continue
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                if not isinstance(item, str) or not item.strip():
                    continue
                where = f"item {i + 1} " if slot.many else ""
                found = self._one(item, folder_of(slot_name), slot.formats)
                if isinstance(found, str):
                    problems.append(InputProblem(slot_name, item, where + found))
                elif found is not None:
                    mime = _MIME.get(found.format, f"image/{found.format}")
                    index = i if slot.many else None
                    name = Path(found.path).name
                    refs.append(
                        InputRef(slot_name, index, found.path, name, found.sha256, found.size, mime)
                    )
        return tuple(refs), problems

    def _one(self, value: str, folder: Path, formats: tuple[str, ...]) -> _File | str | None:
        match = _SCHEME.match(value)
        if match is not None:
            scheme = match.group(1).lower()
            if scheme not in ("http", "https"):
                return f"is a {scheme}: URL; an image input is an http(s) URL or a local file path"
            rest = value[match.end() :]
            if not rest.startswith("//") or len(rest) <= 2:
                return "is not a valid http(s) URL (expected http://host/...)"
            return None
        checked = self._file((folder / value).absolute())  # failed.jsonl runs from anywhere
        if isinstance(checked, str):
            return checked
        if formats and checked.format not in formats and not _same_format(checked, formats):
            return f"is a {checked.format.upper()} image; this model takes {', '.join(formats)}"
        return checked

    def _file(self, path: Path) -> _File | str:
        try:
            stat = path.stat()
        except OSError:
            return (
                f"does not exist (looked for {path}; a relative path starts at the folder of "
                "the file that names it)"
            )
        if not path.is_file():
            return f"is not a file ({path})"
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        known = self._seen.get(key)
        if known is None:
            known = _read(path, stat.st_size)
            if len(self._seen) < _CACHE_LIMIT:
                self._seen[key] = known
        return known


def _same_format(found: _File, formats: tuple[str, ...]) -> bool:
    return found.format == "mpo" and "jpeg" in formats  # a camera JPEG Pillow calls MPO


def _read(path: Path, size: int) -> _File | str:
    if size == 0:
        return f"is empty ({path})"
    if size > MAX_INPUT_BYTES:
        return f"is {size:,} bytes, over the {MAX_INPUT_BYTES // 2**20} MiB limit for an input"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    try:
        kind = _decoded_format(data)
    except _Refused as exc:
        return str(exc)
    return _File(str(path), hashlib.sha256(data).hexdigest(), len(data), kind)


class _Refused(Exception):
    """The file is not a usable image; the message says why."""


def _decoded_format(data: bytes) -> str:
    """The format of `data` when it is a whole, decodable image within the pixel limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_INPUT_PIXELS:
                    raise _Refused(
                        f"is {width}x{height} pixels, over the limit of "
                        f"{MAX_INPUT_PIXELS:,} pixels (refused before upload)"
                    )
                kind = (image.format or "").lower()
                image.load()  # the pixels too: a truncated file fails here
        except Image.DecompressionBombError:
            raise _Refused(
                f"is over the limit of {MAX_INPUT_PIXELS:,} pixels (refused before upload)"
            ) from None
        except UnidentifiedImageError:
            raise _Refused("is not an image (Pillow cannot identify it)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise _Refused(f"is truncated or corrupt ({exc})") from None
    if not kind:
        raise _Refused("is an image of unknown format")
    return kind
