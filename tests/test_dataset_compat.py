"""Output folders load with the real `datasets` library: flat, split into subfolders, exported."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import datasets  # test extra: a missing install fails this module loudly, never skips it
import pytest
from PIL import Image

from batchgen.edges.parts import PartAllocator, count_parts, part_of
from tests.views import invoke, run

SEEDS = (1, 2, 3, 4)
GUIDANCE = (2.5, 4, 7)


def sweep_manifest(path: Path, folder_size: int | None = None) -> Path:
    """guidance x seed; guidance mixes ints and floats (what `datasets` types per file)."""
    head = f"folder_size: {folder_size}\n" if folder_size else ""
    path.write_text(
        f"{head}defaults: {{aspect_ratio: '1:1', image_format: png, steps: 20}}\n"
        f"sweep:\n  guidance: {list(GUIDANCE)}\n  seed: {list(SEEDS)}\n"
        "jobs:\n  - prompt: a paper boat on a puddle\n    _subject: boat\n"
    )
    return path


def load(folder: Path, cache: Path) -> Any:
    return datasets.load_dataset("imagefolder", data_dir=str(folder), split="train",
                                 cache_dir=str(cache))  # fmt: skip


def ledger_rows(folder: Path) -> dict[str, dict[str, Any]]:
    records = [json.loads(x) for x in (folder / "ledger.jsonl").read_text().splitlines()]
    return {r["file"]: r["row"] for r in records if r["event"] == "completed"}


def check_rows(ds: Any, folder: Path, expected: dict[str, dict[str, Any]]) -> None:
    """Every image is there once, decoded, with its prompt, seed and parameters as columns."""
    assert ds.num_rows == len(expected)
    for column in ("image", "prompt", "seed", "guidance", "steps", "id", "_subject"):
        assert column in ds.column_names
    by_id = {row["id"]: row for row in expected.values()}
    seen = Counter()
    for row in ds:
        want = by_id[row["id"]]
        seen[row["id"]] += 1
        assert (row["prompt"], row["seed"], row["steps"]) == (want["prompt"], want["seed"], 20)
        assert row["guidance"] == pytest.approx(want["guidance"])
        assert row["_subject"] == "boat"
        assert isinstance(row["image"], Image.Image)
        file = next(f for f, r in expected.items() if r["id"] == row["id"])
        with Image.open(folder / file) as original:
            assert row["image"].size == original.size
    assert set(seen.values()) == {1}


def test_flat_run_loads_as_imagefolder(tmp_path: Path):
    """A small run stays flat, and load_dataset('imagefolder') gives one row per image."""
    result = run(sweep_manifest(tmp_path / "m.yaml"), tmp_path / "out")
    assert result.stats.completed == len(SEEDS) * len(GUIDANCE)
    assert not (tmp_path / "out" / "data").exists()
    invoke("report", str(tmp_path / "out"))  # index.html next to the images must not disturb it
    expected = ledger_rows(tmp_path / "out")
    assert all("/" not in f for f in expected)
    check_rows(load(tmp_path / "out", tmp_path / "hf"), tmp_path / "out", expected)


def test_large_run_splits_into_loadable_subfolders(tmp_path: Path):
    """Past folder_size the images go to data/NNNNN/ folders of at most folder_size files;
    each folder loads alone, and the whole folder loads every image exactly once."""
    size = 5
    out = tmp_path / "out"
    result = run(sweep_manifest(tmp_path / "m.yaml", folder_size=size), out)
    total = len(SEEDS) * len(GUIDANCE)
    assert result.stats.completed == total
    expected = ledger_rows(out)
    parts = Counter(part_of(f)[0] for f in expected if part_of(f) is not None)
    assert sum(parts.values()) == total
    assert max(parts.values()) <= size
    assert len(parts) == -(-total // size)
    for folder in parts:  # each part alone: its own rows, file names relative to it
        mine = {f.split("/", 2)[2]: r for f, r in expected.items() if f.startswith(folder + "/")}
        files = {p.name for p in (out / folder).iterdir() if p.suffix == ".png"}
        assert files == set(mine)
        check_rows(load(out / folder, tmp_path / "hf"), out / folder, mine)
    check_rows(load(out, tmp_path / "hf"), out, expected)
    grid = invoke("grid", str(out), "--x", "guidance", "--y", "seed", "-o", str(tmp_path / "g"))
    assert f"{total} images, 0 failed, 0 not generated" in grid.stdout


def test_a_grown_split_run_never_overfills_a_folder(tmp_path: Path):
    """A rerun with more jobs fills the last part up before opening a new one."""
    manifest = sweep_manifest(tmp_path / "m.yaml", folder_size=5)
    run(manifest, tmp_path / "out")
    manifest.write_text(manifest.read_text().replace("[1, 2, 3, 4]", "[1, 2, 3, 4, 5, 6]"))
    grown = run(manifest, tmp_path / "out")
    assert (grown.stats.completed, grown.skipped) == (6, 12)
    counts = Counter(p.parent.name for p in (tmp_path / "out" / "data").rglob("*.png"))
    assert sorted(counts.values()) == [3, 5, 5, 5]  # 18 images, 5 per folder, lowest first
    check_rows(load(tmp_path / "out", tmp_path / "hf"), tmp_path / "out",
               ledger_rows(tmp_path / "out"))  # fmt: skip


def test_part_allocator_counts_what_the_ledger_recorded():
    alloc = PartAllocator(
        2, count_parts(["data/00000/a.png", "data/00000/b.png", "data/00001/c.png", "x.png"])
    )
    assert [alloc.take() for _ in range(4)] == ["data/00001", "data/00002", "data/00002",
                                                 "data/00003"]  # fmt: skip


def test_export_parquet_embeds_images(tmp_path: Path):
    """`export --parquet` writes one file that datasets reads with decoded images and columns."""
    run(sweep_manifest(tmp_path / "m.yaml"), tmp_path / "out")
    target = tmp_path / "run.parquet"
    done = invoke("export", str(tmp_path / "out"), "--parquet", str(target))
    assert done.exit_code == 0, done.output
    ds = datasets.load_dataset("parquet", data_files=str(target), split="train",
                               cache_dir=str(tmp_path / "hf"))  # fmt: skip
    assert isinstance(ds.features["image"], datasets.Image)
    expected = ledger_rows(tmp_path / "out")
    check_rows(ds, tmp_path / "out", expected)
    originals = {r["id"]: (tmp_path / "out" / f).read_bytes() for f, r in expected.items()}
    raw = ds.cast_column("image", datasets.Image(decode=False))
    assert all(row["image"]["bytes"] == originals[row["id"]] for row in raw)
