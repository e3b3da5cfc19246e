"""Edit batches over real HTTP against the emulator (issue 18's done-when): local inputs are
uploaded once per content, the jobs send the URLs, and a rerun uploads and submits nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from batchgen.core.lifecycle import replay
from batchgen.edges.crashpoints import CRASH_ENV
from batchgen.emulator import parse_fault
from batchgen.emulator.server import Emulator
from batchgen.run.runner import RunResult, run_manifest
from tests.helpers import cli
from tests.procs import check_dataset, finish, server_stats, start_run


def six_inputs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(6):
        path = folder / f"in{i}.png"
        Image.new("RGB", (32, 24), (40 * i, 255 - 40 * i, 90)).save(path, format="PNG")
        paths.append(path)
    return paths


EDIT = """\
model: qwen-image-edit
rpm: 6000
concurrency: 8
sweep:
  image: {glob: "inputs/*.png"}
  prompt: ["make it winter", "make it night"]
"""


def run_edit(tmp_path: Path, url: str) -> tuple[int, str]:
    done = cli("run", "edit.yaml", "--out", "out", "--base-url", url, "--quiet",
               "--expect-seconds", "0.15", cwd=tmp_path,
               env={"SEGMIND_API_KEY": "emulator-key", "PATH": "/usr/bin:/bin"})  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_six_inputs_by_two_instructions_upload_six_files_once(
    tmp_path: Path, emulator_url: str
) -> None:
    inputs = six_inputs(tmp_path / "inputs")
    (tmp_path / "edit.yaml").write_text(EDIT, encoding="utf-8")
    code, output = run_edit(tmp_path, emulator_url)
    assert code == 0, output
    stats = server_stats(emulator_url)
    assert stats["uploads"] == 6
    assert stats["uploads_distinct"] == 6
    assert stats["uploads_duplicate"] == 0
    assert stats["paid_submits"] == 12
    assert stats["inputs_refused"] == 0
    out = tmp_path / "out"
    assert len(list(out.glob("j-*.png"))) == 12
    ledger = [json.loads(x) for x in (out / "ledger.jsonl").read_text().splitlines()]
    uploaded = [r for r in ledger if r["event"] == "uploaded"]
    assert len(uploaded) == 6
    assert all(r["url"].startswith(emulator_url + "/assets/") for r in uploaded)

    # A rerun uploads and submits nothing; renaming an input changes nothing either.
    inputs[0].rename(inputs[0].with_name("renamed.png"))
    code, output = run_edit(tmp_path, emulator_url)
    assert code == 0, output
    again = server_stats(emulator_url)
    assert again["upload_calls"] == stats["upload_calls"]
    assert again["paid_submits"] == 12

    # A grown sweep (a third instruction) submits 6 more jobs and uploads nothing.
    (tmp_path / "edit.yaml").write_text(
        EDIT.replace('"make it night"]', '"make it night", "make it spring"]'), encoding="utf-8"
    )
    code, output = run_edit(tmp_path, emulator_url)
    assert code == 0, output
    grown = server_stats(emulator_url)
    assert grown["upload_calls"] == stats["upload_calls"]
    assert grown["paid_submits"] == 18


# -- faults of the upload call, in process (the emulator over real HTTP on 127.0.0.1) ---------


async def edit_run(tmp_path: Path, emu: Emulator, **kwargs: Any) -> RunResult:
    if not (tmp_path / "inputs").exists():
        six_inputs(tmp_path / "inputs")
    (tmp_path / "edit.yaml").write_text(EDIT, encoding="utf-8")
    return await run_manifest(
        tmp_path / "edit.yaml", api_key=emu.config.keys[0], base_url=emu.base_url,
        out=tmp_path / "out", quiet=True, expect_seconds=0.05, **kwargs,
    )  # fmt: skip


async def test_a_lost_upload_answer_is_retried(tmp_path: Path, start_emulator: Any) -> None:
    emu = await start_emulator(faults=(parse_fault("upload:accepted-reset=1x1"),))
    result = await edit_run(tmp_path, emu)
    assert result.exit_code == 0
    assert result.stats.retries >= 1
    assert result.stats.possible_double_charges == 0  # uploads are free: nothing is counted
    stats = emu.stats()
    assert stats["faults"] == {"upload:accepted-reset": 1}
    assert stats["uploads_distinct"] == 6  # stored twice once: the lost answer's files
    assert stats["paid_submits"] == 12


async def test_an_upload_answered_short_fails_its_jobs_naming_it(
    tmp_path: Path, start_emulator: Any
) -> None:
    emu = await start_emulator(faults=(parse_fault("upload:short=1"),))
    result = await edit_run(tmp_path, emu)
    assert result.exit_code == 1
    assert emu.stats()["paid_submits"] == 0  # nothing is sent without its input
    assert result.stats.failed == {"upload": 12}
    failed = (tmp_path / "out" / "failed.jsonl").read_text()
    assert "URL(s) for" in failed
    assert "file(s) sent; none is used" in failed


async def test_a_crash_between_upload_and_submit_reuses_the_recorded_url(
    tmp_path: Path, start_emulator: Any
) -> None:
    """The ledger of a run that died after its uploads were recorded, before any submit: the
    next run submits with the recorded URLs and uploads nothing."""
    emu = await start_emulator()
    first = await edit_run(tmp_path, emu)
    assert first.exit_code == 0
    ledger = tmp_path / "out" / "ledger.jsonl"
    kept = [x for x in ledger.read_text().splitlines() if '"uploaded"' in x or '"run"' in x]
    ledger.write_text("".join(x + "\n" for x in kept))  # as if killed before the first intent
    for image in (tmp_path / "out").glob("j-*.png"):
        image.unlink()
    calls = emu.stats()["upload_calls"]
    second = await edit_run(tmp_path, emu)
    assert second.exit_code == 0
    assert emu.stats()["upload_calls"] == calls
    assert emu.stats()["paid_submits"] == 24
    assert len(list((tmp_path / "out").glob("j-*.png"))) == 12


@pytest.mark.parametrize("kill_at", ["ledger:3", "intent:4", "renamed:2"])
def test_sigkill_mid_run_then_resume_uploads_no_file_twice(
    tmp_path: Path, emulator_url: str, kill_at: str
) -> None:
    """SIGKILLed at an exact moment (crashpoints.py), then resumed: 12 images, and no upload
    beyond the files whose upload was in flight at the kill (those not recorded yet)."""
    six_inputs(tmp_path / "inputs")
    (tmp_path / "edit.yaml").write_text(EDIT, encoding="utf-8")
    out = tmp_path / "out"
    proc = start_run(tmp_path / "edit.yaml", out, emulator_url, env={CRASH_ENV: kill_at})
    code, _, _ = finish(proc)
    assert code == -signal.SIGKILL
    with (out / "ledger.jsonl").open("rb") as handle:
        recorded = len(replay(handle).uploads)
    code, stdout, stderr = finish(start_run(tmp_path / "edit.yaml", out, emulator_url))
    assert code == 0, stdout + stderr
    stats = server_stats(emulator_url)
    assert stats["uploads_distinct"] == 6
    assert stats["uploads_duplicate"] <= 6 - recorded  # only those in flight at the kill
    check_dataset(out, 12)


async def test_urls_recorded_by_another_upload_host_are_not_reused(
    tmp_path: Path, start_emulator: Any
) -> None:
    """A folder first run against one server, then another (a new --emulator, a changed
    --upload-url): the second uploads again, since the first host's URLs mean nothing there."""
    first = await start_emulator()
    assert (await edit_run(tmp_path, first)).exit_code == 0
    for image in (tmp_path / "out").glob("j-*.png"):
        image.unlink()  # so the jobs run again, against the second server
    await first.close()  # (the recorded images cannot be fetched again from it either)
    second = await start_emulator()
    result = await edit_run(tmp_path, second)
    assert result.exit_code == 0
    assert second.stats()["uploads_distinct"] == 6
    assert second.stats()["inputs_refused"] == 0


