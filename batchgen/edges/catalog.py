"""The catalogue: one SQLite file mapping job fingerprints to images already generated.

It lets a run reuse an image paid for by another run, in another folder (`run/reuse.py`). It is
a cache, never the source of truth: every row can be rebuilt from the ledgers of the folders it
points at, and every hit is checked against the file's sha256 before it is used.

Many processes use one file at once (shards, parallel runs, `catalog add`), so:

* WAL journal: readers never block the writer, nor the writer the readers;
* every write is a short `BEGIN IMMEDIATE` transaction of at most `BATCH` rows, so no process
  holds the write lock for long, and `busy_timeout` makes the others wait for it, not fail;
* rows are keyed by (fingerprint, location, file): writing the same image twice is a no-op.

It holds where an image is (a folder path or a store URL without credentials, see
`fingerprint.public_location`), never the API key or storage options.

A file that is not a SQLite database, has corrupted pages or another schema version raises
`CatalogError` with what to do: it is never read past damage (`batchgen catalog rebuild`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from batchgen.edges.catalogbase import (
    CATALOG_ENV,
    CatalogError,
    CatalogUnavailable,
    Entry,
    default_catalog_path,
)
from batchgen.edges.catalogschema import (
    COLUMNS,
    INSERT,
    SCHEMA,
    SCHEMA_VERSION,
    row_of,
    transaction,
    upgrade,
)

__all__ = [
    "BATCH",
    "CACHE_KIB",
    "CATALOG_ENV",
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogError",
    "CatalogUnavailable",
    "Entry",
    "default_catalog_path",
]

BATCH: Final = 500  # rows per write transaction, and fingerprints per lookup query
BUSY_MS: Final = 60_000  # how long a writer waits for another's transaction before giving up
# The page cache is kept in the process and stays at its high-water mark until the file is
# closed, so it must not scale with the catalogue: keys are random hashes, so indexing a run's
# ledger touches every page of the index, and the 64 MiB this used to allow filled up at the end
# of every run in proportion to its length (+18.7 MB at 60,000 jobs). 4 MiB holds one `BATCH`
# transaction's dirty pages (~500 random leaves of 4 KiB) without spilling; the rest is
# re-read from the OS's cache. Measured (bench/catalog_index.py, 200,000 records, 3 rounds
# alternating): CPU 8.8 s against 9.4 s at 64 MiB into a fresh file, 10.4 s against 10.4 s
# into one already holding 200,000 rows, i.e. no cost beyond noise; SQLite's 2 MB default was
# ~20 % slower.
CACHE_KIB: Final = 4096


class Catalog:
    """An open catalogue file (or `":memory:"`, for `--reuse-from` without a catalogue)."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = path
        self.name = str(path)
        memory = self.name == ":memory:"
        if not memory:
            target = Path(path)
            if not create and not target.exists():
                raise FileNotFoundError(self.name)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogUnavailable(
                    f"catalogue {self.name}: cannot create its folder: {exc}"
                ) from None
        try:
            self._db = sqlite3.connect(self.name, timeout=BUSY_MS / 1000, isolation_level=None,
                                       check_same_thread=False)  # fmt: skip
        except sqlite3.Error as exc:
            raise CatalogUnavailable(f"catalogue {self.name}: cannot open it: {exc}") from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            if not memory:
                self._db.execute("PRAGMA journal_mode = WAL").fetchone()
                self._db.execute("PRAGMA synchronous = NORMAL")  # a cache: rebuilt from ledgers
            self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self._ensure_schema()
        except sqlite3.OperationalError as exc:  # unable to open, read-only, locked too long
            self._db.close()
            raise CatalogUnavailable(f"catalogue {self.name}: cannot use it: {exc}") from None
        except sqlite3.DatabaseError as exc:  # not a database, malformed
            self._db.close()
            raise self.damaged(exc) from None
        except CatalogError:
            self._db.close()
            raise

    def damaged(self, exc: BaseException) -> CatalogError:
        return CatalogError(
            f"catalogue {self.name} is damaged or not a batchgen catalogue ({exc}); it is not "
            "used. Rebuild it from the output folders' ledgers with `batchgen catalog rebuild "
            "DIR...`, move it aside, or run with --no-catalog"
        )

    def _ensure_schema(self) -> None:
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            with transaction(db):  # two processes creating it at once: one does
                if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table'").fetchone():
                    for statement in SCHEMA:
                        db.execute(statement)
                    db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            return
        if not {"meta", "images", "ledgers"} <= tables:
            raise CatalogError(f"catalogue {self.name} has no batchgen schema (tables: "
                               f"{sorted(tables)}); {self._advice()}")  # fmt: skip
        found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is not None and found[0] != str(SCHEMA_VERSION) and upgrade(db, found[0]):
            return  # an older version, brought up to this one (`catalogschema`)
        if found is None or found[0] != str(SCHEMA_VERSION):
            version = "none" if found is None else found[0]
            raise CatalogError(
                f"catalogue {self.name} has schema version {version}, this batchgen reads "
                f"version {SCHEMA_VERSION}; {self._advice()}"
            )

    def _advice(self) -> str:
        return "rebuild it with `batchgen catalog rebuild DIR...`, or run with --no-catalog"

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------

    def add(self, entries: Iterable[Entry]) -> int:
        """Insert (or refresh) entries, `BATCH` per short transaction; returns how many."""
        count = 0
        batch: list[tuple[Any, ...]] = []
        for entry in entries:
            batch.append(row_of(entry))
            if len(batch) >= BATCH:
                count += self._write(INSERT, batch)
                batch = []
        if batch:
            count += self._write(INSERT, batch)
        return count

    def drop(self, entries: Iterable[Entry]) -> int:
        """Delete these rows (stale: the file is gone or changed); returns how many."""
        keys = [(e.fingerprint, e.location, e.file) for e in entries]
        sql = "DELETE FROM images WHERE fingerprint = ? AND location = ? AND file = ?"
        return sum(self._write(sql, keys[i : i + BATCH]) for i in range(0, len(keys), BATCH))

    def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        db = self._db
        try:
            with transaction(db):
                db.executemany(sql, rows)
        except sqlite3.OperationalError as exc:  # busy past the timeout, read-only, disk full
            raise CatalogUnavailable(f"catalogue {self.name}: cannot write: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None
        return len(rows)

    def set_ledger_offset(self, path: str, head: str, offset: int) -> None:
        """Note that `path` (whose first line hashes to `head`) is indexed up to `offset`."""
        self._write("INSERT OR REPLACE INTO ledgers VALUES (?,?,?)", [(path, head, offset)])

    def ledger_offset(self, path: str, head: str) -> int:
        """Where to resume indexing `path`: 0 for a ledger not seen (or replaced since)."""
        try:
            found = self._db.execute(
                "SELECT head, offset FROM ledgers WHERE path = ?", (path,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None
        return int(found[1]) if found is not None and found[0] == head else 0

    # -- reading ---------------------------------------------------------------------------------

    def empty(self) -> bool:
        """No image at all (a first run skips fingerprinting its jobs for nothing)."""
        try:
            return self._db.execute("SELECT 1 FROM images LIMIT 1").fetchone() is None
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None

    def lookup(self, fingerprints: Sequence[bytes]) -> dict[bytes, list[Entry]]:
        """The entries of each fingerprint found (newest first), `BATCH` per query."""
        found: dict[bytes, list[Entry]] = {}
        try:
            for i in range(0, len(fingerprints), BATCH):
                chunk = fingerprints[i : i + BATCH]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT {COLUMNS} FROM images WHERE fingerprint IN ({marks})", chunk
                ).fetchall()
                for row in rows:
                    found.setdefault(row[0], []).append(Entry(*row))
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None
        for entries in found.values():
            entries.sort(key=lambda e: -e.created)
        return found

    def entries(self) -> Iterator[Entry]:
        """Every row, streamed in key order (pages of `BATCH` rows: no long read transaction)."""
        last: tuple[bytes, str, str] = (b"", "", "")
        while True:
            try:
                rows = self._db.execute(
                    f"SELECT {COLUMNS} FROM images WHERE (fingerprint, location, file) > (?,?,?)"
                    f" ORDER BY fingerprint, location, file LIMIT {BATCH}",
                    last,
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self.damaged(exc) from None
            if not rows:
                return
            for row in rows:
                yield Entry(*row)
            last = (rows[-1][0], rows[-1][1], rows[-1][2])

    def stats(self) -> dict[str, Any]:
        """Counts for `batchgen catalog stats`."""
        try:
            rows, images, places, size, first, newest = self._db.execute(
                "SELECT count(*), count(DISTINCT fingerprint), count(DISTINCT location), "
                "sum(bytes), min(created), max(created) FROM images"
            ).fetchone()
            # Copies of one image carry what it cost when first made: count it once.
            (cost,) = self._db.execute(
                "SELECT sum(c) FROM (SELECT max(cost) AS c FROM images GROUP BY fingerprint)"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None
        return {
            "catalog": self.name,
            "schema_version": SCHEMA_VERSION,
            "rows": rows,
            "fingerprints": images,
            "locations": places,
            "image_bytes": size or 0,
            "cost_usd": round(cost or 0.0, 4),
            "oldest": first,
            "newest": newest,
        }

    def integrity(self) -> str | None:
        """None when SQLite finds every page sound (`PRAGMA quick_check`), else what it found."""
        try:
            found = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return None if found == ["ok"] else "; ".join(found[:5])
