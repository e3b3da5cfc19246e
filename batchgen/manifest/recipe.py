"""A parsed manifest: its run settings, model, and the recipe for its jobs (not the jobs).

`Manifest.jobs()` and `Manifest.scan()` are the two passes over that recipe; both stream, so a
million-line JSONL never sits in memory. `loader.load_manifest` builds one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from batchgen.core.errors import NO_VALUE, ManifestError, ManifestProblem, ProblemLog
from batchgen.core.jobs import Job
from batchgen.manifest.entries import Entry, RawRow
from batchgen.manifest.expand import Expander
from batchgen.manifest.settings import RunSettings
from batchgen.manifest.sources import iter_jsonl
from batchgen.manifest.sweep import Sweep
from batchgen.models.registry import DEFAULT_MODEL, ModelSchema, schema_for

__all__ = ["DEFAULT_MODEL", "Manifest", "Scan", "jsonl_rows", "plain_problem"]


@dataclass(frozen=True)
class Scan:
    """The result of one validation pass: nothing here holds more than `sample` jobs."""

    count: int  # jobs the manifest expands to (valid or not)
    sample: tuple[Job, ...]
    problems: tuple[ManifestProblem, ...]  # the first ones, capped
    total_problems: int
    models: Mapping[str, int] = field(default_factory=dict)  # valid jobs by model, for estimates
    images: Mapping[str, int] = field(default_factory=dict)  # the images they ask for, by model
    most_images: Mapping[str, int] = field(default_factory=dict)  # per job, where more than one

    @property
    def ok(self) -> bool:
        """True when the manifest can be run as written."""
        return self.total_problems == 0

    def error(self) -> ManifestError:
        """The problems as one exception, for callers that want to raise."""
        return ManifestError(self.problems, self.total_problems)


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: its run settings, model, and the recipe for its jobs (not the jobs)."""

    path: Path
    format: Literal["yaml", "jsonl"]
    model: str
    settings: RunSettings
    defaults: Mapping[str, Any] = field(default_factory=dict)
    defaults_lines: Mapping[str, int] = field(default_factory=dict)
    sweep: Sweep = field(default_factory=Sweep)
    repeat: int = 1
    entries: tuple[Entry, ...] = ()  # from `jobs:`
    jobs_file: Path | None = None
    implicit_job: bool = False  # no `jobs`/`jobs_file`: defaults (x sweep) are the job
    problems: tuple[ManifestProblem, ...] = ()  # found while loading, reported by scan()
    settings_in_file: frozenset[str] = frozenset()  # run settings the file itself sets

    @property
    def schema(self) -> ModelSchema | None:
        """The default model's schema (None for pass-through models)."""
        return schema_for(self.model)

    def jobs(self) -> Iterator[Job]:
        """Every job, lazily, in manifest order; raises ManifestError at the first problem."""
        log = ProblemLog()
        for p in self.problems:
            log.add(p)
        log.raise_if_any()
        expander = self._expander(log)
        for job in expander.expand(self._entries(log)):
            log.raise_if_any()
            yield job
        self._check_not_empty(expander, log)
        log.raise_if_any()

    def scan(self, sample: int = 5, cap: int = 50) -> Scan:
        """Validate every job in one streaming pass, keeping only `sample` jobs in memory."""
        log = ProblemLog(cap)
        for p in self.problems:
            log.add(p)
        expander = self._expander(log)
        kept: list[Job] = []
        # Past the sample, jobs are still checked, identified and counted but not built.
        expander.build_jobs = sample > 0
        for job in expander.expand(self._entries(log)):
            kept.append(job)
            if len(kept) >= sample:
                expander.build_jobs = False
        self._check_not_empty(expander, log)
        return Scan(
            expander.count,
            tuple(kept),
            tuple(log.kept),
            log.total,
            dict(expander.models),
            expander.images.of(expander.models),
            dict(expander.images.most),
        )

    def _expander(self, log: ProblemLog) -> Expander:
        return Expander(
            model=self.model,
            defaults=self.defaults,
            defaults_lines=self.defaults_lines,
            sweep=self.sweep,
            repeat=self.repeat,
            max_jobs=self.settings.max_jobs,
            file=str(self.path),
            log=log,
        )

    def _entries(self, log: ProblemLog) -> Iterator[Entry | RawRow]:
        yield from self.entries
        if self.format == "jsonl":
            yield from jsonl_rows(self.path, str(self.path), log)
        elif self.jobs_file is not None:
            yield from jsonl_rows(self.jobs_file, str(self.jobs_file), log)
        elif self.implicit_job:
            yield Entry(params={}, file=str(self.path), line=1, label="defaults")

    def _check_not_empty(self, expander: Expander, log: ProblemLog) -> None:
        if expander.count == 0 and not log:
            log.add(plain_problem(str(self.path), None, "has no jobs: nothing to generate"))


def plain_problem(file: str, line: int | None, message: str) -> ManifestProblem:
    return ManifestProblem(file, line, None, None, NO_VALUE, message)


def jsonl_rows(path: Path, file: str, log: ProblemLog) -> Iterator[RawRow]:
    # Rows stay raw: the Expander checks them (via `entry_from` when defaults or a sweep apply).
    for line, obj in iter_jsonl(path, file, log):
        yield file, line, obj
