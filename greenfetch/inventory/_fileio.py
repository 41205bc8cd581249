"""Atomic, owner-only file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_write_text", "check_writable"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: int = 0o600) -> Iterator[IO[str]]:
    """A UTF-8 text file written to a temporary name beside ``path`` and renamed over it on success;
    on any error the temporary file is removed and ``path`` is untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = 0o600) -> None:
    with atomic_open(path, mode) as handle:
        handle.write(text)


def check_writable(directory: str | os.PathLike[str]) -> Path:
    """The directory, created if needed, proven writable by creating and removing a file in it.
    Raises OSError with the reason (permission, read-only, a file in the way)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".greenfetch-probe.", dir=path)
    os.close(fd)
    os.unlink(probe)
    return path
