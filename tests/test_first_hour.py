"""What a new user meets in the first hour (issue 17): defaults they can see, and the small
things that misled: sync calls missing from the call count, a stale Ctrl-C hint, an empty key
file, `status` mid-run, a refused key, the live line's width, a noisy library, failed.jsonl ids,
the LICENSE and py.typed in the package."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchgen
from batchgen.cli.emulator import emulator as emulator_command
from batchgen.cli.main import main, run, validate
from batchgen.core.lifecycle import replay
from batchgen.run.console import run_summary_lines
from batchgen.run.runner import run_manifest
from batchgen.views.status import status_lines, summarize

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def jobs(path: Path, n: int, fail: int = 0) -> Path:
    rows = [{"prompt": f"p{i}" + (" [fail]" if i < fail else "")} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- 3. defaults a person can see ------------------------------------------------------------


def _option_help(command: object, name: str) -> str:
    for param in command.params:  # type: ignore[attr-defined]
        if param.name == name:
            return str(param.help)
    raise AssertionError(name)


def test_run_help_shows_the_defaults_of_rpm_concurrency_expect_seconds():
    text = invoke("run", "--help")[1]
    for option, default in (("--rpm", "5"), ("--concurrency", "auto"), ("--expect-seconds", "28")):
        found = re.search(rf"^  {option} \S+\s+(.*?)(?=^  -)", text, re.MULTILINE | re.DOTALL)
        assert found is not None, text
        words = " ".join(found[1].split())
        assert "[default: " in words, words
        assert default in words.split("[default: ")[1], words


def test_one_wording_of_rpm_in_run_validate_and_emulator():
    wordings = {
        _option_help(command, "rpm").split(" [default")[0].split(" The ")[0]
        for command in (run, validate, emulator_command)
    }
    assert len(wordings) == 1, wordings


def test_first_line_states_the_limits_and_where_each_came_from(tmp_path: Path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("rpm: 5\njobs:\n  - prompt: a fox\n")
    code, out, _ = invoke("run", str(manifest), "--emulator", "--out", str(tmp_path / "o"),
                          "--concurrency", "2")  # fmt: skip
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("limits:"), out
    assert "rpm 5 (manifest)" in first
    assert "concurrency 2 (flag)" in first
    assert "polls not counted (default)" in first
    assert "expect 0.05 s per image (default: the emulator's latency)" in first


def test_an_invalid_manifest_prints_no_limits_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n  - prompt: x\n    steps: 500\n")
    code, out, err = invoke("run", str(bad), "--emulator", "--out", str(tmp_path / "o"))
    assert code == 3
    assert out == ""
    assert "steps" in err


# -- 4. small things ------------------------------------------------------------------------


def test_sync_calls_are_counted_in_api_calls_per_job(tmp_path: Path):
    manifest = jobs(tmp_path / "m.jsonl", 3)
    code, out, _ = invoke("run", str(manifest), "--emulator", "--sync", "--out",
                          str(tmp_path / "o"), "--rpm", "600", "--quiet")  # fmt: skip
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("API calls per job"))
    assert "sync calls 3" in line, line


def test_empty_key_file_says_the_file_is_empty(tmp_path: Path):
    manifest = jobs(tmp_path / "m.jsonl", 1)
    key = tmp_path / "key.txt"
    key.write_text("\n")
    code, _, err = invoke(
        "run", str(manifest), "--key-file", str(key), "--out", str(tmp_path / "o")
    )
    assert code == 3
    assert f"{key} is empty" in err
    assert "SEGMIND_API_KEY" not in err


async def test_refused_key_leaves_no_folder_and_mentions_no_images(tmp_path: Path, emu):
    manifest = jobs(tmp_path / "m.jsonl", 3)
    out = tmp_path / "o"
    result = await run_manifest(manifest, out=out, api_key="wrong-key", base_url=emu.base_url,
                                quiet=True)  # fmt: skip
    assert result.exit_code == 2
    assert not out.exists()
    lines = run_summary_lines(result)
    assert not any("image" in line for line in lines), lines
    assert "nothing was written" in lines[-1]


def test_live_line_fits_80_columns():
    from batchgen.run.progress import render_line

    sample = {
        "jobs": 1_000_000, "already_done": 12_345, "waiting": 900_000, "in_flight": 10_000,
        "completed": 77_655, "failed": 10_000, "images_per_minute": 12345.67,
        "eta_seconds": 400_000.0, "spend_usd": 9318.6, "projected_usd": 120000.0,
        "rate_limited": 123_456, "api_calls_per_job": 2.25, "elapsed_seconds": 3600.0,
    }  # fmt: skip
    line = render_line(sample, 80)
    assert len(line) <= 80, line
    assert "77,655/987,655" in line
    assert "ETA" in line
    assert "calls/job" in render_line(sample, 200)


def test_status_during_a_run_shows_the_total_and_names_a_submit_in_progress():
    ledger = (
        b'{"t":1,"event":"run","model":"qwen-image","manifest":"m.yaml","jobs":320}\n'
        b'{"t":2,"event":"intent","job":"a","attempt":0}\n'
        b'{"t":3,"event":"intent","job":"b","attempt":0}\n'
        b'{"t":4,"event":"submitted","job":"b","request_id":"r1"}\n'
    )
    status = summarize(replay(ledger.splitlines(keepends=True)), planned=320)
    text = "\n".join(status_lines(status))
    assert "2 of 320 jobs" in text
    assert "not started" in text
    assert "318" in text
    assert "unknown" not in text
    assert "submitting" in text
    assert status.as_dict()["planned"] == 320


def test_status_reads_the_total_from_the_runs_record(tmp_path: Path):
    """`batchgen status` on a folder whose run is under way: the total comes from the ledger."""
    manifest = jobs(tmp_path / "m.jsonl", 5)
    out = tmp_path / "o"
    assert invoke("run", str(manifest), "--emulator", "--out", str(out), "--quiet")[0] == 0
    with (out / "ledger.jsonl").open("a") as ledger:  # a bigger run starting in the same folder
        ledger.write('{"t":9,"event":"run","model":"qwen-image","manifest":"m","jobs":320}\n')
    code, text, _ = invoke("status", str(out))
    assert code == 0
    assert "5 of 320 jobs, 2 run(s)" in text
    assert json.loads(invoke("status", str(out), "--json")[1])["planned"] == 320


async def test_run_manifest_as_a_library_is_quiet_and_logs(tmp_path: Path, capsys, caplog):
    manifest = jobs(tmp_path / "m.jsonl", 4)
    with caplog.at_level(logging.INFO, logger="batchgen"):
        result = await run_manifest(
            manifest, out=tmp_path / "o", emulator=True, overrides={"rpm": 600},
            status_interval=0.01,
        )  # fmt: skip
    assert result.exit_code == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    assert any('"event":"status"' in r.getMessage() for r in caplog.records)


async def test_run_options_object_and_keywords_are_the_same_call(tmp_path: Path):
    from batchgen.run.runner import RunOptions

    manifest = jobs(tmp_path / "m.jsonl", 2)
    options = RunOptions(out=tmp_path / "a", emulator=True, overrides={"rpm": 600}, quiet=True)
    with pytest.raises(AttributeError):
        options.quiet = False  # type: ignore[misc]
    assert "sk-secret" not in repr(RunOptions(api_key="sk-secret"))
    by_options = await run_manifest(manifest, options)
    by_keywords = await run_manifest(manifest, out=tmp_path / "b", emulator=True,
                                     overrides={"rpm": 600}, quiet=True)  # fmt: skip
    assert by_options.exit_code == by_keywords.exit_code == 0
    assert "RunOptions" in batchgen.__all__
    with pytest.raises(TypeError):
        await run_manifest(manifest, no_such_option=1)  # type: ignore[call-arg]


async def test_failed_jsonl_as_a_manifest_into_its_own_folder_retries_the_same_ids(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("rpm: 600\njobs:\n  - prompt: a fox [fail]\n    repeat: 2\n"
                        "  - prompt: an owl\n")  # fmt: skip
    out = tmp_path / "out"
    first = await run_manifest(manifest, out=out, emulator=True, quiet=True)
    assert sum(first.stats.failed.values()) == 2
    failed_ids = {json.loads(x)["_job"] for x in (out / "failed.jsonl").read_text().splitlines()}
    (tmp_path / "retry.jsonl").write_bytes((out / "failed.jsonl").read_bytes())
    again = await run_manifest(tmp_path / "retry.jsonl", out=out, emulator=True, quiet=True,
                               retry_failed=True)  # fmt: skip
    assert again.stats.jobs == 2  # the same two jobs, retried in place
    ledger = [json.loads(x) for x in (out / "ledger.jsonl").read_text().splitlines()]
    jobs_seen = {r["job"] for r in ledger if "job" in r}
    assert jobs_seen == failed_ids | {next(iter(jobs_seen - failed_ids))}
    assert len(jobs_seen) == 3


def test_license_and_py_typed_ship_in_the_package(tmp_path: Path):
    """setuptools, as a wheel build runs it: py.typed is package data, LICENSE a License-File."""
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    script = (
        "import sys; from setuptools import setup; "
        f"sys.argv = ['setup.py', '-q', 'egg_info', '-e', {str(tmp_path)!r}, "
        f"'build_py', '--build-lib', {str(tmp_path / 'lib')!r}]; setup()"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)  # fmt: skip
    assert (tmp_path / "lib" / "batchgen" / "py.typed").is_file()
    (info,) = tmp_path.glob("*.egg-info")
    metadata = (info / "PKG-INFO").read_text()
    assert "License-File: LICENSE" in metadata
    assert "License: MIT" in metadata


def test_after_a_graceful_ctrl_c_the_last_line_does_not_offer_another(tmp_path: Path):
    manifest = jobs(tmp_path / "m.jsonl", 200)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "run", str(manifest), "--emulator", "--out", str(out),
         "--rpm", "20", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    ledger = out / "ledger.jsonl"
    for _ in range(600):
        if ledger.exists() and '"event":"completed"' in ledger.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "press Ctrl-C again" in stderr  # said while it mattered
    last = stdout.strip().splitlines()[-1]
    assert "Ctrl-C again" not in stdout, stdout
    assert "run the same command to resume" in stdout, last
