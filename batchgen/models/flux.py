"""Black Forest Labs' FLUX.1 Kontext editors: `flux-kontext-pro`, `-dev`, `multi-image-kontext-pro`.

Sources: Segmind's pages `segmind.com/models/<slug>/api` as stored (cut short: a range or default
missing below is unknown, not absent) and ../shared/segmind-v2-api.md.
"""

from __future__ import annotations

import math

from batchgen.models.params import Param, seed_param
from batchgen.models.schema import ModelSchema, table

__all__ = ["FLUX_ASPECT_RATIOS", "FLUX_KONTEXT_DEV", "FLUX_KONTEXT_PRO", "MULTI_IMAGE_KONTEXT_PRO"]

# The pages list 14 aspect ratios and show 11 ("match_input_image" and 10 fixed ones, "+4 more"):
# the last four are the ones Replicate's schema of the same models lists (21:9 9:21 2:1 1:2).
_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9", "9:21")
_RATIOS_ALL = (*_RATIOS, "2:1", "1:2")
MATCH_INPUT = "match_input_image"


def _size(ratio: str, area: int = 1024 * 1024) -> tuple[int, int]:
    """Width and height near `area` pixels at `ratio`, in multiples of 16 [choice: sizes are not
    on the pages; the emulator draws at these]."""
    w, h = (int(x) for x in ratio.split(":"))
    scale = math.sqrt(area / (w * h))
    return round(w * scale / 16) * 16, round(h * scale / 16) * 16


FLUX_ASPECT_RATIOS: dict[str, tuple[int, int]] = {r: _size(r) for r in _RATIOS_ALL}
_ASPECT_CHOICES = (MATCH_INPUT, *_RATIOS_ALL)


def _prompt() -> Param:
    return Param("prompt", "string", required=True, non_empty=True)


def _aspect(default: str = MATCH_INPUT) -> Param:
    return Param("aspect_ratio", "string", default, choices=_ASPECT_CHOICES)


# Page: ~20.69 s (another capture ~22.16 s), $0.05 per generation. input_image optional,
# string (uri); output_format png (jpg | png); safety_tolerance 2 (0 strictest .. 6). The page
# says 2 is "the maximum allowed when input images are used", yet its own sample sends 6 with an
# input image, so that limit is not enforced offline (the server decides). seed: no range shown.
FLUX_KONTEXT_PRO = ModelSchema(
    name="flux-kontext-pro",
    typical_seconds=20.69,
    price_usd=0.05,
    aspect_ratios=FLUX_ASPECT_RATIOS,
    format_param="output_format",
    params=table(
        _prompt(),
        _aspect(),
        Param("input_image", "image", nullable=True),
        Param("output_format", "string", "png", choices=("jpg", "png")),
        Param("safety_tolerance", "integer", 2, minimum=0, maximum=6),
        seed_param(),
    ),
)

# Page: ~10.81 s, $0.04 per generation. input_image required ("jpeg, png, gif, or webp");
# guidance 0-10 (../shared table); defaults below are the sample's where the page is cut
# (guidance 7, output_quality 90, num_inference_steps 35); output_format: the sample's png,
# allowed list not shown (Replicate's schema of the model: webp, jpg, png); steps: no range.
FLUX_KONTEXT_DEV = ModelSchema(
    name="flux-kontext-dev",
    typical_seconds=10.81,
    price_usd=0.04,
    aspect_ratios=FLUX_ASPECT_RATIOS,
    format_param="output_format",
    params=table(
        Param("input_image", "image", required=True, formats=("jpeg", "png", "gif", "webp")),
        _prompt(),
        _aspect(),
        seed_param(),
        Param("guidance", "number", 7, minimum=0, maximum=10),
        Param("output_format", "string", "png", choices=("png", "jpg", "webp")),
        Param("output_quality", "integer", 90, minimum=0, maximum=100),
        Param("num_inference_steps", "integer", 35, minimum=1),
        Param("disable_safety_checker", "boolean", False),
    ),
)

# Page: ~22.91 s (another capture ~23.32 s), $0.05 per generation. input_image_1 and
# input_image_2 both required (string, uri); aspect_ratio match_input_image (same 14 values);
# output_format png (jpg | png); safety_tolerance: the page is cut in its description, range as
# flux-kontext-pro's (0-6); seed: in multi-image-kontext-max's sample, not this page's.
MULTI_IMAGE_KONTEXT_PRO = ModelSchema(
    name="multi-image-kontext-pro",
    typical_seconds=22.91,
    price_usd=0.05,
    aspect_ratios=FLUX_ASPECT_RATIOS,
    format_param="output_format",
    params=table(
        Param("input_image_1", "image", required=True),
        Param("input_image_2", "image", required=True),
        _prompt(),
        _aspect(),
        Param("output_format", "string", "png", choices=("jpg", "png")),
        Param("safety_tolerance", "integer", 2, minimum=0, maximum=6),
        seed_param(),
    ),
)
