"""Inventory across many accounts and regions: accounts, credentials, regions, catalog, cache, sinks.

Public API (stable; the DRS pipeline builds on it):

``Account(account_id, name=None, role=None)``
    One target account; the id is checked (12 digits) on construction.
``accounts_from_list(spec, role=None)``, ``accounts_from_organizations(engine, role=None, include=(),
exclude=(), ous=())``, ``accounts_from_dynamodb(engine, table, role=None, region=None) -> list[Account]``
    Account sources. The DynamoDB table has attributes ``accountId``, ``accountName``, ``roleName``.
    Bad ids, missing tables and unreadable Organizations raise ``InventoryError`` (a ValueError).
``assume_role(engine, account_id, role_name_or_arn, *, external_id=None, session_name="greenfetch")
-> Credentials | None``
    STS AssumeRole through the engine. ``Credentials`` is the STS record (``AccessKeyId``,
    ``SecretAccessKey``, ``SessionToken``, ``Expiration``, and the ``AccountId`` it was assumed in) and
    goes as is into ``Request(credentials=...)``. None when STS refuses; ``assume_role_status`` also
    returns an ``AssumeStatus`` saying why. It does not renew itself: ``AccountCredentials`` does.
``AccountCredentials(engine, role=None, *, external_id=None, session_name="greenfetch",
refresh_margin=300, concurrency=8, clock=time.time)``
    The per-run credential cache: ``.get(account) -> RoleCredentials | None`` (live botocore credentials
    for ``Request(credentials=...)`` that assume the role again within ``refresh_margin`` s of expiry;
    concurrent calls share one AssumeRole and each records its outcome; None exactly when the status is
    not ok, or for an account with no role that the caller's own credentials belong to),
    ``.prefetch(accounts)`` (bounded concurrency), ``.status(account) -> AssumeStatus | None``,
    ``.failures()``. An ``Account.role`` overrides the default role.
``RegionStatusStore(path=None, *, engine=None, table=None, ttl=86400, clock=time.time)``
    Region statuses in a JSON file or a DynamoDB table: ``update(account, service, region, status,
    error_code=None, count=None)``, ``get(account, service, region) -> RegionStatus | None``,
    ``active_regions(account, service, candidates) -> list[str]``, ``invalidate(...)``, ``flush()``.
    Statuses: ok, empty, denied, unavailable, error (``status_from_error(code)`` maps an AWS code).
``DynamoDBSink(engine, table, *, dead_letter_path=None, max_attempts=6).write(items) -> WriteReport``
    ``WriteReport(written, failed, dead_letter_path)``; ``.check()`` raises InventoryError for a
    missing table; ``record_items(records, id_of)`` turns inventory records into items.
``catalog() -> Catalog``: every resource type (``greenfetch catalog``): the core tier (``CATALOG``, the
curated types), the generated tier (from botocore's models) and the denied rows; ``Catalog.rows(service=None,
denied=True)``, ``.service(name)``, ``.select(types, exclude)``, ``.listing(service=None, types=None)`` (the
rows ``greenfetch catalog`` shows, its ``--service`` checked), ``catalog()[name] -> ResourceType``.
``resolve_types(types=None, exclude=None)``: ``--types``/``--exclude-types`` (``core`` by default, ``all``,
service names, type names, shell patterns such as ``ec2.*``). ``load_overlay(path)`` reads and checks an
overlay file (docs/inventory.md has the format).
``InventoryCache(ttl, directory=None, s3_uri=None, engine=None)``: memory -> directory -> S3.
``SQLiteSink(path).add(record) / .close(summary) / .abort()``: each run appended to one SQLite file
(tables ``runs``, ``resources``, ``fetches``, view ``latest``); ``open_sink(out, fmt)`` picks the files
or the database for ``--out``. ``InventoryDB(path)`` reads it back; ``diff_runs(db, from_run, to_run,
types) -> RunDiff`` (``.changes``: ``Change`` added/removed/changed, ``.counts``: ``DiffCounts``).
``PostgresSink(url)``, ``PostgresDB(url)``: the same tables in PostgreSQL (``--out postgresql://...``,
``data`` as JSONB), written by the coordinator or, with ``--broker``, by each worker
(``PostgresShardSink``); ``PostgresDB`` is what ``diff_runs`` reads there.
``run_inventory(engine, accounts, ...) -> InventoryReport`` and ``Inventory``: the orchestrator;
a record is ``{resource_type, account, region, items, status, error}``. ``plan_inventory(engine, ...) ->
Inventory``: the same checks and plan (the same keywords, without the sinks' ones), not yet started:
``for rec in plan_inventory(engine, types="efs").run()`` streams the records as they complete.
``S3Upload(engine, bucket, key, part_size=8 MiB)``: ``.write(bytes)``, ``.complete() -> error | None``,
``.abort()``: an S3 upload holding at most one part (one PutObject when the object fits in one);
``upload_file(engine, path, bucket, key)`` sends a file part by part; ``abort_incomplete_uploads(engine,
bucket, keys)`` removes what a killed run left. ``--s3-uri`` uses them (jsonl uploaded as it is written).
``Shard``, ``run_shard(engine, shard, sink) -> summary``, ``ShardSink``, ``DirectoryShardSink``,
``S3ShardSink(engine, "s3://BUCKET/PREFIX")`` (workers on other machines),
``merge_shard(total, records, summary)``: one account's part of a run, run anywhere (worker processes,
Celery workers); its records go to the sink under a fixed key, so a shard run twice overwrites.
"""

