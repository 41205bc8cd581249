"""Reading requests from a file or stdin: a JSON array, or JSON Lines."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import IO, Any

import click

__all__ = ["read_requests"]


def read_requests(stream: IO[str], name: str) -> Iterator[Any]:
    """Requests one by one; JSON Lines are read lazily, so huge inputs stream in bounded memory.

    Anything unreadable is a usage error (exit 2) that names the file and the line.
    """
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