async def test_the_sync_path_sends_uploaded_urls_too(tmp_path: Path, start_emulator: Any) -> None:
    emu = await start_emulator()
    result = await edit_run(tmp_path, emu, overrides={"mode": "sync"})
    assert result.exit_code == 0
    stats = emu.stats()
    assert stats["sync_accepted"] == 12
    assert stats["uploads_distinct"] == 6
    assert stats["uploads_duplicate"] == 0
    assert stats["inputs_refused"] == 0


async def test_failed_jsonl_of_an_edit_batch_runs_again_from_the_output_folder(
    tmp_path: Path, start_emulator: Any
) -> None:
    """Jobs that failed (here: every upload answered short) are written to failed.jsonl with
    their inputs as paths that still resolve from there: running it retries the same jobs."""
    emu = await start_emulator(faults=(parse_fault("upload:short=1x1"),))
    first = await edit_run(tmp_path, emu)
    failed = tmp_path / "out" / "failed.jsonl"
    assert first.exit_code == 1
    assert failed.is_file()
    again = await run_manifest(
        failed, api_key=emu.config.keys[0], base_url=emu.base_url, out=tmp_path / "out",
        quiet=True, expect_seconds=0.05, retry_failed=True,
    )  # fmt: skip
    assert again.exit_code == 0
    assert len(list((tmp_path / "out").glob("j-*.png"))) == 12


async def test_a_job_with_several_inputs_uploads_them_in_one_call(
    tmp_path: Path, start_emulator: Any
) -> None:
    six_inputs(tmp_path / "inputs")
    rows = [{"model": "qwen-image-edit-plus", "prompt": "combine", "image": "inputs/in0.png",
             "image_2": "inputs/in1.png", "image_3": "inputs/in2.png"}]  # fmt: skip
    manifest = tmp_path / "plus.jsonl"
    manifest.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    emu = await start_emulator()
    result = await run_manifest(
        manifest, api_key=emu.config.keys[0], base_url=emu.base_url, out=tmp_path / "out",
        quiet=True, expect_seconds=0.05, overrides={"rpm": 6000},
    )  # fmt: skip
    assert result.exit_code == 0
    stats = emu.stats()
    assert stats["upload_calls"] == 1
    assert stats["uploads_distinct"] == 3
    assert result.summary["api_calls"]["upload"] == 1
