"""Reuse across runs, over real HTTP against the emulator: what was paid for once is not paid
again in another folder, and what the catalogue says is checked before it is believed.

Each test has its own catalogue (conftest's `own_catalog` sets BATCHGEN_CATALOG)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import pytest

from batchgen.core.fingerprint import fingerprint
from batchgen.core.shard import Shard
from batchgen.edges.catalog import Catalog
from batchgen.emulator import EmulatorConfig
from batchgen.manifest.loader import load_manifest
from batchgen.run.runner import RunResult, run_manifest
from tests.views import FAST, ROOT, invoke

SWEEP = ROOT / "jobs" / "sweep.yaml"
CELLS = 36  # 3 subjects x 4 guidance x 3 seeds


def go(manifest: Path, out: Path, **options: Any) -> RunResult:
    return asyncio.run(
        run_manifest(
            manifest,
            out=out,
            overrides=FAST,
            emulator=EmulatorConfig(seed=7, latency=0.02, latency_jitter=0.01),
            quiet=True,
            **options,
        )
    )


def paid(result: RunResult) -> int:
    assert result.server is not None
    return int(result.server["paid_submits"])


def ledger(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "ledger.jsonl").read_text().splitlines()]


def rows(folder: Path, cache: Path) -> dict[str, dict[str, Any]]:
    ds = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train",
                               cache_dir=str(cache))  # fmt: skip
    return {row["id"]: row for row in ds}


def test_a_sweep_into_a_second_folder_sends_nothing_and_loads_the_same(tmp_path: Path):
    first = go(SWEEP, tmp_path / "a")
    assert paid(first) == CELLS
    again = go(SWEEP, tmp_path / "b")
    assert again.server is not None
    assert again.server["requests_total"] == 0
    assert again.stats.reused == CELLS
    assert again.stats.completed == 0
    assert again.summary["outcome"]["reused"] == CELLS
    assert again.summary["saved_usd"] == pytest.approx(first.summary["spend_usd"])
    a, b = rows(tmp_path / "a", tmp_path / "hf"), rows(tmp_path / "b", tmp_path / "hf")
    assert a.keys() == b.keys()
    assert len(a) == CELLS
    for job_id, row in b.items():
        assert row["reused_from"] == str(tmp_path / "a" / row_file(tmp_path / "b", job_id))
        same = {k: v for k, v in row.items() if k not in ("reused_from", "image")}
        assert same == {k: v for k, v in a[job_id].items() if k not in ("reused_from", "image")}
        assert row["image"].tobytes() == a[job_id]["image"].tobytes()
    completed = [r for r in ledger(tmp_path / "b") if r["event"] == "completed"]
    assert {r["metrics"]["cost"] for r in completed} == {0.0}
    assert all(r["reused"]["from"].startswith(str(tmp_path / "a")) for r in completed)
    for record in completed:  # the same bytes: a hard link to the first image
        assert (tmp_path / "b" / record["file"]).stat().st_ino == (
            tmp_path / "a" / record["file"]
        ).stat().st_ino
    resumed = go(SWEEP, tmp_path / "b")  # a reused folder resumes like any other
    assert resumed.skipped == CELLS
    assert resumed.stats.reused == 0


def row_file(folder: Path, job_id: str) -> str:
    return next(r["file"] for r in ledger(folder) if r.get("job") == job_id and "file" in r)


def test_growing_the_sweep_pays_only_for_the_new_cells(tmp_path: Path):
    go(SWEEP, tmp_path / "a")
    grown = tmp_path / "grown.yaml"
    grown.write_text(
        SWEEP.read_text().replace("guidance: [2.5, 4, 7, 12]", "guidance: [2.5, 4, 7, 12, 20]")
    )
    plan = invoke("run", str(grown), "--out", str(tmp_path / "b"), "--dry-run")
    assert "reuse from catalogue    36" in plan.output
    assert "to submit               9" in plan.output
    result = go(grown, tmp_path / "b")
    assert paid(result) == 9
    assert result.stats.reused == CELLS
    merged = rows(tmp_path / "b", tmp_path / "hf")  # old and new rows in one dataset
    assert len(merged) == CELLS + 9
    assert sum(1 for r in merged.values() if r["reused_from"]) == CELLS


def test_a_deleted_or_corrupted_image_is_generated_not_copied(tmp_path: Path):
    go(SWEEP, tmp_path / "a")
    images = sorted((tmp_path / "a").glob("*.png"))
    images[0].unlink()
    images[1].write_bytes(images[1].read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    result = go(SWEEP, tmp_path / "b")
    assert paid(result) == 2
    assert result.stats.reused == CELLS - 2
    for name in (images[0].name, images[1].name):
        assert (tmp_path / "b" / name).stat().st_ino != images[1].stat().st_ino
    with Catalog(os.environ["BATCHGEN_CATALOG"]) as cat:  # stale rows dropped, new ones added
        where = {(e.location, e.file) for e in cat.entries()}
    assert (str(tmp_path / "a"), images[0].name) not in where
    assert (str(tmp_path / "a"), images[1].name) not in where
    assert (str(tmp_path / "b"), images[0].name) in where


def test_no_reuse_and_no_catalog_pay_again(tmp_path: Path):
    go(SWEEP, tmp_path / "a")
    assert paid(go(SWEEP, tmp_path / "b", reuse=False)) == CELLS
    assert paid(go(SWEEP, tmp_path / "c", catalog=False)) == CELLS


def test_catalog_add_makes_an_older_folder_reusable(tmp_path: Path):
    """A folder made without the catalogue (as before it existed) is indexed from its ledger."""
    go(SWEEP, tmp_path / "old", catalog=False)
    assert not Path(os.environ["BATCHGEN_CATALOG"]).exists()
    added = invoke("catalog", "add", str(tmp_path / "old"))
    assert added.exit_code == 0
    assert f"{CELLS} image(s) added" in added.output
    assert "36 job(s) already generated" in invoke("validate", str(SWEEP)).output
    result = go(SWEEP, tmp_path / "new")
    assert paid(result) == 0
    assert result.stats.reused == CELLS
    again = invoke("catalog", "add", str(tmp_path / "old"))  # read up to where it stopped
    assert "0 image(s) added" in again.output


def test_reuse_from_a_folder_without_any_catalogue(tmp_path: Path):
    go(SWEEP, tmp_path / "a", catalog=False)
    result = go(SWEEP, tmp_path / "b", catalog=False, reuse_from=[tmp_path / "a"])
    assert paid(result) == 0
    assert result.stats.reused == CELLS
    assert not Path(os.environ["BATCHGEN_CATALOG"]).exists()


def test_a_damaged_catalogue_stops_the_run_before_anything_is_sent(tmp_path: Path):
    Path(os.environ["BATCHGEN_CATALOG"]).write_bytes(b"garbage " * 512)
    result = invoke("run", str(SWEEP), "--emulator", "--out", str(tmp_path / "a"), "-q")
    assert result.exit_code == 3
    assert "damaged" in result.output
    assert not (tmp_path / "a" / "ledger.jsonl").exists()
    go(SWEEP, tmp_path / "a", catalog=False)
    rebuilt = invoke("catalog", "rebuild", str(tmp_path / "a"))
    assert rebuilt.exit_code == 0
    assert "36 image(s) indexed" in rebuilt.output
    assert paid(go(SWEEP, tmp_path / "b")) == 0


def test_shards_and_an_unsharded_run_share_one_catalogue(tmp_path: Path):
    """Four shard processes and one unsharded process at once, one catalogue: no row lost."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "rpm: 6000\nconcurrency: 8\nsweep:\n  guidance: [1, 2, 3, 4, 5, 6]\n"
        "  seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\njobs:\n  - prompt: a lighthouse at dusk\n"
    )
    command = [sys.executable, "-m", "batchgen", "run", str(manifest), "--emulator", "-q"]
    procs = [
        subprocess.Popen([*command, "--out", str(tmp_path / "sharded"), "--shard", f"{i}/4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        for i in range(4)
    ] + [subprocess.Popen([*command, "--out", str(tmp_path / "flat")], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=tmp_path)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    jobs = list(load_manifest(manifest).jobs())
    with Catalog(os.environ["BATCHGEN_CATALOG"]) as cat:
        found = cat.lookup([fingerprint(job) for job in jobs])  # type: ignore[misc]
        assert cat.stats()["rows"] == 2 * len(jobs) == 120
    for job in jobs:
        homes = {Path(e.location).name for e in found[fingerprint(job)]}  # type: ignore[index]
        assert homes == {"sharded", "flat"}
    for index in range(2):  # and shards of another layout reuse them all; merge says so
        assert paid(go(manifest, tmp_path / "again", shard=Shard(index, 2))) == 0
    merged = invoke("merge", str(tmp_path / "again"), "--json")
    summary = json.loads(merged.output)
    assert summary["outcome"]["completed"] == summary["reused"] == len(jobs)


def test_prune_and_stats(tmp_path: Path):
    go(SWEEP, tmp_path / "a")
    stats = invoke("catalog", "stats", "--json")
    assert json.loads(stats.output)["rows"] == CELLS
    images = sorted((tmp_path / "a").glob("*.png"))
    images[0].unlink()
    images[1].write_bytes(b"short")
    images[2].write_bytes(images[2].read_bytes()[:-1] + b"!")  # same size: only --verify sees it
    pruned = invoke("catalog", "prune")
    assert "2 stale row(s) dropped, 34 kept" in pruned.output
    verified = invoke("catalog", "prune", "--verify")
    assert "1 stale row(s) dropped, 33 kept" in verified.output
    assert json.loads(invoke("catalog", "stats", "--json").output)["rows"] == CELLS - 3


def test_an_unusable_default_place_runs_without_it_a_named_one_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("BATCHGEN_CATALOG", str(blocker / "catalog.sqlite"))
    assert paid(go(SWEEP, tmp_path / "a")) == CELLS  # warned, ran, catalogued nothing
    named = invoke("run", str(SWEEP), "--emulator", "-q", "--out", str(tmp_path / "b"),
                   "--catalog", str(blocker / "named.sqlite"))  # fmt: skip
    assert named.exit_code == 3
    assert "cannot create its folder" in named.output
    assert not (tmp_path / "b" / "ledger.jsonl").exists()


def test_large_runs_reuse_into_their_own_subfolders(tmp_path: Path):
    """Past folder_size, reused images go to data/NNNNN/ like generated ones; it still loads."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text(SWEEP.read_text().replace("rpm: 5\n", "rpm: 5\nfolder_size: 10\n"))
    go(manifest, tmp_path / "a")
    result = go(manifest, tmp_path / "b")
    assert paid(result) == 0
    assert result.stats.reused == CELLS
    parts = sorted(p for p in (tmp_path / "b" / "data").iterdir())
    assert [len(list(p.glob("*.png"))) for p in parts] == [10, 10, 10, 6]
    loaded = rows(tmp_path / "b", tmp_path / "hf")
    assert len(loaded) == CELLS
    assert rows(tmp_path / "a", tmp_path / "hf").keys() == loaded.keys()


def test_a_tampered_row_never_places_anything_but_an_image(tmp_path: Path):
    """A row naming a non-image file (with its right sha256), or a path out of its folder, is
    dropped; the job takes the next good copy (or is generated)."""
    go(SWEEP, tmp_path / "a")
    secret = tmp_path / "private"
    secret.mkdir()
    (secret / "notes.txt").write_bytes(b"not an image: private notes")
    digest = hashlib.sha256(b"not an image: private notes").hexdigest()
    with Catalog(os.environ["BATCHGEN_CATALOG"]) as cat:
        real = sorted(cat.entries(), key=lambda e: e.file)[:2]
        cat.add([
            replace(real[0], location=str(secret), file="notes.txt", sha256=digest, created=9e9),
            replace(real[1], file="../private/notes.txt", sha256=digest, created=9e9),
        ])  # fmt: skip
    result = go(SWEEP, tmp_path / "b")
    assert paid(result) == 0
    assert result.stats.reused == CELLS
    for entry in real:
        assert (tmp_path / "b" / entry.file).read_bytes().startswith(b"\x89PNG")
    with Catalog(os.environ["BATCHGEN_CATALOG"]) as cat:
        assert all("private" not in e.where for e in cat.entries())


def test_the_flags_of_run_and_validate(tmp_path: Path):
    go(SWEEP, tmp_path / "a", catalog=False)
    out = ["--out", str(tmp_path / "b"), "--dry-run"]
    assert "reuse from catalogue    0" in invoke("run", str(SWEEP), *out).output
    from_a = invoke("run", str(SWEEP), *out, "--reuse-from", str(tmp_path / "a"))
    assert "reuse from catalogue    36  (not paid: saves $4.32)" in from_a.output
    off = invoke("run", str(SWEEP), *out, "--reuse-from", str(tmp_path / "a"), "--no-reuse")
    assert "reuse from catalogue    0" in off.output
    named = tmp_path / "named.sqlite"
    assert invoke("catalog", "add", str(tmp_path / "a"), "--catalog", str(named)).exit_code == 0
    check = invoke("validate", str(SWEEP), "--catalog", str(named))
    assert "36 job(s) already generated, reused at no cost (saves $4.32); 0 to pay" in check.output
    assert "catalogue:" not in invoke("validate", str(SWEEP), "--catalog", str(named),
                                      "--no-catalog").output  # fmt: skip
    empty = invoke("run", str(SWEEP), *out, "--reuse-from", str(tmp_path))
    assert empty.exit_code == 3
    assert "no ledger.jsonl there" in empty.output


def test_views_of_a_reused_folder_are_those_of_the_first(tmp_path: Path):
    """`reused_from` says where an image came from, not what was asked: grids ignore it."""
    go(SWEEP, tmp_path / "a")
    go(SWEEP, tmp_path / "b")
    for folder in ("a", "b"):
        drawn = invoke("grid", str(tmp_path / folder), "--x", "guidance", "--y", "seed",
                       "-o", str(tmp_path / f"{folder}.png"))  # fmt: skip
        assert drawn.exit_code == 0, drawn.output
        assert "4 x 3 cells in 3 panels, 36 images" in drawn.output


def test_images_a_run_did_not_catalogue_are_caught_up_by_the_next(tmp_path: Path):
    """A run that ended before indexing (killed; here: run without the catalogue) leaves its
    ledger lines for the next run of that folder, which indexes from where indexing stopped."""
    go(SWEEP, tmp_path / "a", catalog=False)
    assert go(SWEEP, tmp_path / "a").skipped == CELLS  # nothing to do, but the ledger is read
    with Catalog(os.environ["BATCHGEN_CATALOG"]) as cat:
        assert cat.stats()["rows"] == CELLS
    assert paid(go(SWEEP, tmp_path / "b")) == 0
