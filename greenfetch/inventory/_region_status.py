"""Per (account, service, region): did the last look find resources, nothing, a denial, or an error?

Later runs with ``--regions active`` skip regions where a service was empty, denied or not enabled,
and look again once the record is older than ``ttl`` (a team may start using a region any day).
Errors and throttling are never a reason to skip: they say nothing about the region.

Storage is a local JSON file (written atomically, owner-only) or a DynamoDB table. The table's key
schema: partition key ``scope`` (S) = ``"<account>#<service>"``, sort key ``region`` (S); other
attributes ``status``, ``error_code``, ``count`` (N), ``checked_at`` (N, epoch seconds). Updates are
buffered; ``flush()`` (or leaving ``with store:``) persists them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._engine import Engine
from .._errors import classify
from .._models import Request
from ._dynamodb import DynamoDBSink, from_dynamodb_item, to_dynamodb_item
from ._fileio import atomic_write_text
from ._types import InventoryError, dynamodb_table

__all__ = [
    "FAILING",
    "RECORD_STATUSES",
    "RegionStatus",
    "RegionStatusStore",
    "STATUSES",
    "record_status",
    "status_from_error",
    "status_from_count",
]

STATUSES = ("ok", "empty", "denied", "unavailable", "error")
_SKIP = frozenset({"empty", "denied", "unavailable"})

# A record's status (docs/inventory.md, "Statuses"), and the ones a user should act on: only these
# make the run's exit code 1. not_offered (the service does not exist in that region: nothing was
# called) and unavailable (not enabled, subscribed or initialized there) are facts about the account
# and region, not failures.
RECORD_STATUSES = ("ok", "not_offered", "unavailable", "denied", "expired", "throttled", "error")
FAILING = frozenset({"denied", "expired", "throttled", "error"})
_KEPT = frozenset(RECORD_STATUSES) - {"ok", "not_offered"}


@dataclass(frozen=True)
class RegionStatus:
    account: str
    service: str
    region: str
    status: str
    error_code: str | None = None
    count: int | None = None
    checked_at: float = 0.0


def status_from_count(count: int) -> str:
    return "ok" if count else "empty"


def status_of(ok: bool, count: int, error_code: str | None, service: str = "", message: str = "") -> str:
    """A region's status from one call: ok or empty by what it found, else by its error."""
    return status_from_count(count) if ok else status_from_error(error_code, service, message)


def status_from_error(error_code: str | None, service: str = "", message: str = "") -> str:
    """denied / unavailable from greenfetch.classify; everything else (throttled too) is error. Refused
    credentials (invalid, expired, a clock off) say nothing about the region: error, never a reason to skip."""
    info = classify(error_code, service=service, message=message)
    return info.status if info.status in ("denied", "unavailable") and not info.credentials else "error"


def record_status(
    error_code: str | None, *, service: str = "", operation: str = "", message: str = ""
) -> str:
    """A failed fetch's record status, one of ``RECORD_STATUSES``: greenfetch.classify's status where
    the record has that status (unavailable, denied, expired, throttled), else ``error`` (a transient
    failure that outlasted its retries, bad input, a quota, a missing resource: each needs a look)."""
    status = classify(error_code, service=service, operation=operation, message=message).status
    return status if status in _KEPT else "error"


