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

__all__ = ["InputRef", "identity_params", "input_columns", "read_params", "sent_params"]


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

    @property
    def copy_name(self) -> str:
        """Where the output folder keeps a copy (by content: one per distinct file), so the
        paired dataset does not depend on the input folder staying where it was."""
        suffix = {"image/jpeg": ".jpg"}.get(self.mime, "." + self.mime.split("/")[-1])
        return f"inputs/{self.sha256[:20]}{suffix}"


def input_columns(refs: Sequence[InputRef]) -> dict[str, Any]:
    """A metadata row's input columns: the first input flat, every input in `inputs`.

    `input_file_name` is the copy in the output folder: `datasets`' imagefolder reads any
    `*_file_name` column as a second image column (`input`), so the folder loads as pairs.
    `input_name` is the file's own name as the manifest named it, `input_sha256` its content.
    """
    if not refs:
        return {}
    first = refs[0]
    columns: dict[str, Any] = {
        "input_file_name": first.copy_name,
        "input_name": first.name,
        "input_sha256": first.sha256,
    }
    columns["inputs"] = [
        {"slot": r.slot, "index": r.index, "name": r.name, "sha256": r.sha256,
         "copy": r.copy_name}
        for r in refs
    ]  # fmt: skip
    for ref in refs:
        if ref.columns:
            columns.update({k: v for k, v in ref.columns.items() if k not in columns})
    return columns


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


def read_params(params: Mapping[str, Any], refs: Sequence[InputRef]) -> dict[str, Any]:
    """`params` with each local input as the path it was read from (absolute when the manifest
    was given so), so a failed job's row can be run again from another folder."""
    return _replace(params, refs, lambda ref: ref.path)


def sent_params(
    params: Mapping[str, Any], refs: Sequence[InputRef], urls: Mapping[str, str]
) -> dict[str, Any]:
    """`params` as sent: each local input replaced by its uploaded URL (`urls`: sha256 -> URL).

    Raises KeyError for an input that has no URL yet: a job is never sent with a local path.
    """
    return _replace(params, refs, lambda ref: urls[ref.sha256])
