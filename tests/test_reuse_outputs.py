"""Reusing a job that made several images (issue 18, deliverables 5 and 6): every image is copied,
with a metadata row each, over real HTTP against the emulator; a catalogue that cannot prove a
job whole is not used for it.

No model in the tables both takes a seed and returns several images (seedream-4.5, the one with
`max_images`, has no seed, so its jobs have no fingerprint and are never reused), so the run
tests register one: seedream's table with a seed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from batchgen.edges.catalog import Catalog, Entry
from batchgen.edges.catalogschema import SCHEMA_VERSION
from batchgen.emulator import EmulatorConfig
from batchgen.models.params import seed_param
from batchgen.models.registry import MODELS
from batchgen.models.seedream import SEEDREAM_4_5
from batchgen.run.reusesets import image_sets
from batchgen.run.runner import RunResult, run_manifest

SEEDED = "seeded-set"
MANIFEST = f"""\
model: {SEEDED}
rpm: 6000
jobs:
  - {{prompt: "three takes", max_images: 3, seed: 42}}
  - {{prompt: "one take", seed: 7}}
"""


@pytest.fixture
def seeded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that takes a seed and returns up to `max_images` images (client and emulator)."""
    schema = replace(
        SEEDREAM_4_5, name=SEEDED, params={**SEEDREAM_4_5.params, "seed": seed_param()}
    )
    monkeypatch.setitem(MODELS, SEEDED, schema)


def go(manifest: Path, out: Path) -> RunResult:
    emulator = EmulatorConfig(seed=7, latency=0.02, latency_jitter=0.01)
    return asyncio.run(run_manifest(manifest, out=out, emulator=emulator, quiet=True))


def rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "metadata.jsonl").read_text().splitlines()]


@pytest.mark.usefixtures("seeded_model")
def test_a_reused_job_gets_all_its_images_and_a_row_each(tmp_path: Path):
    """Made in one folder, reused into a second: 3 files {id}-{k}.png, 3 rows with their index,
    byte for byte the first folder's; nothing paid; a rerun of the second finds them intact."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    first = go(manifest, tmp_path / "a")
    assert first.exit_code == 0
    assert first.server is not None
    assert first.server["paid_submits"] == 2
    second = go(manifest, tmp_path / "b")
    assert second.exit_code == 0
    assert second.server is not None
    assert second.server["paid_submits"] == 0
    assert second.stats.reused == 2
    made, copied = rows(tmp_path / "a"), rows(tmp_path / "b")
    three = sorted((r for r in copied if r.get("max_images") == 3), key=lambda r: r["index"])
    job = three[0]["id"]
    assert [r["index"] for r in three] == [0, 1, 2]
    assert [r["file_name"] for r in three] == [f"{job}-{k}.png" for k in range(3)]
    assert all(r["reused_from"].endswith(f"/{job}-{r['index']}.png") for r in three)
    for k in range(3):
        name = f"{job}-{k}.png"
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    single = [r for r in copied if "max_images" not in r]
    assert [r["file_name"] for r in single] == [f"{single[0]['id']}.png"]
    assert len(copied) == len(made) == 4
    assert sorted(p.name for p in (tmp_path / "b").glob("*.png")) == sorted(
        p.name for p in (tmp_path / "a").glob("*.png")
    )
    again = go(manifest, tmp_path / "b")
    assert again.skipped == 2
    assert again.server is not None
    assert again.server["paid_submits"] == 0


def _entry(index: int, images: int | None, job: str = "j", file: str | None = None) -> Entry:
    name = file or f"{job}-{index}.png"
    return Entry(b"k", "/f", name, "0" * 64, job=job, request_id=f"r-{job}", index=index,
                 images=images)  # fmt: skip


def test_only_whole_sets_of_images_are_candidates():
    """A job short of one of its rows is not offered; a row of unknown count (an upgraded
    catalogue) is offered only to a job asking for one image."""
    whole = [("c", _entry(k, 3, "a")) for k in (2, 0, 1)]
    short = [("c", _entry(k, 3, "b")) for k in (0, 2)]
    unknown = [("c", _entry(0, None, "old", file="old.png"))]
    sets = image_sets([*short, *whole, *unknown], asked=3)
    assert [[e.index for e in entries] for _, entries in sets] == [[0, 1, 2]]
    assert [entries[0].file for _, entries in image_sets(unknown, asked=1)] == ["old.png"]


def test_a_version_1_catalogue_is_upgraded_in_place(tmp_path: Path):
    """Its rows stay (index 0, count unknown) and its ledgers are to be read again in full,
    so the images version 1 left out are added by the next indexing."""
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute(
            "CREATE TABLE images (fingerprint BLOB NOT NULL, location TEXT NOT NULL, file TEXT "
            "NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER, request_id TEXT, cost REAL, created "
            "REAL NOT NULL, job TEXT, inference REAL, PRIMARY KEY (fingerprint, location, file))"
            " WITHOUT ROWID"
        )
        db.execute("CREATE TABLE ledgers (path TEXT PRIMARY KEY, head TEXT NOT NULL, "
                   "offset INTEGER NOT NULL)")  # fmt: skip
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
        db.execute("INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (b"k", "/f", "a.png", "0" * 64, 10, "r", 0.1, 1.0, "j", 2.0))  # fmt: skip
        db.execute("INSERT INTO ledgers VALUES ('/f/ledger.jsonl', 'h', 500)")
    with Catalog(path) as catalog:
        (entry,) = catalog.lookup([b"k"])[b"k"]
        assert (entry.file, entry.index, entry.images) == ("a.png", 0, None)
        assert catalog.ledger_offset("/f/ledger.jsonl", "h") == 0
        assert catalog.stats()["schema_version"] == SCHEMA_VERSION == 2
    with Catalog(path) as catalog:  # opened again: already version 2, nothing to do
        assert len(catalog.lookup([b"k"])[b"k"]) == 1
