"""``greenfetch inventory``, ``greenfetch regions``, ``greenfetch catalog``, ``greenfetch cache info|clear``.

A face only: every command calls greenfetch.inventory's Python API and maps InventoryError to a
usage error (exit 2, one line, no traceback).
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from collections.abc import Iterator
from typing import Any

import click

from .._config import Config, ConfigError, format_duration, parse_duration
from .._jsonable import to_json
from .._redact import redact_url
from ..inventory import (
    REGION_MODES,
    SQLITE_SUFFIXES,
    InventoryCache,
    InventoryError,
    RegionStatusStore,
    check_service,
    expand_regions,
    is_postgres_url,
    known_regions,
    offered_regions,
    run_inventory,
)
from ..inventory import (
    catalog as full_catalog,
)
from ._app import EXIT_FAILED, EXIT_OK, CliState, fail_usage, main, pass_state
from ._output import render_summary, text_table
from ._progress import Progress
from ._signals import exit_code

__all__ = ["cache", "catalog", "inventory", "regions"]


_NO_ERRORS: tuple[type[BaseException], ...] = ()

# The collector's third threshold while the command fetches (Python's is 10): docs/performance/inventory-cost.md,
# "the inventory command's own cost, part 3".
_FULL_EVERY = 100


@contextlib.contextmanager
def _fewer_full_collections() -> Iterator[None]:
    """While the command fetches, a full collection at most every ``_FULL_EVERY`` middle ones instead of
    Python's 10: the first one after start-up walks every botocore model loaded (~175k objects, ~0.1 G
    instructions) for garbage the young collections already take. Only over Python's own third
    threshold (a program that set its own keeps it); put back afterwards unless changed meanwhile."""
    before = gc.get_threshold()
    if len(before) != 3 or before[2] != 10:
        yield
        return
    raised = (*before[:2], _FULL_EVERY)
    gc.set_threshold(*raised)
    try:
        yield
    finally:
        if gc.get_threshold() == raised:
            gc.set_threshold(*before)


def _distributed() -> Any:
    """greenfetch.distributed, imported only for ``--broker``: it needs the ``celery`` extra."""
    try:
        from .. import distributed
    except ImportError as exc:
        from ._worker import CELERY_INSTALL

        fail_usage(f"--broker needs the celery extra ({exc}); install it with {CELERY_INSTALL}")
    return distributed


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value, "--cache-ttl")
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    if not seconds >= 0:  # as GREENFETCH_CACHE_TTL: -1 is a mistake, not a quiet "no cache"
        raise click.BadParameter(
            f"{value!r} is negative; use 0 (fetch every page afresh) or a duration such as 10min"
        )
    return seconds


_CACHE_TTL_HELP = (
    "Serve pages fetched within this long from the cache instead of calling AWS "
    f"[default: {format_duration(Config().cache_ttl)}; GREENFETCH_CACHE_TTL]. 0 fetches every page afresh (and "
    "still caches it). A run into FILE.db never serves a page older than the newest fetch in that database; "
    "the summary says how many pages came from the cache and how old the oldest is."
)


_CATALOG_HELP = (
    "Your own overlay file (the format of docs/inventory.md), merged over the shipped catalog: "
    "types added or changed, per-item detail steps [GREENFETCH_CATALOG]."
)


@main.command()
@click.option(
    "--accounts",
    help="'org' (AWS Organizations, ACTIVE members), 'dynamodb:TABLE' (accountId, "
    "accountName, roleName), or a comma list of account ids [default: your own].",
)
@click.option("--role-name", help="Role (name or ARN) to assume in each account.")
@click.option("--external-id", help="External id for AssumeRole.")
@click.option(
    "--regions",
    default="enabled",
    show_default=True,
    help="'enabled', 'active' (skip regions found empty/denied recently), or a comma list; * wildcards.",
)
@click.option("--exclude-regions", help="Comma list of regions (wildcards allowed) to leave out.")
@click.option("--exclude-accounts", help="Comma list of account ids to leave out.")
@click.option("--org-ou", help="With --accounts org: only accounts under these OU ids (comma list).")
@click.option(
    "--types",
    help="core (the curated types) [default], all, service names (efs), type names "
    "(ec2.vpcs) or patterns (ec2.*, *.clusters), comma-separated (greenfetch catalog).",
)
@click.option("--exclude-types", help="Types to leave out, in the forms --types takes.")
@click.option(
    "--catalog", "catalog_file", type=click.Path(dir_okay=False), metavar="FILE", help=_CATALOG_HELP
)
@click.option(
    "--tags/--no-tags",
    default=False,
    show_default=True,
    help="Join every item's tags from the Resource Groups Tagging API (one paginated call per account "
    "and region) as a `tags` map.",
)
@click.option(
    "--out",
    type=click.Path(),
    envvar="GREENFETCH_DATABASE_URL",
    help="Directory for the files, FILE.db (a SQLite database that each run appends to), or "
    "postgresql://USER@HOST:PORT/DB (the same tables in PostgreSQL) [GREENFETCH_DATABASE_URL; use "
    "it, PGPASSWORD or ~/.pgpass for a password].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "sqlite"]),
    help="json: one file per type [default]; jsonl: one stream (inventory.jsonl); sqlite: --out FILE.db "
    "(the default for a .db/.sqlite --out).",
)
@click.option("--dynamodb-table", help="Also write every resource to this DynamoDB table (pk, sk).")
@click.option(
    "--dead-letter", type=click.Path(dir_okay=False), help="Where DynamoDB items that fail go (JSONL)."
)
@click.option("--s3-uri", help="Also upload the files to s3://BUCKET/PREFIX.")
@click.option("--cache-ttl", metavar="DURATION", help=_CACHE_TTL_HELP)
@click.option(
    "--status-store", help="Region status store: a JSON path or dynamodb:TABLE [default: in the cache dir]."
)
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--region", help="Region for account discovery, STS and global APIs.")
@click.option("--endpoint-url", help="Send every call here (a test endpoint).")
@click.option("--progress/--no-progress", default=None, help="Progress on stderr (default: on a terminal).")
@click.option(
    "--broker",
    envvar="GREENFETCH_BROKER_URL",
    metavar="URL",
    help="Send the shards to `greenfetch worker`s on this Redis, redis://HOST:PORT/DB "
    "[GREENFETCH_BROKER_URL; use it for URLs with a password].",
)
@click.option(
    "--shards",
    "shard_uri",
    metavar="s3://BUCKET/PREFIX",
    help="With --broker: workers leave their shards here instead of in --out (workers on other "
    "machines); each worker uses its own AWS credentials.",
)
@pass_state
def inventory(
    state: CliState,
    accounts: str | None,
    role_name: str | None,
    external_id: str | None,
    regions: str,
    exclude_regions: str | None,
    exclude_accounts: str | None,
    org_ou: str | None,
    types: str | None,
    exclude_types: str | None,
    out: str | None,
    fmt: str | None,
    dynamodb_table: str | None,
    dead_letter: str | None,
    s3_uri: str | None,
    cache_ttl: str | None,
    status_store: str | None,
    concurrency: int,
    region: str | None,
    endpoint_url: str | None,
    progress: bool | None,
    broker: str | None = None,
    shard_uri: str | None = None,
    catalog_file: str | None = None,
    tags: bool = False,
) -> None:
    """Fetch resources across accounts, regions and types; one record per (type, account, region)."""
    # The plan runs windows of at most max_clients / 2 clients, each window account by account
    # (Plan.units): each client made once a run; an LRU of twice the concurrency keeps a window hot
    # while bounding memory (~1 MB per botocore client).
    engine = state.engine(
        region=region,
        endpoint_url=endpoint_url,
        concurrency=concurrency,
        max_clients=min(512, max(64, 2 * concurrency)),
        catalog=catalog_file,
    )
    bar = Progress(enabled=progress, interval=0.2)
    fetch, broker_errors = None, _NO_ERRORS
    try:
        if shard_uri is not None and not broker:
            raise InventoryError(
                "--shards is where --broker workers leave their shards; give --broker URL too"
            )
        if broker:
            distributed = _distributed()
            broker_errors = (distributed.BrokerError,)
            fetch = distributed.broker_fetch(
                broker,
                out,
                engine.config,
                progress=bar.enabled,
                log=lambda line: click.echo(line, err=True),
                shards=shard_uri,
                engine=engine,
            )
        with _fewer_full_collections():
            report = run_inventory(
                engine,
                accounts=accounts,
                role_name=role_name,
                external_id=external_id,
                regions=regions,
                exclude_regions=exclude_regions,
                types=types,
                exclude_types=exclude_types,
                out=out,
                fmt=fmt,
                dynamodb_table=dynamodb_table,
                s3_uri=s3_uri,
                cache_ttl=_duration(cache_ttl),
                status_store=status_store,
                concurrency=concurrency,
                exclude_accounts=exclude_accounts,
                org_ous=org_ou,
                keep_records=out is None,
                on_record=bar.record if bar.enabled else None,  # a hidden line counts nothing
                dead_letter_path=dead_letter,
                fetch=fetch,
                tags=tags,
            )
    except broker_errors as exc:
        bar.close()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except InventoryError as exc:
        bar.close()
        fail_usage(str(exc))
        return
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: temporary files already removed
        bar.close()
        database = fmt == "sqlite" or str(out).lower().endswith(SQLITE_SUFFIXES) or is_postgres_url(out)
        click.echo(
            f"interrupted: {redact_url(out)} keeps what completed, as a run with no finished_at"
            if database
            else "interrupted: no files written",
            err=True,
        )
        sys.exit(exit_code(exc))
    bar.close()
    if out is None:
        for rec in report.records or []:
            click.echo(to_json(rec))
    click.echo(render_summary(report.summary), err=True)
    for path in report.files:
        click.echo(f"wrote {path}", err=True)
    if report.dynamodb is not None:
        d = report.dynamodb
        click.echo(
            f"dynamodb {dynamodb_table}: {d.written} written, {d.failed} failed"
            + (f" (dead letters: {d.dead_letter_path})" if d.dead_letter_path else ""),
            err=True,
        )
    for error in report.s3_errors:
        click.echo(f"s3 upload failed: {error}", err=True)
    sys.exit(EXIT_FAILED if report.failed else EXIT_OK)


@main.command()
@click.option("--regions", default="*", show_default=True, help="Comma list or wildcards to show.")
@click.option("--service", help="Only regions where AWS offers this service (SSM public parameters).")
@click.option("--status-store", help="Show region statuses from this store (JSON path or dynamodb:TABLE).")
@click.option("--region", help="Region for the SSM call.")
@click.option("--endpoint-url", help="Send calls here (a test endpoint).")
@pass_state
def regions(
    state: CliState,
    regions: str,
    service: str | None,
    status_store: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """List regions: all known (or matching --regions), offered for --service, and stored statuses."""
    engine = state.engine(region=region, endpoint_url=endpoint_url)
    try:
        if regions in REGION_MODES:
            fail_usage(f"greenfetch regions lists names; use a comma list or wildcards, not {regions!r}")
        chosen = expand_regions(regions, known_regions(engine))
        if service:
            offered = offered_regions(engine, service)
            if offered is None:
                check_service(engine, service)  # a typo is exit 2 with the nearest names, not every region
                click.echo(f"note: could not read SSM's region list for {service!r}; showing all", err=True)
            else:
                chosen = [r for r in chosen if r in offered]
        for name in chosen:
            click.echo(name)
        if status_store:
            store = RegionStatusStore.from_spec(engine, status_store)
            for row in store.all():
                click.echo(
                    f"{row.account} {row.service} {row.region} {row.status} {row.error_code or ''}"
                    f" {row.count if row.count is not None else ''}",
                    err=True,
                )
    except InventoryError as exc:
        fail_usage(str(exc))


_CATALOG_COLUMNS = [
    "name",
    "service",
    "operation",
    "scope",
    "items",
    "id_field",
    "resource_id",
    "parent",
    "tier",
]


@main.command()
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--service", help="Only this service's types (a botocore service name, e.g. efs).")
@click.option("--types", help="Only the types --types would select (core, all, efs, 'ec2.*', ...).")
@click.option(
    "--all", "show_all", is_flag=True, help="Also the denied operations in the table (json has them always)."
)
@click.option("--counts", is_flag=True, help="Types per service and tier instead of the types.")
@click.option(
    "--catalog", "catalog_file", type=click.Path(dir_okay=False), metavar="FILE", help=_CATALOG_HELP
)
@pass_state
def catalog(
    state: CliState,
    output: str,
    service: str | None,
    types: str | None,
    show_all: bool,
    counts: bool,
    catalog_file: str | None = None,
) -> None:
    """The resource types greenfetch inventory knows (names for --types): core, generated, denied."""
    try:
        kinds = full_catalog(state.config(catalog=catalog_file).catalog)
        rows = kinds.listing(service=service, types=types)
    except InventoryError as exc:
        fail_usage(str(exc))
        return
    if counts:
        _catalog_counts(rows, output)
        return
    if output == "json":
        click.echo(_json_rows([t.describe() for t in rows]))
        return
    shown = [t for t in rows if show_all or not t.denied]
    cols = _CATALOG_COLUMNS + (["deny_reason"] if show_all else [])
    click.echo(text_table(cols, [[str(t.describe()[c] or "") for c in cols] for t in shown], rule=False))
    tiers = {tier: sum(t.tier == tier for t in rows) for tier in ("core", "generated", "denied")}
    hidden = "" if show_all or not tiers["denied"] else " (denied not shown: --all)"
    click.echo(
        f"{len(rows)} types in {len({t.service for t in rows})} services: "
        + ", ".join(f"{n} {tier}" for tier, n in tiers.items())
        + hidden,
        err=True,
    )


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """A JSON array, one row a line (json's C encoder: an indented dump of 2,000 rows is 6x slower)."""
    return "[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]"


def _catalog_counts(rows: list[Any], output: str) -> None:
    per: dict[str, dict[str, int]] = {}
    for t in rows:
        per.setdefault(t.service, {"core": 0, "generated": 0, "denied": 0})[t.tier] += 1
    table: list[dict[str, Any]] = [{"service": s, **c} for s, c in sorted(per.items())]
    if output == "json":
        click.echo(_json_rows(table))
        return
    cols = ["service", "core", "generated", "denied"]
    total = ["total"] + [str(sum(r[c] for r in table)) for c in cols[1:]]
    click.echo(text_table(cols, [[str(r[c]) for c in cols] for r in table] + [total], rule=False))


@main.group()
def cache() -> None:
    """The inventory cache (memory -> GREENFETCH_CACHE_DIR -> S3)."""


def _cache(state: CliState, cache_dir: str | None) -> InventoryCache:
    config = state.config()
    return InventoryCache(config.cache_ttl or 1.0, cache_dir or config.cache_dir)


@cache.command("info")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="[default: GREENFETCH_CACHE_DIR]")
@pass_state
def cache_info(state: CliState, cache_dir: str | None) -> None:
    """Where the cache is, how many entries and bytes, and how many are still fresh."""
    info: dict[str, Any] = _cache(state, cache_dir).info()
    for key in ("directory", "file", "ttl_seconds", "entries", "fresh_entries", "bytes"):
        click.echo(f"{key}: {info[key]}")
    if info["earlier_version_files"]:
        click.echo(
            f"earlier_version_files: {info['earlier_version_files']} (greenfetch cache clear removes them)"
        )


@cache.command("clear")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="[default: GREENFETCH_CACHE_DIR]")
@pass_state
def cache_clear(state: CliState, cache_dir: str | None) -> None:
    """Remove the cache's entries (and entry files an earlier version wrote; nothing else)."""
    removed = _cache(state, cache_dir).clear()
    click.echo(f"removed {removed} cache entries")
