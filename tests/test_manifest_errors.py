"""Every class of manifest error names the file, the line and the field (table-driven)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.core.errors import ManifestError, ManifestProblem
from batchgen.manifest.loader import Manifest

# (name, file name, content, expected line, expected field, words the message must contain)
CASES = [
    ("range", "m.yaml", "jobs:\n  - prompt: a\n    steps: 99\n", 3, "steps", "from 1 to 50"),
    ("type", "m.yaml", "jobs:\n  - prompt: a\n    guidance: high\n", 3, "guidance", "a number"),
    (
        "bool-not-int",
        "m.yaml",
        "jobs:\n  - prompt: a\n    quality: true\n",
        3,
        "quality",
        "boolean",
    ),
    ("enum", "m.yaml", "jobs:\n  - prompt: a\n    image_format: gif\n", 3, "image_format", "'png'"),
    ("missing-prompt", "m.yaml", "jobs:\n  - steps: 5\n", 2, "prompt", "required"),
    ("unknown-key", "m.yaml", "jobs:\n  - prompt: a\n    guidnce: 3\n", 3, "guidnce", "'guidance'"),
    (
        "unknown-top",
        "m.yaml",
        "defaults: {prompt: a}\nconcurrncy: 3\n",
        2,
        "concurrncy",
        "concurrency",
    ),
    ("bad-setting", "m.yaml", "defaults: {prompt: a}\nrpm: -1\n", 2, "rpm", "> 0"),
    ("defaults-range", "m.yaml", "defaults:\n  prompt: a\n  steps: 0\n", 3, "steps", "from 1"),
    (
        "sweep-value",
        "m.yaml",
        "defaults: {prompt: a}\nsweep:\n  guidance:\n    - 3\n    - 99\n",
        5,
        "guidance",
        "to 20",
    ),
    ("template-var", "m.yaml", "jobs:\n  - prompt: 'a {animal}'\n", 2, "prompt", "animal"),
    ("bad-template", "m.yaml", "jobs:\n  - prompt: 'a {0}'\n", 2, "prompt", "plain names"),
    (
        "swept-and-set",
        "m.yaml",
        "sweep: {seed: [1, 2]}\njobs:\n  - {prompt: a, seed: 3}\n",
        3,
        "seed",
        "both swept",
    ),
    (
        "bad-repeat",
        "m.yaml",
        "jobs:\n  - prompt: a\n    repeat: 0\n",
        3,
        "repeat",
        "integer from 1",
    ),
    ("bad-top-repeat", "m.yaml", "defaults: {prompt: a}\nrepeat: two\n", 2, "repeat", ">= 1"),
    ("unsafe-id", "m.yaml", "jobs:\n  - id: ../etc\n    prompt: a\n", 2, "id", "file-name safe"),
    (
        "reserved-id",
        "m.yaml",
        "jobs:\n  - id: j-0123456789abcdef\n    prompt: a\n",
        2,
        "id",
        "generated",
    ),
    (
        "duplicate-id",
        "m.yaml",
        "jobs:\n  - {id: a, prompt: x}\n  - {id: a, prompt: y}\n",
        3,
        "id",
        "line 2",
    ),
    ("duplicate-key", "m.yaml", "jobs:\n  - prompt: a\n    prompt: b\n", 3, "prompt", "line 2"),
    (
        "zip-lengths",
        "m.yaml",
        "defaults: {prompt: a}\nsweep:\n  zip: {seed: [1, 2], steps: [3]}\n",
        3,
        "sweep.zip",
        "same length",
    ),
    (
        "sweep-cap",
        "m.yaml",
        "max_jobs: 10\ndefaults: {prompt: a}\nsweep: {seed: [1,2,3,4], steps: [1,2,3]}\n",
        3,
        "sweep",
        "12 jobs",
    ),
    ("missing-jobs-file", "m.yaml", "jobs_file: nope.jsonl\n", 1, "jobs_file", "does not exist"),
    ("malformed-yaml", "m.yaml", "jobs:\n  - prompt: [a\n", 3, None, "not valid YAML"),
    ("non-utf8-yaml", "m.yaml", b"jobs:\n  - prompt: caf\xe9\n", 2, None, "not UTF-8"),
    ("empty-yaml", "m.yaml", "# nothing\n", None, None, "empty"),
    ("no-jobs", "m.yaml", "jobs: []\n", 1, None, "no jobs"),
    ("jsonl-json", "m.jsonl", '{"prompt": "a"}\n{"prompt": \n', 2, None, "not valid JSON"),
    ("jsonl-utf8", "m.jsonl", b'{"prompt": "a"}\n{"prompt": "\xff"}\n', 2, None, "not UTF-8"),
    ("jsonl-object", "m.jsonl", '["a"]\n', 1, None, "JSON object"),
    ("jsonl-nan", "m.jsonl", '{"prompt": "a", "guidance": NaN}\n', 1, None, "NaN"),
    ("jsonl-range", "m.jsonl", '\n{"prompt": "a", "steps": 51}\n', 2, "steps", "to 50"),
    ("jsonl-empty", "m.jsonl", "\n\n", None, None, "no jobs"),
    (
        "jsonl-dup-id",
        "m.jsonl",
        '{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n',
        2,
        "id",
        "line 1",
    ),
]


def _problems(
    load: Callable[..., Manifest], name: str, content: str | bytes
) -> list[ManifestProblem]:
    try:
        scan = load(name, content).scan()
    except ManifestError as exc:
        return list(exc.problems)
    return list(scan.problems)


@pytest.mark.parametrize(
    ("name", "content", "line", "field", "words"),
    [pytest.param(c[1], c[2], c[3], c[4], c[5], id=c[0]) for c in CASES],
)
def test_error_names_line_and_field(
    load: Callable[..., Manifest],
    name: str,
    content: str | bytes,
    line: int | None,
    field: str | None,
    words: str,
) -> None:
    """Each broken manifest yields a problem at the right line and field with a helpful message."""
    problems = _problems(load, name, content)
    assert problems, "expected a problem"
    match = [p for p in problems if p.line == line and p.field == field and words in p.message]
    assert match, "\n".join(str(p) for p in problems)
    assert name in str(match[0])
    if line is not None:
        assert f"{name}:{line}" in str(match[0])


def test_all_problems_reported_at_once(load: Callable[..., Manifest]) -> None:
    """Several broken jobs are all reported in one pass, not only the first."""
    rows = "".join(f'{{"prompt": "p", "steps": {100 + i}}}\n' for i in range(5))
    scan = load("m.jsonl", rows).scan()
    assert scan.total_problems == 5
    assert [p.line for p in scan.problems] == [1, 2, 3, 4, 5]


def test_problems_are_capped_with_a_count(load: Callable[..., Manifest]) -> None:
    """Past the cap, problems are counted and the message says how many were left out."""
    rows = '{"prompt": ""}\n' * 80
    scan = load("m.jsonl", rows).scan(cap=50)
    assert (len(scan.problems), scan.total_problems) == (50, 80)
    assert str(scan.error()).endswith("… and 30 more")


def test_shared_default_problem_reported_once(load: Callable[..., Manifest]) -> None:
    """A bad value in defaults is one problem, not one per job."""
    scan = load("m.yaml", "defaults: {steps: 0}\njobs: [a, b, c]\n").scan()
    assert scan.total_problems == 1


def test_unknown_model_passes_params_through(load: Callable[..., Manifest]) -> None:
    """Unknown models get no schema checks: any key, no required prompt."""
    m = load("m.yaml", "model: some-upscaler\njobs:\n  - {image_url: x, scale: 4}\n")
    jobs = list(m.jobs())
    assert jobs[0].params == {"image_url": "x", "scale": 4}


def test_jobs_iteration_raises_on_problem(
    load: Callable[..., Manifest], write: Callable[..., Path]
) -> None:
    """Iterating jobs of an invalid manifest raises ManifestError instead of yielding bad jobs."""
    m = load("m.jsonl", '{"prompt": "a"}\n{"prompt": "b", "steps": 0}\n')
    with pytest.raises(ManifestError, match="steps"):
        list(m.jobs())
