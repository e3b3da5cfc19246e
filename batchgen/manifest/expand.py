"""Expansion: a manifest entry with defaults, sweep and repeat → validated, identified Jobs.

Pure and streaming: `Expander.expand` takes an iterable of `Entry` (YAML `jobs:` items or JSONL
rows, possibly a lazy generator over a million lines) and yields `Job`s one at a time, recording
every problem in a `ProblemLog` instead of stopping at the first. Memory stays bounded: the only
state that grows is the two `DigestMap`s that detect duplicate ids and count identical rows.

Precedence: `defaults` < sweep combination < the entry's own keys. A key that is both swept and
set by an entry is an error (the sweep over it would silently collapse into duplicates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from batchgen.core.digests import DigestMap, digest64
from batchgen.core.errors import NO_VALUE, ManifestProblem, ProblemLog
from batchgen.core.jobs import (
    Job,
    SourceRef,
    canonical_json,
    explicit_id_problem,
    generated_id,
    identity_payload,
    repeat_id,
    resolve_seed,
)
from batchgen.core.templates import TemplateError, placeholders, render
from batchgen.manifest.entries import ABSENT, Entry, RawRow, entry_from, row_label
from batchgen.manifest.plainrows import check_row
from batchgen.manifest.sweep import Sweep
from batchgen.models.registry import ModelSchema, schema_for

__all__ = ["Expander"]

_CARRIED_RE: Final = re.compile(r"j-[0-9a-f]{16}")  # a generated id (core/jobs.py's form)


class _TooManyJobsError(Exception):
    pass


class Expander:
    """Turns entries into Jobs; one instance per pass over a manifest (it tracks duplicates)."""

    def __init__(
        self,
        *,
        model: str,
        defaults: Mapping[str, Any],
        defaults_lines: Mapping[str, int],
        sweep: Sweep,
        repeat: int,
        max_jobs: int,
        file: str,
        log: ProblemLog,
    ) -> None:
        self.model = model
        self.defaults = defaults
        self.defaults_lines = defaults_lines
        self.sweep = sweep
        self.repeat = repeat
        self.max_jobs = max_jobs
        self.file = file
        self.log = log
        self.count = 0
        # False: only check, identify and count jobs, build none (scan() past its sample).
        self.build_jobs = True
        self._files: list[str] = []
        self._ids = DigestMap()  # explicit id -> where first seen
        self._contents = DigestMap()  # identity payload -> occurrences so far
        small = sweep.size <= 10_000
        self._grid = list(sweep.combinations()) if small else None

    def expand(self, entries: Iterable[Entry | RawRow]) -> Iterator[Job]:
        """Every job of `entries`, in order: entry, then sweep combination, then repeat."""
        # Without defaults or sweep a JSONL row is its own job: `check_row` checks it directly.
        plain = not self.defaults and not self.sweep.axes
        try:
            for entry in entries:
                if type(entry) is tuple:
                    if plain:
                        # Inline rather than a generator per row: this loop runs a million times.
                        file, line, obj = entry
                        checked = check_row(file, line, obj, self.model, self.repeat, self.log)
                        if isinstance(checked, int):  # the row has problems (logged)
                            self.count += checked
                            continue
                        model, schema, params, annotations, explicit, repeat = checked
                        for r in range(repeat):
                            self.count += 1
                            if self.count > self.max_jobs:
                                raise _TooManyJobsError
                            job_id = self._identify(model, params, explicit, r, file, line, line,
                                                    annotations.get("_job"))  # fmt: skip
                            if job_id is not None and self.build_jobs:
                                yield self._build(
                                    job_id, model, schema, params, annotations, {}, r, file, line
                                )
                        continue
                    file, line, obj = entry
                    row = entry_from(
                        obj,
                        file=file,
                        line=line,
                        label=row_label(line, obj),
                        key_lines=None,
                        literal=True,
                        log=self.log,
                    )
                    if row is None:
                        continue
                    entry = row
                assert isinstance(entry, Entry)
                for combo, combo_lines in self._combinations():
                    yield from self._jobs(entry, combo, combo_lines)
        except _TooManyJobsError:
            self.log.add(
                ManifestProblem(
                    self.file,
                    None,
                    None,
                    "max_jobs",
                    self.max_jobs,
                    f"the manifest expands to more than {self.max_jobs} jobs; raise max_jobs "
                    "(or --max-jobs) if that is intended",
                )
            )

    def _combinations(self) -> Iterable[tuple[dict[str, Any], dict[str, int]]]:
        # Small grids are built once, not once per entry of a million-row jobs_file.
        if self._grid is None:
            return self.sweep.combinations()
        return self._grid

    def _jobs(
        self, entry: Entry, combo: dict[str, Any], combo_lines: dict[str, int]
    ) -> Iterator[Job]:
        label = entry.label
        if combo and self.sweep.size > 1:
            label += " [" + ", ".join(f"{k}={_short(v)}" for k, v in combo.items()) + "]"
        rendered_keys: set[str] = set(combo)
        merged: dict[str, Any] = {**self.defaults, **combo}
        problems: list[tuple[ManifestProblem, bool]] = []

        def locate(key: str | None) -> tuple[str, int, bool]:
            """(file, line, shared by many jobs) of the value of `key` in this job."""
            if key is None or key in entry.params or key == "id":
                return entry.file, entry.key_lines.get(key or "", entry.line), False
            if key in combo:
                return self.file, combo_lines[key], True
            if key in self.defaults:
                return self.file, self.defaults_lines.get(key, 0), True
            return entry.file, entry.line, False

        def problem(key: str | None, value: Any, message: str, *, shared: bool = False) -> None:
            # A problem that does not depend on the sweep combination is reported once, not
            # once per combination: shared ones (defaults/sweep values) without a job label,
            # an entry's own ones with the entry's label.
            file, line, _ = locate(key)
            once = shared or (key not in rendered_keys and self.sweep.size > 1)
            job = None if shared else entry.label if once else label
            problems.append((ManifestProblem(file, line, job, key, value, message), once))

        for key, value in entry.params.items():
            if key in combo:
                problem(key, value, "is both swept and set by this job; remove one of them")
            merged[key] = value

        model = entry.model or self.model
        schema = schema_for(model)
        rendered, referenced = self._render(entry, merged, problem)
        rendered_keys.update(k for k in rendered if rendered[k] is not merged[k])
        explicit = entry.id
        if explicit is not ABSENT:
            if isinstance(explicit, int) and not isinstance(explicit, bool):
                explicit = str(explicit)
            if isinstance(explicit, str) and not entry.literal:
                try:
                    if placeholders(explicit):
                        referenced.update(placeholders(explicit))
                        explicit = render(explicit, merged)
                        rendered_keys.add("id")
                except (TemplateError, KeyError) as exc:
                    problem("id", explicit, f"{exc}: an id template may only use defined keys")
            reason = explicit_id_problem(explicit)
            if reason:
                problem("id", explicit, reason)

        consumed = {
            k for k in referenced if k in merged and (schema is None or k not in schema.params)
        }
        params = {k: v for k, v in rendered.items() if k[:1] != "_" and k not in consumed}
        annotations = {k: v for k, v in rendered.items() if k[:1] == "_"}
        variables = {k: merged[k] for k in consumed}
        self._validate(schema, params, rendered, locate, problem)
        for p, shared in problems:
            self.log.add(p, once=shared)
        if problems:
            self.count += entry.repeat or self.repeat  # still counts towards the total
            return

        id_line = entry.key_lines.get("id", entry.line)
        for r in range(entry.repeat or self.repeat):
            self.count += 1
            if self.count > self.max_jobs:
                raise _TooManyJobsError
            job_id = self._identify(model, params, explicit, r, entry.file, entry.line, id_line,
                                    annotations.get("_job"))  # fmt: skip
            if job_id is not None and self.build_jobs:
                yield self._build(
                    job_id, model, schema, params, annotations, variables, r, entry.file, entry.line
                )

    def _render(
        self, entry: Entry, merged: dict[str, Any], problem: Any
    ) -> tuple[dict[str, Any], set[str]]:
        rendered: dict[str, Any] = {}
        referenced: set[str] = set()
        for key, value in merged.items():
            if not isinstance(value, str) or (entry.literal and key in entry.params):
                rendered[key] = value
                continue
            try:
                names = placeholders(value)
                missing = [n for n in names if n not in merged]
                if missing:
                    raise TemplateError(
                        f"uses template variable(s) {', '.join(missing)} that no sweep, "
                        "default or job defines"
                    )
                rendered[key] = render(value, merged)
            except TemplateError as exc:
                problem(key, value, str(exc))
                rendered[key] = value
                continue
            referenced.update(names)
        return rendered, referenced

    @staticmethod
    def _validate(
        schema: ModelSchema | None,
        params: dict[str, Any],
        rendered: dict[str, Any],
        locate: Any,
        problem: Any,
    ) -> None:
        if schema is None:
            try:
                canonical_json(rendered)
            except (TypeError, ValueError) as exc:
                problem(None, NO_VALUE, f"values must be plain JSON data ({exc})")
            return
        for p in schema.validate(params):
            shared = locate(p.field)[2]
            value = p.value if p.field in params else NO_VALUE
            problem(p.field, value, p.message, shared=shared)

    def _identify(
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

    @staticmethod
    def _build(
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


def _short(value: Any, limit: int = 24) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
