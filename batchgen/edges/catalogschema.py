"""The catalogue's SQLite schema: its tables, its row, and the step up from older versions.

Version 2 adds each image's place in its job (`idx`, from 0) and how many images that job
stored (`images`): a job that made several (`max_images`, `{id}-{k}.{ext}`) has a row per
image, and is reused only when every one of them is there. A version 1 file is upgraded in
place: its rows get `idx` 0 and an unknown count (a job asking for one image still reuses it; a
job asking for several does not, rather than get only its first), and every ledger is marked
unread so the next indexing of a folder adds the images version 1 left out.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any, Final

from batchgen.core.fingerprint import public_location
from batchgen.edges.catalogbase import Entry

__all__ = ["COLUMNS", "INSERT", "SCHEMA", "SCHEMA_VERSION", "row_of", "transaction", "upgrade"]

SCHEMA_VERSION: Final = 2
# In `Entry`'s field order: a row read back is `Entry(*row)`.
COLUMNS: Final = (
    "fingerprint, location, file, sha256, bytes, request_id, cost, created, job, inference,"
    " idx, images"
)
SCHEMA: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE images (fingerprint BLOB NOT NULL, location TEXT NOT NULL, file TEXT NOT NULL,"
    " sha256 TEXT NOT NULL, bytes INTEGER, request_id TEXT, cost REAL, created REAL NOT NULL,"
    " job TEXT, inference REAL, idx INTEGER NOT NULL DEFAULT 0, images INTEGER,"
    " PRIMARY KEY (fingerprint, location, file)) WITHOUT ROWID",
    # How far each ledger has been read into the catalogue (`head`: hash of its first line).
    "CREATE TABLE ledgers (path TEXT PRIMARY KEY, head TEXT NOT NULL, offset INTEGER NOT NULL)",
)
INSERT: Final = "INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"

_STEPS: Final = {
    "1": (
        "ALTER TABLE images ADD COLUMN idx INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE images ADD COLUMN images INTEGER",
        "DELETE FROM ledgers",  # read every ledger again: version 1 kept only image 0
    ),
}


def upgrade(db: sqlite3.Connection, version: str) -> bool:
    """Bring a catalogue of `version` up to `SCHEMA_VERSION` in one transaction (another
    process may be doing the same: the first one does it); False if there is no way up."""
    if version not in _STEPS:
        return False
    with transaction(db):
        found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is not None and found[0] == version:
            for statement in _STEPS[version]:
                db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
    return True


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (BEGIN IMMEDIATE): of two processes creating or
    upgrading the file together, the second waits and then finds the work done."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def row_of(entry: Entry) -> tuple[Any, ...]:
    """An entry as the `images` row `INSERT` writes."""
    return (
        entry.fingerprint,
        public_location(entry.location),
        entry.file,
        entry.sha256,
        entry.size,
        entry.request_id,
        entry.cost,
        entry.created or time.time(),
        entry.job,
        entry.inference,
        entry.index,
        entry.images,
    )
