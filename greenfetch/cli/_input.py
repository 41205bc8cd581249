"""Reading requests from a file or stdin: a JSON array, or JSON Lines.

Input is read as bytes and parsed by ``loads_strict`` (the one strict reader every face shares), so
bytes that are not UTF-8, NaN, out-of-range numbers, absurd nesting and lone surrogates are never a
traceback. Where the error lands depends on what it spoils:

- a JSON Lines line that is not strict JSON spoils only its own request: the reader yields an
  ``UnreadableInput`` (``{"input": NAME, "line": N}`` and the reason) in its place, which the engine
  turns into that request's failed Result (``InvalidInput``, nothing sent) like any request that
  cannot be built; the lines after it still run, and the exit code is 1 (some requests failed);
- a JSON array document that is not strict JSON holds no request anyone can run: a usage error that
  names the file and the line (exit 2), before any call; so is input that is neither (its first
  non-blank line starts with neither ``[`` nor ``{``), input with nothing in it, and JSON Lines whose
  every line is unreadable (the reader looks ahead to the first readable line before returning, so
  nothing is sent for input that holds no request; an explicit empty array ``[]`` is zero requests).

This is the one home of that rule: the nu plugin and the Lambda handler receive values (nu records, a
parsed event), never lines, so a bad record there is already a failed Result through ``Request.coerce``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import IO, Any

import click

from .._jsonable import JSONInputError, loads_strict
from .._models import UnreadableInput

__all__ = ["cooperative", "read_requests"]


def cooperative(stream: IO[Any], mode: str = "r") -> IO[Any]:
    """Under gevent a blocking read of a slow pipe would stall every greenlet (requests in flight,
    /metrics); reading through gevent's thread pool keeps them running."""
    from .._patch import is_patched

    if not is_patched() or not hasattr(stream, "fileno"):
        return stream
    # not an IO, but it has what this module's readers use of one (readline, read)
    return _PooledReader(stream, b"" if "b" in mode else "")  # type: ignore[return-value]


class _PooledReader:
    """``readline`` and ``read`` of ``stream`` in gevent's thread pool. A run stopped while a read is
    in flight (stdout refused, fail-fast) has its file closed under that read: the read returns the
    end of input instead of a ValueError the pool would print as a traceback."""

    def __init__(self, stream: IO[Any], empty: bytes | str):
        from gevent import get_hub

        self._stream, self._empty, self._pool = stream, empty, get_hub().threadpool

    def readline(self) -> Any:
        return self._pool.apply(self._read, (self._stream.readline,))

    def read(self, size: int = -1) -> Any:
        return self._pool.apply(self._read, (self._stream.read, size))

    def _read(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except ValueError:
            if self._stream.closed:
                return self._empty
            raise


def _binary(stream: IO[Any]) -> IO[bytes]:
    """The bytes under a text stream (UTF-8 is checked per line, where the error can name it)."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return cooperative(buffer, "rb")
    return stream  # already binary, or a StringIO in a test (handled as text below)


def read_requests(stream: IO[Any], name: str) -> Iterator[Any]:
    """Requests one by one; JSON Lines are read lazily, so huge inputs stream in bounded memory.

    A bad JSON Lines line is an ``UnreadableInput`` in its place; a bad array, or input that holds
    no requests at all, is a usage error (exit 2) that names the file and the line.
    """
    source = _binary(stream)
    lines = iter(source.readline, source.read(0))
    first: Any = ""
    blank = 0
    for first in lines:
        if first.strip():
            break
        blank += 1
    head = first.lstrip()
    if isinstance(head, bytes) and head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    start = head[:1].decode("latin-1") if isinstance(head, bytes) else head[:1]
    if start == "":
        raise _bad(
            f"{_shown(name)} is empty: it holds no request; give a JSON array of requests, or JSON Lines "
            "(one request object per line)"
        )
    if start == "[":
        data = _parse(first + source.read(), f"{name}", offset=blank)
        if not isinstance(data, list):  # pragma: no cover - a '[' text parses to a list
            raise _bad(f"{name} is not a JSON array")
        return iter(data)
    if start != "{":
        if isinstance(first, bytes):
            try:
                first.decode("utf-8")
            except UnicodeDecodeError:  # name the bad byte, as for any other line
                raise _bad(_line_error(first, name, blank + 1) or "") from None
        shown = head.strip()[:40]
        shown = shown.decode("utf-8", "backslashreplace") if isinstance(shown, bytes) else shown
        raise _bad(
            f"{name} does not hold requests: expected a JSON array ('[') or JSON Lines of objects ('{{'), "
            f"found {shown!r}"
        )
    return _first_readable(_json_lines(itertools.chain([first], lines), name, first_line=blank + 1), name)


_LOOK_AHEAD = 10_000  # unreadable lines held while looking for a readable one (memory: a reason each)


def _first_readable(items: Iterator[Any], name: str) -> Iterator[Any]:
    """``items`` whole, once one of them is readable; a usage error when none is. Past ``_LOOK_AHEAD``
    unreadable lines in a row the lines stream as they are (each a failed result, exit 1)."""
    held: list[UnreadableInput] = []
    for item in items:
        if not isinstance(item, UnreadableInput) or len(held) >= _LOOK_AHEAD:
            return itertools.chain(held, [item], items)
        held.append(item)
    other = len(held) - 1
    more = f" (and {other} more unreadable line{'s' if other > 1 else ''})" if other else ""
    raise _bad(
        f"{_shown(name)} holds no request that can be read: {held[0].reason}{more}; each line must be one "
        "request object in strict JSON"
    )


def _shown(name: str) -> str:
    return "the input (stdin)" if name in ("-", "<stdin>") else name


def _json_lines(lines: Iterator[Any], name: str, first_line: int) -> Iterator[Any]:
    """One value per non-blank line; a line that is not strict JSON is an UnreadableInput in its place."""
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            yield loads_strict(line)
        except JSONInputError as exc:
            yield UnreadableInput(name, number, _named(exc, name, number))


def _line_error(line: Any, name: str, number: int) -> str | None:
    """What is wrong with one line, named by file and line; None when it is strict JSON."""
    try:
        loads_strict(line)
    except JSONInputError as exc:
        return _named(exc, name, number)
    return None


def _named(exc: JSONInputError, name: str, number: int) -> str:
    return f"{name} line {number} is not valid JSON: {str(exc).removeprefix('line 1 ')}"


def _parse(text: Any, name: str, offset: int) -> Any:
    try:
        return loads_strict(text)
    except JSONInputError as exc:
        raise _bad(f"{name} is not valid JSON: {_shift(str(exc), offset)}") from None


def _shift(message: str, offset: int) -> str:
    """Line numbers count from the top of the file, blank lines before the array included."""
    if offset and message.startswith("line "):
        number, _, rest = message[5:].partition(" ")
        if number.isdigit():
            return f"line {int(number) + offset} {rest}"
    return message


def _bad(message: str) -> click.BadParameter:
    return click.BadParameter(message, param_hint="FILE")
