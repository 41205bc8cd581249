"""The steps of the DRS inventory sync, each one job, each through the engine.

Every AWS call here is a ``Request`` run by ``Engine.batch_requests`` (or the inventory modules,
which do the same), so the gevent and threads backends run exactly the same code; only
``GREENFETCH_ENGINE`` differs. Results come back in request order, which is what makes the output
of both engines identical: accounts in table order, regions in the order given, servers in DRS's
order, DynamoDB items in that order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._engine import Engine
from .._models import Request
from ..inventory import (
    Account,
    AccountCredentials,
    DynamoDBSink,
    WriteReport,
    accounts_from_dynamodb,
    status_of,
)
from ._records import (
    RegionOutcome,
    chunks,
    enrich_server,
    instance_id_of,
    origin_of,
    region_outcome,
    tag_server,
)

__all__ = [
    "EC2_BATCH",
    "account_credentials",
    "collect_accounts",
    "enrich_servers",
    "query_all_regions",
    "query_ec2_instances",
    "query_region",
    "write_inventory",
]

EC2_BATCH = 200  # values per DescribeInstances filter: AWS's limit per filter
DRS_PAGE = 100


def collect_accounts(engine: Engine, targets_table: str, *, region: str | None = None) -> list[Account]:
    """The target accounts (accountId, accountName, roleName) from the targets table.

    A table that cannot be read raises InventoryError naming it: a sync that silently found no
    accounts would overwrite nothing and report success, which is worse than failing."""
    return accounts_from_dynamodb(engine, targets_table, region=region)


def account_credentials(creds: AccountCredentials, accounts: Iterable[Account | str]) -> dict[str, Any]:
    """Assumed-role credentials per account id; None where AssumeRole failed (the caller skips that
    account and reports ``creds.status(account)``). At most ``creds.concurrency`` STS calls at once."""
    return creds.prefetch(accounts)


def _drs_request(account: str, region: str, credentials: Any) -> Request:
    return Request(
        "drs",
        "DescribeSourceServers",
        {"maxResults": DRS_PAGE},
        region=region,
        account=account,
        credentials=credentials,
        paginate=True,
    )


def query_region(engine: Engine, account: str, region: str, credentials: Any) -> RegionOutcome:
    """All source servers of one account in one region (every page), or why there are none."""
    return region_outcome(account, region, engine.execute(_drs_request(account, region, credentials)))


def query_all_regions(
    engine: Engine,
    targets: Sequence[tuple[str, Any]],
    regions: Mapping[str, Sequence[str]],
    *,
    store: Any = None,
    concurrency: int | None = None,
    done: dict[int, RegionOutcome] | None = None,
) -> list[RegionOutcome]:
    """Every (account, region) at once: ``targets`` is [(account id, credentials)], ``regions`` the
    regions to query per account. One region's failure is its own outcome and never stops the
    others. Each outcome updates the region status store (when given) as it is known.

    ``done`` (position -> outcome) is filled as outcomes arrive, so a caller stopped half-way
    (SIGTERM) still has every region that answered; the returned list is in request order."""
    pairs = [(account, region, creds) for account, creds in targets for region in regions[account]]
    done = {} if done is None else done
    for result in engine.iter_results((_drs_request(a, r, c) for a, r, c in pairs), concurrency):
        account, region, _ = pairs[result.index]
        outcome = done[result.index] = region_outcome(account, region, result)
        if store is not None:
            status = status_of(outcome.ok, len(outcome.servers), outcome.error_code)
            store.update(
                outcome.account, "drs", outcome.region, status, outcome.error_code, len(outcome.servers)
            )
    return [done[i] for i in sorted(done)]


def query_ec2_instances(
    engine: Engine,
    wanted: Mapping[tuple[str, str], Sequence[str]],
    credentials: Mapping[str, Any],
    *,
    concurrency: int | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """EC2 instances by id, queried in each instance's own account and region with that account's
    credentials, at most EC2_BATCH ids per DescribeInstances call.

    Returns (instances by id, {(account, region): error} for queries that failed). Ids are passed as
    an ``instance-id`` filter, not ``InstanceIds``: one missing instance then costs one missing
    record instead of failing its whole batch with InvalidInstanceID.NotFound."""
    jobs = [
        (account, region, batch)
        for (account, region), ids in wanted.items()
        for batch in chunks(sorted(set(ids)), EC2_BATCH)
    ]
    requests = (
        Request(
            "ec2",
            "DescribeInstances",
            {"Filters": [{"Name": "instance-id", "Values": batch}]},
            region=region,
            account=account,
            credentials=credentials.get(account),
            paginate=True,
        )
        for account, region, batch in jobs
    )
    instances: dict[str, dict[str, Any]] = {}
    failures: dict[tuple[str, str], str] = {}
    for (account, region, _), result in zip(jobs, engine.batch_requests(requests, concurrency), strict=True):
        if result.error is not None:
            failures[(account, region)] = result.error
            continue
        for reservation in result.result.get("Reservations") or []:
            for instance in reservation.get("Instances") or []:
                instances[instance["InstanceId"]] = instance
    return instances, failures


def enrich_servers(
    engine: Engine,
    records: Sequence[dict[str, Any]],
    creds: AccountCredentials,
    known: Mapping[str, Any],
    *,
    concurrency: int | None = None,
) -> list[dict[str, Any]]:
    """Each record with its EC2 instance's network interfaces, tags and instance profile.

    Instances are looked up in their origin account (cross-account: credentials for an origin
    account outside the targets are assumed with the same role). A server whose account has no
    credentials, whose query failed or whose instance is gone keeps its DRS data and says why."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for record in records:
        instance_id = instance_id_of(record)
        if instance_id:
            wanted.setdefault(origin_of(record), []).append(instance_id)
    credentials = dict(known)
    missing = sorted({account for account, _ in wanted} - set(credentials))
    credentials.update(account_credentials(creds, missing) if missing else {})
    failures: dict[tuple[str, str], str] = {}
    for account, region in list(wanted):
        status = creds.status(account)
        if credentials.get(account) is None and (status is None or not status.ok):  # never "use our own"
            failures[(account, region)] = status.error if status and status.error else "no credentials"
            del wanted[(account, region)]
    instances, query_failures = query_ec2_instances(engine, wanted, credentials, concurrency=concurrency)
    failures.update(query_failures)
    return [enrich_server(record, instances, failures) for record in records]


