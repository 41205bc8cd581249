"""Whole S3 objects through the engine, in ranges no larger than the engine's body limit.

The engine holds at most ``Config.body_limit`` bytes of any response body (a larger one is a failed
Result, ``BodyTooLarge``), so one GetObject cannot bring back a shard or a cache entry of any size.
The inventory's own readers need whole objects, so they ask for them as S3 itself recommends for
large objects: byte ranges. The first range also tells the size (``ContentRange``) and the version
(``ETag``); the other ranges are sent with ``IfMatch`` on that ETag, so the bytes joined are one
version of the object, never the head of one and the tail of another. A small object (the common
case) costs one request, as before. No setting was added and no request lifts the limit: every
response, the inventory's own included, stays within the one limit the run chose.
"""

from __future__ import annotations

import re
from typing import Any

from .._engine import Engine
from .._models import Request
from ._types import InventoryError

__all__ = ["read_object"]

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_ATTEMPTS = 3  # whole reads, when the object is replaced between two of its ranges


def read_object(engine: Engine, bucket: str, key: str, *, concurrency: int = 4) -> bytes | None:
    """The object's bytes, or None when there is no such key. Raises InventoryError naming the object
    and S3's error for anything else (a missing bucket, a denied read, a failed range)."""
    for _ in range(_ATTEMPTS):
        try:
            return _read_once(engine, bucket, key, concurrency)
        except _Replaced:
            continue
    raise InventoryError(
        f"s3://{bucket}/{key}: the object was replaced while it was read, {_ATTEMPTS} times; "
        "read it again when its writer has finished"
    )


class _Replaced(Exception):
    """A range's IfMatch failed: the object changed after the first range; read it again."""


def _read_once(engine: Engine, bucket: str, key: str, concurrency: int) -> bytes | None:
    limit = int(engine.config.body_limit)
    first = engine.execute(_get(bucket, key, 0, limit))
    if not first.ok:
        if first.error_code in _MISSING:
            return None
        if first.error_code == "InvalidRange":  # only an empty object has no byte 0
            return b""
        raise InventoryError(f"s3://{bucket}/{key}: GetObject failed: {first.error}")
    head = first.result["Body"]
    total = _total(first.result.get("ContentRange"), len(head))
    if total <= len(head):
        return bytes(head)
    etag = first.result.get("ETag")
    rest = [
        _get(bucket, key, start, min(limit, total - start), etag) for start in range(len(head), total, limit)
    ]
    parts = [head]
    for request, result in zip(rest, engine.batch_requests(rest, concurrency), strict=True):
        if not result.ok:
            if result.error_code == "PreconditionFailed":
                raise _Replaced
            raise InventoryError(
                f"s3://{bucket}/{key}: GetObject of {request.params['Range']} failed: {result.error}"
            )
        parts.append(result.result["Body"])
    data = b"".join(parts)
    if len(data) != total:  # a server that ignored a range: never hand back a body that is not the object
        raise InventoryError(f"s3://{bucket}/{key}: read {len(data):,} bytes of a {total:,}-byte object")
    return data


def _get(bucket: str, key: str, start: int, length: int, etag: str | None = None) -> Request:
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{start + length - 1}"}
    if etag:
        params["IfMatch"] = etag
    return Request("s3", "GetObject", params)


def _total(content_range: Any, got: int) -> int:
    """The object's size from ``bytes 0-N/SIZE``; without one (a server that sent the whole object
    for a range), what came back is the whole object."""
    match = _CONTENT_RANGE.match(content_range or "")
    return int(match[3]) if match else got
