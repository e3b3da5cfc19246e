"""A job's content fingerprint: what the image depends on, so a catalogue can find it again.

The job id names a job inside one manifest; the fingerprint names the *image*: the same model,
parameters (with the concrete seed) and repeat index give the same fingerprint in any manifest,
folder or id scheme, so an image already paid for elsewhere can be reused instead of paid again.

    sha256("batchgen-fingerprint-1\0" + canonical_json({"m": model, "p": params, "r": repeat}))

* The seed must be concrete and chosen before the request: by the manifest, or by batchgen
  (`jobs.resolve_seed`). A job without a seed parameter leaves the choice to the server, and
  two such requests give different images: it has no fingerprint and is never reused.
* Inline input images (`data:` URLs) are replaced by the sha256 of their bytes, so a long base64
  blob costs 32 bytes and the same picture matches whatever its text encoding. An input given by
  http(s) URL has no fingerprint: what is behind a URL can change without the URL changing, and
  batchgen does not download inputs.
* Annotations (`_` keys), template variables and the id are not part of it: relabelling a job
  must not hide an image that is byte for byte what it asks for.

`row_fingerprint` recomputes a fingerprint from a ledger's metadata row, for folders indexed
after the fact (`batchgen catalog add`). A row does not say everything a Job does, so it is
conservative: when it cannot prove the seed was fixed before the request, it returns None.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import Collection, Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from batchgen.core.jobs import Job, generated_id, identity_payload, resolve_seed

__all__ = [
    "FINGERPRINT_VERSION",
    "ROW_KEYS",
    "fingerprint",
    "params_fingerprint",
    "public_location",
    "row_fingerprint",
]

FINGERPRINT_VERSION: Final = 1
_PREFIX: Final = f"batchgen-fingerprint-{FINGERPRINT_VERSION}\x00".encode()
# Keys `metadata_row` (and the reuse step) add to a row besides the job's parameters.
ROW_KEYS: Final = frozenset(
    {"file_name", "id", "model", "request_id", "inference_time", "cost", "reused_from"}
)
_REMOTE_INPUT: Final = re.compile(r"(?i)https?://")
_GENERATED: Final = re.compile(r"j-[0-9a-f]{16}")
_REPEAT_SUFFIX: Final = re.compile(r".-r([1-9][0-9]{0,5})")
_MAX_REPEAT_PROBE: Final = 64  # repeat indexes tried when recovering a generated id's copy number
_MAX_OCCURRENCE_PROBE: Final = 4  # identical rows (occurrence counter) tried likewise


def fingerprint(job: Job) -> bytes | None:
    """The job's 32-byte fingerprint, or None when its image must never be reused."""
    return params_fingerprint(job.model, job.params, job.repeat_index)


def params_fingerprint(model: str, params: Mapping[str, Any], repeat_index: int) -> bytes | None:
    """The fingerprint of (model, sent params, repeat index); None without a concrete seed."""
    seed = params.get("seed")
    if type(seed) is not int or seed < 0:  # absent, -1 or not a number: the server chooses
        return None
    content: dict[str, Any] = {}
    for key, value in params.items():
        if type(value) is str:
            if _REMOTE_INPUT.match(value):
                return None
            if value.startswith("data:"):
                value = {"sha256": _data_url_digest(value)}
        content[key] = value
    try:  # the id's canonical JSON (its fast path for flat params); the seed is never -1 here
        payload = identity_payload(model, content, repeat_index)
    except (ValueError, TypeError):
        return None
    return hashlib.sha256(_PREFIX + payload).digest()


def _data_url_digest(value: str) -> str:
    head, _, payload = value.partition(",")
    data = payload.encode()
    if head.endswith(";base64"):
        with contextlib.suppress(binascii.Error, ValueError):
            data = base64.b64decode(payload, validate=False)
    return hashlib.sha256(data).hexdigest()


def row_fingerprint(row: Mapping[str, Any], param_names: Collection[str] | None) -> bytes | None:
    """The fingerprint of the job a ledger's metadata row describes, or None if unprovable.

    `param_names`: the model's parameters when its schema is known (None: pass-through model,
    every non-reserved, non-`_` key is a parameter).

    The row holds the sent parameters but not the repeat index nor whether the seed was in the
    request (a pass-through model's row records the seed the server reported). A generated id is
    a hash of exactly those unknowns, so it is checked against them; an explicit id keeps its
    repeat index as a `-rN` suffix, and its seed is trusted only when the schema says the model
    takes one, or when it is the one batchgen derives from the id.
    """
    model, job_id = row.get("model"), row.get("id")
    if type(model) is not str or type(job_id) is not str:
        return None
    if param_names is None:
        params = {k: v for k, v in row.items() if k not in ROW_KEYS and not k.startswith("_")}
    else:
        params = {k: row[k] for k in param_names if k in row}
    seed = params.get("seed")
    if type(seed) is not int or seed < 0:
        return None
    if _GENERATED.fullmatch(job_id):
        repeat = _generated_repeat(job_id, model, params, seed)
        if repeat is None:
            return None
    else:
        fixed = param_names is not None and "seed" in param_names
        if not fixed and seed != resolve_seed(job_id):  # the seed may be one the server chose
            return None
        match = _REPEAT_SUFFIX.search(job_id)
        repeat = int(match.group(1)) if match and match.end() == len(job_id) else 0
    return params_fingerprint(model, params, repeat)


def _generated_repeat(job_id: str, model: str, params: dict[str, Any], seed: int) -> int | None:
    """The repeat index that makes `job_id` from these params, or None if none does.

    The id hashes the params with a manifest-fixed seed included, or without the seed when
    batchgen resolved it (then the seed is `resolve_seed(id)`); a server-chosen seed fits neither.
    """
    candidates = [params]
    if seed == resolve_seed(job_id):
        candidates.append({k: v for k, v in params.items() if k != "seed"})
    for repeat in range(_MAX_REPEAT_PROBE):
        for candidate in candidates:
            try:
                payload = identity_payload(model, candidate, repeat)
            except (ValueError, TypeError):
                return None
            for occurrence in range(_MAX_OCCURRENCE_PROBE):
                if generated_id(payload, occurrence) == job_id:
                    return repeat
    return None


def public_location(location: str) -> str:
    """A folder path or store URL fit to keep: no user, password, query or fragment.

    `s3://KEY:SECRET@bucket/prefix` and pre-signed `?X-Amz-Signature=` URLs carry credentials;
    the catalogue keeps where the images are, never how to get in.
    """
    if "://" not in location:
        return location
    parts = urlsplit(location)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")
