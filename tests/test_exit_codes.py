"""Exit codes a script can trust: 3 for any invalid input (click's own usage errors included),
1 whenever failed jobs are left in the folder (this run's or an earlier one's), with the way to
retry them; the README's table and the `--help` texts say the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.jsonl"
    path.write_text('{"prompt": "a fox"}\n')
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("run", "{m}", "--emulator", "--rpm", "0"),
        ("run", "{m}", "--emulator", "--concurrency", "-1"),
        ("run", "{m}", "--key-file", "{tmp}/no-such-key"),
        ("validate", "{m}", "--rpm", "-5"),
        ("grid", "{tmp}", "--x", "guidance", "--y", "seed", "--where", "seed", "1"),
        ("run", "{m}", "--no-such-flag"),
        ("no-such-command",),
        ("run",),
    ],
)
def test_bad_option_values_are_invalid_input(args: tuple[str, ...], manifest: Path):
    """Click answers bad usage with 2, which batchgen reserves for "run stopped": here it is 3."""
    filled = [a.format(m=manifest, tmp=manifest.parent) for a in args]
    code, _, stderr = invoke(*filled)
    assert code == 3, stderr
    assert "Error" in stderr or "error" in stderr
    assert not (manifest.parent / "out").exists()


def test_failed_jobs_left_in_the_folder_exit_1_and_say_how_to_retry(tmp_path: Path):
    """A run that fails jobs exits 1; so does the next one, which leaves them alone, and both say
    how to retry them; once retried and done, exit 0."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"prompt": "ok"}\n{"prompt": "no [fail]"}\n')
    out = str(tmp_path / "out")
    first = invoke("run", str(manifest), "--emulator", "--out", out, "--quiet")
    assert first[0] == 1
    assert "--retry-failed" in first[1]
    second = invoke("run", str(manifest), "--emulator", "--out", out, "--quiet")
    assert second[0] == 1, second[1]  # nothing failed in this run, but one job is still failed
    assert "1 failed job(s) in the folder" in second[1]
    assert "--retry-failed" in second[1]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["exit_code"] == 1


def test_readme_help_and_summary_agree_on_exit_codes():
    """One table in the README; `run --help` lists the same codes and meanings."""
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| `(\d+)` \| ([^|]+) \|$", readme, flags=re.MULTILINE))
    assert set(table) == {"0", "1", "2", "3", "130"}
    help_text = " ".join(invoke("run", "--help")[1].split())
    for code, meaning in table.items():
        assert f"{code} {meaning.strip()}" in help_text, (code, meaning)
