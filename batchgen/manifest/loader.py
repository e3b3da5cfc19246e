"""Manifests: from a YAML or JSONL file to a lazy, validated stream of Jobs and run settings.

    manifest = load_manifest(Path("jobs/sweep.yaml"), model=None, overrides={"rpm": 50})
    scan = manifest.scan()            # one streaming pass: count, sample, every problem (capped)
    if not scan.ok: raise scan.error()
    for job in manifest.jobs(): ...   # a second lazy pass; raises ManifestError on a bad job

Loading reads only the YAML (and checks that an included `jobs_file` exists); JSONL rows are read
when iterated, so a million-line dataset never sits in memory. Structural problems (unreadable or
malformed file, a sweep past `max_jobs`, a missing `jobs_file`) raise at load time; everything
else is reported by `scan()` together with the per-job problems, so a user sees them all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from batchgen.core.errors import NO_VALUE, ManifestError, ManifestProblem, ProblemLog
from batchgen.core.jobs import Job
from batchgen.manifest.entries import ENTRY_KEYS, Entry, RawRow, entry_from, model_problem
from batchgen.manifest.expand import Expander
from batchgen.manifest.settings import SETTING_NAMES, RunSettings, merge_settings, setting_problem
from batchgen.manifest.sources import iter_jsonl, read_yaml
from batchgen.manifest.sweep import Sweep, parse_sweep
from batchgen.manifest.yamlload import LineDict, LineList
from batchgen.models.registry import ModelSchema, did_you_mean, schema_for

__all__ = ["DEFAULT_MODEL", "TOP_LEVEL_KEYS", "Manifest", "Scan", "load_manifest"]

DEFAULT_MODEL: Final = "qwen-image"
TOP_LEVEL_KEYS: Final = frozenset({"model", "defaults", "jobs", "jobs_file", "sweep", "repeat"})
_JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson"})


@dataclass(frozen=True)
class Scan:
    """The result of one validation pass: nothing here holds more than `sample` jobs."""

    count: int  # jobs the manifest expands to (valid or not)
    sample: tuple[Job, ...]
    problems: tuple[ManifestProblem, ...]  # the first ones, capped
    total_problems: int

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
        return Scan(expander.count, tuple(kept), tuple(log.kept), log.total)

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
            yield from _jsonl_rows(self.path, str(self.path), log)
        elif self.jobs_file is not None:
            yield from _jsonl_rows(self.jobs_file, str(self.jobs_file), log)
        elif self.implicit_job:
            yield Entry(params={}, file=str(self.path), line=1, label="defaults")

    def _check_not_empty(self, expander: Expander, log: ProblemLog) -> None:
        if expander.count == 0 and not log:
            log.add(_plain(str(self.path), None, "has no jobs: nothing to generate"))


def _plain(file: str, line: int | None, message: str) -> ManifestProblem:
    return ManifestProblem(file, line, None, None, NO_VALUE, message)


def _jsonl_rows(path: Path, file: str, log: ProblemLog) -> Iterator[RawRow]:
    # Rows stay raw: the Expander checks them (via `entry_from` when defaults or a sweep apply).
    for line, obj in iter_jsonl(path, file, log):
        yield file, line, obj


def load_manifest(
    path: Path, *, model: str | None = None, overrides: Mapping[str, Any] | None = None
) -> Manifest:
    """Parse the manifest at `path` (`.jsonl`/`.ndjson` as JSONL, anything else as YAML).

    `model` overrides the manifest's model (per-job `model` keys still win); `overrides` are run
    settings from the command line, applied over the manifest's (None values are ignored).
    Raises ManifestError for problems that make expansion impossible, SettingsError for a bad
    override.
    """
    file = str(path)
    if model is not None and model_problem(model):
        raise ManifestError([ManifestProblem(file, None, None, "model", model, "bad --model")])
    if path.suffix.lower() in _JSONL_SUFFIXES:
        if not path.is_file():
            raise ManifestError([_plain(file, None, "does not exist or is not a file")])
        settings = merge_settings(RunSettings(), overrides or {})
        return Manifest(path, "jsonl", model or DEFAULT_MODEL, settings)
    log = ProblemLog()
    data = read_yaml(path, file, log)
    log.raise_if_any()
    if data is None:
        raise ManifestError([_plain(file, None, "is empty: a manifest needs at least a prompt")])
    if not isinstance(data, LineDict):
        raise ManifestError(
            [_plain(file, 1, "must be a mapping with keys such as model, defaults, jobs, sweep")]
        )
    return _parse_yaml(path, data, model, overrides or {}, log)


def _parse_yaml(
    path: Path, data: LineDict, model: str | None, overrides: Mapping[str, Any], log: ProblemLog
) -> Manifest:
    file = str(path)

    def problem(key: str, value: Any, message: str) -> None:
        log.add(ManifestProblem(file, data.line_of(key), None, key, value, message))

    known = TOP_LEVEL_KEYS | SETTING_NAMES
    settings_given: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key.startswith("_"):
            continue  # a note on the manifest itself
        if key not in known:
            hint = did_you_mean(str(key), tuple(sorted(known)))
            problem(str(key), NO_VALUE, f"is not a manifest key{hint}; allowed: {_list(known)}")
        elif key in SETTING_NAMES:
            reason = setting_problem(key, value)
            if reason:
                problem(key, value, reason)
            else:
                settings_given[key] = value
    settings = merge_settings(merge_settings(RunSettings(), settings_given), overrides)

    the_model = model or data.get("model", DEFAULT_MODEL)
    if model is None and model_problem(the_model):
        problem("model", the_model, model_problem(the_model) or "")
        the_model = DEFAULT_MODEL
    repeat = data.get("repeat", 1)
    if not (isinstance(repeat, int) and not isinstance(repeat, bool) and repeat >= 1):
        problem("repeat", repeat, "must be an integer >= 1 (images per job)")
        repeat = 1

    defaults = data.get("defaults", LineDict())
    if not isinstance(defaults, LineDict):
        problem("defaults", defaults, "must be a mapping of parameter names to values")
        defaults = LineDict()
    elif "defaults" in data:
        _reject_entry_keys(defaults, file, "defaults", log)
    sweep = (
        parse_sweep(data["sweep"], file, data.line_of("sweep"), log) if "sweep" in data else Sweep()
    )
    for key in sweep.keys & ENTRY_KEYS:
        problem("sweep", key, f"cannot sweep {key!r}; set it per job or at the top level")

    entries = _yaml_entries(data, file, log)
    jobs_file = _jobs_file(path, data, log)

    implicit_job = "jobs" not in data and "jobs_file" not in data
    fatal = ProblemLog()  # problems that make expanding pointless or dangerous
    if (
        not entries
        and jobs_file is None
        and not (implicit_job and {"defaults", "sweep"} & set(data))
    ):
        fatal.add(_plain(file, data.line, "defines no jobs: add jobs, jobs_file or defaults"))
    per_entry = [e.repeat or repeat for e in entries] or [repeat]
    total = sweep.size * sum(per_entry)
    if total > settings.max_jobs:
        fatal.add(
            ManifestProblem(
                file,
                data.line_of("sweep") if "sweep" in data else data.line_of("jobs"),
                None,
                "sweep" if "sweep" in data else "jobs",
                NO_VALUE,
                f"expands to {total:,} jobs, more than max_jobs = {settings.max_jobs:,}; "
                "shrink it or raise max_jobs (or --max-jobs)",
            )
        )
    if fatal or (jobs_file is None and "jobs_file" in data):
        for p in fatal.kept:
            log.add(p)
        log.raise_if_any()
    return Manifest(
        path=path,
        format="yaml",
        model=the_model,
        settings=settings,
        defaults=dict(defaults),
        defaults_lines=dict(defaults.key_lines),
        sweep=sweep,
        repeat=repeat,
        entries=tuple(entries),
        jobs_file=jobs_file,
        implicit_job=implicit_job,
        problems=tuple(log.kept),
        settings_in_file=frozenset(settings_given),
    )


def _list(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))


def _reject_entry_keys(mapping: LineDict, file: str, where: str, log: ProblemLog) -> None:
    for key in ENTRY_KEYS & set(mapping):
        log.add(
            ManifestProblem(
                file,
                mapping.line_of(key),
                None,
                f"{where}.{key}",
                mapping[key],
                "belongs at the top level or on a job, not in " + where,
            )
        )


def _yaml_entries(data: LineDict, file: str, log: ProblemLog) -> list[Entry]:
    raw = data.get("jobs")
    if raw is None:
        return []
    if not isinstance(raw, LineList):
        log.add(ManifestProblem(file, data.line_of("jobs"), None, "jobs", raw, "must be a list"))
        return []
    entries: list[Entry] = []
    for i, (item, line) in enumerate(zip(raw, raw.item_lines, strict=True)):
        if isinstance(item, str):
            item = LineDict(prompt=item)
            item.line, item.key_lines = line, {"prompt": line}
        if not isinstance(item, LineDict):
            log.add(
                ManifestProblem(
                    file, line, f"jobs[{i}]", "jobs", item, "each job must be a mapping or a prompt"
                )
            )
            continue
        label = repr(item["id"]) if "id" in item else f"jobs[{i}]"
        entry = entry_from(
            item,
            file=file,
            line=line,
            label=label,
            key_lines=item.key_lines,
            literal=False,
            log=log,
        )
        if entry is not None:
            entries.append(entry)
    return entries


def _jobs_file(path: Path, data: LineDict, log: ProblemLog) -> Path | None:
    if "jobs_file" not in data:
        return None
    value = data["jobs_file"]
    line = data.line_of("jobs_file")
    if not isinstance(value, str) or not value.strip():
        log.add(ManifestProblem(str(path), line, None, "jobs_file", value, "must be a file path"))
        return None
    included = path.parent / value
    if not included.is_file():
        log.add(
            ManifestProblem(
                str(path),
                line,
                None,
                "jobs_file",
                value,
                f"does not exist (looked for {included}; relative paths start at the manifest's "
                "folder)",
            )
        )
        return None
    return included
