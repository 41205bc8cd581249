"""One PostgreSQL transaction at a time for the inventory's writers (``_postgres_sink``, ``_postgres_shard``).

``_Writer`` holds one connection, reconnected when it is lost, and runs a transaction again after a lost
connection; ``_write_batch`` is one batch's statements (delete the scopes it replaces, COPY its rows in,
upsert its fetch rows); ``_Stream`` is a batch's COPY held open while the run adds records.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from .._exceptions import StorageError
from .._redact import redact_url
from ._postgres import _APPLICATION, _hint, _is_lost, _psycopg, _reason, _Unreachable, connect
from ._postgres_copy import _SIGNATURE, _TRAILER, Scope
from ._types import InventoryError

_COPY_RESOURCES = (
    "COPY resources (run_id, resource_type, account, region, resource_id, data) FROM STDIN (FORMAT binary)"
)
_UPSERT_FETCH = (
    "INSERT INTO fetches (run_id, resource_type, account, region, status, error, items, fetched_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, resource_type, account, region) "
    "DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, items = EXCLUDED.items, "
    "fetched_at = EXCLUDED.fetched_at"
)
_DELETE_SCOPES = (
    "DELETE FROM {table} AS t USING unnest(%s::text[], %s::text[], %s::text[]) AS s(rt, ac, rg) "
    "WHERE t.run_id = %s AND t.resource_type = s.rt AND t.account = s.ac AND t.region = s.rg"
)


class _Writer:
    """One connection, reconnected when it is lost. ``run(work)`` is one transaction; after a lost
    connection (a restart, the network) it runs ``work(conn, again=True)`` on a new one, for up to
    ``retry_seconds``, and the batch writers delete all of the batch's scopes first when ``again`` (the
    first attempt may or may not have committed). Past that, StorageError; a refused password or a
    missing database is not retried (InventoryError)."""

    def __init__(self, url: str, what: str, retry_seconds: float = 30.0, conninfo: str | None = None):
        self.url, self.what, self.retry_seconds = url, what, retry_seconds
        self.target = conninfo or url
        # the run's own sink connects now (a bad URL or password is exit 2 before any fetch); a worker's
        # shard sink at its first write
        self.conn: Any = connect(self.target, what=what) if conninfo is None else None

    def _connect(self) -> Any:
        psycopg = _psycopg()
        try:
            return psycopg.connect(self.target, connect_timeout=10, application_name=_APPLICATION)
        except psycopg.Error as exc:
            reason = _reason(exc, self.url)
            message = (
                f"database {redact_url(self.url)!r}: cannot connect to PostgreSQL: {reason}; {_hint(reason)}"
            )
            if "password" in reason.lower() or "does not exist" in reason.lower():
                raise InventoryError(message) from None  # no retry mends a password or a missing database
            raise _Unreachable(reason) from None

    def run(self, work: Callable[[Any, bool], Any], *, done: str) -> Any:
        """``work(conn, again)`` in a transaction; again after a lost connection (``again=True``)."""
        deadline = time.monotonic() + self.retry_seconds
        delay, again = 0.2, False
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = self._connect()
                with self.conn.transaction():
                    return work(self.conn, again)
            except Exception as exc:
                if not (_is_lost(exc) or isinstance(exc, _Unreachable)):
                    raise
                self._drop()
                if time.monotonic() + delay > deadline:
                    reason = str(exc) if isinstance(exc, _Unreachable) else _reason(exc, self.url)
                    raise StorageError(
                        f"PostgreSQL at {redact_url(self.url)!r} stopped answering for "
                        f"{self.retry_seconds:g}s ({reason}); {done}"
                    ) from None
                time.sleep(delay)
                delay, again = min(delay * 2, 5.0), True

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.conn = None

    def close(self) -> None:
        self._drop()


def _write_batch(
    conn: Any,
    run_id: int,
    chunks: Iterable[bytes],
    fetches: list[tuple[Any, ...]],
    replace: Iterable[Scope],
) -> None:
    """Delete ``replace``'s rows of this run, COPY ``chunks`` (``_encode``'s bytes) in, upsert ``fetches``
    (read after the chunks: a generator may fill it as it goes): the caller's transaction."""
    scopes = sorted(set(replace))
    if scopes:
        columns = [list(c) for c in zip(*scopes, strict=True)]
        for table in ("resources", "fetches"):
            conn.execute(_DELETE_SCOPES.format(table=table), (*columns, run_id))
    if chunks:
        with conn.cursor() as cur, cur.copy(_COPY_RESOURCES) as copy:
            copy.write(_SIGNATURE)
            for chunk in chunks:
                copy.write(chunk)
            copy.write(_TRAILER)
    if fetches:
        with conn.cursor() as cur:
            cur.executemany(_UPSERT_FETCH, fetches)


class _Stream:
    """A batch's transaction, cursor and COPY, left open across ``add`` calls: ``write`` chunks as they
    come, ``commit`` (the COPY's end, the fetch rows, COMMIT) or ``abandon`` (roll back as far as the
    connection allows)."""

    def __init__(self, conn: Any, run_id: int, replace: Iterable[Scope]):
        self.stack = contextlib.ExitStack()
        self.copying: Any = None  # the cursor's copy() context, open
        try:
            self.stack.enter_context(conn.transaction())
            self.cur = self.stack.enter_context(conn.cursor())
            _write_batch(conn, run_id, [], [], replace)
            self.copying = self.cur.copy(_COPY_RESOURCES)
            self.copy = self.copying.__enter__()
            self.copy.write(_SIGNATURE)
        except BaseException as exc:
            self.abandon(exc)
            raise

    def write(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.copy.write(chunk)

    def commit(self, fetches: list[tuple[Any, ...]]) -> None:
        self.copy.write(_TRAILER)
        copying, self.copying = self.copying, None
        copying.__exit__(None, None, None)  # the rest of the rows out, and the server's answer
        if fetches:
            self.cur.executemany(_UPSERT_FETCH, fetches)
        self.stack.close()  # the cursor, then the transaction: commit

    def abandon(self, exc: BaseException) -> None:
        closes = ([self.copying.__exit__] if self.copying is not None else []) + [self.stack.__exit__]
        self.copying = None
        for close in closes:
            try:
                close(type(exc), exc, exc.__traceback__)
            except Exception:  # noqa: BLE001 - a dead connection cannot roll back; the server does
                pass
