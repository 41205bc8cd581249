"""Where target accounts come from: an explicit list, AWS Organizations, or a DynamoDB table.

Every source returns ``list[Account]``; every bad value (malformed id, role ARN in the wrong
partition) is an InventoryError raised before any API call is made on the accounts' behalf.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from .._engine import Engine
from .._models import ROLE_ARN, Request
from ._dynamodb import from_dynamodb_item
from ._types import Account, InventoryError, check_account_id

__all__ = [
    "accounts_from_dynamodb",
    "accounts_from_list",
    "accounts_from_organizations",
    "excluding",
    "partition_of",
    "role_arn_for",
]

_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_PARTITIONS = {
    "cn-": "aws-cn",
    "us-gov-": "aws-us-gov",
    "us-iso-": "aws-iso",
    "us-isob-": "aws-iso-b",
    "eu-isoe-": "aws-iso-e",
    "us-isof-": "aws-iso-f",
}


def partition_of(region: str | None) -> str:
    """The ARN partition of a region (``aws`` for the commercial regions)."""
    for prefix, partition in _PARTITIONS.items():
        if (region or "").startswith(prefix):
            return partition
    return "aws"


@functools.lru_cache(maxsize=4096)
def role_arn_for(account_id: str, role: str, *, region: str | None = None) -> str:
    """The role ARN to assume in ``account_id``: built from a role name, or a given ARN checked for
    the right account and partition (a wrong partition fails at STS with a confusing message).

    Remembered (a pure function of its arguments; an error is never kept): a run asks for each
    account's ARN twice, before any STS call and at its AssumeRole (~16k instructions each)."""
    partition = partition_of(region)
    match = ROLE_ARN.match(role)
    if match:
        if match["partition"] != partition:
            raise InventoryError(
                f"role ARN {role!r} is in partition {match['partition']!r}, but region "
                f"{region or 'us-east-1'!r} is in partition {partition!r}; use "
                f"arn:{partition}:iam::{account_id}:role/{match['path_name']}"
            )
        if match["account"] != account_id:
            raise InventoryError(
                f"role ARN {role!r} belongs to account {match['account']}, not {account_id}; "
                "pass a role name (assumed in each account) or that account's ARN"
            )
        return role
    if role.startswith("arn:"):
        raise InventoryError(
            f"role {role!r} is not an IAM role ARN; use a role name (OrganizationAccountAccessRole) "
            "or arn:aws:iam::123456789012:role/NAME"
        )
    if not _ROLE_NAME.match(role):
        raise InventoryError(
            f"role name {role!r} is not a valid IAM role name (1-64 of letters, digits and +=,.@_-)"
        )
    return f"arn:{partition}:iam::{account_id}:role/{role}"


def accounts_from_list(spec: str | Iterable[str], *, role: str | None = None) -> list[Account]:
    """Accounts from ``"111111111111,222222222222"`` or a list of ids; duplicates dropped, order kept."""
    ids = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    ids = [i for i in ids if i]
    if not ids:
        raise InventoryError(
            "no account ids given; use a comma list of 12-digit ids, 'org' or 'dynamodb:TABLE'"
        )
    seen: dict[str, Account] = {}
    for value in ids:
        account_id = check_account_id(value)
        seen.setdefault(account_id, Account(account_id, role=role))
    return list(seen.values())


def accounts_from_organizations(
    engine: Engine,
    *,
    role: str | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    ous: Iterable[str] = (),
    region: str | None = None,
    credentials: Any = None,
) -> list[Account]:
    """ACTIVE member accounts of the caller's organization, optionally only those under ``ous``
    (recursively), filtered by ``include``/``exclude`` account ids. Raises InventoryError when
    Organizations cannot be read (not a management/delegated account, or denied). ``credentials``
    (e.g. assumed into the management account) default to the caller's own."""
    include_ids = {check_account_id(i, source="--include account") for i in include}
    exclude_ids = {check_account_id(i, source="--exclude account") for i in exclude}
    ou_list = list(ous)
    rows = (
        _org_accounts_under(engine, ou_list, region, credentials)
        if ou_list
        else _call(engine, "ListAccounts", {}, "Accounts", region, credentials)
    )
    accounts = []
    for row in rows:
        state = row.get("State") or row.get("Status")
        if state != "ACTIVE" or row["Id"] in exclude_ids or (include_ids and row["Id"] not in include_ids):
            continue
        accounts.append(Account(row["Id"], name=row.get("Name"), role=role))
    return accounts


def _org_accounts_under(
    engine: Engine, ous: list[str], region: str | None, creds: Any
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    pending = list(ous)
    while pending:
        parent = pending.pop()
        rows += _call(engine, "ListAccountsForParent", {"ParentId": parent}, "Accounts", region, creds)
        pending += [
            ou["Id"]
            for ou in _call(
                engine,
                "ListOrganizationalUnitsForParent",
                {"ParentId": parent},
                "OrganizationalUnits",
                region,
                creds,
            )
        ]
    return rows


def _call(
    engine: Engine,
    operation: str,
    params: dict[str, Any],
    key: str,
    region: str | None,
    credentials: Any = None,
) -> list[Any]:
    result = engine.execute(
        Request(
            "organizations",
            operation,
            params,
            region=region or engine.config.home_region,
            paginate=True,
            credentials=credentials,
        )
    )
    if not result.ok:
        raise InventoryError(
            f"cannot list accounts from AWS Organizations: {result.error}"
            + (f" ({result.guidance})" if result.guidance else "")
        )
    return list(result.result.get(key, []))


def accounts_from_dynamodb(
    engine: Engine, table: str, *, role: str | None = None, region: str | None = None
) -> list[Account]:
    """Target accounts from a DynamoDB table with attributes ``accountId``, ``accountName`` and
    ``roleName`` (the role to assume there; ``role`` is the fallback). A missing table or a row with
    a malformed id raises InventoryError naming it (seed 001: a table error must not pass silently)."""
    result = engine.execute(Request("dynamodb", "Scan", {"TableName": table}, region=region, paginate=True))
    if not result.ok:
        hint = (
            f" (does table {table!r} exist in this region?)"
            if result.error_code == "ResourceNotFoundException"
            else ""
        )
        raise InventoryError(
            f"cannot read target accounts from DynamoDB table {table!r}: {result.error}{hint}"
        )
    accounts: dict[str, Account] = {}
    for raw in result.result.get("Items", []):
        row = from_dynamodb_item(raw)
        account_id = check_account_id(row.get("accountId"), source=f"accountId in table {table!r}:")
        accounts.setdefault(
            account_id, Account(account_id, name=row.get("accountName"), role=row.get("roleName") or role)
        )
    return list(accounts.values())


def excluding(accounts: list[Account], exclude: Iterable[str], *, source: str) -> list[Account]:
    """``accounts`` without the ``exclude`` ids (each checked); InventoryError when nothing is left, so a
    run that could not fetch anything is bad input (exit 2), never an empty "finished" run. ``source``
    says where ``accounts`` came from (``--accounts org``, ``--accounts dynamodb:TABLE``...)."""
    dropped = [check_account_id(i, source="--exclude-accounts") for i in exclude]
    left = [a for a in accounts if a.account_id not in set(dropped)]
    if left:
        return left
    if not accounts:
        raise InventoryError(
            f"{source} found no account to inventory; check the source (an organization's "
            "ACTIVE accounts, the table's rows) or give a comma list of 12-digit ids"
        )
    raise InventoryError(
        f"--exclude-accounts {','.join(dropped)} removes every account {source} selected "
        f"({len(accounts)}); nothing would be fetched"
    )
