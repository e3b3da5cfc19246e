"""One parameter of a model: its type, allowed values and default, able to explain a refusal.

Image inputs are parameters too (kind "image": one URL; kind "images": a list of URLs), so the
same table answers both "is this value acceptable?" and "which parameters take images?". At this
layer an image value is only checked as a non-empty string (or a list of them, within the count
limits): turning local paths into uploaded URLs is the manifest's job, and only the server can
tell whether a URL is reachable.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["SEED_MAX", "Kind", "Param", "ParamProblem", "close_match", "quick_check", "seed_param"]

Kind = Literal["string", "integer", "number", "boolean", "image", "images"]

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
    nullable: bool = False  # null means "unused" (qwen-image-edit-plus's image_3: null)
    # Image inputs only: how many a list takes, and the file formats the model reads
    # (lower-case names as Pillow reports them, "jpeg" not "jpg"; () = the page does not say).
    min_items: int = 0
    max_items: int | None = 1
    formats: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        return self.kind in ("image", "images")

    def allowed(self) -> str:
        """Human description of the allowed values, used verbatim in errors."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "image":
            return "an image (a URL, or a file that is uploaded first)"
        if self.kind == "images":
            return "a list of " + _count(self.min_items, self.max_items) + " image URLs or files"
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
        if value is None and self.nullable:
            return None
        if self.kind == "image":
            return _check_image(value, self.allowed())
        if self.kind == "images":
            return self._check_images(value)
        if _type_ok(self.kind, value) is False:
            return f"must be {self.allowed()}, got {_type_name(value)}"
        if value in self.also_allowed and not isinstance(value, bool):
            return None
        if self.choices and value not in self.choices:
            return f"must be {self.allowed()}{close_match(str(value), self.choices)}"
        if self.non_empty and isinstance(value, str) and not value.strip():
            return "must not be empty"
        if isinstance(value, int | float) and not isinstance(value, bool):
            too_low = self.minimum is not None and value < self.minimum
            too_high = self.maximum is not None and value > self.maximum
            if too_low or too_high:
                return f"must be {self.allowed()}"
        return None

    def _check_images(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"must be {self.allowed()}, got {_type_name(value)}"
        if len(value) < self.min_items or (
            self.max_items is not None and len(value) > self.max_items
        ):
            return f"must be {self.allowed()}, got {len(value)}"
        for i, item in enumerate(value):
            reason = _check_image(item, "an image URL or file")
            if reason is not None:
                return f"item {i + 1} {reason}"
        return None


def seed_param(default: Any = -1) -> Param:
    """The seed every model here takes: -1 (random) or a fixed non-negative int64."""
    return Param("seed", "integer", default, minimum=0, maximum=SEED_MAX, also_allowed=(-1,))


def _check_image(value: Any, allowed: str) -> str | None:
    if not isinstance(value, str):
        return f"must be {allowed}, got {_type_name(value)}"
    if not value.strip():
        return "must not be empty"
    return None


def _count(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low}" if low else "any number of"
    return f"{low} to {high}" if low != high else str(low)


def _never(value: Any) -> bool:
    return False


def _image_ok(v: Any) -> bool:
    return type(v) is str and bool(v.strip())


def quick_check(param: Param) -> Callable[[Any], bool]:
    """A fast test that is True only for values `param.check` accepts; False means "ask check".

    Only the common cases are covered (exact types, no sentinel/choice combinations that
    `check` orders subtly); anything else falls back to `check`, which has the messages.
    """
    lo, hi = param.minimum, param.maximum
    if param.nullable:
        inner = quick_check(Param(param.name, param.kind, **_bounds(param)))
        return lambda v: v is None or inner(v)
    if param.kind == "image":
        return _image_ok
    if param.kind == "images":
        low, high = param.min_items, param.max_items
        return lambda v: (
            type(v) is list
            and low <= len(v) <= (high if high is not None else len(v))
            and all(_image_ok(x) for x in v)
        )
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


def _bounds(param: Param) -> dict[str, Any]:
    return {
        "minimum": param.minimum,
        "maximum": param.maximum,
        "choices": param.choices,
        "non_empty": param.non_empty,
        "also_allowed": param.also_allowed,
        "min_items": param.min_items,
        "max_items": param.max_items,
    }


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


def close_match(word: str, options: Mapping[str, Any] | tuple[str, ...]) -> str:
    """' (did you mean X?)' for the closest of `options`, or ''."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
