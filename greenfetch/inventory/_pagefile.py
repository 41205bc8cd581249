"""The inventory cache's disk tier: every entry a row of one SQLite file in the cache directory.

A file per page cost the kernel 35 us to create and 80-110 us to replace on ext4, more than the rest of
a page's cache write (docs/performance/inventory-cost.md, "the inventory command's own cost"); a row written in a
transaction of many costs a tenth of that. Rows are buffered and written in short transactions (at
most ``BATCH`` pages, or whatever has waited ``WAIT`` seconds, and at ``flush``/``close``), never one
held open while the run fetches: processes sharing the directory (``--processes``, Celery workers)
wait for each other's writes at most one such transaction. SQLite's write-ahead log keeps every
transaction whole: a process killed before its last one loses those pages from the cache (a miss
for the next run, never a torn entry), and readers never wait for a writer.

The file is the cache's by its name (``NAME``) and marked inside (``PRAGMA application_id``): one
that is not a database, or damaged, is removed and made again (it can only be an entry store that a
crash or a disk broke); a database of another program under the name is left alone and the run goes
on without the disk tier. Owner-only (0600; SQLite gives its ``-wal`` and ``-shm`` files the same mode)
in a 0700 directory. A connection is never used across ``fork``: a child opens its own.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable

from .._exceptions import StorageError
from .._storage_errors import sqlite_code, sqlite_damaged

__all__ = ["NAME", "PageFile"]

NAME = "greenfetch-cache.sqlite3"
BATCH = 64  # pages a transaction: 11 us of CPU a page here, against 31-49 us for one page a transaction
WAIT = 0.5  # seconds a page waits for its transaction at most (while pages keep coming)
_APP_ID = 0x67666368  # 'gfch': this file is greenfetch's cache
_SIDES = ("-wal", "-shm", "-journal")
_IOERR = 10
_NEARLY_FULL = 1 << 20  # bytes: less free than this, and an I/O error writing is the disk being full
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


def _forked() -> None:
    global _pid
    _pid = os.getpid()


_pid = os.getpid()  # this process's PID, kept: a system call fewer per entry written
os.register_at_fork(after_in_child=_forked)


class NotOurs(StorageError):
    """A database of another program under the cache's file name (said once; the run goes on)."""


