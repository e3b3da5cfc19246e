"""What every submit goes through, v1 or v2: the real service's checks in its order, then billing.

Shared by the queue (`POST /v2/{model}`) and the sync route (`POST /v1/{model}`), so the two answer
a bad model, body or balance identically. Image inputs must be this server's own uploads
(`edits.resolve_inputs`); the job is billed and queued with their contents.
"""

from __future__ import annotations

import json

from aiohttp import web

from batchgen.emulator.edge import error, fault_of
from batchgen.emulator.edits import resolve_inputs
from batchgen.emulator.state import EmulatorState
from batchgen.emulator.store import JobRecord
from batchgen.models.registry import schema_for

__all__ = ["accept"]


async def accept(request: web.Request, state: EmulatorState) -> JobRecord | web.Response:
    """The checks shared by v1 and v2 submits, in the real service's order; then bill the job."""
    cfg = state.config
    model = request.match_info["model"]
    if model in cfg.retired_models:
        return error(410, f"Model {model} has been retired and is no longer available")
    schema = schema_for(model)
    if model not in cfg.models and (schema is None or not cfg.known_models):
        return error(404, f"Model {model} not found")
    if model in cfg.forbidden_models:
        return error(403, f"This API key does not have access to model {model}")
    if request.content_type != "application/json":
        return error(406, "Content-Type must be application/json")
    try:
        params = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return error(400, "Request body is not valid JSON")
    if not isinstance(params, dict):
        return error(400, "Request body must be a JSON object of model parameters")
    invalid = None
    inputs: tuple[bytes, ...] = ()
    outputs = asked = 1
    if schema is not None:
        problems = schema.validate(params)
        if problems:
            invalid = "; ".join(str(p) for p in problems)
            if not cfg.accept_invalid:
                return error(400, f"Invalid parameters: {invalid}")
            invalid = f"Validation failed: {invalid}"
        else:
            found = resolve_inputs(schema, params, state.assets, str(request.url.origin()))
            if isinstance(found, str):
                state.stats.inputs_refused += 1
                return error(400, found)
            inputs = tuple(asset.data for asset in found)
            asked = schema.outputs_for(params)
            outputs = 1 if fault_of(request) == "one-image" else asked
    if not state.store.can_afford(model, outputs):
        return error(cfg.credits_status, "Insufficient credits. Please top up your account.")
    return state.store.submit(model, params, invalid, inputs, outputs, asked)
