"""Job identity while expanding: generated ids, duplicate explicit ids, the resolved seed.

One `JobIds` per pass over a manifest. Memory stays bounded: the only state that grows is two
`DigestMap`s (explicit id -> where first seen; identity payload -> occurrences so far), 8 bytes
a job, so a million-row manifest can still be checked for duplicates.
"""

from __future__ import annotations

import re
from typing import Any, Final

from batchgen.core.digests import DigestMap, digest64
from batchgen.core.errors import ManifestProblem, ProblemLog
from batchgen.core.jobs import (
    Job,
    SourceRef,
    generated_id,
    identity_payload,
    repeat_id,
    resolve_seed,
)
from batchgen.manifest.entries import ABSENT
from batchgen.models.registry import ModelSchema

__all__ = ["JobIds", "build_job"]

_CARRIED_RE: Final = re.compile(r"j-[0-9a-f]{16}")  # a generated id (core/jobs.py's form)


class JobIds:
    """Hands out job ids for one pass, logging an explicit id that was already used."""

    def __init__(self, log: ProblemLog) -> None:
        self.log = log
        self._files: list[str] = []
        self._ids = DigestMap()  # explicit id -> where first seen
        self._contents = DigestMap()  # identity payload -> occurrences so far

    def identify(
        self,
        model: str,
        params: dict[str, Any],
        explicit: Any,
        r: int,
        file: str,
        line: int,
        id_line: int,
        carried: Any = None,
    ) -> str | None:
        """The id of copy `r`, or None (after logging why) when its explicit id is taken.
        `carried`: a generated id in a `_job` annotation (a row of failed.jsonl) is kept, so
        running failed.jsonl into its folder retries those jobs instead of making new ones."""
        if explicit is ABSENT:
            if r == 0 and isinstance(carried, str) and _CARRIED_RE.fullmatch(carried):
                return carried if self._first_use(carried, file, line, id_line) else None
            payload = identity_payload(model, params, r)
            return generated_id(payload, self._contents.increment(digest64(payload)))
        job_id = repeat_id(explicit, r)
        return job_id if self._first_use(job_id, file, line, id_line) else None

    def _first_use(self, job_id: str, file: str, line: int, id_line: int) -> bool:
        if file not in self._files:
            self._files.append(file)
        here = line * 4 + self._files.index(file)
        before = self._ids.setdefault(digest64(job_id.encode()), here)
        if before is None:
            return True
        first_file, first_line = self._files[before % 4], before // 4
        at = f"line {first_line}" if first_file == file else f"{first_file}:{first_line}"
        if (first_file, first_line) == (file, line):
            at += " (a job expanded by sweep needs its variables in the id, e.g. 'cat-{seed}')"
        self.log.add(
            ManifestProblem(
                file,
                id_line,
                job_id,
                "id",
                job_id,
                f"is a duplicate: the same id is already used at {at}; ids must be unique",
            )
        )
        return False


def build_job(
    job_id: str,
    model: str,
    schema: ModelSchema | None,
    params: dict[str, Any],
    annotations: dict[str, Any],
    variables: dict[str, Any],
    r: int,
    file: str,
    line: int,
) -> Job:
    sent = params
    wants_seed = "seed" in params if schema is None else "seed" in schema.params
    resolved = wants_seed and params.get("seed", -1) == -1
    if resolved:
        sent = {**params, "seed": resolve_seed(job_id)}
    return Job(
        id=job_id,
        model=model,
        params=sent,
        annotations=annotations,
        variables=variables,
        repeat_index=r,
        source=SourceRef(file, line),
        seed_resolved=resolved,
    )