class PageFile:
    """``get``/``put``/``delete`` of an entry's text by key; ``put`` is buffered (see the module)."""

    def __init__(
        self,
        directory: str,
        on_refused: Callable[[BaseException], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.directory, self.path = directory, os.path.join(directory, NAME)
        self._refused, self._clock = on_refused, clock
        self._pending: dict[str, str] = {}
        self._since = 0.0
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file the connection has
        self._pid = _pid
        self._lock = threading.Lock()  # the threads engine may store from more than one thread
        self._foreign = False

    # -- entries -------------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The entry's text (written or still waiting for its transaction), or None."""
        self._same_process()
        text = self._pending.get(key)
        if text is not None:
            return text
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return None
            try:
                row = conn.execute("SELECT body FROM entries WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error:
                return None  # a file another process holds too long, or broken since it was opened: a miss
        return row[0] if row is not None else None

    def put(self, key: str, text: str) -> None:
        if self._pid != _pid:  # ``_same_process`` inline: a call fewer a page
            self._same_process()
        pending = self._pending
        if not pending:
            self._since = self._clock()
        pending[key] = text
        if len(pending) >= BATCH or self._clock() - self._since >= WAIT:
            self.flush()

    def delete(self, key: str) -> None:
        self._same_process()
        self._pending.pop(key, None)
        with self._lock:
            conn = self._connection(create=False)
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("DELETE FROM entries WHERE key = ?", (key,))

    def flush(self) -> None:
        """Write every waiting entry in one transaction; a refusal (full, read-only, locked for longer
        than the timeout) goes to ``on_refused`` and those entries are dropped: a slower next run."""
        self._same_process()
        if not self._pending:
            return
        rows, self._pending = list(self._pending.items()), {}
        with self._lock:
            try:
                conn = self._connection(create=True)
                if conn is None:
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for start in range(0, len(rows), BATCH):
                        _insert(conn, rows[start : start + BATCH])
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                self._refused(_plainly(exc, self.directory))

    def close(self) -> None:
        """Flush, then close the connection (a later call opens it again)."""
        self.flush()
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            self._conn = self._identity = None

    def tally(self, fresh: Callable[[str, str], bool]) -> tuple[int, int]:
        """(entries, those ``fresh(key, text)`` calls fresh), read a row at a time (a cache of many
        pages is never in memory at once)."""
        self.flush()
        total = kept = 0
        with self._lock:
            conn = self._connection(create=False)
            if conn is not None:
                for key, text in conn.execute("SELECT key, body FROM entries"):
                    total += 1
                    kept += fresh(key, text)
        return total, kept

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        self._same_process()
        self._pending.clear()
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return 0
            removed = conn.execute("DELETE FROM entries").rowcount
            with contextlib.suppress(sqlite3.Error):  # give the space back, unless another process reads
                conn.execute("VACUUM")
        return max(removed, 0)

    def size(self) -> int:
        """Bytes on disk: the file and its write-ahead log."""
        total = 0
        for path in (self.path, self.path + "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(path)
        return total

    # -- the connection ------------------------------------------------------------------------

    def _same_process(self) -> None:
        """In a forked child, forget the parent's connection and its waiting entries (the parent
        writes those): a SQLite connection must not cross ``fork``."""
        if self._pid != _pid:
            self._pid, self._conn, self._identity, self._pending = _pid, None, None, {}

    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        """The open connection, if its file is still the one at ``path`` (a directory removed under a
        running inventory is made again); None when there is no file and ``create`` is false, or when
        the name holds another program's database. Only a write checks the file (a system call): a
        read from a file removed since it was opened finds what it held."""
        if self._foreign:
            return None
        if self._conn is not None and not create:
            return self._conn
        try:
            st = os.stat(self.path)
            identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:  # missing, or a file where a directory should be: made (and refused) below
            identity = None
        if self._conn is not None and identity == self._identity:
            return self._conn
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if identity is None and not create:
            return None
        try:
            self._conn = self._open()
        except NotOurs as exc:
            self._foreign = True
            self._refused(exc)
            return None
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)
        return self._conn

    def _open(self) -> sqlite3.Connection:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        for attempt in (1, 2):
            os.close(os.open(self.path, _OPEN_FLAGS, 0o600))  # owner-only before SQLite opens it
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            try:
                _prepare(conn, self.path)
                return conn
            except sqlite3.DatabaseError as exc:
                conn.close()
                if attempt == 2 or not sqlite_damaged(exc):
                    raise
                for path in (self.path, *(self.path + side for side in _SIDES)):  # damaged: ours, made again
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")


def _insert(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    """Write ``rows`` (at most ``BATCH``, no key twice) in one statement: each key's row holds its text
    after it, as ``executemany("INSERT OR REPLACE ...")`` left it. One statement of all the rows, not a
    statement's run and reset per row (a new 0.5 KB entry 16.9k -> 12.3k instructions); an entry that
    replaces one is an update of its row in place (``ON CONFLICT (key) DO UPDATE``), where ``REPLACE``
    deleted the row and inserted another under a new rowid, which dirtied the key's index page and the
    old row's page as well as the new one's: 18.9k -> 7.7k instructions an entry, and a third of the
    write-ahead log's frames (its ``pwrite`` calls). Each row count's statement is compiled once (the
    connection's statement cache holds them)."""
    conn.execute(_INSERTS[len(rows)], list(itertools.chain.from_iterable(rows)))


def _statements(upsert: bool) -> list[str]:
    """The insert of ``n`` rows at index ``n``: an upsert (SQLite 3.24, 2018, and later) or, for an
    older library, a replace as before."""
    return [""] + [
        (
            "INSERT INTO entries (key, body) VALUES "
            + ",".join(["(?,?)"] * n)
            + " ON CONFLICT (key) DO UPDATE SET body = excluded.body"
            if upsert
            else "INSERT OR REPLACE INTO entries (key, body) VALUES " + ",".join(["(?,?)"] * n)
        )
        for n in range(1, BATCH + 1)
    ]


_INSERTS = _statements(sqlite3.sqlite_version_info >= (3, 24, 0))


def _plainly(exc: BaseException, directory: str) -> BaseException:
    """SQLite says "disk I/O error" when a full disk refuses its shared-memory file (the write-ahead
    log's index) to grow: say what the disk says, when it has (almost) no space left."""
    if sqlite_code(exc) == _IOERR:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(directory).free < _NEARLY_FULL:
                return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return exc


def _prepare(conn: sqlite3.Connection, path: str) -> None:
    """Mark a new file as the cache's and make its table; refuse another program's database."""
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    if app == 0:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
        if tables and tables != ["entries"]:
            raise NotOurs(f"{path} is another program's database ({len(tables)} tables), left as it is")
        conn.execute(
            "PRAGMA journal_mode=WAL"
        )  # outside a transaction; a file system without it keeps its mode
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, body TEXT NOT NULL)")
        conn.execute(f"PRAGMA application_id = {_APP_ID}")
        conn.execute("COMMIT")
    elif app != _APP_ID:
        raise NotOurs(f"{path} is another program's database (application_id {app}), left as it is")
    conn.execute(
        "PRAGMA synchronous = NORMAL"
    )  # with the WAL: a power cut loses the last transactions, never the file
