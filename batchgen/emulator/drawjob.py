"""Every image of one finished job: drawn from text, or derived from its inputs; one or several.

Runs in a worker thread (PIL work), so it takes plain values rather than the live record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgen.emulator.derive import derive, input_size, open_inputs
from batchgen.emulator.edits import output_size
from batchgen.emulator.images import render
from batchgen.models.registry import schema_for

__all__ = ["draw"]


def draw(
    model: str,
    params: Mapping[str, Any],
    seed: int,
    inputs: tuple[bytes, ...],
    count: int,
    full_size: bool,
) -> list[tuple[bytes, str]]:
    """(bytes, format) of each of the job's `count` images; InputError if an input is unusable."""
    schema = schema_for(model)
    if schema is None:  # a pass-through model: qwen-image's drawing, its parameter names
        return [render(params, seed, full_size, variant=k) for k in range(count)]
    fmt = schema.output_format(params)
    if fmt not in ("png", "jpeg", "webp"):
        fmt = "png"
    first = input_size(inputs[0]) if inputs else None
    size = output_size(schema, params, first, full_size)
    if not inputs:
        return [render(params, seed, size=size, fmt=fmt, variant=k) for k in range(count)]
    prompt = str(params.get("prompt", ""))
    quality = params.get("quality", params.get("output_quality", 90))
    if not isinstance(quality, int) or isinstance(quality, bool):
        quality = 90
    pictures = open_inputs(inputs)
    return [(derive(pictures, prompt, seed, k, size, fmt, quality), fmt) for k in range(count)]
