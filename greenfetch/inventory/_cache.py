"""A three-tier cache of fetched pages: memory -> local directory -> S3, each entry with a TTL.

Keys are request signatures (``Request.signature``: service, operation, params, region, identity)
plus the endpoint, so two runs asking the same place the same question share an answer and nothing
secret is in a key. Values are JSON (never pickle: a cache entry must not be able to run code). The
local tier is one SQLite file in the directory (``_pagefile.PageFile``: rows written in short
transactions, mode 0600 in a 0700 directory); an entry that is corrupt, not ours, or stored under a
different key is a miss and is removed, never a crash. Directories written by earlier versions hold a
file per entry (40 hex digits + ``.json``): never read now, removed by ``clear``.

Every entry keeps the time its page was fetched (``stored_at``), and ``lookup`` returns it with the
value, so whoever serves a page from here can say how old it is. Reading and writing are separate: a
TTL of 0 never reads (every page is fetched afresh) but still writes, so the next run that does read
finds the newest pages, never ones older than a run it did not see. ``not_before`` refuses entries
stored at or before that instant (to the millisecond): a run into a database never serves a page
older than the newest one the database already holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetools import TTLCache

from .._engine import Engine
from .._jsonable import compact_of_marked, json_string, jsonable, marked_json, marked_json_of, plain_json
from .._models import Request
from .._storage_errors import storage_error
from ._fileio import sweep_stale
from ._pagefile import PageFile
from ._s3_read import read_object
from ._types import InventoryError

__all__ = ["InventoryCache", "parse_s3_uri"]

_log = logging.getLogger("greenfetch.inventory")

_MARK = "greenfetch-cache"
_VERSION = 1
_NAME = re.compile(r"^[0-9a-f]{40}\.json$")  # an entry's file, as versions before the SQLite file named them


def _name(key: str) -> str:
    """The S3 object an entry is kept in, and an earlier version's file (no secret: a hash of the key)."""
    return f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


_HEAD = plain_json({_MARK: _VERSION}, compact=True)[:-1]  # '{"greenfetch-cache":1'


def _envelope(key: str, stored_at: Any, ttl: Any, value_text: str, plain_key: bool = False) -> str:
    """``plain_json({_MARK: _VERSION, "key": key, "stored_at": stored_at, "ttl": ttl, "value": value},
    compact=True)`` with the value's text given: written field by field when both times are finite
    floats (``plain_json`` writes those as ``repr`` does: the fetch time through ``_float_text``, the
    TTL through ``_ttl_text``; their calls cost more than the fields), else the envelope's own text with
    the value's spliced in (its last key: the text ends in ``null}``). ``plain_key``: the caller knows
    the key holds nothing JSON escapes (no ``"``, ``\\`` or control character), so its text is the key
    itself between the template's quotes (the escape's pass over a ~90-character key is ~2k
    instructions); else the escape's text inside its quotes."""
    kept = _last_ttl
    ttl_text = kept[1] if ttl is kept[0] else _ttl_text(ttl)  # the call only for a TTL not seen last
    # ``_float_text`` tells a non-finite time (None): no ``math.isfinite`` call a page
    time_text = _float_text(stored_at) if ttl_text is not None and type(stored_at) is float else None
    if time_text is not None:
        key_text = key if plain_key else json_string(key)[1:-1]
        return f'{_HEAD},"key":"{key_text}","stored_at":{time_text},"ttl":{ttl_text},"value":{value_text}}}'
    head = {_MARK: _VERSION, "key": key, "stored_at": stored_at, "ttl": ttl, "value": None}
    return plain_json(head, compact=True)[:-5] + value_text + "}"


# the TTL _ttl_text last wrote (the object itself) and its text: every page of a cache passes its own
_last_ttl: tuple[object, str] = (None, "")


def _ttl_text(ttl: Any) -> str | None:
    """``repr(ttl)`` of a finite float (~2k instructions even for ``0.0``), None for anything else. A
    cache hands every page the same float object (``self.ttl``): the same object is the same value, so
    its text is kept by identity (which the zeros, equal but two doubles, need)."""
    global _last_ttl
    if type(ttl) is not float or not math.isfinite(ttl):
        return None
    text = repr(ttl)
    _last_ttl = (ttl, text)
    return text


