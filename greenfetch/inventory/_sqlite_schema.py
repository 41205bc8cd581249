"""The SQLite inventory file: its schema, its versions, and opening a file greenfetch wrote.

Tables (docs/contract.md, section 11): ``runs(run_id, started_at, finished_at, summary)`` and ``resources(run_id,
resource_type, account, region, resource_id, data)``, ``data`` and ``summary`` being JSON text. One more
table, ``fetches(run_id, resource_type, account, region, status, error, items, fetched_at)``, says which
(type, account, region) each run fetched, how that went and when its page was fetched (a page served from
the cache keeps the time it was first fetched, which may be before the run started): without it a region
that was denied this time would look as if its resources had been deleted, and a cached page would look
as new as the run. The view ``latest`` is every resource as of the newest finished run that fetched its
(type, account, region) successfully.

The schema is versioned (``PRAGMA user_version``): a writer brings an older file up to date in one
transaction before its run (``_MIGRATIONS``); readers (``greenfetch diff``) open it read-only and read
every version, a row written before fetch times were recorded having ``fetched_at`` NULL.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .._storage_errors import sqlite_damaged
from ._rows import LATEST
from ._types import InventoryError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "connect_existing"]

APPLICATION_ID = 0x47664462  # "GfDb": how a file says greenfetch wrote it (PRAGMA application_id)
SCHEMA_VERSION = 2  # PRAGMA user_version

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs (
    run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT NOT NULL,              -- ISO-8601 UTC, e.g. 2026-11-29T18:02:11.532Z
    finished_at TEXT,                       -- NULL: the run did not finish (killed, interrupted, failed)
    summary     TEXT                        -- JSON: the end-of-run summary (counts, errors, calls, time)
);
CREATE TABLE IF NOT EXISTS resources (
    run_id        INTEGER NOT NULL REFERENCES runs(run_id),
    resource_type TEXT NOT NULL,
    account       TEXT NOT NULL,
    region        TEXT NOT NULL,            -- 'global' for global types
    resource_id   TEXT NOT NULL,            -- the catalog's stable id: an ARN, or the type's id field
    data          TEXT NOT NULL             -- JSON: the resource as the API returned it
);
CREATE INDEX IF NOT EXISTS resources_run_type ON resources (run_id, resource_type, account, region, resource_id);
CREATE INDEX IF NOT EXISTS resources_type_id ON resources (resource_type, resource_id);
CREATE TABLE IF NOT EXISTS fetches (
    run_id        INTEGER NOT NULL REFERENCES runs(run_id),
    resource_type TEXT NOT NULL,
    account       TEXT NOT NULL,
    region        TEXT NOT NULL,
    status        TEXT NOT NULL,            -- ok, denied, unavailable, throttled, ... (the record's status)
    error         TEXT,
    items         INTEGER NOT NULL,
    fetched_at    TEXT,                     -- ISO-8601 UTC: when the page was fetched (NULL: before schema 2)
    PRIMARY KEY (run_id, resource_type, account, region)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS latest AS"""
    + LATEST
    + ";\n"
)

_TABLES = {"runs", "resources", "fetches", "latest", "sqlite_sequence"}

# version -> the statements that take a file of that version to the next one
_MIGRATIONS = {
    1: ["ALTER TABLE fetches ADD COLUMN fetched_at TEXT"],
}


def connect_existing(path: str | os.PathLike[str], *, what: str = "database") -> sqlite3.Connection:
    """A read-only connection to a database greenfetch wrote; InventoryError (one line naming the file
    and what would do) when it is missing, not SQLite, or not an inventory database."""
    target = Path(path)
    if not target.is_file():
        raise InventoryError(
            f"{what} {str(path)!r} does not exist; give a file written by "
            "`greenfetch inventory --out FILE.db`"
        )
    try:
        conn = _open_read_only(target, what)
        _check_schema(conn, str(path), what)
    except sqlite3.Error as exc:
        if not sqlite_damaged(exc):
            raise InventoryError(f"{what} {str(path)!r} cannot be read: {exc}") from None
        raise InventoryError(
            f"{what} {str(path)!r} is not a SQLite database ({exc}); give a file written by "
            "`greenfetch inventory --out FILE.db`"
        ) from None
    return conn


def _open_read_only(target: Path, what: str) -> sqlite3.Connection:
    """``mode=ro``; on read-only media (a read-only mount, a snapshot) a WAL database cannot get the
    shared-memory file SQLite wants beside it, so there it is opened ``immutable``: nothing can change
    it there. A directory that is only not writable for this user is said so (immutable would be
    unsafe: someone else may be writing)."""
    uri = target.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        directory = target.resolve().parent
        if not os.statvfs(directory).f_flag & os.ST_RDONLY:
            if not os.access(directory, os.W_OK):
                raise InventoryError(
                    f"{what} {str(target)!r} cannot be opened: SQLite needs to create its -shm file "
                    f"in {str(directory)!r}, which is not writable; copy the file somewhere "
                    "writable"
                ) from None
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def _check_schema(conn: sqlite3.Connection, name: str, what: str) -> bool:
    """True when the schema is there, False for an empty database; InventoryError for a foreign one."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    if not tables and app_id == 0:
        return False
    if app_id != APPLICATION_ID or not {"runs", "resources", "fetches"} <= tables:
        found = ", ".join(sorted(tables - {"sqlite_sequence"})) or "none"
        raise InventoryError(
            f"{what} {name!r} is a SQLite database greenfetch did not write (tables: {found}); "
            "give a new file name or one `greenfetch inventory --out FILE.db` wrote"
        )
    if version > SCHEMA_VERSION:
        raise InventoryError(
            f"{what} {name!r} was written by a newer greenfetch (schema {version}, this one "
            f"reads {SCHEMA_VERSION}); upgrade greenfetch"
        )
    return True


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file written by an older greenfetch to ``SCHEMA_VERSION``, in one transaction (the
    version is read again inside it: two runs opening the same old file migrate it once)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        while version < SCHEMA_VERSION:
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            version += 1
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
