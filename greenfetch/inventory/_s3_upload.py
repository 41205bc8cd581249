"""Uploads to S3 in bounded memory, while the data is still being written.

Why: ``--s3-uri`` used to read every finished file whole into memory and PutObject it after the run,
so a long JSON Lines run held its whole inventory in memory at the end and published nothing until
then. ``S3Upload`` takes the bytes as they are written and holds at most one part: when a part is
full and more bytes arrive, the part goes out (UploadPart) and its memory is reused. An object that
fits in one part is a single PutObject, no multipart upload at all.

All calls go through the engine, so retries (a failed part is re-sent by the engine's retry policy),
throttling, credentials and the endpoint are the engine's. A part that still fails ends the upload:
the multipart upload is aborted at once (no orphan parts, no half object) and ``complete()`` returns
the error, naming the object. The local file the data came from is unaffected.

A multipart upload only becomes an object on CompleteMultipartUpload, so a run that stops early
(error, Ctrl-C, SIGTERM: ``abort()``) never leaves a partial object under the real name. A SIGKILL
leaves the upload incomplete; ``abort_incomplete_uploads`` removes those for exactly the keys a new
run will write, as ``sweep_stale`` removes a killed writer's temporary files.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._engine import Engine
from .._exceptions import GreenfetchError
from .._models import Request, Result
from .._scheduler import iter_bounded

__all__ = [
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "S3Upload",
    "UploadSweepError",
    "abort_incomplete_uploads",
    "s3_key",
    "upload_file",
    "upload_files",
]

MIB = 1 << 20
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
DEFAULT_PART_SIZE = 8 * MIB
MAX_PART_SIZE = 5 << 30  # S3's maximum part
MAX_PARTS = 10_000  # S3's limit per upload
_GROW_EVERY = 2_000  # a stream of unknown length doubles its part size every 2,000 parts (~496 GiB at 8 MiB)
_READ_CHUNK = MIB  # upload_file reads this much at a time, so it holds one part plus one chunk


def s3_key(prefix: str, name: str) -> str:
    """The key of ``name`` under ``prefix`` (``parse_s3_uri``'s prefix has no slashes at its ends)."""
    return f"{prefix}/{name}" if prefix else name


class S3Upload:
    """``write(bytes)`` as the data comes, then ``complete()`` (None, or the error) or ``abort()``.

    ``peak_buffered`` is the most bytes it ever held at once (the memory bound: one part), ``calls``
    counts the S3 operations it made, ``error`` is set once a call failed for good."""

    def __init__(
        self,
        engine: Engine,
        bucket: str,
        key: str,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        content_type: str | None = None,
        region: str | None = None,
    ):
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(
                f"part_size {part_size} is outside S3's part sizes: use {MIN_PART_SIZE} (5 MiB) "
                f"to {MAX_PART_SIZE} (5 GiB)"
            )
        self.engine, self.bucket, self.key, self.region = engine, bucket, key, region
        self.part_size, self.content_type = part_size, content_type
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []  # what CompleteMultipartUpload needs: ETag and number
        self.error: str | None = None
        self.state = "open"  # open -> completed | aborted | failed | interrupted (then aborted)
        self.bytes_written = self.peak_buffered = 0
        self.calls: Counter[str] = Counter()
        self._buf = bytearray()

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _current_part_size(self) -> int:
        """Fixed for a file (``upload_file`` sizes it); for a stream it doubles every 2,000 parts, so
        a stream of any length stays within S3's 10,000 parts while small runs keep small parts."""
        return min(MAX_PART_SIZE, self.part_size << (len(self.parts) // _GROW_EVERY))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data``; a full part is sent when the next byte arrives, so an object of exactly
        one part is still one PutObject. After a failure the data is dropped (the error stands)."""
        if self.state == "failed":
            return
        if self.state != "open":
            raise ValueError(f"{self.uri}: write() after the upload was {self.state}")
        view = memoryview(data).cast("B")
        self.bytes_written += len(view)
        while view:
            room = self._current_part_size() - len(self._buf)
            if room <= 0:
                if not self._send_part():
                    return
                continue
            self._buf += view[:room]
            view = view[room:]
            self.peak_buffered = max(self.peak_buffered, len(self._buf))

    def complete(self) -> str | None:
        """Publish the object: None on success, else the error (and nothing is left behind)."""
        if self.state == "completed":
            return None
        if self.state != "open":
            return self.error or f"{self.uri}: the upload was {self.state}"
        if self.upload_id is None:
            body, self._buf = self._buf, bytearray()
            params: dict[str, Any] = {"Key": self.key, "Body": body}
            if self.content_type:
                params["ContentType"] = self.content_type
            if self._call("PutObject", params) is None:
                return self.error
        else:
            if self._buf and not self._send_part():
                return self.error
            done = {"Key": self.key, "UploadId": self.upload_id, "MultipartUpload": {"Parts": self.parts}}
            if self._call("CompleteMultipartUpload", done) is None:
                return self.error
        self.state = "completed"
        return None

    def abort(self) -> str | None:
        """Drop everything: the buffer, and the multipart upload with its parts. Idempotent; returns
        the AbortMultipartUpload error, if S3 refused it (the parts then wait for a sweep)."""
        self._buf = bytearray()
        if self.state in ("completed", "aborted", "failed"):
            return None
        self.state = "aborted"
        return self._abort_remote()

    # -- the calls -------------------------------------------------------------------------------

    def _send_part(self) -> bool:
        """The buffer as the next part (creating the multipart upload first); False once failed."""
        if len(self.parts) >= MAX_PARTS:
            self._fail(
                f"more than S3's {MAX_PARTS} parts at part size {self._current_part_size()}; raise part_size"
            )
            return False
        if self.upload_id is None:
            params: dict[str, Any] = {"Key": self.key}
            if self.content_type:
                params["ContentType"] = self.content_type
            created = self._call("CreateMultipartUpload", params)
            if created is None:
                return False
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        body, self._buf = self._buf, bytearray()  # the part in flight is the buffer: still one part held
        sent = self._call(
            "UploadPart", {"Key": self.key, "UploadId": self.upload_id, "PartNumber": number, "Body": body}
        )
        if sent is None:
            return False
        self.parts.append({"ETag": sent["ETag"], "PartNumber": number})
        return True

    def _call(self, operation: str, params: dict[str, Any]) -> Any:
        """The response, or None after recording the failure (which aborts the upload)."""
        self.calls[operation] += 1
        try:
            result: Result = self.engine.execute(
                Request("s3", operation, {"Bucket": self.bucket, **params}, region=self.region)
            )
        except BaseException:  # Ctrl-C/SIGTERM mid-call: a part may be lost, so complete() must refuse
            self.state, self.error = "interrupted", f"{self.uri}: {operation} was interrupted"
            raise
        if result.ok:
            return result.result
        self._fail(result.error or result.error_code or "failed")
        return None

    def _fail(self, error: str) -> None:
        self.error = f"{self.uri}: {error}"
        self.state = "failed"
        self._buf = bytearray()
        multipart = self.upload_id is not None
        refused = self._abort_remote()
        if refused:
            self.error += f"; {refused}"
        elif multipart:
            self.error += " (multipart upload aborted: no object written)"

    def _abort_remote(self) -> str | None:
        if self.upload_id is None:
            return None
        upload_id, self.upload_id = self.upload_id, None
        self.calls["AbortMultipartUpload"] += 1
        result = self.engine.execute(
            Request(
                "s3",
                "AbortMultipartUpload",
                {"Bucket": self.bucket, "Key": self.key, "UploadId": upload_id},
                region=self.region,
            )
        )
        if result.ok or result.error_code in ("NoSuchUpload", "NoSuchBucket"):
            return None
        return (
            f"AbortMultipartUpload also failed ({result.error}): its parts stay until the next run's "
            f"sweep or a lifecycle rule removes them"
        )


def upload_file(
    engine: Engine,
    path: str | os.PathLike[str],
    bucket: str,
    key: str,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    content_type: str | None = None,
    region: str | None = None,
) -> str | None:
    """One file from disk, read a chunk at a time (one part plus one chunk in memory); None, or the
    error naming the object. Its part size grows if the file needs more than 10,000 parts."""
    try:
        size = Path(path).stat().st_size
        handle = open(path, "rb")  # noqa: SIM115 - closed below, around the upload
    except OSError as exc:
        return f"s3://{bucket}/{key}: cannot read {str(path)!r}: {exc.strerror or exc}"
    needed = min(MAX_PART_SIZE, max(part_size, -(-size // MAX_PARTS)))
    upload = S3Upload(engine, bucket, key, part_size=needed, content_type=content_type, region=region)
    try:
        with handle:
            while upload.state == "open" and (chunk := handle.read(_READ_CHUNK)):
                upload.write(chunk)
        return upload.complete()
    except BaseException:  # an OSError mid-file, Ctrl-C, SIGTERM: no half object, no orphan parts
        upload.abort()
        raise


def upload_files(
    engine: Engine,
    files: Iterable[tuple[Path, str]],
    bucket: str,
    *,
    concurrency: int = 8,
    content_type: Callable[[Path], str | None] = lambda _path: None,
    region: str | None = None,
) -> list[str]:
    """``(path, key)`` pairs, ``concurrency`` at a time (memory: one part per file in flight); the
    errors, one string per failed file."""

    def one(_index: int, item: tuple[Path, str]) -> str | None:
        path, key = item
        return upload_file(engine, path, bucket, key, region=region, content_type=content_type(path))

    return [error for error in iter_bounded(engine.backend, files, one, concurrency) if error]


def abort_incomplete_uploads(
    engine: Engine, bucket: str, keys: Iterable[str], *, region: str | None = None
) -> int:
    """Abort the incomplete multipart uploads of exactly these keys (what a killed run left); the
    number aborted. One ListMultipartUploads walk over the keys' common prefix, exact-key match, so
    uploads of any other key are never touched. Raises ``UploadSweepError`` when S3 refuses the list."""
    wanted = set(keys)
    if not wanted:
        return 0
    params = {"Bucket": bucket, "Prefix": os.path.commonprefix(sorted(wanted))}
    result = engine.execute(Request("s3", "ListMultipartUploads", params, region=region, paginate=True))
    if not result.ok:
        raise UploadSweepError(f"s3://{bucket}: {result.error}", result.error_code)
    found = [(u["Key"], u["UploadId"]) for u in result.result.get("Uploads") or () if u.get("Key") in wanted]
    aborts = (
        Request(
            "s3", "AbortMultipartUpload", {"Bucket": bucket, "Key": key, "UploadId": upload_id}, region=region
        )
        for key, upload_id in found
    )
    return sum(1 for r in engine.iter_results(aborts, 8) if r.ok or r.error_code == "NoSuchUpload")


class UploadSweepError(GreenfetchError):
    """S3 refused to list a bucket's multipart uploads; ``code`` is S3's error code."""

    def __init__(self, message: str, code: str | None):
        super().__init__(message)
        self.code = code
