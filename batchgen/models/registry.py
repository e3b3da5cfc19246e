"""The known models by slug: one table per model, one module per model family.

Models without a table are passed through untouched (the API hosts many models and we only know a
few), which is why `schema_for` returns None rather than raising. The schema types live in
`schema.py` and `params.py`; they are re-exported here because callers ask the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from batchgen.models.flux import FLUX_KONTEXT_DEV, FLUX_KONTEXT_PRO, MULTI_IMAGE_KONTEXT_PRO
from batchgen.models.nanobanana import NANO_BANANA
from batchgen.models.params import SEED_MAX, Param, ParamProblem, close_match
from batchgen.models.qwen import (
    QWEN_ASPECT_RATIOS,
    QWEN_IMAGE,
    QWEN_IMAGE_EDIT,
    QWEN_IMAGE_EDIT_FAST,
    QWEN_IMAGE_EDIT_PLUS,
)
from batchgen.models.schema import UNKNOWN_MODEL_SECONDS, ImageSlot, ModelSchema
from batchgen.models.seedream import SEEDREAM_4_5

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "QWEN_ASPECT_RATIOS",
    "QWEN_IMAGE",
    "SEED_MAX",
    "UNKNOWN_MODEL_SECONDS",
    "ImageSlot",
    "ModelSchema",
    "Param",
    "ParamProblem",
    "did_you_mean",
    "image_slot",
    "schema_for",
    "typical_seconds_of",
]

MODELS: dict[str, ModelSchema] = {
    schema.name: schema
    for schema in (
        QWEN_IMAGE,
        QWEN_IMAGE_EDIT,
        QWEN_IMAGE_EDIT_FAST,
        QWEN_IMAGE_EDIT_PLUS,
        FLUX_KONTEXT_PRO,
        FLUX_KONTEXT_DEV,
        MULTI_IMAGE_KONTEXT_PRO,
        SEEDREAM_4_5,
        NANO_BANANA,
    )
}

DEFAULT_MODEL: Final = "qwen-image"  # for jobs (and manifests) that name no model


def schema_for(model: str) -> ModelSchema | None:
    """The schema of a known model, or None: unknown models' parameters pass through."""
    return MODELS.get(model)


def images_asked(model: str, params: Mapping[str, Any]) -> int:
    """How many images a job asks for: 1 unless its model takes a count (`max_images`)."""
    schema = MODELS.get(model)
    return schema.outputs_for(params) if schema is not None else 1


def image_slot(model: str, param: str) -> ImageSlot | None:
    """Whether `param` of `model` is an image input (and how many it takes), else None.

    Unknown models have no known slots: their values pass through as given.
    """
    schema = MODELS.get(model)
    return schema.image_slot(param) if schema is not None else None


def typical_seconds_of(model: str) -> float:
    """A job's typical seconds on `model`, before any has finished: the first polls' timing, the
    estimate's latency. The schema's figure, else UNKNOWN_MODEL_SECONDS."""
    schema = MODELS.get(model)
    return schema.typical_seconds if schema is not None else UNKNOWN_MODEL_SECONDS


def did_you_mean(word: str, options: Mapping[str, Any] | tuple[str, ...]) -> str:
    """' (did you mean X?)' for the closest of `options`, or ''; shared by manifest errors."""
    return close_match(word, options)
