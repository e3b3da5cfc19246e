"""Google's Gemini image model as Segmind serves it: `nano-banana`.

Source: Segmind's page `segmind.com/models/nano-banana/api` as stored (complete for this model:
four parameters) and ../shared/segmind-v2-api.md.
"""

from __future__ import annotations

from batchgen.models.flux import FLUX_ASPECT_RATIOS
from batchgen.models.params import Param
from batchgen.models.schema import ModelSchema, table

__all__ = ["NANO_BANANA"]

_RATIOS = ("1:1", "2:3", "3:2", "4:3", "3:4", "4:5", "5:4", "16:9", "9:16", "21:9")

# Page: ~14.28 s, $0.04 per generation. prompt required; aspect_ratio "1:1" (10 values);
# image_urls optional "A list of image urls" (no count limit and no formats on the page);
# response_modalities TEXT_AND_IMAGE | IMAGE. No seed and no format parameter: the output
# encoding is not documented (the emulator answers PNG). Output sizes per ratio: not on the
# page; the emulator draws at about 1 MP like the Kontext models.
NANO_BANANA = ModelSchema(
    name="nano-banana",
    typical_seconds=14.28,
    price_usd=0.04,
    aspect_ratios={r: FLUX_ASPECT_RATIOS[r] for r in _RATIOS},
    format_param=None,
    params=table(
        Param("prompt", "string", required=True, non_empty=True),
        Param("aspect_ratio", "string", "1:1", choices=_RATIOS),
        Param("image_urls", "images", [], min_items=0, max_items=None),
        Param(
            "response_modalities", "string", "TEXT_AND_IMAGE", choices=("TEXT_AND_IMAGE", "IMAGE")
        ),
    ),
)
