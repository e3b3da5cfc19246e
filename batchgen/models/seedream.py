"""ByteDance's Seedream 4.5: text- or image-guided generation, several images per job.

Sources: Segmind's page `segmind.com/models/seedream-4.5/api` as stored (cut short after
`aspect_ratio`'s description), ../shared/segmind-v2-api.md, and where those are silent the same
model's schema as Replicate publishes it (named below as such).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgen.models.params import Param, ParamProblem
from batchgen.models.schema import ModelSchema, table

__all__ = ["SEEDREAM_4_5", "SEEDREAM_ASPECT_RATIOS", "SEEDREAM_MAX_TOTAL"]

# Replicate's schema: "Total images (input + generated) cannot exceed 15."
SEEDREAM_MAX_TOTAL = 15

# "2K" output sizes per ratio [choice: the pages give 2048x2048 for 1:1 only; the others keep
# about the same pixel count, in multiples of 16]. "4K" doubles both sides.
SEEDREAM_ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (2048, 2048),
    "4:3": (2368, 1776),
    "3:4": (1776, 2368),
    "16:9": (2736, 1536),
    "9:16": (1536, 2736),
    "3:2": (2512, 1664),
    "2:3": (1664, 2512),
    "21:9": (3136, 1344),
}


def _total_images(params: Mapping[str, Any]) -> ParamProblem | None:
    inputs = params.get("image_input") or []
    asked = params.get("max_images", 1)
    if not (isinstance(inputs, list) and isinstance(asked, int)):
        return None
    if len(inputs) + asked > SEEDREAM_MAX_TOTAL:
        return ParamProblem(
            "max_images",
            asked,
            f"with {len(inputs)} input image(s) must be at most {SEEDREAM_MAX_TOTAL - len(inputs)}"
            f" (inputs + outputs <= {SEEDREAM_MAX_TOTAL})",
        )
    return None


# Page: ~32.23 s, $0.04 per generation. The sample: size "2K", width/height 2048, max_images 1,
# image_input a list of 5 URLs, aspect_ratio "match_input_image", sequential_image_generation
# "disabled". Not on the stored page, from Replicate's schema: size 2K | 4K | custom, width and
# height 1024-4096 (used with size "custom"), max_images 1-15, image_input 1-14 images, the
# aspect ratio list, sequential_image_generation disabled | auto. Input formats (jpeg, png,
# webp, bmp, tiff, gif) are from other hosts' docs of the model. The emulator returns
# `max_images` images whatever `sequential_image_generation` says [choice]; the real model
# may return fewer ("maximum"), which clients must accept.
SEEDREAM_4_5 = ModelSchema(
    name="seedream-4.5",
    typical_seconds=32.23,
    price_usd=0.04,
    aspect_ratios=SEEDREAM_ASPECT_RATIOS,
    format_param=None,
    outputs_param="max_images",
    max_outputs=SEEDREAM_MAX_TOTAL,
    rules=(_total_images,),
    params=table(
        Param("prompt", "string", required=True, non_empty=True),
        Param(
            "aspect_ratio",
            "string",
            "match_input_image",
            choices=("match_input_image", *SEEDREAM_ASPECT_RATIOS),
        ),
        Param(
            "image_input",
            "images",
            [],
            min_items=0,
            max_items=14,
            formats=("jpeg", "png", "webp", "bmp", "tiff", "gif"),
        ),
        Param("size", "string", "2K", choices=("2K", "4K", "custom")),
        Param("width", "integer", 2048, minimum=1024, maximum=4096),
        Param("height", "integer", 2048, minimum=1024, maximum=4096),
        Param("max_images", "integer", 1, minimum=1, maximum=SEEDREAM_MAX_TOTAL),
        Param("sequential_image_generation", "string", "disabled", choices=("disabled", "auto")),
    ),
)
