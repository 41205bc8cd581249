"""``run_inventory``: everything ``greenfetch inventory`` does, as one Python call.

Checks come first, cheapest first, so bad input fails before any API call where it can: types,
regions, output format and directory, S3 URI and role ARNs (no calls), then the account source,
the DynamoDB table and the S3 bucket (one call each; the S3 one also aborts the uploads a killed run
left), and only then the fetch. Sinks run after the fetch (the JSON Lines file, and its S3 upload,
stream beside it); a failure before the end leaves no partial file and no partial object.

The cache rule: pages younger than the TTL are served from the cache (a TTL of 0 serves none) and every
fresh page is written to it. A run into a database (``--out FILE.db`` or ``postgresql://...``) also never
serves a page fetched at or before the newest fetch that database records (``newest_fetch``): it could
only repeat or rewind the database's history. A ``fetch`` executor (``--broker``) gets the same rule as
``cache_ttl`` and ``cache_not_before`` and applies it where it fetches.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._engine import Engine
from .._models import Request
from ._accounts import accounts_from_dynamodb, accounts_from_list, accounts_from_organizations, excluding
from ._cache import InventoryCache, parse_s3_uri
from ._catalog import Catalog, catalog
from ._credentials import AccountCredentials, check_roles
from ._dynamodb import DynamoDBSink, WriteReport, record_items
from ._fetch import Inventory, RunSummary
from ._postgres_sink import PostgresSink
from ._region_status import RegionStatusStore
from ._regions import REGION_MODES, expand_regions, known_regions, parse_list
from ._resource_type import ResourceType
from ._sinks import FileSink, open_sink, prepare_s3, resolve_format, upload_to_s3
from ._sqlite import SQLiteSink
from ._types import Account, InventoryError, Record, dynamodb_table

__all__ = ["InventoryReport", "plan_inventory", "resolve_accounts", "run_inventory"]


@dataclass
class InventoryReport:
    summary: dict[str, Any]
    files: list[str] = field(default_factory=list)
    dynamodb: WriteReport | None = None
    s3_errors: list[str] = field(default_factory=list)
    records: list[Record] | None = None

    @property
    def failed(self) -> bool:
        return bool(
            self.summary["accounts_failed"]
            or any(self.summary["errors"].values())
            or self.s3_errors
            or (self.dynamodb is not None and self.dynamodb.failed)
        )


def resolve_accounts(
    engine: Engine,
    spec: str | None,
    *,
    role: str | None,
    exclude: list[str] | None = None,
    ous: list[str] | None = None,
    region: str | None = None,
) -> list[Account]:
    """``None`` (the caller's own account), ``org``, ``dynamodb:TABLE`` or a comma list of ids."""
    if spec is None or spec.strip() in ("", "self"):
        result = engine.execute(
            Request("sts", "GetCallerIdentity", {}, region=region or engine.config.home_region)
        )
        if not result.ok:
            raise InventoryError(f"cannot tell which account these credentials belong to: {result.error}")
        if not (own := (result.result or {}).get("Account")):
            raise InventoryError(
                "cannot tell which account these credentials belong to: GetCallerIdentity named "
                "no account; give --accounts ID"
            )
        return [Account(own, role=role)]
    spec = spec.strip()
    if spec == "org":
        accounts = accounts_from_organizations(engine, role=role, ous=ous or (), region=region)
        source = "--accounts org" + (f" --org-ou {','.join(ous)}" if ous else "")
    elif table := dynamodb_table(spec, flag="--accounts"):
        accounts, source = (
            accounts_from_dynamodb(engine, table, role=role, region=region),
            f"--accounts {spec}",
        )
    else:
        accounts, source = accounts_from_list(spec, role=role), "--accounts"
    return excluding(accounts, exclude or (), source=source)


def _catalog(engine: Engine, catalog_file: str | None) -> Catalog:
    """The run's catalog: the shipped one with ``catalog_file`` (default: the engine config's
    ``catalog``, ``--catalog FILE``/``GREENFETCH_CATALOG``) merged over it; InventoryError for a bad file."""
    return catalog(_catalog_file(engine, catalog_file))


def _catalog_file(engine: Engine, catalog_file: str | None) -> str | None:
    return catalog_file if catalog_file is not None else getattr(engine.config, "catalog", None)


def _select(
    types: str | list[str] | None,
    exclude_types: str | list[str] | None,
    engine: Engine,
    regions: str,
    exclude_regions: str | None,
    kinds: Catalog,
) -> tuple[list[ResourceType], str | list[str], list[str]]:
    """The checked types, the region plan (a mode or the names) and the excluded regions (no calls)."""
    chosen = kinds.select(types, exclude_types)
    known = known_regions(engine)
    excluded = expand_regions(exclude_regions, known) if exclude_regions else []
    plan = regions if regions in REGION_MODES else expand_regions(regions, known, exclude=excluded)
    return chosen, plan, excluded


def _targets(
    engine: Engine,
    accounts: str | None,
    role_name: str | None,
    exclude_accounts: str | None,
    org_ous: str | None,
) -> list[Account]:
    """The accounts to inventory, their roles checked (one call for org/dynamodb/own, none for a list)."""
    home = engine.config.home_region
    targets = resolve_accounts(
        engine,
        accounts,
        role=role_name,
        exclude=parse_list(exclude_accounts),
        ous=parse_list(org_ous),
        region=home,
    )
    check_roles(targets, role_name, home)
    return targets


def plan_inventory(
    engine: Engine,
    *,
    accounts: str | None = None,
    role_name: str | None = None,
    external_id: str | None = None,
    regions: str = "enabled",
    exclude_regions: str | None = None,
    types: str | list[str] | None = None,
    exclude_types: str | list[str] | None = None,
    cache_ttl: float | None = None,
    cache_dir: str | None = None,
    status_store: str | None = None,
    concurrency: int | None = None,
    exclude_accounts: str | None = None,
    org_ous: str | None = None,
    filter_offered: bool = True,
    catalog_file: str | None = None,
    tags: bool = False,
) -> Inventory:
    """``run_inventory``'s checks and plan with no sink, as an ``Inventory`` not yet started: InventoryError
    now for bad input (before any fetch); ``.run()`` then yields the records as they complete (closing it
    early cancels the calls queued and in flight), and ``.summary`` counts them."""
    kinds = _catalog(engine, catalog_file)
    chosen, region_plan, excluded = _select(types, exclude_types, engine, regions, exclude_regions, kinds)
    targets = _targets(engine, accounts, role_name, exclude_accounts, org_ous)
    ttl = engine.config.cache_ttl if cache_ttl is None else cache_ttl
    return _inventory(
        engine,
        targets,
        chosen,
        region_plan,
        excluded,
        regions=regions,
        role_name=role_name,
        external_id=external_id,
        ttl=ttl,
        cache_dir=cache_dir,
        not_before=None,
        status_store=status_store,
        concurrency=concurrency,
        filter_offered=filter_offered,
        tags=tags,
    )


def _inventory(
    engine: Engine,
    targets: list[Account],
    chosen: list[ResourceType],
    region_plan: str | list[str],
    excluded: list[str],
    *,
    regions: str,
    role_name: str | None,
    external_id: str | None,
    ttl: float,
    cache_dir: str | None,
    not_before: float | None,
    status_store: str | None,
    concurrency: int | None,
    filter_offered: bool,
    tags: bool = False,
) -> Inventory:
    cache = InventoryCache(ttl, cache_dir or engine.config.cache_dir, not_before=not_before)
    store = _status_store(engine, status_store, cache_dir) if regions == "active" or status_store else None
    creds = AccountCredentials(engine, role_name, external_id=external_id, region=engine.config.home_region)
    return Inventory(
        engine,
        targets,
        chosen,
        regions=region_plan,
        exclude=excluded,
        credentials=creds,
        status_store=store,
        cache=cache,
        concurrency=concurrency,
        filter_offered=filter_offered,
        tags=tags,
    )


def run_inventory(
    engine: Engine,
    *,
    accounts: str | None = None,
    role_name: str | None = None,
    external_id: str | None = None,
    regions: str = "enabled",
    exclude_regions: str | None = None,
    types: str | list[str] | None = None,
    exclude_types: str | list[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    fmt: str | None = None,
    dynamodb_table: str | None = None,
    s3_uri: str | None = None,
    cache_ttl: float | None = None,
    cache_dir: str | None = None,
    status_store: str | None = None,
    concurrency: int | None = None,
    exclude_accounts: str | None = None,
    org_ous: str | None = None,
    keep_records: bool = False,
    filter_offered: bool = True,
    on_record: Callable[[Record], None] | None = None,
    dead_letter_path: str | None = None,
    fetch: Callable[..., RunSummary] | None = None,
    catalog_file: str | None = None,
    tags: bool = False,
) -> InventoryReport:
    """Run an inventory end to end; InventoryError (before any fetch) for bad input.

    ``fetch`` replaces the in-process fetch with another executor (the Celery coordinator): it gets
    the checked plan as keywords (the cache rule as ``cache_ttl`` and ``cache_not_before``, the user's
    catalog file as ``catalog_file``: the executor's workers must list with it), calls
    ``on_record(record, fetched_at)`` for every record (``fetched_at``: epoch seconds when its page was
    fetched; may be left out when unknown) and returns the RunSummary; checks, files, sinks and the
    report stay this function's. A sink that workers can write directly
    (``direct``: PostgreSQL) is passed as ``sink``: the executor has them write it, and calls
    ``on_record`` only for records no worker wrote. ``catalog_file`` is a user's overlay merged over
    the shipped catalog (default: the engine config's ``catalog``, ``GREENFETCH_CATALOG``); ``tags``
    joins the Resource Groups Tagging API's tags into every item (docs/inventory.md)."""
    kinds = _catalog(engine, catalog_file)
    chosen, region_plan, excluded = _select(types, exclude_types, engine, regions, exclude_regions, kinds)
    fmt = resolve_format(out, fmt)  # json, jsonl, or sqlite (an --out FILE.db)
    if s3_uri:
        parse_s3_uri(s3_uri)
        if out is None:
            raise InventoryError("--s3-uri uploads the files written to --out; give --out DIR too")
        if fmt == "postgres":
            raise InventoryError(
                "--s3-uri uploads the files written to --out; a PostgreSQL --out writes no files"
            )
    sink = open_sink(out, fmt, catalog=kinds) if out is not None else None
    ddb: DynamoDBSink | None = None
    try:
        targets = _targets(engine, accounts, role_name, exclude_accounts, org_ous)
        ddb = (
            DynamoDBSink(engine, dynamodb_table, dead_letter_path=dead_letter_path)
            if dynamodb_table
            else None
        )
        if ddb is not None:
            ddb.check()
        # --s3-uri: sweep what a killed run left for our keys (a missing bucket fails here, before any
        # fetch); jsonl is uploaded as it is written and published when the local file is.
        stream = (
            prepare_s3(engine, sink, s3_uri, [t.name for t in chosen])
            if s3_uri and sink is not None
            else None
        )
        ttl = engine.config.cache_ttl if cache_ttl is None else cache_ttl
        not_before = sink.newest_fetch() if isinstance(sink, (SQLiteSink, PostgresSink)) else None
        inventory = _inventory(
            engine,
            targets,
            chosen,
            region_plan,
            excluded,
            regions=regions,
            role_name=role_name,
            external_id=external_id,
            ttl=ttl,
            cache_dir=cache_dir,
            not_before=not_before,
            status_store=status_store,
            concurrency=concurrency,
            filter_offered=filter_offered,
            tags=tags,
        )
        keep = keep_records
        kept: list[Record] = []
        # a file sink takes the cache's text of a record's items (which sink it is: asked once a run)
        add_text = sink.add if isinstance(sink, FileSink) else None

        def on_each(
            rec: Record,
            fetched_at: float | None = None,
            plain_items: Any = None,
            items_json: str | None = None,
        ) -> None:
            if add_text is not None:  # a FileSink: without the texts it encodes the record itself
                add_text(rec, fetched_at, plain_items, items_json)  # by position: no keyword matched
            elif sink is not None:
                sink.add(rec, fetched_at)
            if ddb is not None:  # streamed: the sink holds one window of items, not the run
                for item in record_items([rec], lambda rtype, item: _id_of(kinds, rtype, item)):
                    ddb.add(item)
            if keep:
                kept.append(rec)
            if on_record is not None:
                on_record(rec)

        if fetch is not None:
            direct = {"sink": sink} if getattr(sink, "direct", False) else {}  # workers write it themselves
            summary = fetch(
                accounts=targets,
                types=chosen,
                regions=region_plan,
                exclude=excluded,
                role_name=role_name,
                external_id=external_id,
                cache_ttl=ttl,
                cache_not_before=not_before,
                status_store=status_store,
                concurrency=concurrency,
                filter_offered=filter_offered,
                tags=tags,
                catalog_file=_catalog_file(engine, catalog_file),
                on_record=on_each,
                **direct,
            )
        else:
            # a file sink alone (no table, nothing kept, no one told): each record straight to its ``add``
            # (on_each would only call it), asked once a run and not through a frame a record
            alone = ddb is None and not keep and on_record is None
            deliver = add_text if add_text is not None and alone else on_each
            try:
                for rec, fetched_at in inventory.run_with_times():
                    # first: nothing changed its items. ``items_json`` is there whenever ``plain_items``
                    # is (the cache made both), and the sink writes from it alone when it is
                    marked = inventory.items_json(rec)
                    deliver(rec, fetched_at, inventory.plain_items(rec) if marked is None else None, marked)
            finally:  # the pages still waiting for the cache file's next transaction, whatever ended the run
                inventory.cache.close()
            summary = inventory.summary
        files = [str(p) for p in sink.close(summary.to_dict())] if sink is not None else []
    except BaseException as exc:
        if sink is not None:
            sink.abort()
        if ddb is not None and isinstance(exc, KeyboardInterrupt):  # Ctrl-C/SIGTERM: write the last window
            with contextlib.suppress(Exception):
                ddb.close()
        raise
    report = InventoryReport(summary.to_dict(), files, records=kept if keep_records else None)
    if ddb is not None:
        report.dynamodb = ddb.close()
    if s3_uri:  # the jsonl stream is already up (or its error kept); json/sqlite files go now
        report.s3_errors = ([stream.error] if stream is not None and stream.error else []) + (
            upload_to_s3(engine, [Path(f) for f in files], s3_uri) if stream is None else []
        )
    return report


def _id_of(kinds: Catalog, rtype: str, item: Any) -> str:
    kind = kinds.get(rtype)
    return str(kind.id_of(item)) if kind is not None else str(item)


def _status_store(engine: Engine, spec: str | None, cache_dir: str | None) -> RegionStatusStore:
    return RegionStatusStore.from_spec(
        engine, spec, cache_dir and os.path.join(cache_dir, "region-status.json")
    )
