"""A three-tier cache of fetched pages: memory -> local directory -> S3, each entry with a TTL.

Keys are request signatures (``Request.signature``: service, operation, params, region, identity),
so two runs asking the same question share an answer and nothing secret is in a key. Values are
JSON (never pickle: a cache file must not be able to run code). Files are written atomically with
mode 0600 in a 0700 directory; a file that is corrupt, from another program, or stored under a
different key is a miss and is removed, never a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetools import TTLCache

from .._jsonable import jsonable
from .._models import Request
from ._fileio import atomic_write_text, sweep_stale
from ._s3_read import read_object
from ._types import InventoryError

__all__ = ["InventoryCache", "parse_s3_uri"]

_MARK = "greenfetch-cache"
_VERSION = 1
_NAME = re.compile(r"^[0-9a-f]{40}\.json$")  # what _path() names; nothing else in the directory is ours


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

    def __init__(self, ttl: float, directory: str | os.PathLike[str] | None = None, *, s3_uri: str | None = None,
                 engine: Any = None, memory_size: int = 4096, clock: Callable[[], float] = time.time):
        self.ttl, self.clock = float(ttl), clock
        self.directory = Path(directory) if directory is not None else None
        self.s3 = parse_s3_uri(s3_uri) if s3_uri else None
        if self.s3 and engine is None:
            raise InventoryError("an S3 cache tier needs an engine to reach S3")
        self.engine = engine
        self._memory: TTLCache[str, Any] = TTLCache(maxsize=memory_size, ttl=max(self.ttl, 1e-9), timer=clock)
        self.hits = {"memory": 0, "disk": 0, "s3": 0}
        self.misses = 0
        if self.directory is not None and self.directory.is_dir():
            sweep_stale(self.directory, owns=_ours)  # what a killed run left half-written

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, key: str) -> Any:
        if not self.enabled:
            return None
        if key in self._memory:
            self.hits["memory"] += 1
            return self._memory[key]
        for tier, read in (("disk", self._read_file), ("s3", self._read_s3)):
            envelope = read(key)
            if envelope is not None:
                self.hits[tier] += 1
                self._promote(key, envelope, tier)
                return envelope["value"]
        self.misses += 1
        return None

    def set(self, key: str, value: Any) -> None:
        if not self.enabled:
            return
        value = jsonable(value)
        self._memory[key] = value
        envelope = {_MARK: _VERSION, "key": key, "stored_at": self.clock(), "ttl": self.ttl, "value": value}
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        if self.directory is not None:
            self._write_file(key, text)
        if self.s3 is not None:
            self._write_s3(key, text)

    # -- files -----------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"

    def _read_file(self, key: str) -> dict[str, Any] | None:
        if self.directory is None:
            return None
        path = self._path(key)
        try:
            envelope = self._valid(key, json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            envelope = None
        if envelope is None:
            with contextlib.suppress(OSError):
                path.unlink()
        return envelope

    def _write_file(self, key: str, text: str) -> None:
        assert self.directory is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_text(self._path(key), text, sweep=False)  # swept once, in __init__
        except OSError:
            pass  # a cache that cannot write is a slower run, not a failed one

    def _valid(self, key: str, envelope: Any) -> dict[str, Any] | None:
        """The envelope when it is ours, for this key, and fresh; None otherwise."""
        if not isinstance(envelope, dict) or envelope.get(_MARK) != _VERSION or envelope.get("key") != key:
            return None
        stored = envelope.get("stored_at")
        if not isinstance(stored, (int, float)) or self.clock() - stored >= self.ttl or "value" not in envelope:
            return None
        return envelope

    def _promote(self, key: str, envelope: dict[str, Any], tier: str) -> None:
        self._memory[key] = envelope["value"]
        if tier == "s3" and self.directory is not None:
            self._write_file(key, json.dumps(envelope, ensure_ascii=False, separators=(",", ":")))

    # -- S3 --------------------------------------------------------------------------------

    def _s3_key(self, key: str) -> str:
        assert self.s3 is not None
        name = f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"
        return f"{self.s3[1]}/cache/{name}" if self.s3[1] else f"cache/{name}"

    def _read_s3(self, key: str) -> dict[str, Any] | None:
        if self.s3 is None:
            return None
        try:  # whole, in ranges: one GetObject brings back at most the engine's body limit
            body = read_object(self.engine, self.s3[0], self._s3_key(key))
            return self._valid(key, json.loads(body)) if body is not None else None
        except (InventoryError, ValueError, KeyError, TypeError):
            return None

    def _write_s3(self, key: str, text: str) -> None:
        assert self.s3 is not None
        self.engine.execute(Request("s3", "PutObject", {"Bucket": self.s3[0], "Key": self._s3_key(key),
                                                         "Body": text.encode(), "ContentType": "application/json"}))

    # -- housekeeping ------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        """The entries this cache names (40 hex digits + .json); any other file is someone else's."""
        if not self.directory or not self.directory.is_dir():
            return []
        return [p for p in self.directory.glob("*.json") if _ours(p.name)]

    def info(self) -> dict[str, Any]:
        files = self._files()
        fresh = sum(1 for f in files if self._fresh_file(f))
        return {"directory": str(self.directory) if self.directory else None, "ttl_seconds": self.ttl,
                "files": len(files), "fresh_files": fresh, "bytes": sum(f.stat().st_size for f in files),
                "memory_entries": len(self._memory), "s3": f"s3://{self.s3[0]}/{self.s3[1]}" if self.s3 else None,
                "hits": dict(self.hits), "misses": self.misses}

    def _fresh_file(self, path: Path) -> bool:
        try:
            envelope = json.loads(path.read_text(encoding="utf-8"))
            return self._valid(envelope.get("key"), envelope) is not None
        except (OSError, ValueError, AttributeError):
            return False

    def clear(self) -> int:
        """Forget memory and local files: only files this cache wrote (its name pattern and its marker
        inside), plus its own temporary files orphaned by a killed run; returns files removed.
        Anything else in the directory (inventory output, other JSON, unreadable files) stays."""
        self._memory.clear()
        removed = 0
        for path in self._files():
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
