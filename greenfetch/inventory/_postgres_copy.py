"""Rows to binary COPY bytes: what ``PostgresSink`` and ``PostgresShardSink`` send for a record.

``_encode`` turns one record into its scope, its resource rows as one string of binary COPY rows (the
bytes a batch keeps until it commits, to send again after a lost connection), its ``fetches`` row and
its number of resources; a COPY stream is ``_SIGNATURE``, those rows, ``_TRAILER``. Binary, not text:
no escaping here, no parsing of lines and fields in the server. PostgreSQL's text and JSONB hold
neither NUL nor a lone surrogate: U+FFFD takes their place (``_key`` for the key columns, ``_json``
for ``data``), as near as PostgreSQL allows to what the SQLite sink keeps.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from typing import Any

from .._jsonable import _valid_text, encode_once, jsonable
from ._postgres import _ts
from ._resource_type import ResourceType
from ._rows import _resource_id, dumps_strict
from ._types import Record

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # binary COPY's header: signature, no flags, no extension
_TRAILER = b"\xff\xff"  # and its end


Scope = tuple[str, str, str]


# JSON text for a JSONB column: the values ``dumps_strict`` gives, without its sorting walk (JSONB orders
# keys itself) and without spaces (JSONB keeps none): about half the cost
# (no check for circular references: an API's answer has none; were there one, RecursionError, and
# ``_json`` goes the strict way, which says so)
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, default=jsonable, separators=(",", ":"), check_circular=False
)


_encode_json = encode_once(_ENCODER)  # its C encoder made once: a fifth of a 1 KB item's cost
_NO_ID = _resource_id(None, {}, "")
_NUL = re.compile(
    rb"(?<!\\)((?:\\\\)*)\\u0000"
)  # an escaped NUL, not the text "\u0000" after an escaped backslash
_INT = struct.Struct("!i").pack
_JSONB = struct.Struct("!iB").pack  # a jsonb field: its length, then jsonb's format 1 (JSON text follows)
_ROW = struct.Struct("!hiq").pack  # a row: 6 fields, the first (run_id) 8 bytes long


def _json(item: Any) -> bytes:
    """``item`` as UTF-8 JSON for JSONB; an item the fast way cannot write (NaN, a lone surrogate, a key
    JSON has no form for) goes the strict way; an escaped NUL (JSONB cannot hold one) becomes U+FFFD."""
    try:
        data = _encode_json(item).encode()
    except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
        data = dumps_strict(item).encode()
    if b"\\u0000" in data:
        data = _NUL.sub(rb"\1\\ufffd", data)
    return data


def _key(value: Any) -> str:
    """Text for a key column (type, account, region, resource id) or an error: PostgreSQL's text holds
    neither NUL nor a lone surrogate, U+FFFD in their place (as in ``data``)."""
    text = str(value)
    if not text.isascii():
        text = _valid_text(text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _scope(rec: Record) -> Scope:
    return _key(rec["resource_type"]), _key(rec["account"]), _key(rec["region"])


def _text(value: str) -> bytes:
    """A text field of a binary COPY row: its length, then UTF-8."""
    data = value.encode()
    return _INT(len(data)) + data


def _encode(
    rec: Record, run_id: int, catalog: Mapping[str, ResourceType], fetched_at: float | None
) -> tuple[Scope, bytes, tuple[Any, ...], int]:
    """The record's scope, its resource rows as binary COPY bytes (one string, encoded once: what the
    COPY sends and what a batch keeps to send again), its fetch row and its number of resources.
    Binary, not text: no escaping here, no parsing of lines and fields in the server."""
    rtype, account, region = scope = _scope(rec)
    kind = catalog.get(rtype)
    items = rec.get("items") or []
    start = _ROW(6, 8, run_id) + _text(rtype) + _text(account) + _text(region)  # the same for every row
    parts: list[bytes] = []
    for item in items:
        data = _json(item)
        rid = _resource_id(kind, item, "")
        if rid == _NO_ID:  # no id field: the SQLite sink's hash of the item's sorted JSON, the same id
            rid = _resource_id(kind, item, dumps_strict(item))
        parts += (start, _text(_key(rid)), _JSONB(len(data) + 1, 1), data)
    fetch = (
        run_id,
        rtype,
        account,
        region,
        _key(rec.get("status") or "ok"),
        None if rec.get("error") is None else _key(rec["error"]),
        len(items),
        _ts(fetched_at),
    )
    return scope, b"".join(parts), fetch, len(items)
