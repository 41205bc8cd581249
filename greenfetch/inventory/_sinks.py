"""File and S3 sinks. They run after (or beside) the fetch, never inside a fetching greenlet.

``json``: one file per resource type (``<type>.json``, a JSON array of records), written when the
run ends. ``jsonl``: one stream (``inventory.jsonl``, one record per line) written as records
arrive, for inventories too large to hold in memory. Either way files are UTF-8 with non-ASCII kept
as is, written under a temporary name and renamed into place: an interrupted or failed run leaves
no partial file behind.

``sqlite``: one database file that each run appends to (``_sqlite.SQLiteSink``), chosen by an
``--out`` ending in ``.db``/``.sqlite``/``.sqlite3`` or by ``--format sqlite``. ``open_sink`` picks
the sink; every sink takes ``add(record, fetched_at=None)``, ``close(summary)`` and ``abort()``. ``postgres``: the same
tables in a PostgreSQL database (``_postgres_sink.PostgresSink``), chosen by an ``--out postgresql://...``.

``--s3-uri``: ``prepare_s3`` (at the start of a run) aborts what a killed run left for the same keys
and, for ``jsonl``, tees the stream into a multipart upload (``_s3_upload.S3Upload``), so the object
is uploaded as it is written and published only when the local file is; ``upload_to_s3`` sends the
``json``/``sqlite`` files at the end, part by part from disk. Neither holds more than one part.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .._engine import Engine
from .._jsonable import json_string, jsonable, plain_json, to_json
from .._kept import kept
from .._redact import redact_url
from .._storage_errors import storage_error
from ._cache import parse_s3_uri
from ._fileio import atomic_open, check_writable
from ._postgres import is_postgres_url
from ._postgres_sink import PostgresSink
from ._resource_type import ResourceType
from ._s3_upload import S3Upload, UploadSweepError, abort_incomplete_uploads, s3_key, upload_files
from ._sqlite import SQLiteSink
from ._types import InventoryError, Record

__all__ = [
    "FileSink",
    "FORMATS",
    "SQLITE_SUFFIXES",
    "open_sink",
    "prepare_s3",
    "resolve_format",
    "shard_root",
    "upload_to_s3",
]

_log = logging.getLogger("greenfetch.inventory")

FORMATS = ("json", "jsonl", "sqlite")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def resolve_format(out: str | os.PathLike[str] | None, fmt: str | None) -> str:
    """The format to write: ``fmt`` if given, else ``sqlite`` for an ``--out`` with a SQLite suffix,
    else ``json``. A file format that contradicts the suffix is an InventoryError (not a directory
    quietly named ``x.db``)."""
    if is_postgres_url(out):
        if fmt not in (None, "postgres"):
            raise InventoryError(
                f"--out {redact_url(str(out))!r} is a PostgreSQL database but --format is {fmt}; "
                "drop --format, or give a directory for files"
            )
        return "postgres"
    if fmt is not None and fmt not in FORMATS:
        raise InventoryError(f"--format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    is_db = out is not None and Path(out).suffix.lower() in SQLITE_SUFFIXES
    if fmt is None:
        return "sqlite" if is_db else "json"
    if is_db and fmt != "sqlite":
        raise InventoryError(
            f"--out {str(out)!r} names a SQLite file but --format is {fmt}; drop --format (or use "
            f"--format sqlite), or give a directory for {fmt} files"
        )
    if fmt == "sqlite" and out is None:
        raise InventoryError("--format sqlite writes a database file: give --out FILE.db")
    return fmt


def shard_root(out: str | os.PathLike[str]) -> Path:
    """Where the workers of a ``--broker`` run leave their shards for the coordinator: ``--out`` itself
    for files, the database's directory for ``--out FILE.db`` (the coordinator alone writes the file).
    A PostgreSQL ``--out`` needs none (the workers write the database): the working directory stands in."""
    if is_postgres_url(out):
        return Path(".")
    path = Path(out)
    return path.parent if path.suffix.lower() in SQLITE_SUFFIXES else path


def open_sink(
    out: str | os.PathLike[str], fmt: str | None = None, *, catalog: Mapping[str, ResourceType] | None = None
) -> FileSink | SQLiteSink | PostgresSink:
    """The sink for ``--out``/``--format``: files in a directory, a SQLite database (an existing
    directory with ``--format sqlite`` gets ``inventory.db`` in it) or a PostgreSQL database.
    ``catalog`` gives the database sinks their types' resource ids (default: the process's catalog)."""
    fmt = resolve_format(out, fmt)
    if fmt == "postgres":
        return PostgresSink(str(out), catalog=catalog)
    if fmt != "sqlite":
        return FileSink(out, fmt)
    path = Path(out)
    return SQLiteSink(path / "inventory.db" if path.is_dir() else path, catalog=catalog)


class FileSink:
    """``add(record)`` for each record, then ``close()`` -> the paths written; ``abort()`` on failure.

    Use as a context manager: leaving with an exception aborts (temporary files removed)."""

    def __init__(self, directory: str | os.PathLike[str], fmt: str = "json"):
        if fmt not in ("json", "jsonl"):
            raise InventoryError(
                f"FileSink writes json or jsonl, not {fmt!r} (open_sink picks the sink for sqlite)"
            )
        try:
            self.directory = check_writable(directory)
        except OSError as exc:
            raise InventoryError(
                f"output directory {str(directory)!r} is not writable: "
                f"{exc.strerror or exc}; choose another --out"
            ) from None
        self.fmt = fmt
        # json: per type, (account, region, its place in arrival, the record's JSON text) as each
        # arrives: the text the file gets at the end, made while the record is as it was fetched, and a
        # string the garbage collector never walks (a run's records kept as objects were most of what it
        # walked). Sorted as they are: by (account, region), ties in arrival order (the place is unique,
        # so the text is never compared), which is the stable sort by (account, region) without a key
        # function's pair made for each record
        self._by_type: dict[str, list[tuple[Any, Any, int, str]]] = defaultdict(list)
        self._stream: contextlib.ExitStack | None = None
        self._handle: IO[str] | None = None
        self.tee: S3Upload | None = None
        self.records = 0

    def tee_to(self, upload: S3Upload) -> None:
        """Copy the JSON Lines stream, byte for byte, into ``upload`` as it is written; ``close()``
        completes it once the local file is in place, ``abort()`` aborts it."""
        if self.fmt != "jsonl":
            raise InventoryError(f"only the jsonl stream can be uploaded as it is written, not {self.fmt}")
        self.tee = upload

    def add(
        self,
        rec: Record,
        fetched_at: float | None = None,
        plain_items: Any = None,
        items_json: str | None = None,
    ) -> None:
        """Write (jsonl) or keep (json) the record; ``fetched_at`` is for the database, which records it.
        ``plain_items``: ``jsonable(rec["items"])`` when the caller has it (the inventory cache made it);
        ``items_json``: ``marked_json`` of those, when the caller has it (the cache's encoding: with or
        without ``plain_items``, which it makes unneeded). Positional or keyword: the run passes them by
        position (a keyword is matched by name at every call, ~0.2k instructions a record each)."""
        self.records += 1
        if self.fmt == "json":
            self._by_type[rec["resource_type"]].append(
                (rec["account"], rec["region"], self.records, _dumps(rec, plain_items, items_json))
            )
            return
        path = self.directory / "inventory.jsonl"
        with _refused(path):
            if self._handle is None:
                self._stream = contextlib.ExitStack()
                self._handle = self._stream.enter_context(atomic_open(path, 0o644))
            line = _dumps(rec, plain_items, items_json) + "\n"
            self._handle.write(line)
        if self.tee is not None:
            self.tee.write(line.encode("utf-8"))

    def close(self, summary: Mapping[str, Any] | None = None) -> list[Path]:
        """Write (or finish) the files; ``summary`` is accepted for the sinks' common interface.
        Storage that refuses (a full disk) is a StorageError naming the file and what was written."""
        if self.fmt == "jsonl":
            path = self.directory / "inventory.jsonl"
            with _refused(path):
                if self._stream is None:  # no records: still an (empty) valid file
                    with atomic_open(path, 0o644):
                        pass
                else:
                    self._stream.close()
                    self._stream = self._handle = None
            if self.tee is not None:  # after the rename: the object never exists without the file
                self.tee.complete()  # a failure is kept in tee.error (reported by the run), and aborted
            return [path]
        written: list[Path] = []
        for rtype in sorted(self._by_type):
            path = self.directory / f"{rtype}.json"
            records = sorted(self._by_type[rtype])  # (account, region), then arrival: see __init__
            with _refused(path, written):
                with atomic_open(path, 0o644) as handle:  # the records' text joined once, not copied again
                    handle.write("[\n")
                    handle.write(",\n".join(map(_TEXT, records)))
                    handle.write("\n]\n")
            written.append(path)
        return written

    def abort(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.__exit__(RuntimeError, RuntimeError("aborted"), None)
            self._stream = self._handle = None
        if self.tee is not None:
            self.tee.abort()
        self._by_type.clear()

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()


_TEXT = operator.itemgetter(3)  # a kept record's JSON text


def _dumps(rec: Record, plain_items: Any = None, items_json: str | None = None) -> str:
    """``to_json(rec)``; with ``items_json`` (``marked_json(jsonable(rec["items"]))``) the items are
    neither walked nor encoded again, with only ``plain_items`` (``jsonable(rec["items"])``) not walked.

    Then ``plain_json`` of the record's head (made JSON-ready by ``jsonable``) with the items' text as
    its items (one function, not a second frame a record around the head's writing). A head of ASCII
    names and text or None is written field by field, each field's text kept (``_FIELDS``: a run's
    records share their types, accounts, regions and statuses), around the items' text copied once;
    anything else: the fields before the items and after them through ``jsonable`` and ``plain_json``
    as two objects, joined around the items. A record of ``record``'s shape whose five fields were all
    seen before is written from their texts without the loop."""
    if items_json is not None:
        # the items' text: ``marked_json``'s with its NULs made spaces is ``plain_json``'s (see there)
        items_text = items_json.replace("\0", " ")
    elif plain_items is not None:
        items_text = plain_json(plain_items)
    else:
        return to_json(rec)
    if type(rec) is dict and tuple(rec) == _RECORD:
        # by key (the shape is known now): unpacking ``values()`` walks a dict iterator (~0.8k more)
        kind, account, region = rec["resource_type"], rec["account"], rec["region"]
        status, error = rec["status"], rec["error"]
        if (  # the values the loop keeps: anything else (unhashable, or equal to a text it is not) is its
            type(kind) is str
            and type(account) is str
            and type(region) is str
            and type(status) is str
            and (error is None or type(error) is str)
        ):
            first, second, third = _KINDS.get(kind), _ACCOUNTS.get(account), _REGIONS.get(region)
            fourth, fifth = _STATUSES.get(status), _ERRORS.get(error)
            if first and second and third and fourth and fifth:
                return f'{{{first}, {second}, {third}, "items": {items_text}, {fourth}, {fifth}}}'
    before: list[str] = []
    after: list[str] | None = None  # the fields after the items, once they are met
    for key, value in rec.items():
        if key == "items":
            after = []
            continue
        if value is None or type(value) is str:
            field = _FIELDS.get(key, _NONE).get(value)
            if field is None:
                field = _field(key, value)
                if field is None:
                    break
        else:
            break
        (before if after is None else after).append(field)
    else:
        if after is None:  # no items: the head alone
            return "{" + ", ".join(before) + "}"
        return "".join(
            (
                "{",
                ", ".join(before),
                ', "items": ' if before else '"items": ',
                items_text,
                ", " if after else "",
                ", ".join(after),
                "}",
            )
        )
    head: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    part = head
    for key, value in rec.items():
        if key == "items":
            part = tail
        else:
            part[key] = value
    head, tail = jsonable(head), jsonable(tail)
    text = plain_json(head)[:-1] + (", " if head else "") + '"items": ' + items_text
    return text + (", " + plain_json(tail)[1:] if tail else "}")


_RECORD = ("resource_type", "account", "region", "items", "status", "error")  # ``record``'s keys, in order
# a head field's text by value, a table for each of ``record``'s names ('"region": "eu-west-1"'): a run's
# records share their types, accounts, regions and statuses (found by the value alone: no (name, value)
# tuple made, hashed and compared a field); another name's field is encoded each time
_FIELDS: dict[str, dict[str | None, str]] = {name: {} for name in _RECORD if name != "items"}
_KINDS, _ACCOUNTS, _REGIONS, _STATUSES, _ERRORS = _FIELDS.values()
_FIELDS_KEPT = 4096  # values kept a name at most (a run's accounts bound them; this, any caller)
_NONE: dict[str | None, str] = {}  # a name without a table: no value's text (never written to)


def _field(key: Any, value: str | None) -> str | None:
    """A head field's text (kept in ``_FIELDS`` for ``record``'s names) when its name is ASCII text and
    its value ASCII text or None (``jsonable`` returns those as they are); None for anything else."""
    if type(key) is not str or not key.isascii() or (value is not None and not value.isascii()):
        return None
    text = json_string(key) + (": null" if value is None else ": " + json_string(value))
    values = _FIELDS.get(key)
    return text if values is None else kept(values, value, text, _FIELDS_KEPT)


@contextlib.contextmanager
def _refused(path: Path, written: list[Path] | None = None) -> Iterator[None]:
    """An OSError while writing ``path`` as one StorageError line: the file, why, and what is on disk
    (the files already in place are whole; ``atomic_open`` never leaves part of one)."""
    try:
        yield
    except OSError as exc:
        kept = (
            f"{', '.join(p.name for p in written)} {'is' if len(written) == 1 else 'are'} written whole; "
            if written
            else ""
        ) + f"no partial {path.name} is left"
        raise storage_error(exc, f"cannot write --out {str(path)!r}", kept) from None


def prepare_s3(
    engine: Engine, sink: FileSink | SQLiteSink | PostgresSink, s3_uri: str, type_names: list[str]
) -> S3Upload | None:
    """Before the fetch: abort the incomplete multipart uploads a killed run left for the keys this
    run will write, and for ``jsonl`` tee the stream into an upload (returned). A missing bucket is
    an InventoryError (exit 2 before any fetch); any other refusal to list uploads (a role without
    ``s3:ListBucketMultipartUploads``) is a warning: the upload itself may still be allowed."""
    bucket, prefix = parse_s3_uri(s3_uri)
    names = _names_written(sink, type_names)
    try:
        abort_incomplete_uploads(engine, bucket, [s3_key(prefix, n) for n in names])
    except UploadSweepError as exc:
        if exc.code == "NoSuchBucket":
            raise InventoryError(
                f"--s3-uri {s3_uri!r}: bucket {bucket!r} does not exist; create it or fix the URI"
            ) from None
        _log.warning(
            "--s3-uri: could not look for incomplete uploads a stopped run left (%s); "
            "a lifecycle rule with AbortIncompleteMultipartUpload removes them",
            exc,
        )
    if isinstance(sink, FileSink) and sink.fmt == "jsonl":
        upload = S3Upload(
            engine,
            bucket,
            s3_key(prefix, "inventory.jsonl"),
            content_type=_content_type(Path("inventory.jsonl")),
        )
        sink.tee_to(upload)
        return upload
    return None


def _names_written(sink: FileSink | SQLiteSink | PostgresSink, type_names: list[str]) -> list[str]:
    if isinstance(sink, PostgresSink):
        return []
    if isinstance(sink, SQLiteSink):
        return [sink.path.name]
    return ["inventory.jsonl"] if sink.fmt == "jsonl" else [f"{name}.json" for name in type_names]


def upload_to_s3(engine: Engine, paths: list[Path], s3_uri: str, *, concurrency: int = 8) -> list[str]:
    """Upload the files through the engine, each part by part from disk (one PutObject for a file
    of one part); returns errors, one string per failed file, naming its object."""
    bucket, prefix = parse_s3_uri(s3_uri)
    return upload_files(
        engine,
        [(p, s3_key(prefix, p.name)) for p in paths],
        bucket,
        concurrency=concurrency,
        content_type=_content_type,
    )


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in SQLITE_SUFFIXES:
        return "application/vnd.sqlite3"
    return "application/x-ndjson" if suffix == ".jsonl" else "application/json"
