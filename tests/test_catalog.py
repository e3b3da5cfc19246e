"""The catalogue file: rows in and out, many writer processes at once, and damage reported."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from batchgen.edges.catalog import (
    CACHE_KIB,
    SCHEMA_VERSION,
    Catalog,
    CatalogError,
    Entry,
    default_catalog_path,
)
from tests.views import invoke


def entry(n: int, location: str = "/data/a", **fields: object) -> Entry:
    key = hashlib.sha256(f"job {n}".encode()).digest()
    values: dict[str, object] = {"sha256": f"{n:064x}", "size": n, "cost": 0.01, "created": 1.0 + n}
    values.update(fields)
    return Entry(key, location, f"img-{n}.png", job=f"j{n}", **values)  # type: ignore[arg-type]


def test_rows_round_trip_and_writing_twice_is_one_row(tmp_path: Path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        assert cat.add(entry(n) for n in range(1200)) == 1200
        cat.add(entry(n) for n in range(10))  # the same images again
        cat.add([entry(3, "/data/b", created=99.0)])  # a copy elsewhere, newer
        found = cat.lookup([entry(n).fingerprint for n in (3, 7, 5000)])
        assert [e.location for e in found[entry(3).fingerprint]] == ["/data/b", "/data/a"]
        assert found[entry(7).fingerprint] == [entry(7)]
        assert entry(5000).fingerprint not in found
        figures = cat.stats()
        assert (figures["rows"], figures["fingerprints"], figures["locations"]) == (1201, 1200, 2)
        assert cat.drop([entry(3, "/data/b")]) == 1
        assert sum(1 for _ in cat.entries()) == 1200


def test_the_page_cache_is_bounded_whatever_the_file_holds(tmp_path: Path):
    """The cache stays at a few MiB: it is the process's memory, kept until the file is closed."""
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.add(entry(n) for n in range(2000))
    with Catalog(tmp_path / "c.sqlite") as cat:
        assert cat._db.execute("PRAGMA cache_size").fetchone() == (-CACHE_KIB,)
    assert CACHE_KIB <= 8192


def test_credentials_never_reach_the_file(tmp_path: Path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.add([entry(1, "s3://AKIAXXXX:sEcReT@bucket/out?X-Amz-Signature=zzz")])
        assert [e.location for e in cat.entries()] == ["s3://bucket/out"]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"sEcReT" not in raw
    assert b"AKIAXXXX" not in raw
    assert b"zzz" not in raw


def test_default_location(tmp_path: Path):
    home = Path.home()
    assert default_catalog_path({}) == home / ".cache" / "batchgen" / "catalog.sqlite"
    xdg = {"XDG_CACHE_HOME": str(tmp_path)}
    assert default_catalog_path(xdg) == tmp_path / "batchgen" / "catalog.sqlite"
    assert default_catalog_path({**xdg, "BATCHGEN_CATALOG": "/x/c.db"}) == Path("/x/c.db")
    assert default_catalog_path({"BATCHGEN_CATALOG": "off"}) is None


def _writer(path: str, worker: int, rows: int) -> None:
    with Catalog(path) as cat:
        for start in range(0, rows, 250):  # many short transactions, interleaved with the others
            cat.add(entry(worker * rows + n, f"/w{worker}") for n in range(start, start + 250))
            cat.lookup([entry(worker * rows + start).fingerprint])


def test_five_processes_writing_at_once_lose_nothing(tmp_path: Path):
    """Real processes (as shards are), each in many short transactions: every row lands."""
    path = str(tmp_path / "c.sqlite")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w, 4000)) for w in range(5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with Catalog(path) as cat:
        assert cat.stats()["rows"] == 20_000
        assert cat.integrity() is None


def test_a_file_that_is_not_a_catalogue_is_refused_clearly(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database at all, just some text " * 100)
    with pytest.raises(CatalogError, match=r"damaged or not a batchgen catalogue.*rebuild"):
        Catalog(path)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(CatalogError, match="no batchgen schema"):
        Catalog(other)


def test_another_schema_version_is_refused(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    Catalog(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(CatalogError, match=f"schema version {SCHEMA_VERSION + 1}"):
        Catalog(path)


def test_corrupted_pages_are_found_by_stats(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with Catalog(path) as cat:
        cat.add(entry(n) for n in range(3000))
    with sqlite3.connect(path) as db:  # out of WAL, so the pages are all in the main file
        db.execute("PRAGMA journal_mode = DELETE")
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(page * 3, len(data) - page, page * 2):  # scribble over interior pages
        data[offset + 8 : offset + 200] = b"\xff" * 192
    path.write_bytes(bytes(data))
    result = invoke("catalog", "stats", "--catalog", str(path))
    assert result.exit_code == 2, result.output
    assert "damaged" in result.output
    assert "rebuild" in result.output
