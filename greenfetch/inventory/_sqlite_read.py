"""The read side of a SQLite inventory file (``InventoryDB``): runs, what each run fetched, resources in
key order; for ``greenfetch diff`` and tests. Any schema version reads (``_sqlite_schema``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._sqlite_schema import connect_existing
from ._types import parse_utc

__all__ = ["InventoryDB"]


class InventoryDB:
    """Read side of the file, for ``greenfetch diff`` and tests: runs, what each run fetched, and its
    resources in key order (so two runs can be merged without holding either in memory)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.conn = connect_existing(path)

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT run_id, started_at, finished_at, summary FROM runs ORDER BY run_id")
        return [
            {
                "run_id": r[0],
                "started_at": r[1],
                "finished_at": r[2],
                "summary": json.loads(r[3]) if r[3] else None,
            }
            for r in rows
        ]

    def fetched(self, run_id: int) -> dict[tuple[str, str, str], str]:
        """(type, account, region) -> the status its fetch ended with in this run."""
        rows = self.conn.execute(
            "SELECT resource_type, account, region, status FROM fetches WHERE run_id = ?", (run_id,)
        )
        return {(t, a, r): s for t, a, r, s in rows}

    def fetch_times(self, run_id: int) -> dict[tuple[str, str, str], str | None]:
        """(type, account, region) -> when its page was fetched (ISO-8601 UTC), None when the file
        was written before fetch times were recorded."""
        if not self._has_fetch_times():
            return {scope: None for scope in self.fetched(run_id)}
        rows = self.conn.execute(
            "SELECT resource_type, account, region, fetched_at FROM fetches WHERE run_id = ?", (run_id,)
        )
        return {(t, a, r): f for t, a, r, f in rows}

    def newest_fetch(self) -> float | None:
        """Epoch seconds of the newest fetch a finished run recorded (a fetch without a time counts as
        made when its run finished); None when no finished run fetched anything."""
        when = "COALESCE(f.fetched_at, r.finished_at)" if self._has_fetch_times() else "r.finished_at"
        row = self.conn.execute(
            f"SELECT MAX({when}) FROM fetches AS f JOIN runs AS r ON r.run_id = f.run_id "
            "WHERE r.finished_at IS NOT NULL"
        ).fetchone()
        return parse_utc(row[0]) if row and row[0] else None

    def _has_fetch_times(self) -> bool:
        return any(r[1] == "fetched_at" for r in self.conn.execute("PRAGMA table_info(fetches)"))

    def resources(self, run_id: int, types: list[str] | None = None) -> Any:
        """``((type, account, region, resource_id), data_json)`` in key order (the run_type index)."""
        where, args = "run_id = ?", [run_id, *(types or [])]
        if types:
            where += f" AND resource_type IN ({', '.join('?' * len(types))})"
        rows = self.conn.execute(
            "SELECT resource_type, account, region, resource_id, data FROM resources "
            f"WHERE {where} ORDER BY resource_type, account, region, resource_id",
            args,
        )
        return (((t, a, r, i), d) for t, a, r, i, d in rows)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> InventoryDB:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
