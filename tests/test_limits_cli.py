"""`validate` and `run --dry-run` say which limit binds and what would lift it."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from batchgen.cli.main import main

JOBS = Path(__file__).resolve().parents[1] / "jobs"


def planned(output: str) -> float:
    match = re.search(r"=> ([\d.]+) images/min", output)
    assert match, output
    return float(match.group(1))


def test_dataset_plans_the_rate_it_names() -> None:
    result = CliRunner().invoke(main, ["validate", str(JOBS / "dataset.yaml")])
    assert result.exit_code == 0, result.output
    assert "at 50 requests/min" in result.output
    assert planned(result.output) >= 45
    assert "concurrency auto (~" in result.output
    assert "limit: the rate limit binds" in result.output


def test_a_fixed_concurrency_is_named_as_the_limit_with_its_lift() -> None:
    result = CliRunner().invoke(
        main, ["validate", str(JOBS / "dataset.yaml"), "--concurrency", "8"]
    )
    assert result.exit_code == 0, result.output
    assert planned(result.output) == 17.1
    assert "limit: concurrency binds (17.1 images/min of the 50.0" in result.output
    assert "--concurrency auto (or above 8) would lift it" in result.output


def test_bad_concurrency_is_invalid_input() -> None:
    result = CliRunner().invoke(
        main, ["validate", str(JOBS / "dataset.yaml"), "--concurrency", "lots"]
    )
    assert result.exit_code != 0
    assert "'lots' is not 'auto' or an integer" in result.output


def test_dry_run_against_the_emulator_estimates_the_emulators_time(tmp_path: Path) -> None:
    """The emulator's 0.05 s jobs and its minute of one second, not the service's 28 s."""
    args = ["run", str(JOBS / "dataset.yaml"), "--dry-run", "--out", str(tmp_path / "o")]
    real = CliRunner().invoke(main, args)
    emulated = CliRunner().invoke(main, [*args, "--emulator"])
    assert real.exit_code == 0, real.output
    assert emulated.exit_code == 0, emulated.output
    assert "about 6m 52s" in real.output  # 320 jobs at 50/min + one 28 s job
    assert "about 6s" in emulated.output  # 320 jobs at 50/s + one 0.05 s job
    assert "limit: the rate limit binds" in emulated.output
