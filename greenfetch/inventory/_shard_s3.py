"""Shards on S3, for ``--broker`` runs whose workers share no directory with the coordinator.

``S3ShardSink`` keeps the ``ShardSink`` contract of ``DirectoryShardSink``: one JSON document per
shard, as one object ``s3://BUCKET/PREFIX/RUN_ID/KEY.json``. A PutObject is atomic (a reader sees
the whole object or none) and a second put of the same key replaces it, so a shard that runs twice
still yields its records once. Every call goes through the engine, so retries, throttling and the
endpoint (a test's moto) are the engine's; the worker and the coordinator each use their own AWS
credentials, and a broker message names only the location (``sink_spec``), never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._engine import Engine
from .._jsonable import jsonable
from .._models import Request
from ._cache import parse_s3_uri
from ._postgres_shard import PostgresShardSink
from ._s3_read import read_object
from ._shard import DirectoryShardSink, ShardSink
from ._types import InventoryError, Record

__all__ = ["S3ShardSink", "open_shard_sink", "sink_spec"]


class S3ShardSink:
    """``put``/``get``/``keys``/``discard`` of shard documents under ``s3://BUCKET/PREFIX/RUN_ID/``.

    A failed put, list or read (other than a missing key) raises InventoryError naming the object
    and S3's error: a worker's shard then fails and is sent again, never written half."""

    def __init__(self, engine: Engine, uri: str):
        self.engine = engine
        self.uri = uri
        self.bucket, self.prefix = parse_s3_uri(uri)

    def _folder(self, run_id: str) -> str:
        return f"{self.prefix}/{run_id}/" if self.prefix else f"{run_id}/"

    def _call(self, operation: str, params: dict[str, Any], what: str, *, paginate: bool = False) -> Any:
        result = self.engine.execute(
            Request("s3", operation, {"Bucket": self.bucket, **params}, paginate=paginate)
        )
        if not result.ok:
            raise InventoryError(f"shard store s3://{self.bucket}/{what}: {operation} failed: {result.error}")
        return result.result

    def check(self) -> None:
        """One ListObjectsV2 on the prefix: a missing bucket or a denied list fails before any shard is
        sent (InventoryError naming the bucket), not after the workers did the work."""
        folder = f"{self.prefix}/" if self.prefix else ""
        self._call("ListObjectsV2", {"Prefix": folder, "MaxKeys": 1}, folder)

    def put(self, run_id: str, key: str, records: list[Record], summary: dict[str, Any]) -> None:
        text = json.dumps(
            jsonable({"shard": key, "summary": summary, "records": records}), ensure_ascii=False
        )
        name = f"{self._folder(run_id)}{key}.json"
        self._call(
            "PutObject", {"Key": name, "Body": text.encode("utf-8"), "ContentType": "application/json"}, name
        )

    def get(self, run_id: str, key: str) -> tuple[list[Record], dict[str, Any]] | None:
        name = f"{self._folder(run_id)}{key}.json"
        try:
            body = read_object(self.engine, self.bucket, name)  # whole, whatever the engine's body limit
        except InventoryError as exc:
            raise InventoryError(f"shard store {exc}") from None
        if body is None:
            return None
        data = json.loads(body.decode("utf-8"))
        return data["records"], data["summary"]

    def _names(self, run_id: str) -> list[str]:
        folder = self._folder(run_id)
        listed = self._call("ListObjectsV2", {"Prefix": folder}, folder, paginate=True)  # every page
        return [item["Key"] for item in listed.get("Contents") or ()]

    def keys(self, run_id: str) -> set[str]:
        folder = self._folder(run_id)
        return {
            n[len(folder) : -5]
            for n in self._names(run_id)
            if n.endswith(".json") and "/" not in n[len(folder) :]
        }

    def discard(self, run_id: str) -> None:
        """Delete the run's objects; best effort (a leftover is a few JSON objects, not wrong output)."""
        try:
            names = self._names(run_id)
        except InventoryError:
            return  # never hide the error that ended the run
        requests = [Request("s3", "DeleteObject", {"Bucket": self.bucket, "Key": n}) for n in names]
        if requests:
            list(self.engine.batch_requests(requests, 8))


def sink_spec(sink: ShardSink) -> dict[str, str]:
    """What a broker message says about the sink: its kind and location, nothing else."""
    if isinstance(sink, S3ShardSink):
        return {"kind": "s3", "uri": sink.uri}
    if isinstance(sink, PostgresShardSink):
        return sink.spec()  # the database without its password, and the run
    if isinstance(sink, DirectoryShardSink):
        return {"kind": "directory", "root": str(sink.root)}
    raise InventoryError(f"a shard sink of type {type(sink).__name__} cannot be named in a broker message")


def open_shard_sink(spec: Mapping[str, Any], engine: Engine) -> ShardSink:
    """The sink a broker message names (``sink_spec``); the worker's own engine reaches S3."""
    kind = spec.get("kind", "directory")
    if kind == "s3":
        return S3ShardSink(engine, str(spec["uri"]))
    if kind == "directory":
        return DirectoryShardSink(Path(spec["root"]))
    if kind == "postgres":  # the worker's own password: PGPASSWORD, ~/.pgpass or GREENFETCH_DATABASE_URL
        return PostgresShardSink.from_spec(spec)
    raise InventoryError(
        f"shard sink kind {kind!r} is not known; this worker knows directory, s3 and postgres"
    )
