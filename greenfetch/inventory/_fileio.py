"""Atomic, owner-only file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_write_text", "check_writable", "sweep_stale"]


_STALE_SECONDS = 3600.0  # a temporary name without a PID (older versions) is stale after this long


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: int = 0o600, *, sweep: bool = True, durable: bool = True
) -> Iterator[IO[str]]:
    """A UTF-8 text file written to a temporary name beside ``path`` and renamed over it on success;
    on any error (or Ctrl-C, SIGTERM) the temporary file is removed and ``path`` is untouched.

    The temporary name carries the writer's PID (``.NAME.PID.RANDOM.tmp``), so what a SIGKILL left
    behind is recognisably stale: with ``sweep`` (the default) the next write of the same file removes
    the temporary files of writers that no longer run. ``durable=False`` skips the fsync before the
    rename, for files whose loss in a power cut costs nothing (cache entries: a torn one is a miss)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        sweep_stale(target.parent, target.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(
    path: str | os.PathLike[str], text: str, mode: int = 0o600, *, sweep: bool = True, durable: bool = True
) -> None:
    with atomic_open(path, mode, sweep=sweep, durable=durable) as handle:
        handle.write(text)


def sweep_stale(
    directory: str | os.PathLike[str], name: str = "*", owns: Callable[[str], bool] | None = None
) -> int:
    """Remove ``.NAME.*.tmp`` files in ``directory`` that ``atomic_open`` left when its process was
    killed (SIGKILL, OOM, power loss): their PID no longer runs, or, for names without a PID, they are
    older than an hour. ``owns(target_name)`` narrows it further (the cache sweeps only its own
    names). Never touches anything else. Returns how many were removed."""
    removed = 0
    now = time.time()
    for path in _temporaries(directory, name):
        if owns is not None and not owns(_target_name(path)):
            continue
        if _owner_alive(path, now):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def _temporaries(directory: str | os.PathLike[str], name: str) -> Iterator[Path]:
    """The entries of ``directory`` that ``Path(directory).glob(f".{name}.*.tmp")`` yields. A name
    without glob characters is matched as text (``.NAME.``, anything, ``.tmp``): the glob compiles a
    regular expression for each new name (fnmatch's, ~0.5M instructions), and a json run's close
    writes a file per resource type, each name new to the process. A name that is a pattern (the
    cache's ``*``) or holds a ``/`` goes through the glob itself. Like the glob, a directory that is
    missing, not a directory or not readable has no entries."""
    if "*" in name or "?" in name or "[" in name or "/" in name:  # a pattern, or a path of parts
        yield from Path(directory).glob(f".{name}.*.tmp")
        return
    head, least = f".{name}.", len(name) + 6  # ".NAME." + ".tmp": the star may match nothing
    try:
        with os.scandir(directory) as entries:
            names = [entry.name for entry in entries]
    except OSError:
        return
    parent = Path(directory)
    for found in names:
        if len(found) >= least and found.startswith(head) and found.endswith(".tmp"):
            yield parent / found


def _target_name(path: Path) -> str:
    """``x.json`` from ``.x.json.PID.RANDOM.tmp`` (or from an older ``.x.json.RANDOM.tmp``)."""
    parts = path.name[1 : -len(".tmp")].split(".")
    drop = 2 if len(parts) >= 3 and parts[-2].isdigit() else 1
    return ".".join(parts[:-drop])


def _owner_alive(path: Path, now: float) -> bool:
    middle = path.name[: -len(".tmp")].split(".")
    pid = middle[-2] if len(middle) >= 3 else ""
    if pid.isdigit():
        if int(pid) == os.getpid():
            return True  # this process's own file, being written
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except OSError:  # exists, another user's
            return True
        return True
    try:
        return now - path.stat().st_mtime < _STALE_SECONDS
    except OSError:
        return True


def check_writable(directory: str | os.PathLike[str]) -> Path:
    """The directory, created if needed, proven writable by creating and removing a file in it.
    Raises OSError with the reason (permission, read-only, a file in the way)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".greenfetch-probe.", dir=path)
    os.close(fd)
    os.unlink(probe)
    return path
