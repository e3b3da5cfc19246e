"""A YAML manifest's top level: settings, model, repeat, defaults, sweep, `jobs` and `jobs_file`.

Every key is checked here and each problem names its line; problems that make expanding pointless
or dangerous (no jobs, a sweep past `max_jobs`, a missing `jobs_file`) raise at once, the rest
wait in `Manifest.problems` for `scan()`, so a user sees them together with the per-job ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from batchgen.core.errors import NO_VALUE, ManifestProblem, ProblemLog
from batchgen.manifest.entries import ENTRY_KEYS, Entry, entry_from, model_problem
from batchgen.manifest.recipe import DEFAULT_MODEL, Manifest, plain_problem
from batchgen.manifest.settings import SETTING_NAMES, RunSettings, merge_settings, setting_problem
from batchgen.manifest.sweep import Sweep, parse_sweep
from batchgen.manifest.yamlload import LineDict, LineList
from batchgen.models.registry import did_you_mean

__all__ = ["TOP_LEVEL_KEYS", "parse_yaml"]

TOP_LEVEL_KEYS: Final = frozenset({"model", "defaults", "jobs", "jobs_file", "sweep", "repeat"})


def parse_yaml(
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
        fatal.add(
            plain_problem(file, data.line, "defines no jobs: add jobs, jobs_file or defaults")
        )
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
