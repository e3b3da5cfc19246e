"""Per-model parameter schemas, shared by manifest validation and the emulator.

One table per model is the single source of truth for what a request may contain: the runner
rejects a bad job before paying for it, and the emulator answers 400 for the same reasons, so the
two can never disagree. Models without a table are passed through untouched (the API hosts many
models and we only know a few), which is why `schema_for` returns None rather than raising.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "UNKNOWN_MODEL_SECONDS",
    "ModelSchema",
    "Param",
    "ParamProblem",
    "did_you_mean",
    "schema_for",
    "typical_seconds_of",
]

Kind = Literal["string", "integer", "number", "boolean"]

# Seeds are int64 on the wire; we never resolve -1 to anything above 2**31 - 1 ourselves, but a
# user may ask for any fixed non-negative seed the server accepts.
SEED_MAX = 2**63 - 1


@dataclass(frozen=True)
class ParamProblem:
    """One reason a parameter set is unacceptable, phrased so a user can fix it."""

    field: str
    value: Any
    message: str  # what is wrong, e.g. "must be an integer from 1 to 50"

    def __str__(self) -> str:
        return f"{self.field}={self.value!r}: {self.message}"


@dataclass(frozen=True)
class Param:
    """A parameter's type and allowed values, able to describe itself in an error message."""

    name: str
    kind: Kind
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    non_empty: bool = False
    also_allowed: tuple[Any, ...] = ()  # sentinels outside the range, e.g. seed -1

    def allowed(self) -> str:
        """Human description of the allowed values, used verbatim in errors."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = {
            "string": "a non-empty string" if self.non_empty else "a string",
            "integer": "an integer",
            "number": "a number",
            "boolean": "true or false",
        }[self.kind]
        if self.minimum is not None and self.maximum is not None:
            noun += f" from {_num(self.minimum)} to {_num(self.maximum)}"
        elif self.minimum is not None:
            noun += f" >= {_num(self.minimum)}"
        if self.also_allowed:
            noun += " (or " + ", ".join(repr(v) for v in self.also_allowed) + ")"
        return noun

    def check(self, value: Any) -> str | None:
        """Return why `value` is not acceptable, or None when it is."""
        if _type_ok(self.kind, value) is False:
            return f"must be {self.allowed()}, got {_type_name(value)}"
        if value in self.also_allowed and not isinstance(value, bool):
            return None
        if self.choices and value not in self.choices:
            hint = _did_you_mean(str(value), self.choices)
            return f"must be {self.allowed()}{hint}"
        if self.non_empty and isinstance(value, str) and not value.strip():
            return "must not be empty"
        if isinstance(value, int | float) and not isinstance(value, bool):
            too_low = self.minimum is not None and value < self.minimum
            too_high = self.maximum is not None and value > self.maximum
            if too_low or too_high:
                return f"must be {self.allowed()}"
        return None


@dataclass(frozen=True)
class ModelSchema:
    """What a known model accepts, and the figures used for estimates before a run."""

    name: str
    params: Mapping[str, Param]
    typical_seconds: float
    price_usd: float
    aspect_ratios: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # Derived from `params` for validate()'s fast path (a million-row manifest calls it per row).
    _accepts: dict[str, Callable[[Any], bool]] = field(init=False, repr=False, compare=False)
    _required: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        accepts = {name: _quick_check(param) for name, param in self.params.items()}
        object.__setattr__(self, "_accepts", accepts)
        required = tuple(name for name, param in self.params.items() if param.required)
        object.__setattr__(self, "_required", required)

    def validate(self, params: Mapping[str, Any]) -> list[ParamProblem]:
        """Every problem with `params`, not only the first: users fix them all in one go."""
        # Fast path: every value passes its parameter's quick test (which accepts only values
        # `Param.check` accepts) and nothing required is missing, so there is no problem.
        accepts = self._accepts
        for name, value in params.items():
            quick = accepts.get(name)
            if quick is None or not quick(value):
                return self._problems(params)
        for name in self._required:
            if name not in params:
                return self._problems(params)
        return []

    def _problems(self, params: Mapping[str, Any]) -> list[ParamProblem]:
        problems: list[ParamProblem] = []
        for name, param in self.params.items():
            if param.required and name not in params:
                problems.append(ParamProblem(name, None, f"is required ({param.allowed()})"))
        for name, value in params.items():
            spec = self.params.get(name)
            if spec is None:
                hint = _did_you_mean(name, self.params)
                problems.append(
                    ParamProblem(name, value, f"is not a parameter of {self.name}{hint}")
                )
                continue
            reason = spec.check(value)
            if reason is not None:
                problems.append(ParamProblem(name, value, reason))
        return problems

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` completed with the documented defaults (what the server will actually use)."""
        full = {n: p.default for n, p in self.params.items() if not p.required}
        full.update(params)
        return full


