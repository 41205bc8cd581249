"""Writing an inventory into PostgreSQL: the run's sink (``PostgresSink``) and the workers' (``PostgresShardSink``).

Rows go in with binary COPY, one transaction per batch (bytes, rows or seconds, whichever comes first),
and a batch always holds whole records: a record's ``fetches`` row commits with all its resources, and
a batch whose commit was cut off (PostgreSQL restarted, a lost connection) can be sent again after a
reconnect without writing anything twice (its (type, account, region) are deleted first in the same
transaction). A record is encoded once, into the bytes its rows take in the COPY stream
(``_postgres_copy._encode``); the batch keeps those bytes until it commits, so memory is one batch plus
the record being added. A run that is killed leaves the earlier runs intact and its own
``finished_at`` NULL.

With ``--broker`` the workers write their shards' rows themselves (``PostgresShardSink``): a shard
is one transaction that replaces whatever an earlier delivery of the same shard wrote, keyed by
(run, type, account, region); the coordinator counts what is in and marks the run finished only
when every shard is. The schema, connections and credentials are ``_postgres``'s.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .._exceptions import StorageError
from .._redact import redact_url
from ._catalog import ResourceType
from ._catalog import catalog as all_types
from ._postgres import (
    _APPLICATION,
    _hint,
    _is_lost,
    _psycopg,
    _reason,
    _ts,
    _Unreachable,
    _with_own_password,
    connect,
    ensure_schema,
    public_conninfo,
)
from ._postgres_copy import _SIGNATURE, _TRAILER, Scope, _encode, _scope
from ._rows import dumps_strict
from ._types import InventoryError, Record

__all__ = ["PostgresShardSink", "PostgresSink"]

_COPY_RESOURCES = (
    "COPY resources (run_id, resource_type, account, region, resource_id, data) FROM STDIN (FORMAT binary)"
)
_STREAM_BYTES = 1 << 16  # a batch's rows go to the server in chunks of at least this much (or stream_rows)
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


# -- writing one run -----------------------------------------------------------------------------------


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


class PostgresSink:
    """``add(record)`` for each record, then ``close(summary)``; ``abort()`` on failure (the SQLite
    sink's interface). The database is reached, and its schema checked, when the sink is made (a bad
    URL, a wrong password, a missing database or a newer schema: InventoryError before any fetch); the
    run's row is written at the first record or at ``close``.

    A batch streams: its COPY is opened at its first chunk (``stream_rows`` rows or 64 KB not yet sent)
    and every chunk goes out as soon as it is full, so PostgreSQL parses and indexes one chunk while the
    run encodes the next (one core each); ``flush`` sends the rest, finishes the COPY, upserts the fetch
    rows and commits. A commit waits for PostgreSQL to write its WAL to disk (its default durability),
    a stall on both sides, so a batch is large (8 MB of rows, 20,000 rows or one second): at 1 KB a row
    that is a commit per ~7,000 rows. The batch's encoded rows are kept until it commits: a batch whose
    stream or commit failed is sent again, whole, after a reconnect."""

    direct = True  # --broker workers can write this sink's run themselves (``shard_sink``)

    def __init__(
        self,
        url: str,
        *,
        batch_rows: int = 20_000,
        batch_bytes: int = 8 << 20,
        flush_seconds: float = 1.0,
        catalog: Mapping[str, ResourceType] | None = None,
        clock: Any = time.monotonic,
        retry_seconds: float = 30.0,
        stream_rows: int = 100,
    ):
        self.url = url.strip()
        self.name = redact_url(self.url)
        self.batch_rows, self.batch_bytes, self.flush_seconds = batch_rows, batch_bytes, flush_seconds
        self.catalog = all_types() if catalog is None else catalog
        self.clock = clock
        self.started_at = time.time()
        self.run_id: int | None = None
        self.records = self.resources = 0
        self.closed = False
        self._chunks: list[bytes] = []  # the batch's rows, as ``_encode`` gives them
        self._rows = 0  # in the batch
        self._fetches: list[tuple[Any, ...]] = []
        self._replace: set[Scope] = set()
        self._batch_scopes: set[Scope] = set()
        self._scopes: set[Scope] = set()
        self._bytes = 0
        self._last_commit = clock()
        self._stream: _Stream | None = None  # the open batch's COPY
        self._broken = False  # the batch's stream failed: flush sends the batch again, whole
        self._sent = 0  # chunks of the batch already in its COPY
        self._unsent_rows = self._unsent_bytes = 0
        self.stream_rows = stream_rows
        self._writer = _Writer(self.url, "--out", retry_seconds)
        try:
            ensure_schema(self._writer.conn, self.url)
        except BaseException:
            self._writer.close()
            raise

    @property
    def path(self) -> str:
        return self.name

    def _open(self) -> int:
        if self.run_id is None:
            if self.closed:
                raise InventoryError(
                    f"the PostgreSQL sink for {self.name!r} is closed; make a new one for another run"
                )
            started = _ts(self.started_at)
            self.run_id = self._writer.run(
                lambda conn, again: conn.execute(
                    "INSERT INTO runs (started_at) VALUES (%s) RETURNING run_id", (started,)
                ).fetchone()[0],
                done="the run was not started",
            )
        return self.run_id

    # -- records in ------------------------------------------------------------------------------

    def add(self, rec: Record, fetched_at: float | None = None) -> None:
        """Stream the record's resources into the batch and keep its fetch row for the batch's end;
        commit when the batch is full. ``fetched_at``: when the record's page was fetched (epoch
        seconds; default now)."""
        run_id = self._open()
        scope, chunk, fetch, rows = _encode(rec, run_id, self.catalog, fetched_at)
        if scope in self._scopes:  # the same fetch again (a re-run shard): it replaces the first
            self.flush()  # the replacing batch deletes before its COPY starts
            self._replace.add(scope)
        self._scopes.add(scope)
        self._batch_scopes.add(scope)
        if chunk:
            self._chunks.append(chunk)
        self._fetches.append(fetch)
        self._rows += rows
        self._bytes += len(chunk) + 64
        self._unsent_rows += rows
        self._unsent_bytes += len(chunk)
        self.records += 1
        self.resources += rows
        if self._unsent_rows >= self.stream_rows or self._unsent_bytes >= _STREAM_BYTES:
            self._send()  # a chunk: the server parses it while we go on
        if (
            self._rows >= self.batch_rows
            or self._bytes >= self.batch_bytes
            or self.clock() - self._last_commit >= self.flush_seconds
        ):
            self.flush()

    def _send(self) -> None:
        """The batch's chunks not yet sent, into its COPY (opened by the first chunk)."""
        chunks, self._sent = self._chunks[self._sent :], len(self._chunks)
        self._unsent_rows = self._unsent_bytes = 0
        if self._broken or not chunks:
            return
        try:
            if self._stream is None:
                if self._writer.conn is None or self._writer.conn.closed:
                    self._writer.conn = self._writer._connect()
                self._stream = _Stream(self._writer.conn, self._open(), self._replace)
            self._stream.write(chunks)
        except (_psycopg().Error, _Unreachable) as exc:  # flush sends the batch again, whole
            self._abandon(exc)

    def _abandon(self, exc: BaseException) -> None:
        """Roll the streamed batch back (as far as the connection allows) and drop the connection."""
        self._broken = True
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.abandon(exc)
        self._writer._drop()

    def flush(self) -> None:
        """Finish the batch: the COPY, the fetch rows, one commit (whole records only)."""
        if self.run_id is None or not (self._chunks or self._fetches):
            return
        chunks, fetches, replace, batch = self._chunks, self._fetches, self._replace, self._batch_scopes
        run_id = self.run_id
        done = f"run {run_id} is left unfinished with {self.resources - self._rows} resources written"
        committed = False
        if self._stream is not None and not self._broken:
            self._send()
        if self._stream is not None and not self._broken:
            stream, self._stream = self._stream, None
            try:
                stream.commit(fetches)
                committed = True
            except Exception as exc:  # noqa: BLE001 - sorted below: lost (send again) or refused (an error)
                self._broken = True  # the commit may have happened: sent again, the batch deletes first
                stream.abandon(exc)
                self._writer._drop()
                if not isinstance(exc, _psycopg().Error):
                    raise
                if not _is_lost(exc):
                    raise StorageError(
                        f"PostgreSQL at {self.name!r} refused a batch ({_reason(exc, self.url)}); {done}"
                    ) from None
        if (
            not committed
        ):  # nothing streamed (no rows), or the stream broke: the batch again, whole, in one go
            self._writer.run(
                lambda conn, again: _write_batch(
                    conn, run_id, chunks, fetches, batch if again or self._broken else replace
                ),
                done=done,
            )
        self._chunks, self._fetches, self._replace, self._batch_scopes = [], [], set(), set()
        self._rows = self._bytes = self._sent = self._unsent_rows = self._unsent_bytes = 0
        self._broken = False
        self._last_commit = self.clock()

    def close(self, summary: Mapping[str, Any] | None = None) -> list[str]:
        """Write the rest and mark the run finished (``finished_at``, ``summary``)."""
        run_id = self._open()
        try:
            self.flush()
        except BaseException:
            self._writer.close()  # the batch is still in hand: abort() sends it again on a new connection
            raise
        summary = dict(summary) if summary is not None else {"records": self.records}

        def finish(
            conn: Any, again: bool
        ) -> None:  # the run's rows, whoever wrote them (workers, with --broker)
            written = conn.execute("SELECT count(*) FROM resources WHERE run_id = %s", (run_id,)).fetchone()[
                0
            ]
            conn.execute(
                "UPDATE runs SET finished_at = now(), summary = %s::jsonb WHERE run_id = %s",
                (dumps_strict({"resources_written": written, **summary}), run_id),
            )

        try:
            self._writer.run(finish, done=f"run {run_id} is left unfinished")
        finally:
            self._writer.close()  # also when the run could not be finished: abort() reconnects if it can
        self.closed = True
        return [f"{self.name} (run {run_id})"]

    def abort(self) -> None:
        """Keep what completed and leave the run unfinished (``finished_at`` NULL). The batch in hand is
        sent again whole on a fresh connection (a Ctrl-C may have cut its COPY anywhere), trying for
        two seconds at most: stopping never waits on a database that is gone."""
        self._writer.retry_seconds = min(self._writer.retry_seconds, 2.0)
        try:
            if self._stream is not None:
                self._abandon(RuntimeError("aborted"))
            self.flush()
        except Exception:  # noqa: BLE001 - the error that ended the run is the one to report
            pass
        self._writer.close()
        self.closed = True

    def newest_fetch(self) -> float | None:
        """Epoch seconds of the newest fetch a finished run recorded; None when there is none."""
        row = self._writer.run(
            lambda conn, again: conn.execute(
                "SELECT max(COALESCE(f.fetched_at, r.finished_at)) FROM fetches AS f JOIN runs AS r "
                "ON r.run_id = f.run_id WHERE r.finished_at IS NOT NULL"
            ).fetchone(),
            done="",
        )
        return row[0].timestamp() if row and row[0] is not None else None

    def shard_sink(self) -> PostgresShardSink:
        """Where ``--broker`` workers write this run's shards (the run's row is made now)."""
        return PostgresShardSink(self.url, self._open())

    def __enter__(self) -> PostgresSink:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self.closed:
            self.close()


