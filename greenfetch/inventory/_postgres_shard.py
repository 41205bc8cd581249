"""The workers' PostgreSQL sink (``PostgresShardSink``): a ``--broker`` run's shards written into the run.

With ``--broker`` the workers write their shards' rows themselves (``PostgresShardSink``): a shard
is one transaction that replaces whatever an earlier delivery of the same shard wrote, keyed by
(run, type, account, region); the coordinator counts what is in and marks the run finished only
when every shard is. The schema, connections and credentials are ``_postgres``'s; the transaction and
its retries ``_postgres_write``'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ._catalog import catalog as all_types
from ._postgres import _with_own_password, public_conninfo
from ._postgres_copy import Scope, _encode, _scope
from ._postgres_write import _write_batch, _Writer
from ._rows import dumps_strict
from ._types import InventoryError, Record

__all__ = ["PostgresShardSink"]


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
