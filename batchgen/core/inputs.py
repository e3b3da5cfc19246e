"""Image inputs of a job: what the manifest named, what the file holds, what is sent instead.

Pure. A local input is known by its content (`sha256`), never by its path: the job id hashes the
digest (so renaming a file reruns nothing and editing its pixels reruns only its jobs), and the
upload stage sends each distinct digest once per output folder, then puts the recorded URL where
the manifest had the path. URL inputs are not `InputRef`s: they are sent as written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["InputRef", "identity_params", "sent_params"]


@dataclass(frozen=True)
class InputRef:
    """One local image a job sends: which slot (and list position), which file, what content."""

    slot: str
    index: int | None  # position in a list slot; None for a single-image slot
    path: str  # where the file was read (the manifest's folder joined with the value)
    name: str  # the file name, for metadata and the paired dataset
    sha256: str
    size: int
    mime: str  # e.g. "image/png", for the upload's data URL
    columns: Mapping[str, Any] | None = None  # the input dataset's own columns, if any

    @property
    def token(self) -> str:
        """What stands for the file in the job's identity."""
        return "sha256:" + self.sha256


def _replace(params: Mapping[str, Any], refs: Sequence[InputRef], value_of: Any) -> dict[str, Any]:
    out = dict(params)
    for ref in refs:
        if ref.index is None:
            out[ref.slot] = value_of(ref)
        else:
            items = list(out[ref.slot])
            items[ref.index] = value_of(ref)
            out[ref.slot] = items
    return out


def identity_params(params: Mapping[str, Any], refs: Sequence[InputRef]) -> Mapping[str, Any]:
    """`params` with each local input's path replaced by its content digest (for the job id).

    Without local inputs `params` itself is returned, so text-only ids are unchanged.
    """
    if not refs:
        return params
    return _replace(params, refs, lambda ref: ref.token)


def sent_params(
    params: Mapping[str, Any], refs: Sequence[InputRef], urls: Mapping[str, str]
) -> dict[str, Any]:
    """`params` as sent: each local input replaced by its uploaded URL (`urls`: sha256 -> URL).

    Raises KeyError for an input that has no URL yet: a job is never sent with a local path.
    """
    return _replace(params, refs, lambda ref: urls[ref.sha256])
