"""`batchgen validate`: counts, estimates, exit codes and stderr for broken manifests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli.main import main

JOBS_DIR = Path(__file__).resolve().parent.parent / "jobs"


@pytest.mark.parametrize("path", sorted(JOBS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_manifests_exit_zero(path: Path) -> None:
    """Every jobs/ manifest validates with exit 0 and prints count, cost and duration."""
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "job(s)" in result.stdout
    assert "estimated cost: $" in result.stdout
    assert "estimated duration:" in result.stdout


def test_quickstart_figures() -> None:
    """Quickstart: 8 jobs at the default $0.12 price is $0.96."""
    result = CliRunner().invoke(main, ["validate", str(JOBS_DIR / "quickstart.yaml")])
    assert "8 job(s)" in result.stdout
    assert "$0.96" in result.stdout


def test_flags_override_price_and_rate(write: Callable[..., Path]) -> None:
    """--price-per-image and --rpm change the estimate."""
    path = write("m.yaml", "repeat: 10\ndefaults: {prompt: a}\n")
    result = CliRunner().invoke(
        main, ["validate", str(path), "--price-per-image", "0.5", "--rpm", "60"]
    )
    assert "$5.00" in result.stdout
    assert "at 60 requests/min" in result.stdout


def test_invalid_exits_3_with_all_errors_on_stderr(write: Callable[..., Path]) -> None:
    """A broken manifest exits 3 and lists every problem with file:line on stderr."""
    path = write("m.jsonl", '{"prompt": "a", "steps": 0}\n{"promt": "b"}\n')
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 3
    assert f"{path}:1" in result.stderr
    assert f"{path}:2" in result.stderr
    assert "did you mean 'prompt'" in result.stderr
    assert result.stdout == ""


def test_max_jobs_flag(write: Callable[..., Path]) -> None:
    """--max-jobs lowers the expansion cap."""
    path = write("m.yaml", "defaults: {prompt: a}\nsweep: {seed: [1, 2, 3]}\n")
    result = CliRunner().invoke(main, ["validate", str(path), "--max-jobs", "2"])
    assert result.exit_code == 3
    assert "max_jobs" in result.stderr


def test_missing_file_exits_3(tmp_path: Path) -> None:
    """A manifest path that does not exist is a clear error, exit 3."""
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 3
    assert "cannot be read" in result.stderr
