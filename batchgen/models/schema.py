"""What one model accepts and returns, shared by manifest validation and the emulator.

One table per model is the single source of truth for what a request may contain: the runner
rejects a bad job before paying for it, and the emulator answers 400 for the same reasons, so the
two can never disagree. Besides per-parameter checks a table names its image inputs (`slots`:
single or list, how many, required or not, formats), how many images one job may return, which
parameter picks the output encoding, and the latency and price used for estimates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from batchgen.models.params import Param, ParamProblem, close_match, quick_check

__all__ = ["UNKNOWN_MODEL_SECONDS", "ImageSlot", "ModelSchema", "Rule", "table"]

# A job's typical seconds on a model without a schema, or whose page gives no latency.
UNKNOWN_MODEL_SECONDS: Final = 30.0

# A check across parameters (e.g. seedream: inputs + outputs <= 15). It is called only with
# parameters that each passed their own check, and returns the problem or None.
Rule = Callable[[Mapping[str, Any]], ParamProblem | None]

# Encodings as the emulator and the runner name them; "jpg" on the wire means "jpeg".
_FORMAT_ALIASES = {"jpg": "jpeg"}


@dataclass(frozen=True)
class ImageSlot:
    """An image input of a model, as the manifest layer asks about it."""

    name: str
    many: bool  # a list of images (seedream's image_input) rather than one URL
    required: bool
    min_count: int  # fewest images the slot takes when given (1 for a single slot)
    max_count: int | None  # most images; None = the model's page gives no limit
    formats: tuple[str, ...]  # file formats accepted; () = the page does not say

    @classmethod
    def of(cls, param: Param) -> ImageSlot:
        many = param.kind == "images"
        return cls(
            name=param.name,
            many=many,
            required=param.required,
            min_count=param.min_items if many else 1,
            max_count=param.max_items if many else 1,
            formats=param.formats,
        )


@dataclass(frozen=True)
class ModelSchema:
    """What a known model accepts, and the figures used for estimates before a run."""

    name: str
    params: Mapping[str, Param]
    typical_seconds: float
    price_usd: float | None  # per job; None when the model's page does not say
    aspect_ratios: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    format_param: str | None = "image_format"  # parameter choosing png/jpeg/...; None: fixed
    fixed_format: str = "png"  # the encoding when there is no format parameter [choice]
    outputs_param: str | None = None  # parameter asking for several images (max_images)
    max_outputs: int = 1
    rules: tuple[Rule, ...] = ()
    # Derived from `params` for validate()'s fast path (a million-row manifest calls it per row).
    _accepts: dict[str, Callable[[Any], bool]] = field(init=False, repr=False, compare=False)
    _required: tuple[str, ...] = field(init=False, repr=False, compare=False)
    slots: Mapping[str, ImageSlot] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        accepts = {name: quick_check(param) for name, param in self.params.items()}
        object.__setattr__(self, "_accepts", accepts)
        required = tuple(name for name, param in self.params.items() if param.required)
        object.__setattr__(self, "_required", required)
        slots = {n: ImageSlot.of(p) for n, p in self.params.items() if p.is_image}
        object.__setattr__(self, "slots", slots)

    # -- image inputs and outputs ------------------------------------------------------------

    def image_slot(self, name: str) -> ImageSlot | None:
        """The image input called `name`, or None when `name` is not one."""
        return self.slots.get(name)

    @property
    def takes_images(self) -> bool:
        return bool(self.slots)

    def image_inputs(self, params: Mapping[str, Any]) -> dict[str, list[Any]]:
        """The image values `params` gives, per slot, as lists (a single slot: one item)."""
        found: dict[str, list[Any]] = {}
        for name, slot in self.slots.items():
            value = params.get(name)
            if value is None:
                continue
            items = value if slot.many and isinstance(value, list) else [value]
            if items:
                found[name] = list(items)
        return found

    def outputs_for(self, params: Mapping[str, Any]) -> int:
        """How many images a job with `params` asks for (1 unless the model takes a count)."""
        if self.outputs_param is None:
            return 1
        asked = params.get(self.outputs_param, self.params[self.outputs_param].default)
        if not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
            return 1
        return min(asked, self.max_outputs)

    def asked_format(self, params: Mapping[str, Any]) -> str | None:
        """The encoding this job asks for ("jpeg" for the wire's "jpg"), or None when the model
        has no format parameter (its pages do not say what it returns: any image is fine)."""
        if self.format_param is None:
            return None
        value = params.get(self.format_param, self.params[self.format_param].default)
        text = str(value).lower()
        return _FORMAT_ALIASES.get(text, text)

    def output_format(self, params: Mapping[str, Any]) -> str:
        """The encoding of this job's images as the emulator draws them: png, jpeg or webp."""
        return self.asked_format(params) or self.fixed_format

    # -- validation --------------------------------------------------------------------------

    def validate(self, params: Mapping[str, Any]) -> list[ParamProblem]:
        """Every problem with `params`, not only the first: users fix them all in one go."""
        # Fast path: every value passes its parameter's quick test (which accepts only values
        # `Param.check` accepts) and nothing required is missing, so only the rules remain.
        accepts = self._accepts
        for name, value in params.items():
            quick = accepts.get(name)
            if quick is None or not quick(value):
                return self._problems(params)
        for name in self._required:
            if name not in params:
                return self._problems(params)
        for rule in self.rules:
            if rule(params) is not None:
                return self._problems(params)
        return []

    def _problems(self, params: Mapping[str, Any]) -> list[ParamProblem]:
        problems: list[ParamProblem] = []
        for name, param in self.params.items():
            if param.required and name not in params:
                problems.append(ParamProblem(name, None, f"is required ({param.allowed()})"))
        bad: set[str] = set()
        for name, value in params.items():
            spec = self.params.get(name)
            if spec is None:
                hint = close_match(name, self.params)
                problems.append(
                    ParamProblem(name, value, f"is not a parameter of {self.name}{hint}")
                )
                bad.add(name)
                continue
            reason = spec.check(value)
            if reason is not None:
                problems.append(ParamProblem(name, value, reason))
                bad.add(name)
        if not bad:
            for rule in self.rules:
                found = rule(params)
                if found is not None:
                    problems.append(found)
        return problems

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` completed with the documented defaults (what the server will actually use)."""
        full = {n: p.default for n, p in self.params.items() if not p.required}
        full.update(params)
        return full


def table(*params: Param) -> dict[str, Param]:
    """Parameters by name, in the order the model's page lists them."""
    return {p.name: p for p in params}