class RegionStatusStore:
    """Region statuses in a JSON file (``path``) or a DynamoDB table (``engine`` + ``table``)."""

    @classmethod
    def from_spec(
        cls, engine: Engine, spec: str | None, default_path: str | None = None
    ) -> RegionStatusStore:
        """The store a ``--status-store`` value names: ``dynamodb:TABLE`` or a JSON path (default:
        ``region-status.json`` in the engine's cache directory)."""
        if table := dynamodb_table(spec, flag="--status-store"):
            return cls(engine=engine, table=table)
        return cls(spec or default_path or os.path.join(engine.config.cache_dir, "region-status.json"))

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        engine: Engine | None = None,
        table: str | None = None,
        ttl: float = 86400.0,
        clock: Callable[[], float] = time.time,
        region: str | None = None,
    ):
        if (path is None) == (table is None):
            raise InventoryError(
                "RegionStatusStore needs exactly one of path= (a JSON file) or table= (DynamoDB)"
            )
        if table is not None and engine is None:
            raise InventoryError("RegionStatusStore(table=...) needs engine= to reach DynamoDB")
        self.path = Path(path) if path is not None else None
        self.engine, self.table, self.ttl, self.clock, self.region = engine, table, ttl, clock, region
        self._rows: dict[tuple[str, str, str], RegionStatus] = {}
        self._dirty: dict[tuple[str, str, str], RegionStatus] = {}
        self._loaded: set[tuple[str, str]] = set()
        if self.path is not None:
            self._load_file()

    # -- reading -------------------------------------------------------------------------

    def get(self, account: str, service: str, region: str) -> RegionStatus | None:
        self._ensure(account, service)
        return self._rows.get((account, service, region))

    def active_regions(self, account: str, service: str, candidates: Iterable[str]) -> list[str]:
        """The candidates worth calling: never seen, ok or errored last time, or re-probe due."""
        self._ensure(account, service)
        now = self.clock()
        keep = []
        for region in candidates:
            row = self._rows.get((account, service, region))
            if row is None or row.status not in _SKIP or now - row.checked_at >= self.ttl:
                keep.append(region)
        return keep

    def all(self) -> list[RegionStatus]:
        return sorted(self._rows.values(), key=lambda r: (r.account, r.service, r.region))

    # -- writing -------------------------------------------------------------------------

    def update(
        self,
        account: str,
        service: str,
        region: str,
        status: str,
        error_code: str | None = None,
        count: int | None = None,
    ) -> RegionStatus:
        if status not in STATUSES:
            raise InventoryError(f"region status {status!r} is not one of {', '.join(STATUSES)}")
        row = RegionStatus(account, service, region, status, error_code, count, self.clock())
        key = (account, service, region)
        self._rows[key] = self._dirty[key] = row
        return row

    def invalidate(self, account: str | None = None, service: str | None = None) -> int:
        """Forget statuses (all, one account's, or one service's) so the next run probes again."""
        gone = [
            k
            for k in self._rows
            if (account is None or k[0] == account) and (service is None or k[1] == service)
        ]
        for key in gone:
            self._rows.pop(key)
            self._dirty.pop(key, None)
        if self.path is not None:
            self._save_file()
        elif gone:
            self._delete_rows(gone)
        return len(gone)

    def flush(self) -> int:
        """Persist buffered updates; returns how many."""
        count = len(self._dirty)
        if not count:
            return 0
        if self.path is not None:
            self._save_file()
        else:
            self._put_rows(list(self._dirty.values()))
        self._dirty.clear()
        return count

    def __enter__(self) -> RegionStatusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    # -- file ----------------------------------------------------------------------------

    def _load_file(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            rows = data["regions"] if data.get("greenfetch") == "region-status" else []
            for raw in rows:
                row = RegionStatus(**raw)
                self._rows[(row.account, row.service, row.region)] = row
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError):
            self._rows.clear()  # a corrupt or foreign file: start over rather than crash

    def _save_file(self) -> None:
        assert self.path is not None
        body = {"greenfetch": "region-status", "version": 1, "regions": [asdict(r) for r in self.all()]}
        atomic_write_text(self.path, json.dumps(body, indent=1, sort_keys=True))

    # -- DynamoDB ------------------------------------------------------------------------

    @property
    def _table_engine(self) -> Engine:
        """The engine that reaches the DynamoDB table (``__init__`` refuses a table without one)."""
        assert self.engine is not None
        return self.engine

    def _ensure(self, account: str, service: str) -> None:
        if self.table is None or (account, service) in self._loaded:
            return
        self._loaded.add((account, service))
        result = self._table_engine.execute(
            Request(
                "dynamodb",
                "Query",
                {
                    "TableName": self.table,
                    "KeyConditionExpression": "#s = :s",
                    "ExpressionAttributeNames": {"#s": "scope"},
                    "ExpressionAttributeValues": {":s": {"S": f"{account}#{service}"}},
                },
                region=self.region,
                paginate=True,
            )
        )
        if not result.ok:
            raise InventoryError(
                f"cannot read region statuses from DynamoDB table {self.table!r}: {result.error}"
            )
        for item in map(from_dynamodb_item, result.result.get("Items", [])):
            count = item.get("count")
            row = RegionStatus(
                account,
                service,
                item["region"],
                item["status"],
                item.get("error_code"),
                int(count) if count is not None else None,
                float(item.get("checked_at", 0)),
            )
            self._rows.setdefault((account, service, row.region), row)

    def _put_rows(self, rows: list[RegionStatus]) -> None:
        sink = DynamoDBSink(self._table_engine, self.table or "", region=self.region)
        report = sink.write_raw([_row_item(r) for r in rows])
        if report.failed:
            raise InventoryError(
                f"{report.failed} region statuses could not be written to {self.table!r}; "
                f"see {report.dead_letter_path}"
            )

    def _delete_rows(self, keys: list[tuple[str, str, str]]) -> None:
        for account, service, region in keys:
            self._table_engine.execute(
                Request(
                    "dynamodb",
                    "DeleteItem",
                    {
                        "TableName": self.table,
                        "Key": {"scope": {"S": f"{account}#{service}"}, "region": {"S": region}},
                    },
                    region=self.region,
                )
            )


def _row_item(row: RegionStatus) -> dict[str, Any]:
    item: dict[str, Any] = {
        "scope": f"{row.account}#{row.service}",
        "region": row.region,
        "status": row.status,
        "checked_at": row.checked_at,
    }
    if row.error_code:
        item["error_code"] = row.error_code
    if row.count is not None:
        item["count"] = row.count
    return to_dynamodb_item(item)