def tag_outcomes(
    outcomes: Iterable[RegionOutcome], names: Mapping[str, str | None], synced_at: str
) -> list[dict[str, Any]]:
    """Inventory records from region outcomes, in outcome order then DRS's order."""
    return [
        tag_server(server, o.account, names.get(o.account), o.region, synced_at)
        for o in outcomes
        for server in o.servers
    ]


def write_inventory(
    engine: Engine,
    table: str,
    items: Sequence[dict[str, Any]],
    *,
    dead_letter_dir: str | None = None,
    region: str | None = None,
    progress: dict[str, int] | None = None,
) -> WriteReport:
    """DynamoDB items (already typed) into the inventory table: BatchWriteItem in batches of 25,
    unprocessed items retried with backoff, the rest to a dead-letter file; written/failed counts.

    ``progress["sent"]`` is how many leading items have been sent (written or dead-lettered), set
    as each window of the sink completes: a caller stopped half-way (SIGTERM) knows which items
    reached DynamoDB. The sink writes a window once ``sink.window`` items wait (its documented rule)."""
    folder = dead_letter_dir or engine.config.cache_dir
    sink = DynamoDBSink(
        engine, table, region=region, dead_letter_path=os.path.join(folder, f"drs-dead-letter-{table}.jsonl")
    )
    progress = {} if progress is None else progress
    progress["sent"] = 0
    for count, item in enumerate(items, 1):
        sink.add_raw(item)
        if count % sink.window == 0:
            progress["sent"] = count
    report = sink.close()
    progress["sent"] = len(items)
    return report
