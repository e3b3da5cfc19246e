"""Alibaba's Qwen-Image family: text-to-image `qwen-image` and the `qwen-image-edit*` editors.

Sources: Segmind's pages `segmind.com/models/<slug>/api` as stored (they are cut short, so a
range or default missing below is unknown, not absent) and ../shared/segmind-v2-api.md. Where a
page is silent the comment says so and the value is the family's (qwen-image's table) or open.
"""

from __future__ import annotations

from batchgen.models.params import Param, seed_param
from batchgen.models.schema import UNKNOWN_MODEL_SECONDS, ModelSchema, table

__all__ = [
    "QWEN_ASPECT_RATIOS",
    "QWEN_IMAGE",
    "QWEN_IMAGE_EDIT",
    "QWEN_IMAGE_EDIT_FAST",
    "QWEN_IMAGE_EDIT_PLUS",
]

# Output sizes of Qwen-Image at each aspect ratio (its published native resolutions).
QWEN_ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1328, 1328),
    "16:9": (1664, 928),
    "9:16": (928, 1664),
    "4:3": (1472, 1104),
    "3:4": (1104, 1472),
    "3:2": (1584, 1056),
    "2:3": (1056, 1584),
}


def _image_format(default: str = "png") -> Param:
    return Param("image_format", "string", default, choices=("png", "jpeg", "webp"))


def _quality() -> Param:
    return Param("quality", "integer", 90, minimum=10, maximum=100)


def _prompt() -> Param:
    return Param("prompt", "string", required=True, non_empty=True)


QWEN_IMAGE = ModelSchema(
    name="qwen-image",
    typical_seconds=28.0,
    price_usd=0.12,
    aspect_ratios=QWEN_ASPECT_RATIOS,
    params=table(
        _prompt(),
        Param("steps", "integer", 30, minimum=1, maximum=50),
        Param("aspect_ratio", "string", "16:9", choices=tuple(QWEN_ASPECT_RATIOS)),
        Param("guidance", "number", 3.5, minimum=1, maximum=20),
        Param("negative_prompt", "string", "blurry, cartoonish"),
        seed_param(),
        _image_format(),
        _quality(),
        Param("base64", "boolean", False),
    ),
)

# Page: ~49.92 s; price not shown. `image` "Input Image URL or file reference" (required),
# guidance 4 (1-25), negative_prompt "None", base64 false. The page is cut at `seed`; `steps`
# appears only in the sample (30), so its upper bound is unknown. No format parameter on the
# page: the output encoding is not documented (the emulator answers PNG).
QWEN_IMAGE_EDIT = ModelSchema(
    name="qwen-image-edit",
    typical_seconds=49.92,
    price_usd=None,
    aspect_ratios=QWEN_ASPECT_RATIOS,
    format_param=None,
    params=table(
        Param("image", "image", required=True),
        _prompt(),
        Param("base64", "boolean", False),
        Param("guidance", "number", 4, minimum=1, maximum=25),
        Param("negative_prompt", "string", "None"),
        seed_param(),
        Param("steps", "integer", 30, minimum=1),
    ),
)

# Page: latency and price not shown; parameters only from the sample (image, prompt, steps 8,
# guidance 1, seed, image_format png, quality 90, base64): no ranges are given, so only the
# types and the obvious lower bounds are checked; format and quality as qwen-image's.
QWEN_IMAGE_EDIT_FAST = ModelSchema(
    name="qwen-image-edit-fast",
    typical_seconds=UNKNOWN_MODEL_SECONDS,  # the page gives no latency
    price_usd=None,
    aspect_ratios=QWEN_ASPECT_RATIOS,
    params=table(
        Param("image", "image", required=True),
        _prompt(),
        Param("steps", "integer", 8, minimum=1),
        Param("guidance", "number", 1, minimum=0),
        seed_param(),
        _image_format(),
        _quality(),
        Param("base64", "boolean", False),
    ),
)

# Page: ~12.37 s; price not shown. Three single-image slots, `image`, `image_2`, `image_3`
# (the sample sends image_3: null for "unused"); the page is cut before the ranges, so
# aspect_ratio is any non-empty string (the sample's "match_input_image"; the allowed list is
# not shown), go_fast's default is the sample's (true), format and quality as qwen-image's
# (the sample's format is webp; the default is not shown).
QWEN_IMAGE_EDIT_PLUS = ModelSchema(
    name="qwen-image-edit-plus",
    typical_seconds=12.37,
    price_usd=None,
    aspect_ratios=QWEN_ASPECT_RATIOS,
    params=table(
        Param("image", "image", required=True),
        Param("image_2", "image", nullable=True),
        Param("image_3", "image", nullable=True),
        _prompt(),
        Param("aspect_ratio", "string", "match_input_image", non_empty=True),
        Param("go_fast", "boolean", True),
        seed_param(),
        _image_format("webp"),
        _quality(),
        Param("base64", "boolean", False),
    ),
)
