"""The DRS inventory sync: options, the orchestrator, and the response it returns.

The orchestrator only calls steps (``_steps``) in order; the response is built by a pure function
(``build_response``) so its shape is tested without AWS. Response shape (stable; Lambda returns it):

    {"statusCode": 200 | 207 | 500, "engine": "gevent" | "threads", "syncedAt": ISO-8601,
     "totals": {"accounts", "accountsFailed", "regions", "regionsFailed", "servers", "enriched",
                "written", "failed"},
     "accounts": [{"accountId", "accountName", "credentials": "ok" | status, "servers",
                   "regions": {region: {"status", "count", "errorCode", "guidance"}}}],
     "errors": [{"account", "region", "code", "message", "guidance", "retryable"}]}

200: everything succeeded. 207: the sync ran and wrote what it could, some accounts or regions failed.
500: the sync could not run at all (targets table unreadable, bad options).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._engine import Engine
from ..inventory import Account, AccountCredentials, InventoryError, WriteReport
from ._records import RegionOutcome, to_dynamodb_item
from ._steps import collect_accounts, enrich_servers, query_all_regions, tag_outcomes, write_inventory

__all__ = [
    "SyncInterrupted",
    "SyncOptions",
    "SyncResult",
    "build_response",
    "client_budget",
    "parse_regions",
    "resolve_regions",
    "sync_source_server_inventory",
]

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class SyncOptions:
    """What one sync needs. ``regions`` is ``"active"`` (every DRS region the status store does not
    rule out) or a list of region names."""

    targets_table: str
    inventory_table: str
    role_name: str | None = None
    regions: str | Sequence[str] = "active"
    external_id: str | None = None
    concurrency: int | None = None
    dead_letter_dir: str | None = None


@dataclass
class SyncResult:
    """Everything a sync produced: the response plus the data behind it (for --out and comparisons)."""

    response: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[RegionOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step; never in the response


class _Laps:
    """Seconds per step, for logs and the benchmark (kept out of the response, which must not vary)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self._last = round(now - self._last, 4), now


class SyncInterrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP stopped a sync half-way; ``result`` holds what completed.

    What completed: the regions that answered DRS (their outcomes, records and region statuses,
    the statuses already flushed to the store), past the DRS step the enriched records, and in the
    write step the items already sent to DynamoDB (whole windows of the sink; ``totals.written``
    counts them, dead letters among them included). No new step starts after the signal: a
    half-enriched inventory is never written to DynamoDB. A KeyboardInterrupt, so code that cleans up
    for Ctrl-C does the same here; ``signum`` is the signal's number (see cli._signals)."""

    def __init__(self, result: SyncResult, cause: BaseException):
        super().__init__(result.response["errors"][-1]["message"])
        self.result = result
        self.signum = int(getattr(cause, "signum", 2))


def client_budget(concurrency: int) -> int:
    """How many botocore clients an engine running this sync should keep (``Config.max_clients``).

    The sync uses each client once: one per (service, account, region), each with its own
    credentials, and an EC2 client costs about 1.6 MB and 19 ms of CPU to build. With the default
    cache of 512, 50 accounts x 10 regions kept ~1,000 clients alive (peak RSS ~970 MB); keeping
    twice the concurrency bounds memory (measured: 300 EC2 clients +434 MB -> +82 MB) and costs
    nothing, since a client is never needed again once its region is done."""
    return max(64, 2 * concurrency)


def parse_regions(spec: str | Sequence[str]) -> str | list[str]:
    """``"active"`` or a list of region names (order kept, duplicates dropped); InventoryError otherwise."""
    if isinstance(spec, str) and spec.strip() == "active":
        return "active"
    regions = (
        [r.strip() for r in spec.split(",")] if isinstance(spec, str) else [str(r).strip() for r in spec]
    )
    bad = [r for r in regions if not _REGION.match(r)]
    if bad or not regions:
        raise InventoryError(
            f"regions {', '.join(bad) if bad else repr(spec)}: not region names; use 'active' "
            "or a comma list of region names such as us-east-1,eu-west-1"
        )
    return list(dict.fromkeys(regions))


def resolve_regions(
    engine: Engine, spec: str | Sequence[str], accounts: Sequence[Account], store: Any = None
) -> dict[str, list[str]]:
    """Regions to query per account: the given list, or (``active``) every region botocore knows DRS
    in, minus those the status store rules out for that account (empty, denied, not enabled)."""
    regions = parse_regions(spec)
    if regions == "active":
        candidates = engine.clients.session(None).get_available_regions("drs")
        return {
            a.account_id: (
                store.active_regions(a.account_id, "drs", candidates) if store else list(candidates)
            )
            for a in accounts
        }
    return {a.account_id: list(regions) for a in accounts}


