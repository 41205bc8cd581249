"""Reading requests from a file or stdin: a JSON array, or JSON Lines."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import IO, Any

import click

__all__ = ["cooperative", "read_requests"]


def cooperative(stream: IO[str]) -> IO[str]:
    """Under gevent a blocking read of a slow pipe would stall every greenlet (requests in flight,
    /metrics); reading through gevent's thread pool keeps them running."""
    from .._patch import is_patched

    if not is_patched() or not hasattr(stream, "fileno"):
        return stream
    from gevent.fileobject import FileObjectThread

    return FileObjectThread(stream, "r", close=False)  # type: ignore[no-any-return]


def read_requests(stream: IO[str], name: str) -> Iterator[Any]:
    """Requests one by one; JSON Lines are read lazily, so huge inputs stream in bounded memory.

    Anything unreadable is a usage error (exit 2) that names the file and the line.
    """
    stream = cooperative(stream)
    lines = iter(stream.readline, "")
    first, blank = "", 0
    for first in lines:
        if first.strip():
            break
        blank += 1
    start = first.lstrip()[:1]
    if start == "":
        return iter(())
    if start == "[":
        try:
            data = json.loads(first + stream.read())
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"{name} is not valid JSON: {exc}", param_hint="FILE") from None
        return iter(data)
    if start != "{":
        raise click.BadParameter(
            f"{name} does not hold requests: expected a JSON array ('[') or JSON Lines of objects ('{{'), "
            f"found {first.strip()[:40]!r}", param_hint="FILE")
    return _json_lines(itertools.chain([first], lines), name, first_line=blank + 1)


def _json_lines(lines: Iterator[str], name: str, first_line: int) -> Iterator[Any]:
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"{name} line {number} is not valid JSON: {exc}", param_hint="FILE") from None
