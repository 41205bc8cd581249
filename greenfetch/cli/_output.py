"""Writing results to stdout: JSON, JSON Lines or a table, with an optional JMESPath query.

Every byte goes out through ``write_out``, which writes stdout's file descriptor itself and raises
the OSError when the kernel refuses (a full disk, /dev/full, a closed pipe): Python's own unbuffered
stdout (``PYTHONUNBUFFERED``, docker's usual setting) drops what a short write to a full disk left
over without an error, so a command exited 0 with a cut-off file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

import click
import jmespath
import jmespath.exceptions

from .._jsonable import to_json
from .._models import Result, account_of_role

__all__ = [
    "OUTPUTS",
    "emit",
    "emit_one",
    "render_stats",
    "render_summary",
    "render_table",
    "summarize",
    "text_table",
    "discard_stdout",
    "flush_stdout",
    "whole_stdout",
    "write_json",
    "write_out",
]

OUTPUTS = ("json", "jsonl", "table")


def compile_query(query: str | None) -> Any:
    """A compiled JMESPath expression, or a usage error that quotes the bad expression."""
    if not query:
        return None
    try:
        return jmespath.compile(query)
    except jmespath.exceptions.ParseError as exc:
        raise click.BadParameter(
            f"{query!r} is not a JMESPath expression: {exc}", param_hint="--query"
        ) from None


def emit(
    results: Sequence[Result], output: str = "json", query: str | None = None, out: IO[str] | None = None
) -> None:
    """Write all results at once (results in request order); OSError when stdout refuses."""
    rows = [r.to_dict() for r in results]
    expr = compile_query(query)
    if expr is not None:
        data = expr.search(rows)
        if output == "jsonl" and isinstance(
            data, list
        ):  # a query can make NaN (to_number('NaN')): strict JSON
            write_out("".join(to_json(item) + "\n" for item in data), out)
        else:
            write_out(to_json(data, indent=2) + "\n", out)
        return
    if output == "table":
        write_out(render_table(rows) + "\n", out)
    elif output == "jsonl":
        write_out("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), out)
    else:
        write_out(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", out)


def emit_one(result: Result, query: Any = None, out: IO[str] | None = None) -> None:
    """One JSON Lines record as soon as a result completes (streaming output), written through."""
    row: Any = result.to_dict()
    if query is not None:
        row = query.search(row)
    write_out(to_json(row) + "\n", out)


def write_out(text: str, out: IO[str] | None = None) -> None:
    """``text`` to ``out`` (stdout when None), all of it, or the OSError that stopped it.

    A stream with a file descriptor is written through it: a short write (a full disk takes what fits)
    is continued until the kernel says why it stops. Anything else (a StringIO, click's test runner)
    is written and flushed."""
    stream = out or sys.stdout
    fd = _fileno(stream)
    if fd is None:
        stream.write(text)
        stream.flush()
        return
    stream.flush()  # anything written the ordinary way before, in order
    _write_all(
        fd,
        text.encode(
            getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "strict"
        ),
    )


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # a non-blocking pipe that is full: wait (cooperatively under gevent)
            select.select([], [fd], [])


class _WholeWrites(io.RawIOBase):
    """A descriptor whose writes are whole or raise (see ``write_out``)."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: Any) -> int:
        _write_all(self._fd, data)
        return len(data)


def discard_stdout() -> None:
    """After stdout refused a write: what Python still holds for it goes nowhere, so the exit does not
    fail again (Python's "Exception ignored" traceback and exit 120)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def flush_stdout() -> OSError | None:
    """Flush stdout before exiting: None, or the OSError that refused it (stdout then discarded)."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        discard_stdout()
        return exc
    return None


def whole_stdout() -> None:
    """Make ``sys.stdout`` (click.echo, print) write whole or raise, for every command: Python's
    unbuffered stdout (``PYTHONUNBUFFERED``) drops the rest of a short write to a full disk without an
    error. The console entry point calls it once; the descriptor stays open when the wrapper goes."""
    fd = _fileno(sys.stdout)
    if fd is None or isinstance(getattr(getattr(sys.stdout, "buffer", None), "raw", None), _WholeWrites):
        return
    sys.stdout.flush()
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_WholeWrites(fd)),
        encoding=sys.stdout.encoding,
        errors=sys.stdout.errors,
        line_buffering=bool(getattr(sys.stdout, "line_buffering", False)),
    )


