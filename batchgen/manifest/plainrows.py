"""The plain-JSONL fast path: check one row of a JSONL file that has no defaults and no sweep.

Such a row is its own job, and a million-row file runs this once per row: checking it directly
(no `Entry`, no templates, no combinations) is what keeps `validate` and `run` fast on large
datasets. It must find exactly the problems the general path (`entries.entry_from` +
`Expander._jobs`) finds; `tests/test_fast_paths.py` holds the two to the same answers.
"""

from __future__ import annotations

from typing import Any

from batchgen.core.errors import NO_VALUE, ManifestProblem, ProblemLog
from batchgen.core.jobs import canonical_json, explicit_id_problem
from batchgen.manifest.entries import ABSENT, ENTRY_KEYS, MAX_REPEAT, model_problem, row_label
from batchgen.models.registry import ModelSchema, schema_for

__all__ = ["CheckedRow", "check_row"]

# A valid plain JSONL row: (model, schema, params, annotations, explicit id or ABSENT, repeat).
CheckedRow = tuple[str, ModelSchema | None, dict[str, Any], dict[str, Any], Any, int]


def check_row(
    file: str, line: int, obj: dict[str, Any], model: str, repeat: int, log: ProblemLog
) -> CheckedRow | int:
    """What `entry_from` + `_jobs` check for a JSONL row when there are no defaults or sweep.

    Such a row is literal and alone: no templates, combinations or shared values, so every
    problem is the row's own, located at its line and labelled like `entry_from` labels it.
    The problems, their order and the count are exactly those of the general path. When the
    row has problems (logged): how many jobs it still counts for (0 if `entry_from` would have
    rejected it, else its repeat); otherwise what `expand` needs to identify and build its jobs.
    """
    params: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    for key, value in obj.items():
        if key[:1] == "_":
            annotations[key] = value
        elif key not in ENTRY_KEYS:
            params[key] = value
    explicit: Any = ABSENT
    problems: list[ManifestProblem] = []
    if len(params) + len(annotations) != len(obj):  # it has an id, model or repeat key
        row_model = obj.get("model")
        reason = None if row_model is None else model_problem(row_model)
        if reason:
            problems.append(_row_problem(file, line, obj, "model", row_model, reason))
        row_repeat = obj.get("repeat")
        if row_repeat is not None and not (
            isinstance(row_repeat, int)
            and not isinstance(row_repeat, bool)
            and 1 <= row_repeat <= MAX_REPEAT
        ):
            message = f"must be an integer from 1 to {MAX_REPEAT}"
            problems.append(_row_problem(file, line, obj, "repeat", row_repeat, message))
        if problems:  # entry_from rejects the row: logged, not counted
            for p in problems:
                log.add(p)
            return 0
        model = row_model or model
        repeat = row_repeat or repeat
        explicit = obj.get("id", ABSENT)
        if explicit is not ABSENT:
            if isinstance(explicit, int) and not isinstance(explicit, bool):
                explicit = str(explicit)
            reason = explicit_id_problem(explicit)
            if reason:
                problems.append(_row_problem(file, line, obj, "id", explicit, reason))
    schema = schema_for(model)
    if schema is None:
        try:
            canonical_json({k: v for k, v in obj.items() if k not in ENTRY_KEYS})
        except (TypeError, ValueError) as exc:
            message = f"values must be plain JSON data ({exc})"
            problems.append(_row_problem(file, line, obj, None, NO_VALUE, message))
    else:
        for bad in schema.validate(params):
            value = bad.value if bad.field in params else NO_VALUE
            problems.append(_row_problem(file, line, obj, bad.field, value, bad.message))
    if problems:
        for p in problems:
            log.add(p)
        return repeat  # still counts towards the total
    return model, schema, params, annotations, explicit, repeat


def _row_problem(
    file: str, line: int, obj: dict[str, Any], key: str | None, value: Any, message: str
) -> ManifestProblem:
    return ManifestProblem(file, line, row_label(line, obj), key, value, message)