# -- shards written by the workers ---------------------------------------------------------------------


class PostgresShardSink:
    """The ``ShardSink`` of a ``--broker`` run into PostgreSQL: ``put`` writes the shard's rows into the
    run directly (one transaction, replacing an earlier delivery of the same shard); ``get`` gives the
    coordinator the shard's fetch rows (``items`` as a ``range`` of the count: the coordinator only
    counts them) and summary; ``keys``, ``discard`` as for the other shard sinks."""

    direct = True  # the rows are in the database already: the coordinator must not write them again

    def __init__(self, url: str, run: int, *, conninfo: str | None = None):
        self.url, self.run = url, int(run)
        self.conninfo = conninfo
        self._writer: _Writer | None = None

    def spec(self) -> dict[str, Any]:
        """What a broker message says: the database without any password, and the run."""
        return {"kind": "postgres", "conninfo": self.conninfo or public_conninfo(self.url), "run": self.run}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> PostgresShardSink:
        conninfo = _with_own_password(str(spec["conninfo"]))
        return cls(str(spec["conninfo"]), int(spec["run"]), conninfo=conninfo)

    def _conn(self) -> _Writer:
        if self._writer is None:
            self._writer = _Writer(self.url, "database", conninfo=self.conninfo)
        return self._writer

    def put(self, run_id: str, key: str, records: list[Record], summary: dict[str, Any]) -> None:
        """The shard's rows, in one transaction that first deletes what an earlier delivery of this
        shard wrote (its scopes, from ``greenfetch_shards``) and the scopes it writes now."""
        times = summary.get("fetched_at")  # when each record's page was fetched, if the worker says
        if not (isinstance(times, list) and len(times) == len(records)):
            times = [None] * len(records)
        last: dict[Scope, tuple[Record, float | None]] = {}
        for rec, when in zip(records, times, strict=True):  # a scope twice in one shard: the last wins
            last[_scope(rec)] = (rec, when)

        kinds = all_types()

        def work(conn: Any, again: bool) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s::int, hashtext(%s))", (self.run % (1 << 31), key))
            run = conn.execute(
                "SELECT finished_at FROM runs WHERE run_id = %s FOR SHARE", (self.run,)
            ).fetchone()
            if run is None or run[0] is not None:  # rows of a finished run never change
                raise InventoryError(
                    f"run {self.run} is {'over' if run else 'not in the database'}; shard {key} "
                    "was not written"
                )
            old = conn.execute(
                "SELECT scopes FROM greenfetch_shards WHERE run_id = %s AND shard_key = %s", (self.run, key)
            ).fetchone()
            _write_batch(conn, self.run, [], [], {tuple(s) for s in (old[0] if old else [])} | set(last))
            fetches: list[tuple[Any, ...]] = []

            def chunks() -> Iterator[bytes]:  # one COPY; a record's rows are encoded as it goes in
                for rec, when in last.values():
                    _, chunk, fetch, _ = _encode(rec, self.run, kinds, when)
                    fetches.append(fetch)
                    yield chunk

            _write_batch(conn, self.run, chunks(), fetches, ())
            conn.execute(
                "INSERT INTO greenfetch_shards (run_id, shard_key, scopes, summary) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (run_id, shard_key) DO UPDATE SET scopes = EXCLUDED.scopes, "
                "summary = EXCLUDED.summary, written_at = now()",
                (self.run, key, json.dumps(sorted(last)), dumps_strict(summary)),
            )

        try:
            self._conn().run(work, done=f"shard {key} was not written")
        finally:
            self.close()  # a worker writes many shards over time: no connection held between them

    def get(self, run_id: str, key: str) -> tuple[list[Record], dict[str, Any]] | None:
        def work(conn: Any, again: bool) -> Any:
            found = conn.execute(
                "SELECT scopes, summary FROM greenfetch_shards WHERE run_id = %s AND shard_key = %s",
                (self.run, key),
            ).fetchone()
            if found is None:
                return None
            scopes = [tuple(s) for s in found[0]]
            columns = [list(c) for c in zip(*scopes, strict=True)] if scopes else [[], [], []]
            rows = conn.execute(
                "SELECT f.resource_type, f.account, f.region, f.status, f.error, f.items FROM fetches AS f "
                "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS s(rt, ac, rg) ON f.resource_type = s.rt "
                "AND f.account = s.ac AND f.region = s.rg WHERE f.run_id = %s "
                "ORDER BY f.resource_type, f.account, f.region",
                (*columns, self.run),
            ).fetchall()
            return rows, found[1]

        got = self._conn().run(work, done="the shard could not be read")
        if got is None:
            return None
        rows, summary = got
        records = [
            {"resource_type": t, "account": a, "region": r, "items": range(n), "status": s, "error": e}
            for t, a, r, s, e, n in rows
        ]
        return records, summary

    def keys(self, run_id: str) -> set[str]:
        rows = self._conn().run(
            lambda conn, again: conn.execute(
                "SELECT shard_key FROM greenfetch_shards WHERE run_id = %s", (self.run,)
            ).fetchall(),
            done="the shards could not be listed",
        )
        return {r[0] for r in rows}

    def discard(self, run_id: str) -> None:
        """The bookkeeping goes; the rows stay (they are the run)."""
        try:
            self._conn().run(
                lambda conn, again: conn.execute(
                    "DELETE FROM greenfetch_shards WHERE run_id = %s", (self.run,)
                ),
                done="",
            )
        except Exception:  # noqa: BLE001 - never hide the error that ended the run
            pass
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