def _never(value: Any) -> bool:
    return False


def _quick_check(param: Param) -> Callable[[Any], bool]:
    """A fast test that is True only for values `param.check` accepts; False means "ask check".

    Only the common cases are covered (exact types, no sentinel/choice combinations that
    `check` orders subtly); anything else falls back to `check`, which has the messages.
    """
    lo, hi = param.minimum, param.maximum
    if param.kind == "boolean":
        return _never if param.choices else lambda v: type(v) is bool
    if param.kind == "string":
        if param.also_allowed or param.minimum is not None or param.maximum is not None:
            return _never
        non_empty = param.non_empty
        if param.choices:
            if not all(type(c) is str for c in param.choices):
                return _never
            choices = frozenset(param.choices)
            return lambda v: type(v) is str and v in choices and (not non_empty or bool(v.strip()))
        return lambda v: type(v) is str and (not non_empty or bool(v.strip()))
    if param.choices or lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return _never
    extra = frozenset(v for v in param.also_allowed if type(v) is int)
    if len(extra) != len(param.also_allowed):
        return _never
    if param.kind == "integer":
        return lambda v: type(v) is int and (lo <= v <= hi or v in extra)
    # "number": finite bounds also reject nan and inf (every comparison with nan is False).
    return lambda v: (type(v) is int or type(v) is float) and (lo <= v <= hi or v in extra)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _type_ok(kind: Kind, value: Any) -> bool:
    # bool is a subclass of int in Python, but `steps: true` is a user error, not 1.
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int)
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _did_you_mean(word: str, options: Mapping[str, Any] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _table(*params: Param) -> dict[str, Param]:
    return {p.name: p for p in params}


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

QWEN_IMAGE = ModelSchema(
    name="qwen-image",
    typical_seconds=28.0,
    price_usd=0.12,
    aspect_ratios=QWEN_ASPECT_RATIOS,
    params=_table(
        Param("prompt", "string", required=True, non_empty=True),
        Param("steps", "integer", 30, minimum=1, maximum=50),
        Param("aspect_ratio", "string", "16:9", choices=tuple(QWEN_ASPECT_RATIOS)),
        Param("guidance", "number", 3.5, minimum=1, maximum=20),
        Param("negative_prompt", "string", "blurry, cartoonish"),
        Param("seed", "integer", -1, minimum=0, maximum=SEED_MAX, also_allowed=(-1,)),
        Param("image_format", "string", "png", choices=("png", "jpeg", "webp")),
        Param("quality", "integer", 90, minimum=10, maximum=100),
        Param("base64", "boolean", False),
    ),
)

MODELS: dict[str, ModelSchema] = {QWEN_IMAGE.name: QWEN_IMAGE}


DEFAULT_MODEL: Final = "qwen-image"  # for jobs (and manifests) that name no model
UNKNOWN_MODEL_SECONDS: Final = 30.0  # a job's typical seconds on a model without a schema


def schema_for(model: str) -> ModelSchema | None:
    """The schema of a known model, or None: unknown models' parameters pass through."""
    return MODELS.get(model)


def typical_seconds_of(model: str) -> float:
    """A job's typical seconds on `model`, before any has finished: the first polls' timing, the
    estimate's latency. The schema's figure, else UNKNOWN_MODEL_SECONDS."""
    schema = MODELS.get(model)
    return schema.typical_seconds if schema is not None else UNKNOWN_MODEL_SECONDS


def did_you_mean(word: str, options: Mapping[str, Any] | tuple[str, ...]) -> str:
    """' (did you mean X?)' for the closest of `options`, or ''; shared by manifest errors."""
    return _did_you_mean(word, options)
