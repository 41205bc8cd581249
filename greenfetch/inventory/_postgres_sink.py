"""Writing an inventory into PostgreSQL: the run's sink (``PostgresSink``).

Rows go in with binary COPY, one transaction per batch (bytes, rows or seconds, whichever comes first),
and a batch always holds whole records: a record's ``fetches`` row commits with all its resources, and
a batch whose commit was cut off (PostgreSQL restarted, a lost connection) can be sent again after a
reconnect without writing anything twice (its (type, account, region) are deleted first in the same
transaction). A record is encoded once, into the bytes its rows take in the COPY stream
(``_postgres_copy._encode``); the batch keeps those bytes until it commits, so memory is one batch plus
the record being added. A run that is killed leaves the earlier runs intact and its own
``finished_at`` NULL.

With ``--broker`` the workers write their shards' rows themselves (``_postgres_shard``). The schema,
connections and credentials are ``_postgres``'s; the transactions and their retries ``_postgres_write``'s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .._exceptions import StorageError
from .._redact import redact_url
from ._catalog import catalog as all_types
from ._postgres import _is_lost, _psycopg, _reason, _ts, _Unreachable, ensure_schema
from ._postgres_copy import Scope, _encode
from ._postgres_shard import PostgresShardSink
from ._postgres_write import _Stream, _write_batch, _Writer
from ._resource_type import ResourceType
from ._rows import dumps_strict
from ._types import InventoryError, Record

__all__ = ["PostgresSink"]

_STREAM_BYTES = 1 << 16  # a batch's rows go to the server in chunks of at least this much (or stream_rows)


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