def sync_source_server_inventory(
    engine: Engine,
    options: SyncOptions,
    *,
    store: Any = None,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> SyncResult:
    """Accounts -> credentials -> DRS in every region -> EC2 enrichment -> DynamoDB, then the response.

    Never raises for AWS trouble in an account or region: that is reported per account/region.
    A targets table that cannot be read, or a malformed role in it, gives a 500 response with the reason."""
    synced_at, lap = now().isoformat(), _Laps()
    try:
        accounts = collect_accounts(engine, options.targets_table)
        regions = resolve_regions(engine, options.regions, accounts, store)
        lap("accounts")
        creds = AccountCredentials(
            engine, options.role_name, external_id=options.external_id, session_name="greenfetch-drs-sync"
        )
        known = creds.prefetch(accounts)  # a malformed role name or ARN raises here, before any STS call
    except InventoryError as exc:
        return SyncResult(build_response(engine, synced_at, [], None, [], [], None, fatal=str(exc)))
    lap("credentials")
    targets = [(a.account_id, known.get(a.account_id)) for a in accounts if _has_credentials(creds, a)]
    names = {a.account_id: a.name for a in accounts}
    done: dict[int, RegionOutcome] = {}
    records: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    progress = {"sent": 0}
    try:
        outcomes = query_all_regions(
            engine, targets, regions, store=store, concurrency=options.concurrency, done=done
        )
        lap("drs")
        records = tag_outcomes(outcomes, names, synced_at)
        records = enrich_servers(engine, records, creds, known, concurrency=options.concurrency)
        lap("ec2")
        items = [to_dynamodb_item(r) for r in records]
        report = write_inventory(
            engine, options.inventory_table, items, dead_letter_dir=options.dead_letter_dir, progress=progress
        )
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: keep what completed, start nothing new
        step = next(s for s in ("drs", "ec2", "dynamodb") if s not in lap.laps)
        outcomes = [done[i] for i in sorted(done)]
        records = records or tag_outcomes(outcomes, names, synced_at)
        _flush(store)
        name = _signal_name(getattr(exc, "signum", 2))
        sent = items[: progress["sent"]]
        stopped = (
            f"interrupted by {name} during the {step} step: {len(outcomes)} regions answered, "
            f"{len(sent)} of {len(records)} items sent to DynamoDB"
        )
        partial = WriteReport(len(sent), 0, None) if sent else None
        response = build_response(
            engine, synced_at, accounts, creds, outcomes, records, partial, interrupted=stopped
        )
        raise SyncInterrupted(SyncResult(response, records, sent, outcomes, lap.laps), exc) from exc
    _flush(store)
    lap("dynamodb")
    response = build_response(engine, synced_at, accounts, creds, outcomes, records, report)
    return SyncResult(response, records, items, outcomes, lap.laps)


def _has_credentials(creds: AccountCredentials, account: Account) -> bool:
    """Assumed, or needing none (no role, and the caller's own credentials are the account's)."""
    status = creds.status(account)
    return status is not None and status.ok


def _flush(store: Any) -> None:
    if store is not None and hasattr(store, "flush"):
        store.flush()


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def build_response(
    engine: Engine,
    synced_at: str,
    accounts: Sequence[Account],
    creds: AccountCredentials | None,
    outcomes: Sequence[RegionOutcome],
    records: Sequence[dict[str, Any]],
    report: Any,
    *,
    fatal: str | None = None,
    interrupted: str | None = None,
) -> dict[str, Any]:
    """The stable response (module docstring): counts per account and region, and every error.
    ``interrupted`` (a stopped sync) adds a last error, code ``Interrupted``, and makes it a 207."""
    errors: list[dict[str, Any]] = (
        [
            {
                "account": None,
                "region": None,
                "code": "SyncFailed",
                "message": fatal,
                "guidance": None,
                "retryable": False,
            }
        ]
        if fatal
        else []
    )
    per_account = []
    for account in accounts:
        status = creds.status(account) if creds else None
        entry: dict[str, Any] = {
            "accountId": account.account_id,
            "accountName": account.name or "",
            "credentials": "ok" if status is None or status.ok else status.status,
            "servers": 0,
            "regions": {},
        }
        if status is not None and not status.ok:
            errors.append(
                {
                    "account": account.account_id,
                    "region": None,
                    "code": status.error_code,
                    "message": status.error,
                    "guidance": None,
                    "retryable": False,
                }
            )
        per_account.append(entry)
    by_id = {e["accountId"]: e for e in per_account}
    for o in outcomes:
        by_id[o.account]["regions"][o.region] = {
            "status": o.status,
            "count": len(o.servers),
            "errorCode": o.error_code,
            "guidance": o.guidance,
        }
        by_id[o.account]["servers"] += len(o.servers)
        if not o.ok:
            errors.append(
                {
                    "account": o.account,
                    "region": o.region,
                    "code": o.error_code,
                    "message": o.error,
                    "guidance": o.guidance,
                    "retryable": o.retryable,
                }
            )
    written = report.written if report else 0
    failed = report.failed if report else 0
    if failed:
        errors.append(
            {
                "account": None,
                "region": None,
                "code": "WriteFailed",
                "message": f"{failed} items could not be written; see {report.dead_letter_path}",
                "guidance": None,
                "retryable": True,
            }
        )
    totals = {
        "accounts": len(accounts),
        "accountsFailed": sum(1 for e in per_account if e["credentials"] != "ok"),
        "regions": len(outcomes),
        "regionsFailed": sum(1 for o in outcomes if not o.ok),
        "servers": len(records),
        "enriched": sum(1 for r in records if r.get("ec2", {}).get("status") == "enriched"),
        "written": written,
        "failed": failed,
    }
    if interrupted:
        errors.append(
            {
                "account": None,
                "region": None,
                "code": "Interrupted",
                "message": interrupted,
                "guidance": "run the sync again; it rewrites every server it finds",
                "retryable": True,
            }
        )
    code = 500 if fatal else 207 if errors else 200
    return {
        "statusCode": code,
        "engine": engine.config.backend,
        "syncedAt": synced_at,
        "totals": totals,
        "accounts": per_account,
        "errors": errors,
    }