# the last fetch time _float_text wrote, and its text: a run's pages share their milliseconds
_last: tuple[float, str] = (0.0, "0.0")
# the whole second of the last time _float_text wrote from its milliseconds, as a float, and its text: a
# run's pages share their second far more often. Each pair a tuple, read once and replaced whole: the
# threads engine may store pages from two threads, and a pair must never mix two times
_second: tuple[float, str] = (0.0, "0")


def _float_text(value: float) -> str | None:
    """``repr(value)`` of a finite float (None for a NaN or an infinity), the last one kept: a fetch
    time is whole milliseconds (``round(time.time(), 3)``) and the pages of a burst of answers share
    it, so those pages skip ``repr``'s shortest-digits search (``_Py_dg_dtoa``, ~6k instructions). Two
    positive floats that compare equal are the same double (only the zeros are two doubles that
    compare equal).

    A new time of whole milliseconds (the double nearest ``ms / 1000``, from 1 s to 1e12 s) is
    written from its second's text and its milliseconds instead: such a number has at most 15
    significant digits, and every decimal of at most 15 digits comes back from its nearest double
    (``DBL_DIG``), so no shorter decimal gives the same double and ``repr``'s shortest text is the
    milliseconds' decimal without its trailing zeros (``.0`` for whole seconds), in positional notation
    below 1e16. In floats, with no integer division: the second ``s`` (kept with its text while the
    times stay in it) is exact, so is ``value - s`` (the two are within a factor of two), its
    milliseconds ``k`` are that times 1000 rounded, and ``(s * 1000 + k) / 1000`` is the division of two
    doubles that hold their integers exactly (below 2**53), rounded as ``ms / 1000`` is: the value is
    whole milliseconds when it equals that. Any other float: ``repr``."""
    global _last, _second
    last = _last
    if value == last[0] and value > 0.0:
        return last[1]
    text = None
    if 1.0 <= value < 1e12:
        second = _second
        fraction = value - second[0]
        if not 0.0 <= fraction < 1.0:  # another second than the last: its text made once
            whole = _floor(value)
            second = _second = (whole + 0.0, str(whole))
            fraction = value - second[0]
        millis = _floor(fraction * 1000.0 + 0.5)  # 0-1000 (1000 only for a time that is not whole)
        if (second[0] * 1000.0 + millis) / 1000.0 == value:  # whole milliseconds, as ``_now`` makes them
            text = second[1] + _MILLIS[millis]
    if text is None:
        if not math.isfinite(value):
            return None
        text = repr(value)
    _last = (value, text)
    return text


# the text after a whole-millisecond time's seconds, by its milliseconds: ".0", ".001", ..., ".01", ".999"
_MILLIS = tuple(f".{n:03d}".rstrip("0") if n else ".0" for n in range(1000))
_floor = math.floor  # a module global: no attribute read a page


def _warn_once(directory: str) -> Callable[[BaseException], None]:
    """What the local tier calls when it cannot write: a cache that cannot write is a slower run, not a
    failed one, said once."""
    said: list[bool] = []

    def refused(exc: BaseException) -> None:
        if not said:
            said.append(True)
            _log.warning(
                "%s",
                storage_error(
                    exc,
                    f"cache directory {directory!r} cannot be written",
                    "the run goes on without caching what it fetches (GREENFETCH_CACHE_DIR)",
                ),
            )

    return refused


def _ours(name: str) -> bool:
    return bool(_NAME.match(name))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) from ``s3://bucket/prefix``; InventoryError for anything else."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise InventoryError(f"{uri!r} is not an S3 URI; use s3://BUCKET or s3://BUCKET/PREFIX")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


