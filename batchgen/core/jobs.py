"""Jobs and their identity: the contract that makes resume and reproducibility possible.

Identity rules (see docs/manifests.md, "Job ids"):

* An explicit `id` is used as given (validated to be file-name safe). With `repeat: N`, copy `r > 0`
  gets `"{id}-r{r}"`, so raising `repeat` never renames copies that already exist.
* Otherwise the id is `"j-"` + 16 hex digits of sha256 over the canonical JSON of
  `(model, params, repeat index)`, where `params` are the API parameters *before* seed resolution,
  with `seed: -1` treated as absent. Annotations (`_` keys) and template variables are not part of
  it: editing a label must not force a paid regeneration.
* Rows whose identity payload is identical (two equal JSONL lines) are told apart by an occurrence
  counter: the k-th repetition (k >= 1) hashes the payload plus `#k`. So the first occurrence keeps
  its id when duplicates are appended, and the same file always yields the same ids.
* Ids of the form `j-` + 16 hex digits are reserved for generated ids, so an explicit id can never
  collide with a generated one.

A seed left to the server (`-1` or absent) would make the image irreproducible, so batchgen picks
it: a deterministic function of the job id, in 0..2**31-1. Because the id is computed before the
seed is filled in, resolving the seed never changes the id.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Final

from batchgen.core.inputs import InputRef
from batchgen.core.templates import spec_problem

__all__ = [
    "DEFAULT_NAME_TEMPLATE",
    "ID_RULE",
    "SEED_RANGE",
    "Job",
    "SourceRef",
    "canonical_json",
    "explicit_id_problem",
    "generated_id",
    "generated_id_of",
    "generated_key",
    "identity_payload",
    "name_template_problem",
    "output_name",
    "output_path",
    "repeat_id",
    "resolve_seed",
]

SEED_RANGE: Final = 2**31  # resolved seeds fall in 0..2**31-1: every backend accepts them
DEFAULT_NAME_TEMPLATE: Final = "{id}.{ext}"
NAME_FIELDS: Final = frozenset({"id", "ext", "model", "repeat", "seed"})
MAX_ID_LENGTH: Final = 128
ID_RULE: Final = (
    f"1-{MAX_ID_LENGTH} characters of letters, digits, '.', '_' or '-', starting with a letter or "
    "digit, without '..', and not of the reserved form j-<16 hex digits>"
)

_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_GENERATED_RE: Final = re.compile(r"j-[0-9a-f]{16}")
_WINDOWS_RESERVED: Final = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


@dataclass(frozen=True)
class SourceRef:
    """Where a job came from, for error messages and the run's metadata."""

    file: str
    line: int | None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Job:
    """One image to generate: exactly what is sent, plus what is only recorded.

    `params` is the JSON body for the API, with the seed already resolved. `annotations` (manifest
    keys starting with `_`) and `variables` (template variables consumed by a prompt template) are
    never sent; they exist for metadata.jsonl.
    """

    id: str
    model: str
    params: Mapping[str, Any]
    annotations: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    variables: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    repeat_index: int = 0
    source: SourceRef = SourceRef("<memory>", None)
    seed_resolved: bool = False  # True when batchgen chose the seed (the manifest said -1/absent)
    inputs: tuple[InputRef, ...] = ()  # local image files, sent as uploaded URLs (core/inputs.py)

    @property
    def seed(self) -> int | None:
        """The seed that will be sent, if the job has one."""
        seed = self.params.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _canonical_value(value: Any) -> Any:
    # 7 and 7.0 are the same request to a JSON API; hash them the same so a cosmetic edit in the
    # manifest does not change ids. -0.0 likewise collapses to 0. (Exact type checks first: this
    # runs for every job of a million-line file.)
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, Mapping):
        return {k: _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted-key, compact JSON with integral floats written as ints; raises ValueError on NaN/inf.

    Float formatting is Python's shortest round-trip repr, stable across platforms and versions.
    """
    return _ENCODER.encode(_canonical_value(value))


_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_string: Final = json.encoder.encode_basestring  # how _ENCODER writes a str (ensure_ascii=False)


def identity_payload(model: str, params: Mapping[str, Any], repeat_index: int) -> bytes:
    """The bytes a generated id hashes: model, params (seed -1 dropped) and repeat index."""
    # Equal to canonical_json({"m": model, "p": params without seed -1, "r": repeat_index}),
    # built without the generic path's copies when params are flat (the common case).
    unresolved: dict[str, Any] = {}
    flat = type(model) is str and type(repeat_index) is int
    for k, v in params.items():
        if k == "seed" and v == -1:
            continue
        kind = type(v)
        if kind is float:
            if v.is_integer():  # False for nan and inf, as in _canonical_value
                v = int(v)
            elif not math.isfinite(v):
                flat = False  # let the encoder raise its error
        elif not (kind is str or kind is int or kind is bool or v is None):
            v = _canonical_value(v)
            flat = False
        if type(k) is not str:
            flat = False
        unresolved[k] = v
    if not flat:
        return canonical_json({"m": model, "p": unresolved, "r": repeat_index}).encode()
    return (
        '{"m":'
        + _string(model)
        + ',"p":'
        + _flat_object(unresolved)
        + ',"r":'
        + repr(repeat_index)
        + "}"
    ).encode()


def _flat_object(obj: dict[str, Any]) -> str:
    """`_ENCODER.encode(obj)` for str keys and str/int/finite float/bool/None values."""
    parts = []
    for key in sorted(obj):
        value = obj[key]
        kind = type(value)
        if kind is str:
            text = _string(value)
        elif kind is bool:
            text = "true" if value else "false"
        elif value is None:
            text = "null"
        else:  # int or finite float: json writes int.__repr__ / float.__repr__
            text = repr(value)
        parts.append(_string(key) + ":" + text)
    return "{" + ",".join(parts) + "}"


def generated_id(payload: bytes, occurrence: int = 0) -> str:
    """The id for the `occurrence`-th (0-based) job with this identity payload."""
    data = payload if occurrence == 0 else payload + f"#{occurrence}".encode()
    return "j-" + hashlib.sha256(data).hexdigest()[:16]


def generated_key(job_id: str) -> int | None:
    """The 64 bits a generated id spells (`j-` + 16 hex digits, one to one), None for any other
    id: a table of generated ids can hold 8 bytes a job, not a string."""
    return int(job_id[2:], 16) if _GENERATED_RE.fullmatch(job_id) else None


def generated_id_of(key: int) -> str:
    """The generated id whose 64 bits are `key` (the inverse of `generated_key`)."""
    return f"j-{key:016x}"


def repeat_id(explicit: str, repeat_index: int) -> str:
    """The id of copy `repeat_index` of a job with an explicit id (copy 0 keeps the id)."""
    return explicit if repeat_index == 0 else f"{explicit}-r{repeat_index}"


def explicit_id_problem(value: Any) -> str | None:
    """Why `value` cannot be a job id, or None. Ids become file names, so they are strict."""
    if not isinstance(value, str):
        return f"must be a string: {ID_RULE}"
    if not value:
        return f"must not be empty: {ID_RULE}"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long: {ID_RULE}"
    if not _ID_RE.fullmatch(value) or ".." in value:
        return f"is not file-name safe: {ID_RULE}"
    if _GENERATED_RE.fullmatch(value):
        return f"looks like a generated id: {ID_RULE}"
    if value.split(".")[0].lower() in _WINDOWS_RESERVED:
        return f"is a reserved device name on Windows: {ID_RULE}"
    return None


def resolve_seed(job_id: str) -> int:
    """The seed batchgen picks for a job whose manifest left it to chance: a function of the id."""
    digest = hashlib.sha256(b"seed\x00" + job_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_RANGE


def name_template_problem(template: str) -> str | None:
    """Why `template` cannot name output files, or None."""
    try:
        parsed = [
            (f, spec) for _, f, spec, _ in string.Formatter().parse(template) if f is not None
        ]
    except ValueError as exc:
        return f"is not a valid template ({exc})"
    fields = [f for f, _ in parsed]
    for _, spec in parsed:
        if spec and (problem := spec_problem(spec)):
            return problem
    unknown = sorted(set(fields) - NAME_FIELDS)
    if unknown:
        return f"uses unknown field(s) {unknown}; allowed: " + ", ".join(sorted(NAME_FIELDS))
    if "id" not in fields:
        return "must contain {id}, or different jobs would write the same file"
    # Checked here, with sample values, so a template that escapes the output folder is refused
    # at validation, before anything is paid for, not when the first image is written.
    try:
        sample = template.format(id="j-0", ext="png", model="qwen-image", repeat=0, seed=0)
    except (ValueError, TypeError) as exc:  # e.g. '{id:d}': a number format on a string
        return f"is not a valid template ({exc})"
    if _escapes(sample):
        return "must name a file inside the output folder (no absolute path, '..' or '\\')"
    return None


def _escapes(name: str) -> bool:
    return (
        not name
        or "\\" in name
        or "\x00" in name
        or PurePosixPath(name).is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    )


def output_name(job: Job, ext: str, template: str = DEFAULT_NAME_TEMPLATE) -> PurePosixPath:
    """The file name of `job`'s image, relative to the output folder and confined to it.

    Raises ValueError for a template or extension that would escape the folder.
    """
    problem = name_template_problem(template)
    if problem:
        raise ValueError(f"file name template {template!r} {problem}")
    if not re.fullmatch(r"[A-Za-z0-9]{1,10}", ext):
        raise ValueError(f"file extension {ext!r} must be 1-10 letters or digits")
    name = template.format(
        id=job.id, ext=ext, model=job.model, repeat=job.repeat_index, seed=job.seed
    )
    if _escapes(name):
        raise ValueError(f"file name {name!r} would leave the output folder")
    return PurePosixPath(name)


def output_path(root: Path, job: Job, ext: str, template: str = DEFAULT_NAME_TEMPLATE) -> Path:
    """`root` joined with `output_name(...)`; never a path outside `root`."""
    return root.joinpath(*output_name(job, ext, template).parts)
