"""Manifest expansion: defaults, sweeps (counts and order), zip, templates, repeat, jobs_file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.manifest.loader import Manifest, load_manifest
from batchgen.manifest.settings import RunSettings, SettingsError, merge_settings

JOBS_DIR = Path(__file__).resolve().parent.parent / "jobs"


def test_sweep_count_and_order(load: Callable[..., Manifest]) -> None:
    """A sweep is the cartesian product in written order, first axis slowest."""
    m = load("m.yaml", "defaults: {prompt: p}\nsweep:\n  guidance: [3, 5]\n  seed: [1, 2, 3]\n")
    got = [(j.params["guidance"], j.params["seed"]) for j in m.jobs()]
    assert got == [(3, 1), (3, 2), (3, 3), (5, 1), (5, 2), (5, 3)]


def test_zip_pairs_elementwise(load: Callable[..., Manifest]) -> None:
    """A zip group pairs its lists instead of crossing them."""
    text = "sweep:\n  zip: {prompt: [a, b], seed: [1, 2]}\n  steps: [10, 20]\n"
    got = [
        (j.params["prompt"], j.params["seed"], j.params["steps"])
        for j in load("m.yaml", text).jobs()
    ]
    assert got == [("a", 1, 10), ("a", 1, 20), ("b", 2, 10), ("b", 2, 20)]


def test_template_variables_are_consumed(load: Callable[..., Manifest]) -> None:
    """Template variables fill the prompt, are recorded, and are not sent to the API."""
    text = "sweep:\n  animal: [cat, dog]\njobs:\n  - prompt: 'a {animal}'\n    _tag: '{animal}!'\n"
    jobs = list(load("m.yaml", text).jobs())
    assert [j.params["prompt"] for j in jobs] == ["a cat", "a dog"]
    assert all("animal" not in j.params for j in jobs)
    assert jobs[0].variables == {"animal": "cat"}
    assert jobs[0].annotations == {"_tag": "cat!"}


def test_jsonl_values_are_literal(load: Callable[..., Manifest]) -> None:
    """Braces in JSONL prompts are data, not templates."""
    jobs = list(load("m.jsonl", '{"prompt": "json {like} this"}\n').jobs())
    assert jobs[0].params["prompt"] == "json {like} this"


def test_repeat_makes_distinct_jobs_and_seeds(load: Callable[..., Manifest]) -> None:
    """repeat: N gives N jobs with distinct ids and seeds; explicit ids get -rK suffixes."""
    jobs = list(load("m.yaml", "repeat: 3\njobs:\n  - {id: cat, prompt: a}\n  - b\n").jobs())
    assert [j.id for j in jobs[:3]] == ["cat", "cat-r1", "cat-r2"]
    assert len({j.id for j in jobs}) == 6
    assert len({j.seed for j in jobs}) == 6


def test_annotations_never_sent(load: Callable[..., Manifest]) -> None:
    """Keys starting with _ are kept as annotations and left out of params."""
    job = next(load("m.jsonl", '{"prompt": "a", "_source": "x"}\n').jobs())
    assert job.annotations == {"_source": "x"}
    assert "_source" not in job.params


def test_jobs_file_relative_to_manifest(write: Callable[..., Path], tmp_path: Path) -> None:
    """jobs_file is read relative to the manifest's folder and gets the defaults."""
    (tmp_path / "sub").mkdir()
    write("sub/rows.jsonl", '{"prompt": "a"}\n{"prompt": "b", "steps": 5}\n')
    m = load_manifest(write("sub/m.yaml", "defaults: {steps: 9}\njobs_file: rows.jsonl\n"))
    assert [j.params["steps"] for j in m.jobs()] == [9, 5]


def test_defaults_alone_make_one_job(load: Callable[..., Manifest]) -> None:
    """A manifest with only defaults (and repeat) describes jobs without a jobs list."""
    assert load("m.yaml", "repeat: 4\ndefaults: {prompt: a}\n").scan().count == 4


def test_cap_is_checked_before_expanding(load: Callable[..., Manifest]) -> None:
    """A huge sweep is refused arithmetically at load time (this would be 10^12 jobs)."""
    axis = "[" + ", ".join(str(i) for i in range(1000)) + "]"
    text = f"defaults: {{prompt: a}}\nsweep:\n  seed: {axis}\n  quality: {axis}\n  steps: {axis}\n"
    with pytest.raises(Exception, match="1,000,000,000 jobs"):
        load("m.yaml", text)


def test_cap_applies_while_streaming(load: Callable[..., Manifest]) -> None:
    """A JSONL longer than max_jobs is an error found while streaming."""
    m = load("m.jsonl", '{"prompt": "a"}\n' * 5, overrides={"max_jobs": 3})
    scan = m.scan()
    assert not scan.ok
    assert "more than 3 jobs" in str(scan.error())


def test_settings_from_yaml_and_cli_override(load: Callable[..., Manifest]) -> None:
    """Run settings come from the manifest; non-None overrides win."""
    m = load(
        "m.yaml",
        "rpm: 50\nconcurrency: 2\ndefaults: {prompt: a}\n",
        overrides={"rpm": 10, "output": None},
    )
    assert (m.settings.rpm, m.settings.concurrency, m.settings.output) == (10, 2, "out")


def test_merge_settings_rejects_bad_values() -> None:
    """A bad override fails with the setting's rule."""
    with pytest.raises(SettingsError, match="concurrency"):
        merge_settings(RunSettings(), {"concurrency": 0})


def test_model_from_cli_and_row(load: Callable[..., Manifest]) -> None:
    """--model sets the default model; a row's own model wins."""
    m = load("m.jsonl", '{"prompt": "a"}\n{"prompt": "b", "model": "other"}\n', model="qwen-image")
    assert [j.model for j in m.jobs()] == ["qwen-image", "other"]


@pytest.mark.parametrize("path", sorted(JOBS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_manifests_validate(path: Path) -> None:
    """Every manifest in jobs/ is valid."""
    scan = load_manifest(path).scan()
    assert scan.ok, str(scan.error())
    assert scan.count > 0
