"""Several images per job (issue 18, deliverable 5) over real HTTP against the emulator: every one
downloaded, verified and stored as {id}-{k}.{ext} with a metadata row each; complete only when
all are stored, also across a crash; fewer than asked is recorded and counted, not a crash."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from batchgen.core.lifecycle import State, replay
from batchgen.edges.crashpoints import CRASH_ENV
from batchgen.emulator import parse_fault
from batchgen.models.registry import MODELS
from batchgen.run.runner import RunResult, run_manifest
from batchgen.views.report import snapshot
from tests.procs import finish, server_stats, start_run

SEEDREAM = """\
model: seedream-4.5
rpm: 6000
jobs:
  - {prompt: "three takes", image_input: [in.png], max_images: 3, size: "2K"}
  - {prompt: "one take", image_input: [in.png]}
"""


def setup(tmp_path: Path) -> Path:
    Image.new("RGB", (40, 30), (10, 120, 200)).save(tmp_path / "in.png", format="PNG")
    manifest = tmp_path / "seedream.yaml"
    manifest.write_text(SEEDREAM, encoding="utf-8")
    return manifest


async def run(tmp_path: Path, emu: Any) -> RunResult:
    return await run_manifest(
        setup(tmp_path), api_key=emu.config.keys[0], base_url=emu.base_url,
        out=tmp_path / "out", quiet=True, expect_seconds=0.05,
    )  # fmt: skip


def rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]


async def test_a_job_asking_for_three_images_stores_three(
    tmp_path: Path, start_emulator: Any
) -> None:
    emu = await start_emulator()
    result = await run(tmp_path, emu)
    assert result.exit_code == 0
    out = tmp_path / "out"
    found = rows(out)
    three = sorted((r for r in found if r.get("max_images") == 3),
                   key=lambda r: r["index"])  # fmt: skip
    assert [r["index"] for r in three] == [0, 1, 2]
    assert [r["file_name"] for r in three] == [f"{three[0]['id']}-{k}.png" for k in range(3)]
    for row in three:
        with Image.open(out / row["file_name"]) as image:
            image.load()
    single = [r for r in found if "max_images" not in r]
    assert [r["file_name"] for r in single] == [f"{single[0]['id']}.png"]
    assert len(list(out.glob("*.png"))) == 4
    assert result.stats.fewer_images == 0
    # A rerun finds all four files intact: nothing is submitted again.
    again = await run(tmp_path, emu)
    assert again.skipped == 2
    assert emu.stats()["paid_submits"] == 2
    # The report shows a job's every image: image 0 as the card's picture, the others beside it.
    data, shown = snapshot(out)
    assert shown == 4
    (job,) = [i for i in data["items"] if i["id"] == three[0]["id"]]
    assert job["file"] == three[0]["file_name"]
    assert [m["file"] for m in job["more"]] == [r["file_name"] for r in three[1:]]
    assert all(m["thumb"].startswith("data:image/jpeg;base64,") for m in job["more"])
    assert [i["name"] for i in job["inputs"]] == ["in.png"]


async def test_one_image_where_three_were_asked_is_recorded_and_counted(
    tmp_path: Path, start_emulator: Any
) -> None:
    emu = await start_emulator(faults=(parse_fault("submit:one-image=1"),))
    result = await run(tmp_path, emu)
    assert result.exit_code == 0
    assert result.stats.fewer_images == 1
    assert result.summary["fewer_images"] == 1
    ledger = [json.loads(x) for x in (tmp_path / "out" / "ledger.jsonl").read_text().splitlines()]
    short = [r for r in ledger if r["event"] == "completed" and r.get("asked") == 3]
    assert len(short) == 1
    assert len(short[0]["files"]) == 1


def test_a_crash_between_images_leaves_the_job_incomplete_and_resume_fetches_all(
    tmp_path: Path, emulator_url: str
) -> None:
    """SIGKILL after the second image of the 3-image job is under its name (before `completed`):
    the job is not complete; resume re-attaches to the paid request and stores all three."""
    manifest = setup(tmp_path)
    out = tmp_path / "out"
    code, _, _ = finish(start_run(manifest, out, emulator_url, env={CRASH_ENV: "renamed:2"}))
    assert code == -signal.SIGKILL
    with (out / "ledger.jsonl").open("rb") as handle:
        before = replay(handle).jobs
    assert sum(j.state is State.COMPLETED for j in before.values()) <= 1
    code, stdout, stderr = finish(start_run(manifest, out, emulator_url))
    assert code == 0, stdout + stderr
    assert len(rows(out)) == 4
    assert len(list(out.glob("*.png"))) == 4
    assert server_stats(emulator_url)["paid_submits"] == 2  # re-attached, not paid again


async def test_images_are_charged_each_whether_the_server_says_the_cost_or_not(
    tmp_path: Path, start_emulator: Any
) -> None:
    """A price is per image: the emulator bills seedream's 3-image job as 3 images, and when a
    server gives no `metrics.cost` the run charges its table price per image stored."""
    price = MODELS["seedream-4.5"].price_usd
    assert price is not None
    for report_cost in (True, False):
        emu = await start_emulator(report_cost=report_cost)
        (tmp_path / str(report_cost)).mkdir()
        result = await run(tmp_path / str(report_cost), emu)
        assert result.exit_code == 0
        assert result.stats.spend == pytest.approx(4 * price)  # 3 images + 1
        assert emu.stats()["credits_spent"] == pytest.approx(4 * price)
        costs = sorted(r["cost"] for r in rows(tmp_path / str(report_cost) / "out")
                       if "cost" in r)  # fmt: skip
        if report_cost:
            assert costs == pytest.approx([price, 3 * price, 3 * price, 3 * price])