class InventoryCache:
    """``get(key)`` / ``set(key, value)`` over the tiers; a hit in a lower tier is promoted upward."""

    def __init__(
        self,
        ttl: float,
        directory: str | os.PathLike[str] | None = None,
        *,
        s3_uri: str | None = None,
        engine: Engine | None = None,
        memory_size: int = 4096,
        clock: Callable[[], float] = time.time,
        not_before: float | None = None,
    ):
        self.ttl, self.clock, self.not_before = float(ttl), clock, not_before
        self.directory = Path(directory) if directory is not None else None
        self._dir = str(self.directory) if self.directory is not None else ""
        self.s3 = parse_s3_uri(s3_uri) if s3_uri else None
        if self.s3 and engine is None:
            raise InventoryError("an S3 cache tier needs an engine to reach S3")
        self.engine = engine
        # (value, stored_at): the entry's own age decides, not how long it has been in memory
        self._memory: TTLCache[str, tuple[Any, float]] = TTLCache(
            maxsize=memory_size, ttl=max(self.ttl, 1e-9), timer=clock
        )
        self.hits = {"memory": 0, "disk": 0, "s3": 0}
        self.misses = 0
        # the disk tier holds no reference back to this cache: when the cache goes, so does it (closed)
        self._disk = PageFile(self._dir, _warn_once(self._dir)) if self.directory is not None else None
        if self._disk is not None:  # what waits for its transaction is written when the cache goes
            weakref.finalize(self, self._disk.close)
        if self.directory is not None and self.directory.is_dir():
            sweep_stale(self.directory, owns=_ours)  # an earlier version's half-written entry files

    def flush(self) -> None:
        """Write the entries that wait for their transaction (``close`` does, and a run does at its end)."""
        if self._disk is not None:
            self._disk.flush()

    def close(self) -> None:
        """Flush and let go of the local file (a later call opens it again)."""
        if self._disk is not None:
            self._disk.close()

    def __enter__(self) -> InventoryCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def enabled(self) -> bool:
        """Whether ``get``/``lookup`` read at all (a TTL above 0); ``set`` writes either way."""
        return self.ttl > 0

    def get(self, key: str) -> Any:
        """The value of a usable entry, or None (see ``lookup``)."""
        entry = self.lookup(key)
        return entry[0] if entry is not None else None

    def lookup(self, key: str) -> tuple[Any, float] | None:
        """``(value, stored_at)`` of an entry younger than the TTL and stored after ``not_before``, from
        the first tier that has one; None otherwise, and always with a TTL of 0."""
        if not self.enabled:
            return None
        entry = self._memory.get(key)
        if entry is not None and self._usable(entry[1]):
            self.hits["memory"] += 1
            return entry
        for tier, read in (("disk", self._read_file), ("s3", self._read_s3)):
            envelope = read(key)
            if envelope is not None and self._usable(envelope["stored_at"]):
                self.hits[tier] += 1
                self._promote(key, envelope, tier)
                return envelope["value"], envelope["stored_at"]
        self.misses += 1
        return None

    def set(self, key: str, value: Any, *, stored_at: float | None = None) -> None:
        """Store ``value`` as fetched at ``stored_at`` (default: now) in every tier; with a TTL of 0 too
        (not in memory, which only this cache's own reads could use). ``store`` is the same, and hands
        back the value's JSON text (the inventory's file sink writes it too, rather than make it again)."""
        self.store(key, value, stored_at=stored_at)

    def store(
        self,
        key: str,
        value: Any,
        stored_at: float | None = None,
        str_keys: bool = False,
        plain_key: bool = False,
    ) -> tuple[Any, str]:
        """``set``, returning ``(plain, marked_json(jsonable(value)))``: the value's JSON text made once,
        from which the file's envelope takes its compact form and the file sink its own. ``plain`` is
        ``jsonable(value)`` when it was made (the memory tier keeps it: a TTL above 0), else None: with
        a TTL of 0 the text comes from one pass of the encoder (``marked_json_of``), no walk.
        ``str_keys``: the caller knows every key in ``value`` is a str (a botocore answer's items):
        ``marked_json_of``'s key check is not made. ``plain_key``: the caller knows ``key`` holds no
        character JSON escapes (the inventory's plan, from the parts of its keys: ``Plan.plain_keys``).
        Positional or keyword: the fetch passes them by position (a keyword is matched by name at every
        call, ~0.1k instructions a page each)."""
        stored_at = self.clock() if stored_at is None else stored_at
        if self.ttl > 0:  # ``enabled``, without the property's call
            plain = jsonable(value)
            self._memory[key] = (plain, stored_at)
            marked = marked_json(plain)
        else:
            marked, plain = marked_json_of(value, str_keys)  # by position: no keyword matched a page
        text = _envelope(key, stored_at, self.ttl, compact_of_marked(marked), plain_key)
        if self._disk is not None:  # the local tier (``_write_file``, without its call)
            self._disk.put(key, text)  # no fsync: an entry lost or torn by a power cut is a miss
        if self.s3 is not None:
            self._write_s3(key, text)
        return plain, marked

    def _usable(self, stored_at: float) -> bool:
        """Young enough for this cache's TTL, and newer than ``not_before`` (compared in whole
        milliseconds, the precision a database stores a fetch time with)."""
        if self.clock() - stored_at >= self.ttl:
            return False
        return self.not_before is None or round(stored_at * 1000) > round(self.not_before * 1000)

    # -- the local file ----------------------------------------------------------------------

    def _read_file(self, key: str) -> dict[str, Any] | None:
        if self._disk is None:
            return None
        text = self._disk.get(key)
        if text is None:
            return None
        try:
            envelope = self._valid(key, json.loads(text))
        except ValueError:
            envelope = None
        if envelope is None:
            self._disk.delete(key)
        return envelope

    def _write_file(self, key: str, text: str) -> None:
        assert self._disk is not None
        self._disk.put(key, text)  # no fsync: an entry lost or torn by a power cut is a miss

    def _valid(self, key: str, envelope: Any) -> dict[str, Any] | None:
        """The envelope when it is ours, for this key, and fresh; None otherwise."""
        if not isinstance(envelope, dict) or envelope.get(_MARK) != _VERSION or envelope.get("key") != key:
            return None
        stored = envelope.get("stored_at")
        if (
            not isinstance(stored, (int, float))
            or self.clock() - stored >= self.ttl
            or "value" not in envelope
        ):
            return None
        return envelope

    def _promote(self, key: str, envelope: dict[str, Any], tier: str) -> None:
        self._memory[key] = (envelope["value"], envelope["stored_at"])
        if tier == "s3" and self.directory is not None:
            self._write_file(key, json.dumps(envelope, ensure_ascii=False, separators=(",", ":")))

    # -- S3 --------------------------------------------------------------------------------

    @property
    def _s3_engine(self) -> Engine:
        """The engine that reaches S3 (``__init__`` refuses an S3 tier without one)."""
        assert self.engine is not None
        return self.engine

    def _s3_key(self, key: str) -> str:
        assert self.s3 is not None
        name = _name(key)
        return f"{self.s3[1]}/cache/{name}" if self.s3[1] else f"cache/{name}"

    def _read_s3(self, key: str) -> dict[str, Any] | None:
        if self.s3 is None:
            return None
        try:  # whole, in ranges: one GetObject brings back at most the engine's body limit
            body = read_object(self._s3_engine, self.s3[0], self._s3_key(key))
            return self._valid(key, json.loads(body)) if body is not None else None
        except (InventoryError, ValueError, KeyError, TypeError):
            return None

    def _write_s3(self, key: str, text: str) -> None:
        assert self.s3 is not None
        self._s3_engine.execute(
            Request(
                "s3",
                "PutObject",
                {
                    "Bucket": self.s3[0],
                    "Key": self._s3_key(key),
                    "Body": text.encode(),
                    "ContentType": "application/json",
                },
            )
        )

    # -- housekeeping ------------------------------------------------------------------------

    def _legacy_files(self) -> list[Path]:
        """Entry files an earlier version wrote (40 hex digits + .json); any other file is someone else's."""
        if not self.directory or not self.directory.is_dir():
            return []
        return [p for p in self.directory.glob("*.json") if _ours(p.name)]

    def info(self) -> dict[str, Any]:
        """Where the local tier is and what it holds: entries, the fresh ones (for this cache's TTL),
        bytes on disk; and the memory tier, the S3 tier, this cache's hits and misses."""
        entries, fresh = self._disk.tally(self._fresh) if self._disk is not None else (0, 0)
        return {
            "directory": str(self.directory) if self.directory else None,
            "file": self._disk.path if self._disk is not None else None,
            "ttl_seconds": self.ttl,
            "entries": entries,
            "fresh_entries": fresh,
            "bytes": self._disk.size() if self._disk is not None else 0,
            "earlier_version_files": len(self._legacy_files()),
            "memory_entries": len(self._memory),
            "s3": f"s3://{self.s3[0]}/{self.s3[1]}" if self.s3 else None,
            "hits": dict(self.hits),
            "misses": self.misses,
        }

    def _fresh(self, key: str, text: str) -> bool:
        try:
            return self._valid(key, json.loads(text)) is not None
        except ValueError:
            return False

    def clear(self) -> int:
        """Forget memory and the local file's entries, and remove the entry files an earlier version
        wrote (their name pattern and the marker inside) with its temporary files orphaned by a killed
        run; returns entries and files removed. Anything else in the directory stays."""
        self._memory.clear()
        removed = self._disk.clear() if self._disk is not None else 0
        for path in self._legacy_files():
            try:
                envelope = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # not readable as our envelope: not provably ours
            if not isinstance(envelope, dict) or _MARK not in envelope:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        if self.directory is not None and self.directory.is_dir():
            removed += sweep_stale(self.directory, owns=_ours)
        return removed
