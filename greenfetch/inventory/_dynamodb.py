"""DynamoDB sink: BatchWriteItem in batches of 25, unprocessed items retried, nothing lost silently.

It streams: ``add(item)`` as records arrive, ``close()`` at the end (``write(items)`` does both).
Items wait in memory only until ``window`` (25 x concurrency) of them are there, then that window is
written, so memory stays bounded at a million resources and a crash loses at most one window.

Each round sends every pending batch through the engine at once; whatever comes back in
``UnprocessedItems`` (or with a retryable error) is re-batched and sent again after an exponential
backoff with full jitter. Items still failing after ``max_attempts`` rounds, or failing for a reason
retrying cannot fix, go to a dead-letter JSON Lines file (one DynamoDB-typed item per line) and are
counted in ``WriteReport.failed``.

Inventory records become items with this key schema (``record_items``): partition key ``pk`` (S) =
``"<account>#<region>#<resource_type>"``, sort key ``sk`` (S) = the resource id; attributes
``resource_type``, ``account``, ``region``, ``id`` and ``data`` (the resource as a JSON string, so
floats, nested lists and reserved words need no translation).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .._engine import Engine
from .._jsonable import jsonable, to_json
from .._models import Request
from ._types import InventoryError, Record

__all__ = ["BATCH_SIZE", "DynamoDBSink", "WriteReport", "record_items"]

BATCH_SIZE = 25  # BatchWriteItem's limit


@dataclass(frozen=True)
class WriteReport:
    written: int
    failed: int
    dead_letter_path: str | None
    rounds: int = 0


class DynamoDBSink:
    """Writes items to one table; see the module docstring for the retry and dead-letter rules."""

    def __init__(
        self,
        engine: Engine,
        table: str,
        *,
        region: str | None = None,
        dead_letter_path: str | Path | None = None,
        max_attempts: int = 6,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
        concurrency: int = 8,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] = random.random,
    ):
        self.engine, self.table, self.region = engine, table, region
        self.dead_letter_path = (
            Path(dead_letter_path) if dead_letter_path else Path(f"dead-letter-{table}.jsonl")
        )
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.concurrency = concurrency
        self.sleep = sleep or engine.backend.sleep
        self.rng = rng
        self._pending: list[dict[str, Any]] = []
        self._written = self._failed = self._rounds = 0

    def check(self) -> dict[str, Any]:
        """The table's description; InventoryError when it does not exist or cannot be read."""
        result = self.engine.execute(
            Request("dynamodb", "DescribeTable", {"TableName": self.table}, region=self.region)
        )
        if not result.ok:
            raise InventoryError(
                f"DynamoDB table {self.table!r} cannot be used: {result.error}"
                + (
                    " (create it first; see docs/inventory.md for the key schema)"
                    if result.error_code == "ResourceNotFoundException"
                    else ""
                )
            )
        return dict(result.result["Table"])

    # -- streaming: add() as records come, close() at the end ------------------------------------

    @property
    def window(self) -> int:
        """Items held before a flush: one batch per concurrent call. Memory is bounded by this, and a
        crash loses at most these (plus the flush in flight)."""
        return BATCH_SIZE * self.concurrency

    def add(self, item: Mapping[str, Any]) -> None:
        """One plain item; written (with its window) once ``window`` items are waiting."""
        self.add_raw(to_dynamodb_item(item))

    def add_raw(self, item: dict[str, Any]) -> None:
        """One item in DynamoDB's typed form (``{"S": ...}``)."""
        self._pending.append(item)
        if len(self._pending) >= self.window:
            self._flush()

    def close(self) -> WriteReport:
        """Write what is waiting; the totals of every flush since the last close."""
        self._flush()
        report = WriteReport(
            self._written, self._failed, str(self.dead_letter_path) if self._failed else None, self._rounds
        )
        self._written = self._failed = self._rounds = 0
        return report

    def write(self, items: Iterable[Mapping[str, Any]]) -> WriteReport:
        """Plain Python items (str/int/float/bool/None/list/dict) written; floats become numbers."""
        for item in items:
            self.add(item)
        return self.close()

    def write_raw(self, items: Iterable[dict[str, Any]]) -> WriteReport:
        """Items already in DynamoDB's typed form (``{"S": ...}``)."""
        for item in items:
            self.add_raw(item)
        return self.close()

    def _flush(self) -> None:
        """The waiting items in rounds: each round sends every batch at once, then re-batches what
        came back unprocessed (or failed retryably) after a backoff. Dead letters are appended now,
        not at the end, so nothing waits in memory for the run to finish."""
        pending, self._pending = self._pending, []
        written, dead, rounds = 0, [], 0
        while pending and rounds < self.max_attempts:
            if rounds:
                self.sleep(self._backoff(rounds))
            rounds += 1
            batches = [pending[i : i + BATCH_SIZE] for i in range(0, len(pending), BATCH_SIZE)]
            pending = []
            requests = (
                Request(
                    "dynamodb",
                    "BatchWriteItem",
                    {"RequestItems": {self.table: [{"PutRequest": {"Item": i}} for i in batch]}},
                    region=self.region,
                    id=n,
                )
                for n, batch in enumerate(batches)
            )
            for result in self.engine.iter_results(requests, self.concurrency):
                batch = batches[result.index]
                if result.ok:
                    left = [
                        w["PutRequest"]["Item"]
                        for w in (result.result.get("UnprocessedItems") or {}).get(self.table, [])
                    ]
                    written += len(batch) - len(left)
                    pending += left
                elif result.retryable:
                    pending += batch
                else:
                    dead += [(item, result.error) for item in batch]
        dead += [(item, f"still unprocessed after {rounds} attempts") for item in pending]
        if dead:
            self._dead_letter(dead)
        self._written += written
        self._failed += len(dead)
        self._rounds = max(self._rounds, rounds)

    def _backoff(self, attempt: int) -> float:
        doubling: int = 2**attempt  # int ** int is Any to mypy (a negative exponent makes a float)
        return self.rng() * min(self.max_delay, self.base_delay * doubling)

    def _dead_letter(self, dead: list[tuple[dict[str, Any], str | None]]) -> None:
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dead_letter_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as handle:
            for item, error in dead:
                handle.write(
                    json.dumps(
                        {"table": self.table, "item": item, "error": error, "at": time.time()},
                        ensure_ascii=False,
                        default=str,
                    )
                    + "\n"
                )


def to_dynamodb_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain record in DynamoDB attribute-value form (numbers as Decimal, as DynamoDB needs), by
    boto3's own TypeSerializer: the one way greenfetch writes typed items."""
    from boto3.dynamodb.types import TypeSerializer  # boto3 costs start-up time: loaded when used

    plain = json.loads(json.dumps(jsonable(dict(item))), parse_float=Decimal)
    serializer = TypeSerializer()
    return {key: serializer.serialize(value) for key, value in plain.items()}


def from_dynamodb_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (``{"S": ...}`` values) as plain values, by boto3's TypeDeserializer."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def record_items(records: Iterable[Record], id_of: Callable[[str, Any], str]) -> Iterator[dict[str, Any]]:
    """Plain items, one per resource, keyed as the module docstring says."""
    for rec in records:
        for resource in rec["items"]:
            rid = id_of(rec["resource_type"], resource)
            yield {
                "pk": f"{rec['account']}#{rec['region']}#{rec['resource_type']}",
                "sk": rid,
                "resource_type": rec["resource_type"],
                "account": rec["account"],
                "region": rec["region"],
                "id": rid,
                "data": to_json(resource, sort_keys=True),
            }
