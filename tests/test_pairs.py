"""A paired dataset out (issue 18, deliverable 7): an edit run's folder loads in `datasets` with
the input beside each output, from imagefolder and from `batchgen export --parquet`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import datasets
from PIL import Image

from batchgen.edges.storage import LocalStore
from batchgen.run.runner import run_manifest
from batchgen.views.export import write_parquet
from batchgen.views.gridplan import plan_grid
from batchgen.views.livesource import Source
from batchgen.views.report import snapshot
from batchgen.views.rundata import load_run
from batchgen.views.servehost import hosted, listen, url_of
from tests.helpers import cli

EDIT = """\
model: qwen-image-edit
rpm: 6000
defaults: {seed: 7}
sweep:
  image: {glob: "photos/*.png"}
  prompt: ["make it winter", "make it night"]
"""


async def edit_folder(tmp_path: Path, emu: Any) -> Path:
    (tmp_path / "photos").mkdir()
    for i, color in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
        Image.new("RGB", (48, 32), color).save(tmp_path / "photos" / f"p{i}.png", format="PNG")
    (tmp_path / "edit.yaml").write_text(EDIT, encoding="utf-8")
    result = await run_manifest(
        tmp_path / "edit.yaml", api_key=emu.config.keys[0], base_url=emu.base_url,
        out=tmp_path / "out", quiet=True, expect_seconds=0.05,
    )  # fmt: skip
    assert result.exit_code == 0
    return tmp_path / "out"


async def test_rows_name_their_inputs_and_the_folder_loads_as_pairs(
    tmp_path: Path, start_emulator: Any
) -> None:
    out = await edit_folder(tmp_path, await start_emulator())
    rows = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert sorted({r["input_name"] for r in rows}) == ["p0.png", "p1.png", "p2.png"]
    assert len(list((out / "inputs").iterdir())) == 3  # one copy per distinct input
    for row in rows:
        assert row["input_file_name"] == f"inputs/{row['input_sha256'][:20]}.png"
        assert row["inputs"][0]["name"] == row["input_name"]
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), split="train")
    assert len(loaded) == 6
    assert isinstance(loaded.features["image"], datasets.Image)
    assert isinstance(loaded.features["input"], datasets.Image)
    first = loaded[0]
    assert first["input"].size == (48, 32)


async def test_export_parquet_writes_input_and_output_image_columns(
    tmp_path: Path, start_emulator: Any
) -> None:
    out = await edit_folder(tmp_path, await start_emulator())
    target = tmp_path / "pairs.parquet"
    assert write_parquet(load_run(out), target) == 6
    loaded = datasets.load_dataset("parquet", data_files=str(target), split="train")
    assert isinstance(loaded.features["image"], datasets.Image)
    assert isinstance(loaded.features["input"], datasets.Image)
    by_name = {row["input_name"]: row["input"].getpixel((0, 0)) for row in loaded}
    assert by_name == {"p0.png": (200, 30, 30), "p1.png": (30, 200, 30), "p2.png": (30, 30, 200)}
    assert {row["prompt"] for row in loaded} == {"make it winter", "make it night"}


async def test_grid_x_input_puts_each_input_above_its_outputs(
    tmp_path: Path, start_emulator: Any
) -> None:
    out = await edit_folder(tmp_path, await start_emulator())
    data = load_run(out)
    plan = plan_grid(data.items, "input", "prompt")
    assert plan.xs == ("p0.png", "p1.png", "p2.png")
    assert plan.ys == ("(input)", "make it winter", "make it night")
    (panel,) = plan.panels
    assert [c.file for c in panel.rows[0]] == [
        next(r.row["input_file_name"] for r in data.items if r.row["input_name"] == name)
        for name in plan.xs
    ]
    assert all(c.status == "image" for row in panel.rows for c in row)
    assert all((out / c.file).is_file() for row in panel.rows for c in row if c.file)
    across = plan_grid(data.items, "prompt", "input")
    assert across.xs[0] == "(input)"
    assert [row[0].file for row in across.panels[0].rows] == [c.file for c in panel.rows[0]]
    drawn = tmp_path / "grid.png"
    done = cli("grid", str(out), "--x", "input", "--y", "prompt", "--output", str(drawn),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(drawn) as image:
        image.load()


async def test_a_model_comparison_grid_over_the_same_inputs(
    tmp_path: Path, start_emulator: Any
) -> None:
    """Two editing models (their image slots named differently) into one folder: the grid has
    the input column, then a column per model; the inputs are uploaded once for both."""
    emu = await start_emulator()
    out = await edit_folder(tmp_path, emu)
    (tmp_path / "flux.yaml").write_text(
        "model: flux-kontext-pro\nrpm: 6000\ndefaults: {seed: 7}\n"
        "sweep:\n  input_image: {glob: 'photos/*.png'}\n"
        "  prompt: ['make it winter', 'make it night']\n",
        encoding="utf-8",
    )
    result = await run_manifest(
        tmp_path / "flux.yaml", api_key=emu.config.keys[0], base_url=emu.base_url, out=out,
        quiet=True, expect_seconds=0.05,
    )  # fmt: skip
    assert result.exit_code == 0
    assert emu.stats()["uploads"] == 3  # the same contents: recorded once for the folder
    plan = plan_grid(load_run(out).items, "model", "input", [("prompt", "make it night")])
    assert plan.xs == ("(input)", "qwen-image-edit", "flux-kontext-pro")
    assert plan.ys == ("p0.png", "p1.png", "p2.png")
    assert plan.count("image") == 9


async def test_a_large_run_keeps_input_copies_beside_each_parts_metadata(
    tmp_path: Path, start_emulator: Any
) -> None:
    """Past folder_size, images go to data/NNNNN/ with their own metadata.jsonl: each part keeps
    the inputs its rows name (imagefolder refuses '..'), and DIR still loads as pairs."""
    emu = await start_emulator()
    (tmp_path / "photos").mkdir()
    for i in range(3):
        Image.new("RGB", (24, 16), (80 * i, 40, 200)).save(tmp_path / "photos" / f"p{i}.png")
    (tmp_path / "edit.yaml").write_text(EDIT + "folder_size: 4\n", encoding="utf-8")
    result = await run_manifest(
        tmp_path / "edit.yaml", api_key=emu.config.keys[0], base_url=emu.base_url,
        out=tmp_path / "out", quiet=True, expect_seconds=0.05,
    )  # fmt: skip
    assert result.exit_code == 0
    parts = sorted(p for p in (tmp_path / "out" / "data").iterdir() if p.is_dir())
    assert len(parts) == 2
    for part in parts:
        for line in (part / "metadata.jsonl").read_text().splitlines():
            assert (part / json.loads(line)["input_file_name"]).is_file()
    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "out"), split="train")
    assert len(loaded) == 6
    assert isinstance(loaded.features["input"], datasets.Image)


async def test_the_report_shows_each_input_beside_its_output(
    tmp_path: Path, start_emulator: Any
) -> None:
    out = await edit_folder(tmp_path, await start_emulator())
    data, shown = snapshot(out)
    assert shown == 6  # outputs; the three inputs are thumbnailed but not counted as images
    items = data["items"]
    assert len(items) == 6
    rows = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    thumbs: dict[str, str] = {}
    for item in items:
        (given,) = item["inputs"]
        assert given["slot"] == "image"
        assert given["name"] == item["params"]["input"]
        row = next(r for r in rows if r["input_name"] == given["name"])
        assert given["file"] == row["input_file_name"]
        assert given["url"] == given["file"]
        assert given["thumb"].startswith("data:image/jpeg;base64,")
        assert thumbs.setdefault(given["name"], given["thumb"]) == given["thumb"]
        assert item["more"] == []
    assert sorted(thumbs) == ["p0.png", "p1.png", "p2.png"]
    assert len(set(thumbs.values())) == 3  # each input's own picture, not one for all
    (out / items[0]["inputs"][0]["file"]).unlink()  # an input copy gone: shown by name only
    again, _ = snapshot(out)
    lost = [i for item in again["items"] for i in item["inputs"] if i["url"] is None]
    assert len(lost) == 2
    assert all(i["thumb"] is None for i in lost)


async def test_the_live_page_serves_the_inputs_it_shows_and_nothing_else(
    tmp_path: Path, start_emulator: Any
) -> None:
    out = await edit_folder(tmp_path, await start_emulator())
    Image.new("RGB", (8, 8)).save(out / "inputs" / "stray.png")  # in inputs/, named by no row
    sock = listen("127.0.0.1", 0)
    async with (
        hosted(Source(LocalStore(out), name="out"), sock, interval=0.05),
        aiohttp.ClientSession() as session,
    ):
        base = url_of(sock)
        async with session.get(f"{base}api/state") as resp:
            items = (await resp.json())["items"]
        assert len(items) == 6
        copies = {i["file"]: i for item in items for i in item["inputs"]}
        assert len(copies) == 3
        for file, given in copies.items():
            assert given["url"] == f"file/{file}"
            async with session.get(base + given["url"]) as resp:
                assert resp.status == 200
                assert await resp.read() == (out / file).read_bytes()
            async with session.get(base + given["thumb"]) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "image/jpeg"
        for stray in ("file/inputs/stray.png", "thumb/inputs/stray.png"):
            async with session.get(base + stray) as resp:
                assert resp.status == 404
        async with session.get(f"{base}api/grid?x=input&y=prompt") as resp:
            grid = await resp.json()
        (panel,) = grid["panels"]
        assert [c["file"] for c in panel["rows"][0]] == sorted(
            copies, key=lambda f: copies[f]["name"]
        )  # the input row: each input's own copy, which the page shows as a picture