from ._accounts import (
    accounts_from_dynamodb,
    accounts_from_list,
    accounts_from_organizations,
    partition_of,
    role_arn_for,
)
from ._cache import InventoryCache
from ._catalog import CATALOG, Catalog, catalog, resolve_types
from ._credentials import AccountCredentials, AssumeStatus, Credentials, assume_role, assume_role_status
from ._diff import Change, DiffCounts, RunDiff, diff_runs
from ._dynamodb import DynamoDBSink, WriteReport, from_dynamodb_item, record_items, to_dynamodb_item
from ._fetch import Inventory, RunSummary
from ._overlay import Overlay, load_overlay
from ._postgres import PostgresDB, is_postgres_url
from ._postgres_shard import PostgresShardSink
from ._postgres_sink import PostgresSink
from ._region_status import (
    FAILING,
    RECORD_STATUSES,
    RegionStatus,
    RegionStatusStore,
    status_from_count,
    status_from_error,
    status_of,
)
from ._regions import (
    REGION_MODES,
    check_service,
    enabled_regions,
    expand_regions,
    known_regions,
    offered_regions,
    opted_in,
)
from ._resource_type import Detail, ResourceType
from ._run import InventoryReport, plan_inventory, resolve_accounts, run_inventory
from ._s3_upload import S3Upload, abort_incomplete_uploads, upload_file
from ._shard import DirectoryShardSink, Shard, ShardSink, merge_shard, run_shard
from ._shard_s3 import S3ShardSink
from ._sinks import SQLITE_SUFFIXES, FileSink, open_sink, upload_to_s3
from ._sqlite import SQLiteSink
from ._sqlite_read import InventoryDB
from ._types import Account, InventoryError, Record, check_account_id, record

__all__ = [
    "CATALOG",
    "Account",
    "AccountCredentials",
    "AssumeStatus",
    "Catalog",
    "Change",
    "Credentials",
    "Detail",
    "DiffCounts",
    "DirectoryShardSink",
    "DynamoDBSink",
    "FAILING",
    "FileSink",
    "Inventory",
    "InventoryCache",
    "InventoryDB",
    "InventoryError",
    "InventoryReport",
    "PostgresDB",
    "PostgresShardSink",
    "PostgresSink",
    "Record",
    "RECORD_STATUSES",
    "REGION_MODES",
    "Overlay",
    "RegionStatus",
    "RegionStatusStore",
    "ResourceType",
    "RunDiff",
    "RunSummary",
    "S3ShardSink",
    "S3Upload",
    "SQLITE_SUFFIXES",
    "SQLiteSink",
    "Shard",
    "ShardSink",
    "WriteReport",
    "abort_incomplete_uploads",
    "accounts_from_dynamodb",
    "accounts_from_list",
    "accounts_from_organizations",
    "assume_role",
    "assume_role_status",
    "catalog",
    "check_account_id",
    "check_service",
    "diff_runs",
    "enabled_regions",
    "expand_regions",
    "from_dynamodb_item",
    "is_postgres_url",
    "known_regions",
    "load_overlay",
    "merge_shard",
    "offered_regions",
    "open_sink",
    "opted_in",
    "partition_of",
    "plan_inventory",
    "record",
    "record_items",
    "resolve_accounts",
    "resolve_types",
    "role_arn_for",
    "run_inventory",
    "run_shard",
    "status_from_count",
    "status_from_error",
    "status_of",
    "to_dynamodb_item",
    "upload_file",
    "upload_to_s3",
]
