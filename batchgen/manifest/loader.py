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

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from batchgen.core.errors import ManifestError, ManifestProblem, ProblemLog
from batchgen.manifest.entries import model_problem
from batchgen.manifest.recipe import DEFAULT_MODEL, Manifest, Scan, plain_problem
from batchgen.manifest.settings import RunSettings, merge_settings
from batchgen.manifest.sources import read_yaml
from batchgen.manifest.yamlload import LineDict
from batchgen.manifest.yamlmanifest import TOP_LEVEL_KEYS, parse_yaml

# Manifest, Scan and the constants are defined next door and re-exported: callers import the
# manifest API from here.
__all__ = ["DEFAULT_MODEL", "TOP_LEVEL_KEYS", "Manifest", "Scan", "load_manifest"]

_JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson"})


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
            raise ManifestError([plain_problem(file, None, "does not exist or is not a file")])
        settings = merge_settings(RunSettings(), overrides or {})
        return Manifest(path, "jsonl", model or DEFAULT_MODEL, settings)
    log = ProblemLog()
    data = read_yaml(path, file, log)
    log.raise_if_any()
    if data is None:
        raise ManifestError(
            [plain_problem(file, None, "is empty: a manifest needs at least a prompt")]
        )
    if not isinstance(data, LineDict):
        raise ManifestError(
            [
                plain_problem(
                    file, 1, "must be a mapping with keys such as model, defaults, jobs, sweep"
                )
            ]
        )
    return parse_yaml(path, data, model, overrides or {}, log)
