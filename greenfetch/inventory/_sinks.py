"""File and S3 sinks. They run after (or beside) the fetch, never inside a fetching greenlet.

``json``: one file per resource type (``<type>.json``, a JSON array of records), written when the
run ends. ``jsonl``: one stream (``inventory.jsonl``, one record per line) written as records
arrive, for inventories too large to hold in memory. Either way files are UTF-8 with non-ASCII kept
as is, written under a temporary name and renamed into place: an interrupted or failed run leaves
no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

from .._jsonable import to_json
from .._models import Request
from ._cache import parse_s3_uri
from ._fileio import atomic_open, check_writable
from ._types import InventoryError, Record

__all__ = ["FileSink", "FORMATS", "upload_to_s3"]

FORMATS = ("json", "jsonl")


class FileSink:
    """``add(record)`` for each record, then ``close()`` -> the paths written; ``abort()`` on failure.

    Use as a context manager: leaving with an exception aborts (temporary files removed)."""

    def __init__(self, directory: str | os.PathLike[str], fmt: str = "json"):
        if fmt not in FORMATS:
            raise InventoryError(f"--format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
        try:
            self.directory = check_writable(directory)
        except OSError as exc:
            raise InventoryError(f"output directory {str(directory)!r} is not writable: "
                                 f"{exc.strerror or exc}; choose another --out") from None
        self.fmt = fmt
        self._by_type: dict[str, list[Record]] = defaultdict(list)
        self._stream: contextlib.ExitStack | None = None
        self._handle: IO[str] | None = None
        self.records = 0

    def add(self, rec: Record) -> None:
        self.records += 1
        if self.fmt == "json":
            self._by_type[rec["resource_type"]].append(rec)
            return
        if self._handle is None:
            self._stream = contextlib.ExitStack()
            self._handle = self._stream.enter_context(atomic_open(self.directory / "inventory.jsonl", 0o644))
        self._handle.write(_dumps(rec) + "\n")

    def close(self) -> list[Path]:
        if self.fmt == "jsonl":
            path = self.directory / "inventory.jsonl"
            if self._stream is None:  # no records: still an (empty) valid file
                with atomic_open(path, 0o644):
                    pass
            else:
                self._stream.close()
                self._stream = self._handle = None
            return [path]
        written = []
        for rtype in sorted(self._by_type):
            path = self.directory / f"{rtype}.json"
            records = sorted(self._by_type[rtype], key=lambda r: (r["account"], r["region"]))
            with atomic_open(path, 0o644) as handle:
                handle.write("[\n" + ",\n".join(_dumps(r) for r in records) + "\n]\n")
            written.append(path)
        return written

    def abort(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.__exit__(RuntimeError, RuntimeError("aborted"), None)
            self._stream = self._handle = None
        self._by_type.clear()

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()


def _dumps(rec: Record) -> str:
    return to_json(rec)


def upload_to_s3(engine: Any, paths: list[Path], s3_uri: str, *, concurrency: int = 8) -> list[str]:
    """Upload the files (PutObject through the engine); returns errors, one string per failed file."""
    bucket, prefix = parse_s3_uri(s3_uri)
    requests = [Request("s3", "PutObject", {"Bucket": bucket, "Key": f"{prefix}/{p.name}" if prefix else p.name,
                                            "Body": p.read_bytes(), "ContentType": "application/json"})
                for p in paths]
    return [r.error or "" for r in engine.batch_requests(requests, concurrency) if not r.ok]
