"""``greenfetch diff FILE.db`` (or ``postgresql://...``): what was added, removed and changed between two inventory runs.

A face only: the runs are chosen and merged by ``greenfetch.inventory.diff_runs`` over the file's read side
(``InventoryDB``, ``PostgresDB``); this module renders the changes (table, JSON or JSON Lines, streamed for the
JSON forms) and maps bad input (a missing or foreign file, an unknown run or type) to exit 2.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import IO

import click

from .._redact import redact_url
from ..inventory import (
    Change,
    InventoryDB,
    InventoryError,
    PostgresDB,
    RunDiff,
    diff_runs,
    is_postgres_url,
    resolve_types,
)
from ._app import fail_usage, main
from ._output import OUTPUTS, text_table

__all__ = ["diff"]


@main.command()
@click.argument("database", type=click.Path(dir_okay=False), envvar="GREENFETCH_DATABASE_URL")
@click.option(
    "--from",
    "from_run",
    type=int,
    metavar="RUN",
    help="Run id to compare from [default: the finished run before --to].",
)
@click.option(
    "--to", "to_run", type=int, metavar="RUN", help="Run id to compare to [default: the last finished run]."
)
@click.option(
    "--type", "types", metavar="T", help="Only these resource types (comma list, or a service such as ec2)."
)
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True)
def diff(database: str, from_run: int | None, to_run: int | None, types: str | None, output: str) -> None:
    """Resources added, removed and changed between two runs of an inventory database (written by
    `greenfetch inventory --out FILE.db`, or a postgresql://USER@HOST:PORT/DB URL [GREENFETCH_DATABASE_URL]).
    Only (type, account, region) fetched successfully by both runs are compared, and only where the later
    run's page is newer than the earlier run's (a page served from the cache is not; a warning says so);
    fields the catalog names volatile are ignored. A summary line goes to stderr."""
    name = redact_url(database)
    try:
        names = [t.name for t in resolve_types(types)] if types else None
        with PostgresDB(database) if is_postgres_url(database) else InventoryDB(database) as db:
            result = diff_runs(db, from_run, to_run, names, name=name)
            _write(result, output, sys.stdout)
    except InventoryError as exc:
        fail_usage(str(exc))
    except sqlite3.Error as exc:
        fail_usage(f"{database!r} cannot be read: {exc}")
    except Exception as exc:  # the PostgreSQL driver's errors (the server went away mid-diff)
        if type(exc).__module__.partition(".")[0] != "psycopg":
            raise
        fail_usage(
            f"{name!r} cannot be read: {redact_url(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)}"
        )
    click.echo(_summary(result), err=True)
    for line in _warnings(result, database):
        click.echo(line, err=True)


def _write(result: RunDiff, output: str, out: IO[str]) -> None:
    if output == "table":  # a table needs its widths: the changes are held (the JSON forms stream)
        rows = [
            [c.change, c.resource_type, c.account, c.region, c.resource_id, ", ".join(c.fields)]
            for c in result.changes
        ]
        out.write(text_table(["change", "type", "account", "region", "resource id", "fields"], rows) + "\n")
        if not rows:
            out.write("(no changes)\n")
    elif output == "jsonl":
        for change in result.changes:
            out.write(_dumps(change) + "\n")
    else:  # a JSON array, streamed: memory stays one change wide
        first = True
        out.write("[")
        for change in result.changes:
            out.write(("\n" if first else ",\n") + _dumps(change))
            first = False
        out.write("\n]\n" if not first else "]\n")


def _dumps(change: Change) -> str:
    return json.dumps(change.to_dict(), ensure_ascii=False)


def _summary(result: RunDiff) -> str:
    c, a, b = result.counts, result.before, result.after
    unfinished = [str(r["run_id"]) for r in (a, b) if r["finished_at"] is None]
    note = f" (run {' and '.join(unfinished)} did not finish)" if unfinished else ""
    stale = (
        f", {c.stale} not compared as their pages came from the cache (see below)"
        if result.stale_fetches
        else ""
    )
    return (
        f"run {a['run_id']} ({a['started_at']}) -> run {b['run_id']} ({b['started_at']}){note}: "
        f"{c.added} added, {c.removed} removed, {c.changed} changed, {c.unchanged} unchanged, "
        f"{c.not_compared} not compared (their type, account and region were not fetched ok by both runs)"
        f"{stale}"
    )


_TRUE_RUN = "for a true comparison, run `greenfetch inventory --cache-ttl 0 --out FILE.db` (every page fetched afresh)"


def _warnings(result: RunDiff, database: str) -> list[str]:
    """One line per way the later run's pages may be older than they look (from the cache)."""
    later, earlier = result.later["run_id"], result.earlier["run_id"]
    lines = []
    if result.stale_fetches:
        lines.append(
            f"warning: run {later} took {result.stale_fetches} fetches from the cache, pages no newer than "
            f"run {earlier}'s (the oldest fetched {result.stale_oldest}); they are not compared; {_TRUE_RUN}"
        )
    if result.untimed_cached:
        lines.append(
            f"warning: run {later} took {result.untimed_cached} fetches from the cache and {database!r} was "
            "written before greenfetch recorded when each page was fetched, so their changes may be the "
            f"cache's age; {_TRUE_RUN}"
        )
    return lines
