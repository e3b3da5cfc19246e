"""`batchgen grid` and `batchgen report` on real runs against the emulator: what the picture and
the page show, on finished, running and growing runs."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from batchgen.views.griddraw import geometry
from batchgen.views.gridplan import plan_grid
from batchgen.views.rundata import load_run
from tests.helpers import cli, write_jsonl
from tests.views import BIRD, FOX, GUIDANCE, artifacts, cells_manifest, invoke, run


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run: FOX images at guidance 2.5 and 4, (FOX, 7) never asked, BIRD all failed."""
    folder = tmp_path_factory.mktemp("cells")
    result = run(cells_manifest(folder / "m.jsonl"), folder / "out")
    assert (result.stats.completed, sum(result.stats.failed.values())) == (2, 3)
    return folder / "out"


def pixel(sheet: Image.Image, box: tuple[int, int, int, int], dx: int, dy: int) -> tuple[int, ...]:
    return tuple(sheet.getpixel((box[0] + dx, box[1] + dy)))  # type: ignore[arg-type]


def test_grid_marks_images_failures_and_missing_cells(cells: Path, tmp_path: Path):
    """Each cell of the PNG is what the run did: the image, FAILED (red) or not generated (grey)."""
    target = tmp_path / "grid.png"
    done = invoke("grid", str(cells), "--x", "guidance", "--y", "prompt", "-o", str(target))
    assert done.exit_code == 0, done.output
    assert "3 x 2 cells, 2 images, 3 failed, 1 not generated" in done.stdout
    shutil.copy(target, artifacts() / "grid-cells.png")
    plan = plan_grid(load_run(cells).items, "guidance", "prompt")
    assert plan.xs == GUIDANCE
    assert set(plan.ys) == {FOX, BIRD}
    shape = geometry(3, 2, 1)
    with Image.open(target) as sheet:
        assert sheet.size == (shape.width, shape.height)
        rows = {y: r for r, y in enumerate(plan.ys)}
        for c in range(3):  # the failed row: the pale red of a failed cell, inside its border
            assert pixel(sheet, shape.cell_box(0, rows[BIRD], c), 8, shape.cell - 8) == (
                253,
                226,
                226,
            )
        missing = shape.cell_box(0, rows[FOX], 2)
        assert pixel(sheet, missing, 8, shape.cell - 20) == (236, 236, 236)
        for c in range(2):  # image cells: the thumbnail of that very file
            cell = plan.panels[0].rows[rows[FOX]][c]
            with Image.open(cells / str(cell.file)) as source:
                thumb = ImageOps.contain(source.convert("RGB"), (shape.cell - 4,) * 2)
            box = shape.cell_box(0, rows[FOX], c)
            inset = (
                (shape.cell - 4 - thumb.width) // 2 + 2,
                (shape.cell - 4 - thumb.height) // 2 + 2,
            )
            got = pixel(sheet, box, inset[0] + thumb.width // 2, inset[1] + thumb.height // 2)
            assert got == thumb.getpixel((thumb.width // 2, thumb.height // 2))


def test_grid_errors_exit_3_with_a_hint(cells: Path, tmp_path: Path):
    """Unknown parameter: did-you-mean and exit 3; no ledger: exit 3; damaged ledger: exit 2."""
    typo = invoke("grid", str(cells), "--x", "guidence", "--y", "prompt")
    assert typo.exit_code == 3
    assert "did you mean 'guidance'?" in typo.stderr
    empty = invoke("grid", str(tmp_path), "--x", "guidance", "--y", "seed")
    assert empty.exit_code == 3
    assert "no ledger" in empty.stderr
    broken = tmp_path / "broken"
    shutil.copytree(cells, broken)
    lines = (broken / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = b"garbage\n"
    (broken / "ledger.jsonl").write_bytes(b"".join(lines))
    damaged = invoke("grid", str(broken), "--x", "guidance", "--y", "prompt")
    assert damaged.exit_code == 2
    assert "line 2" in damaged.stderr
    assert not list(tmp_path.glob("*.png"))


def test_grid_of_a_running_run_reads_without_touching_the_ledger(cells: Path, tmp_path: Path):
    """A run in progress: a job in flight and a half-written last line. The grid is drawn from
    what has ended, says what has not, and leaves the ledger byte for byte as it was."""
    live = tmp_path / "live"
    shutil.copytree(cells, live)
    (live / "failed.jsonl").unlink()  # not written until the run ends: the ledger must suffice
    ledger = live / "ledger.jsonl"
    extra = {"v": 1, "t": 1.0, "event": "submitted", "job": "j-0000000000000001",
             "request_id": "r1", "status_url": "u", "response_url": "u"}  # fmt: skip
    ledger.write_bytes(ledger.read_bytes() + json.dumps(extra).encode() + b'\n{"v":1,"t":2.0,"ev')
    before = ledger.read_bytes()
    done = invoke("grid", str(live), "--x", "guidance", "--y", "prompt", "-o", str(tmp_path / "g"))
    assert done.exit_code == 0, done.output
    assert "2 images, 3 failed, 1 not generated" in done.stdout
    assert ledger.read_bytes() == before
    assert load_run(live).unfinished == 1


def test_sweep_grows_with_only_the_new_cells_generated(tmp_path: Path):
    """Adding a guidance value and rerunning submits only the new cells (counted at the
    emulator); the grid then shows old and new together, with nothing missing."""
    manifest = tmp_path / "sweep.yaml"
    text = (
        "defaults: {aspect_ratio: '1:1', image_format: png}\n"
        "sweep:\n  guidance: GUIDANCE\n  seed: [1, 2]\n"
        "jobs:\n  - prompt: a lighthouse in a storm\n"
    )
    manifest.write_text(text.replace("GUIDANCE", "[2.5, 4]"))
    first = run(manifest, tmp_path / "out")
    assert first.server is not None
    assert first.server["submits_accepted"] == 4
    old = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.png")}
    manifest.write_text(text.replace("GUIDANCE", "[2.5, 4, 7]"))
    grown = run(manifest, tmp_path / "out")
    assert grown.server is not None
    assert (grown.server["submits_accepted"], grown.server["paid_submits"]) == (2, 2)
    assert grown.skipped == 4
    assert all((tmp_path / "out" / n).read_bytes() == b for n, b in old.items())
    done = invoke("grid", str(tmp_path / "out"), "--x", "guidance", "--y", "seed", "-o",
                  str(tmp_path / "g.png"))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "3 x 2 cells, 6 images, 0 failed, 0 not generated" in done.stdout
    shutil.copy(tmp_path / "g.png", artifacts() / "grid-grown.png")


def test_jobs_sweep_yaml_tiles_by_prompt(tmp_path: Path):
    """jobs/sweep.yaml as a new user runs it: guidance x seed, one panel per subject."""
    manifest = Path(__file__).resolve().parent.parent / "jobs" / "sweep.yaml"
    result = run(manifest, tmp_path / "sweep")
    assert result.stats.completed == 36
    done = cli("grid", "sweep", "--x", "guidance", "--y", "seed", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 x 3 cells in 3 panels, 36 images" in done.stdout
    assert (tmp_path / "grid-guidance-seed.png").is_file()
    shutil.copy(tmp_path / "grid-guidance-seed.png", artifacts() / "grid-sweep.png")
    report = invoke("report", str(tmp_path / "sweep"))
    assert report.exit_code == 0
    assert "36 images" in report.stdout


def test_report_escapes_user_text(cells: Path):
    """A <script> in a prompt is text in the page, never markup; failures list their errors."""
    done = invoke("report", str(cells))
    assert done.exit_code == 0, done.output
    page = (cells / "index.html").read_text(encoding="utf-8")
    assert "<script>window.pwned" not in page
    assert html.escape(FOX) in page
    assert page.count("<script>") == 1  # the page's own filter script, nothing else
    assert "Failures (3)" in page
    assert "server:" in page
    assert 'src="http' not in page  # offline: nothing is fetched from anywhere
    assert "<link" not in page


def test_failures_of_older_ledgers_are_placed_from_failed_jsonl(cells: Path, tmp_path: Path):
    """Ledgers written before failures carried their row: failed.jsonl places them; without
    it they are counted as unplaced, never guessed."""
    old = tmp_path / "old"
    shutil.copytree(cells, old)
    records = [json.loads(x) for x in (old / "ledger.jsonl").read_text().splitlines()]
    for record in records:
        if record["event"] == "failed":
            del record["row"]
    write_jsonl(old / "ledger.jsonl", records)
    data = load_run(old)
    failed = [i for i in data.items if i.state == "failed"]
    assert sorted(i.params["guidance"] for i in failed) == sorted(GUIDANCE)
    assert all(i.params["prompt"] == BIRD for i in failed)
    (old / "failed.jsonl").unlink()
    data = load_run(old)
    assert (data.unplaced_failures, sum(i.state == "failed" for i in data.items)) == (3, 0)
