"""A job's image inputs and outputs as the emulator sees them: which assets, what size, how many.

Inputs must be this server's own uploaded assets (it never fetches the network); anything else
is refused at submit with 400, as an unreachable input would be, and so is an image in a format
the model's table does not list (one that does not decode at all FAILS the job later). Output
sizes follow the model's table: a fixed aspect ratio draws at the model's size for it,
"match_input_image" (or none) at the first input's size. Sizes are shrunk for tests unless
`full_size` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgen.emulator.assets import Asset, AssetStore
from batchgen.emulator.derive import image_format
from batchgen.models.schema import ModelSchema

__all__ = ["SMALL_DIVISOR", "SMALL_EDGE", "output_size", "resolve_inputs"]

SMALL_DIVISOR = 8  # table sizes are divided by this unless full_size
SMALL_EDGE = 256  # longest side of an input-matched output unless full_size (never upscaled)
_FALLBACK = (1024, 1024)


def resolve_inputs(
    schema: ModelSchema, params: Mapping[str, Any], assets: AssetStore, origin: str
) -> list[Asset] | str:
    """The assets named by `params`' image slots, in slot then list order; or why not."""
    found: list[Asset] = []
    for name, values in schema.image_inputs(params).items():
        for value in values:
            asset = assets.resolve(value, origin)
            if asset is None:
                return (
                    f"Could not fetch {name} {value!r}: the URL is unreachable "
                    "(upload the file with /upload-asset and pass the URL it returns)"
                )
            if not asset.mime.startswith("image/"):
                return f"{name} {value!r} is not an image ({asset.mime})"
            formats = schema.params[name].formats
            kind = image_format(asset.data)
            if formats and kind is not None and kind not in formats:
                return f"{name} {value!r} is a {kind} image; {schema.name} takes " + ", ".join(
                    formats
                )
            found.append(asset)
    return found


def output_size(
    schema: ModelSchema,
    params: Mapping[str, Any],
    input_size: tuple[int, int] | None,
    full_size: bool,
) -> tuple[int, int]:
    """Pixel size of this job's outputs."""
    full = schema.with_defaults(params)
    ratio = full.get("aspect_ratio")
    table = schema.aspect_ratios
    native: tuple[int, int] | None = None
    if full.get("size") == "custom" and "width" in schema.params:
        native = (int(full["width"]), int(full["height"]))
    elif isinstance(ratio, str) and ratio in table:
        native = table[ratio]
    if native is not None and full.get("size") == "4K":
        native = (native[0] * 2, native[1] * 2)
    if native is None and input_size is not None:
        return input_size if full_size else _cap(input_size, SMALL_EDGE)
    width, height = native or next(iter(table.values()), _FALLBACK)
    if full_size:
        return width, height
    return max(8, width // SMALL_DIVISOR), max(8, height // SMALL_DIVISOR)


def _cap(size: tuple[int, int], edge: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, edge / max(width, height))
    return max(8, round(width * scale)), max(8, round(height * scale))
