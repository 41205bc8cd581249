"""The SQLite sink: each inventory run appended to one database file, for SQL (and Nushell) over it.

The tables, their versions and the opening of a file are ``_sqlite_schema``'s; the read side
(``InventoryDB``, for ``greenfetch diff``) is ``_sqlite_read``'s.

Records go in as they arrive (``add``): rows are buffered and inserted in one transaction per batch (by
rows, bytes or seconds, whichever comes first), so memory stays bounded by a batch. WAL mode with
``synchronous=NORMAL``: a commit is atomic without an fsync per batch, readers never block the writer, and
a process killed mid-run leaves the earlier runs intact and its own run with ``finished_at`` NULL. A
record's ``fetches`` row is committed in the same transaction as its last resource row, so a fetch row
always means all of that fetch's resources are there, even in a run that was killed.

The sink knows nothing of the fetch loop: a coordinator that collects records from worker processes or
Celery workers calls the same ``add``/``close``. A record given twice for the same (type, account,
region) replaces the first (a shard that ran twice is not counted twice).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._storage_errors import sqlite_damaged, storage_error
from ._catalog import catalog as all_types
from ._fileio import check_writable
from ._resource_type import ResourceType
from ._rows import _resource_id, dumps_strict, utc_now
from ._sqlite_read import InventoryDB
from ._sqlite_schema import _SCHEMA, APPLICATION_ID, SCHEMA_VERSION, _check_schema, _migrate, connect_existing
from ._types import InventoryError, Record, utc_iso

__all__ = ["SQLiteSink"]


class SQLiteSink:
    """``add(record)`` for each record, then ``close(summary)`` -> ``[path]``; ``abort()`` on failure.

    The file is checked when the sink is made (a foreign or unwritable file is an InventoryError before
    any fetch) but nothing is written until the first record or ``close``: a run refused for bad input
    leaves no trace. ``catalog`` maps type names to ``ResourceType`` (for ``resource_id``); records of a
    type it does not know get an id from common ARN/id fields, else a hash of the item."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_rows: int = 1000,
        batch_bytes: int = 4 << 20,
        flush_seconds: float = 1.0,
        catalog: Mapping[str, ResourceType] | None = None,
        clock: Any = time.monotonic,
    ):
        self.path = Path(path)
        self.batch_rows, self.batch_bytes, self.flush_seconds = batch_rows, batch_bytes, flush_seconds
        self.catalog = all_types() if catalog is None else catalog
        self.clock = clock
        self.started_at = utc_now()
        self.run_id: int | None = None
        self.records = self.resources = 0
        self._conn: sqlite3.Connection | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._fetches: list[tuple[Any, ...]] = []
        self._bytes = 0
        self._last_commit = clock()
        self._scopes: set[tuple[str, str, str]] = set()
        self.closed = False
        self._committed = False  # the run's row is in the file (its first batch committed)
        self._failed = False
        self._check_target()

    # -- records in ------------------------------------------------------------------------------

    def add(self, rec: Record, fetched_at: float | None = None) -> None:
        """Buffer the record's resources (and its fetch row after them); commit when a batch is full.
        ``fetched_at``: when the record's page was fetched (epoch seconds; default now)."""
        conn = self._open()
        rtype, account, region = str(rec["resource_type"]), str(rec["account"]), str(rec["region"])
        scope = (rtype, account, region)
        if scope in self._scopes:  # the same fetch again (a re-run shard): it replaces the first
            self.flush()
            with self._refused(), conn:
                conn.execute(
                    "DELETE FROM resources WHERE run_id = ? AND resource_type = ? AND account = ? "
                    "AND region = ?",
                    (self.run_id, *scope),
                )
        self._scopes.add(scope)
        kind = self.catalog.get(rtype)
        items = rec.get("items") or []
        for item in items:
            data = dumps_strict(item)
            self._rows.append((self.run_id, rtype, account, region, _resource_id(kind, item, data), data))
            self._bytes += len(data) + 64
        self._fetches.append(
            (
                self.run_id,
                rtype,
                account,
                region,
                str(rec.get("status") or "ok"),
                rec.get("error"),
                len(items),
                utc_iso(time.time() if fetched_at is None else fetched_at),
            )
        )
        self.records += 1
        self.resources += len(items)
        if (
            len(self._rows) >= self.batch_rows
            or self._bytes >= self.batch_bytes
            or self.clock() - self._last_commit >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Commit what is buffered, in one transaction (resources first, then their fetch rows)."""
        if self._conn is None or not (self._rows or self._fetches):
            return
        with self._refused():
            with self._conn:
                self._conn.executemany("INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?)", self._rows)
                self._conn.executemany(
                    "INSERT OR REPLACE INTO fetches (run_id, resource_type, account, region, "
                    "status, error, items, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    self._fetches,
                )
        self._committed = True
        self._rows, self._fetches, self._bytes = [], [], 0
        self._last_commit = self.clock()

    def close(self, summary: Mapping[str, Any] | None = None) -> list[Path]:
        """Commit the rest and mark the run finished (``finished_at``, ``summary`` as JSON)."""
        conn = self._open()
        self.flush()
        summary = dict(summary) if summary is not None else {"records": self.records}
        summary.setdefault("resources_written", self.resources)
        with self._refused(), conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                (utc_now(), dumps_strict(summary), self.run_id),
            )
        self._disconnect()
        self.closed = True
        return [self.path]

    def abort(self) -> None:
        """Keep what completed and leave the run unfinished (``finished_at`` NULL): the diff and the
        ``latest`` view skip it by default, and SQL can still see how far it got."""
        if not self._failed:  # after a refused write, the error that ended the run is the one reported
            with contextlib.suppress(Exception):
                self.flush()
        self._disconnect()
        self.closed = True

    def newest_fetch(self) -> float | None:
        """When the newest fetch this database records (any finished run) was made, in epoch seconds;
        None for a new file. A page fetched at or before it must not be served from the cache into
        this database: it would be recorded as this run's state while being older than a state the
        database already holds."""
        if not self.path.exists():
            return None
        with InventoryDB(self.path) as db:
            return db.newest_fetch()

    @contextlib.contextmanager
    def _refused(self) -> Iterator[None]:
        """A write SQLite refused (a full disk, read-only media, a damaged file) as one StorageError
        line. What is committed stays, as a run with no ``finished_at`` (diff skips it); a damaged
        file gets this run's rows removed when SQLite still can, so it is not left unfinished there."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            self._failed = True
            committed = self.resources - len(self._rows)
            damaged = sqlite_damaged(exc)
            if not self._committed or (damaged and self._forget_run()):
                kept = "this run was not recorded"
            else:
                kept = f"run {self.run_id} is kept unfinished with the {committed} resources written so far (diff skips it)"
            raise storage_error(exc, f"cannot write --out {str(self.path)!r}", kept) from None

    def _forget_run(self) -> bool:
        """Remove this run's rows (a damaged file); False when SQLite cannot."""
        self._rows, self._fetches, self._bytes = [], [], 0
        if self._conn is None:
            return False
        try:
            with self._conn:
                for table in ("resources", "fetches", "runs"):
                    self._conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (self.run_id,))
        except sqlite3.Error:
            return False
        self.run_id = None
        return True

    def __enter__(self) -> SQLiteSink:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self.closed:
            self.close()

    # -- the file --------------------------------------------------------------------------------

    def _check_target(self) -> None:
        try:
            if self.path.is_dir():
                raise InventoryError(
                    f"--out {str(self.path)!r} is a directory; a SQLite inventory is one file "
                    "(e.g. --out inventory.db)"
                )
            if self.path.exists():
                with contextlib.closing(connect_existing(self.path, what="--out")) as conn:
                    conn.execute("SELECT 1").fetchone()
                os.close(os.open(self.path, os.O_WRONLY))  # the kernel's reason: read-only mount, permission
                check_writable(
                    self.path.parent if str(self.path.parent) else "."
                )  # the WAL files go beside it
            else:
                check_writable(self.path.parent if str(self.path.parent) else ".")
        except OSError as exc:
            raise InventoryError(
                f"--out {str(self.path)!r} is not writable: {exc.strerror or exc}; choose another --out"
            ) from None

    def _open(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self.closed:
            raise InventoryError(
                f"the SQLite sink for {str(self.path)!r} is closed; make a new one for another run"
            )
        with self._refused():
            conn = self._connect()
        conn.isolation_level = "DEFERRED"  # from here ``with conn`` commits a batch as one transaction
        self._conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if not _check_schema(conn, str(self.path), "--out"):
                # IF NOT EXISTS throughout: two runs creating the same new file at once both succeed.
                conn.executescript(
                    f"BEGIN IMMEDIATE; PRAGMA application_id = {APPLICATION_ID}; "
                    f"PRAGMA user_version = {SCHEMA_VERSION}; {_SCHEMA} COMMIT;"
                )
            _migrate(conn)
            # The run's row commits with its first batch: a run that cannot write even that (a damaged
            # file, a full disk) leaves no row behind.
            conn.execute("BEGIN IMMEDIATE")
            self.run_id = conn.execute(
                "INSERT INTO runs (started_at) VALUES (?)", (self.started_at,)
            ).lastrowid
        except BaseException:
            conn.close()
            raise
        return conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()  # the last connection checkpoints the WAL into the file
            self._conn = None
