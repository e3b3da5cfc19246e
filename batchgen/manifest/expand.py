"""Expansion: a manifest entry with defaults, sweep and repeat → validated, identified Jobs.

Pure and streaming: `Expander.expand` takes an iterable of `Entry` (YAML `jobs:` items or JSONL
rows, possibly a lazy generator over a million lines) and yields `Job`s one at a time, recording
every problem in a `ProblemLog` instead of stopping at the first. Memory stays bounded: the only
state that grows is in `identity.JobIds` (duplicate ids, identical rows). Rendering templates and
checking parameters are in `render.py`.

Precedence: `defaults` < sweep combination < the entry's own keys. A key that is both swept and
set by an entry is an error (the sweep over it would silently collapse into duplicates).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchgen.core.errors import ManifestProblem, ProblemLog
from batchgen.core.inputs import InputRef, identity_params
from batchgen.core.jobs import Job, explicit_id_problem
from batchgen.core.templates import TemplateError, placeholders, render
from batchgen.manifest.entries import ABSENT, Entry, RawRow, entry_from, model_problem, row_label
from batchgen.manifest.estimate import ImageTally
from batchgen.manifest.identity import JobIds, build_job
from batchgen.manifest.inputs import InputChecker
from batchgen.manifest.plainrows import check_row
from batchgen.manifest.render import render_params, validate_params
from batchgen.manifest.sweep import Sweep
from batchgen.models.registry import ModelSchema, schema_for

__all__ = ["Expander"]


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
        self.models: Counter[str] = Counter()  # valid jobs by model: each is priced by its own
        self.images = ImageTally()  # what they ask for: a price is per image
        # False: only check, identify and count jobs, build none (scan() past its sample).
        self.build_jobs = True
        self._ids = JobIds(log)
        self._inputs = InputChecker()
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
                        refs: tuple[InputRef, ...] | None = ()
                        if schema is not None and schema.slots:
                            refs = self._row_inputs(file, line, obj, schema, params)
                        if refs is None:
                            self.count += repeat
                            continue
                        id_params = identity_params(params, refs)
                        self.models[model] += repeat
                        self.images.add(model, schema, params, repeat)
                        for r in range(repeat):
                            self.count += 1
                            if self.count > self.max_jobs:
                                raise _TooManyJobsError
                            job_id = self._ids.identify(
                                model,
                                id_params,
                                explicit,
                                r,
                                file,
                                line,
                                line,
                                annotations.get("_job"),
                            )
                            if job_id is not None and self.build_jobs:
                                yield build_job(
                                    job_id,
                                    model,
                                    schema,
                                    params,
                                    annotations,
                                    {},
                                    r,
                                    file,
                                    line,
                                    refs,
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
        swept_model = combo.get("model")
        if "model" in combo:  # a model axis picks the job's model; it is not a parameter
            combo = {k: v for k, v in combo.items() if k != "model"}
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

        model = entry.model or swept_model or self.model
        if swept_model is not None and (reason := model_problem(swept_model)):
            problem("model", swept_model, reason, shared=True)
        schema = schema_for(model)
        rendered, referenced = render_params(entry, merged, problem)
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
        if entry.columns:  # a dataset's columns that are not parameters: fields, not sent
            consumed |= {k for k in entry.columns if schema is None or k not in schema.params}
        params = {k: v for k, v in rendered.items() if k[:1] != "_" and k not in consumed}
        annotations = {k: v for k, v in rendered.items() if k[:1] == "_"}
        variables = {k: merged[k] for k in consumed}
        validate_params(schema, params, rendered, locate, problem)
        refs: tuple[InputRef, ...] = ()
        if schema is not None and schema.slots:
            refs, bad = self._inputs.resolve(
                schema, params, lambda key: Path(locate(key)[0]).parent
            )
            for bad_input in bad:
                at = locate(bad_input.slot)[2]
                problem(bad_input.slot, bad_input.value, bad_input.message, shared=at)
            if entry.columns and refs:
                fields = {k: merged[k] for k in sorted(entry.columns)}
                refs = tuple(replace(ref, columns=fields) for ref in refs)
        for p, shared in problems:
            self.log.add(p, once=shared)
        if problems:
            self.count += entry.repeat or self.repeat  # still counts towards the total
            return

        id_line = entry.key_lines.get("id", entry.line)
        self.models[model] += entry.repeat or self.repeat
        self.images.add(model, schema, params, entry.repeat or self.repeat)
        for r in range(entry.repeat or self.repeat):
            self.count += 1
            if self.count > self.max_jobs:
                raise _TooManyJobsError
            job_id = self._ids.identify(model, identity_params(params, refs), explicit, r,
                                        entry.file, entry.line, id_line,
                                        annotations.get("_job"))  # fmt: skip
            if job_id is not None and self.build_jobs:
                yield build_job(
                    job_id,
                    model,
                    schema,
                    params,
                    annotations,
                    variables,
                    r,
                    entry.file,
                    entry.line,
                    refs,
                )

    def _row_inputs(
        self,
        file: str,
        line: int,
        obj: dict[str, Any],
        schema: ModelSchema,
        params: dict[str, Any],
    ) -> tuple[InputRef, ...] | None:
        """The local inputs of a plain JSONL row (paths start at the JSONL file's folder), or
        None after logging each bad one at the row's line."""
        refs, bad = self._inputs.resolve(schema, params, lambda _key: Path(file).parent)
        for p in bad:
            self.log.add(
                ManifestProblem(file, line, row_label(line, obj), p.slot, p.value, p.message)
            )
        return None if bad else refs


def _short(value: Any, limit: int = 24) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