def _fileno(stream: IO[str]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def summarize(value: Any) -> str:
    """A few words about a response: the sizes of its lists, or its scalar fields (a cut value ends
    in "…")."""
    if not isinstance(value, dict) or not value:
        return "" if value is None else _clip(value, 60)
    parts = []
    for key, item in value.items():
        if isinstance(item, list):
            parts.append(f"{key}: {len(item)}")
        elif isinstance(item, (str, int, float, bool)) and len(parts) < 3:
            parts.append(f"{key}={_clip(item, 24)}")
    return ", ".join(parts[:4]) or f"{len(value)} fields"


def render_table(rows: Iterable[dict[str, Any]]) -> str:
    header = ["#", "service", "operation", "account", "region", "status", "ms", "tries", "detail"]
    lines = [header]
    for row in rows:
        req = row["request"]
        status = "ok" if row["error"] is None else (row["error_code"] or "error")
        detail = summarize(row["result"]) if row["error"] is None else row["error"]
        lines.append(
            [
                str(row["index"]),
                str(req.get("service", "")),
                str(req.get("operation", "")),
                _account(req),
                str(req.get("region") or ""),
                status,
                f"{row['duration_ms']:.1f}",
                str(row["attempts"]),
                _clip(detail, 60),
            ]
        )
    return text_table(lines[0], lines[1:])


def render_stats(rows: list[dict[str, Any]]) -> str:
    """The perf-stats table, durations in milliseconds; ``-`` where the source cannot tell (a max
    rebuilt from histogram buckets)."""
    header = ["operation", "count", "errors", "throttles", "avg ms", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    lines = [header]
    for row in rows:
        lines.append(
            [str(row["operation"]), str(row["count"]), str(row["errors"]), str(row["throttles"])]
            + [
                "-" if row.get(k) is None else f"{row[k] * 1000:.1f}"
                for k in ("avg_duration", "p50", "p90", "p99", "max")
            ]
        )
    text = text_table(header, lines[1:], numeric=True)
    return text if rows else text + "\n(no requests recorded)"


def render_summary(summary: dict[str, Any]) -> str:
    """The inventory's end-of-run table: resources and errors per type, then accounts, regions, calls, time."""
    rows = [[t, str(n), str(summary["errors"].get(t, 0))] for t, n in summary["resources"].items()]
    lines = [text_table(["resource type", "resources", "errors"], rows, numeric=True, rule=False)]
    failed = summary["accounts_failed"]
    lines.append(
        f"accounts: {summary['accounts_ok']} ok, {len(failed)} failed; account-regions: "
        f"{summary['account_regions_ok']} ok, {summary['account_regions_failed']} with errors, "
        f"{summary['regions_skipped']} skipped (inactive)"
    )
    lines += [f"  account {acct}: {why}" for acct, why in failed.items()]
    lines += _statuses(summary.get("statuses", {}))
    lines.append(
        f"{summary['records']} fetches, {summary['calls']} calls, {_from_cache(summary)}, "
        f"{summary['throttled']} throttled ({summary.get('throttle_attempts', 0)} throttled attempts), "
        f"{summary['wall_seconds']:.2f}s"
    )
    if summary.get("tag_calls"):
        failed_tags = summary.get("tags_failed") or {}
        lines.append(
            f"tags: {summary['tag_calls']} tagging API calls in {summary['tag_seconds']:.2f}s"
            + "".join(f"; {where} not tagged: {code}" for where, code in failed_tags.items())
        )
    return "\n".join(lines)


_STATUS_ORDER = ("ok", "not_offered", "unavailable", "denied", "expired", "throttled", "error")


def _statuses(per_service: dict[str, dict[str, int]]) -> list[str]:
    """``statuses: 120 ok, 40 not_offered, 3 unavailable``, then one line per service that has a
    status other than ok and not_offered (those are the ones worth a look)."""
    if not per_service:
        return []

    def counts(found: dict[str, int]) -> str:
        order = [s for s in _STATUS_ORDER if s in found] + sorted(set(found) - set(_STATUS_ORDER))
        return ", ".join(f"{found[s]} {s}" for s in order)

    total: dict[str, int] = {}
    for found in per_service.values():
        for status, n in found.items():
            total[status] = total.get(status, 0) + n
    lines = [f"statuses: {counts(total)}"]
    lines += [
        f"  {service}: {counts(found)}"
        for service, found in sorted(per_service.items())
        if set(found) - {"ok", "not_offered"}
    ]
    return lines


def _from_cache(summary: dict[str, Any]) -> str:
    """``0 from cache``, or how many and when the oldest of them was fetched (so a run served from the
    cache never passes for a fresh one)."""
    cached, oldest = summary["cached"], summary.get("cached_fetched_at")
    if not cached or not oldest:
        return f"{cached} from cache"
    return f"{cached} from cache (the oldest fetched {oldest}; --cache-ttl 0 fetches every page afresh)"


def text_table(header: list[str], rows: list[list[str]], *, numeric: bool = False, rule: bool = True) -> str:
    """The one text-table renderer: columns as wide as their widest cell, two spaces apart; with
    ``numeric`` every column but the first is right-aligned; ``rule`` draws dashes under the header."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def cell(i: int, text: str) -> str:
        return text.rjust(widths[i]) if numeric and i else text.ljust(widths[i])

    text = ["  ".join(cell(i, c) for i, c in enumerate(line)).rstrip() for line in lines]
    if rule:
        text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def _account(request: dict[str, Any]) -> str:
    """The account a row ran in: its ``account``, or the one in its role ARN."""
    return str(request.get("account") or account_of_role(request.get("role")) or "")


def _clip(text: object, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def write_json(path: str, document: Any, *, flag: str = "--out") -> None:
    """``document`` as JSON to ``path`` (``-``: stdout); a path that cannot be written is a usage
    error naming the flag, never a traceback."""
    text = to_json(document, indent=1, sort_keys=True)
    if path == "-":
        click.echo(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        raise click.UsageError(f"{flag} {path!r}: cannot write it ({exc.strerror})") from None
