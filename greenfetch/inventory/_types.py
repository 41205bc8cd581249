"""Shapes shared by every inventory module: an account, the inventory error, the record.

Kept apart so the account, credential, region, run and sink modules (and the DRS pipeline built on
them) agree on one ``Account`` and one record shape without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._exceptions import InventoryError

__all__ = [
    "Account",
    "InventoryError",
    "Record",
    "check_account_id",
    "dynamodb_table",
    "parse_utc",
    "record",
    "utc_iso",
]

_ACCOUNT_ID = re.compile(r"^\d{12}$")


def check_account_id(value: Any, *, source: str = "account id") -> str:
    """The 12-digit account id as a string; InventoryError naming the value otherwise."""
    text = str(value).strip() if value is not None else ""
    if not _ACCOUNT_ID.match(text):
        raise InventoryError(
            f"{source} {value!r} is not an AWS account id; an account id is exactly 12 digits "
            "(e.g. 123456789012)"
        )
    return text


def dynamodb_table(spec: str | None, *, flag: str) -> str | None:
    """The TABLE of a ``dynamodb:TABLE`` spec (``--accounts``, ``--status-store``); None for any other
    spec; InventoryError naming ``flag`` when the table name is missing."""
    if not spec or not spec.startswith("dynamodb:"):
        return None
    table = spec.partition(":")[2].strip()
    if not table:
        raise InventoryError(f"{flag} dynamodb: needs a table name, e.g. dynamodb:target-accounts")
    return table


@dataclass(frozen=True)
class Account:
    """One target account. ``role`` is a role name or ARN to assume there (None: use the caller's
    own credentials, which only makes sense for the caller's own account)."""

    account_id: str
    name: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_id", check_account_id(self.account_id))

    def to_dict(self) -> dict[str, Any]:
        return {"accountId": self.account_id, "accountName": self.name, "roleName": self.role}


Record = dict[str, Any]


def record(
    resource_type: str,
    account: str,
    region: str,
    items: list[Any] | None = None,
    status: str = "ok",
    error: str | None = None,
) -> Record:
    """The one record shape every fetch yields (docs/contract.md, section 8)."""
    return {
        "resource_type": resource_type,
        "account": account,
        "region": region,
        "items": items or [],
        "status": status,
        "error": error,
    }


def utc_iso(seconds: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds and a ``Z`` (``2026-11-29T18:02:11.532Z``): the one
    form an inventory stores a time in (it sorts as text; SQLite and Nushell read it)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_utc(text: str) -> float:
    """``utc_iso`` read back: epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
