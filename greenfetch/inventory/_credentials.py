"""Assumed-role credentials per account: through the engine, cached, refreshed before expiry.

A failed AssumeRole never raises: it returns None and is remembered as that account's status
(``AccountCredentials.status``), so one broken trust policy costs one account, not the run (the
complaint behind cloudquery#5028). Secrets stay in memory: never logged, cached on disk or put in
an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._models import Request
from .._scheduler import iter_bounded
from ._accounts import role_arn_for
from ._types import Account, InventoryError

__all__ = ["AccountCredentials", "AssumeStatus", "Credentials", "assume_role"]

# The STS ``Credentials`` record: AccessKeyId, SecretAccessKey, SessionToken, Expiration (datetime).
# ``Request(credentials=...)`` takes it as is.
Credentials = dict[str, Any]


@dataclass(frozen=True)
class AssumeStatus:
    """How assuming the role in one account went; ``error`` names the STS error, never a secret."""

    account: str
    role_arn: str | None
    ok: bool
    status: str = "ok"            # ok, or a greenfetch.classify status (denied, throttled, ...)
    error_code: str | None = None
    error: str | None = None


def assume_role(engine: Any, account_id: str, role_name_or_arn: str, *, external_id: str | None = None,
                session_name: str = "greenfetch", duration: int = 3600, region: str | None = None) -> Credentials | None:
    """Credentials for the role in ``account_id``, or None when STS refuses (see assume_role_status).

    Bad input (malformed account id, role ARN in the wrong partition) raises InventoryError: that is
    the caller's mistake, not the account's state."""
    creds, _ = assume_role_status(engine, account_id, role_name_or_arn, external_id=external_id,
                                  session_name=session_name, duration=duration, region=region)
    return creds


def assume_role_status(engine: Any, account_id: str, role_name_or_arn: str, *, external_id: str | None = None,
                       session_name: str = "greenfetch", duration: int = 3600,
                       region: str | None = None) -> tuple[Credentials | None, AssumeStatus]:
    """assume_role, plus the status record that says why credentials are missing."""
    region = region or engine.config.home_region
    arn = role_arn_for(Account(account_id).account_id, role_name_or_arn, region=region)
    params: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": session_name, "DurationSeconds": duration}
    if external_id:
        params["ExternalId"] = external_id
    result = engine.execute(Request("sts", "AssumeRole", params, region=region))
    if not result.ok:
        from .._errors import classify

        info = classify(result.error_code, service="sts", operation="AssumeRole")
        return None, AssumeStatus(account_id, arn, False, info.status, result.error_code,
                                  f"cannot assume {arn}: {result.error}")
    return dict(result.result["Credentials"]), AssumeStatus(account_id, arn, True)


class AccountCredentials:
    """Credentials per account for one role setup, shared by a whole run (and the DRS pipeline).

    ``get(account)`` returns cached credentials, assuming the role on first use and again when the
    cached ones are within ``refresh_margin`` seconds of expiry. Concurrent ``get`` calls for one
    account share one AssumeRole (the engine's singleflight). ``prefetch(accounts)`` assumes for
    many accounts with at most ``concurrency`` STS calls at once (STS throttles org-wide fan-outs).
    ``status(account)`` says why an account has no credentials. An account whose ``role`` is None
    uses the caller's own credentials (``get`` returns None with an ok status: pass no credentials).
    """

    def __init__(self, engine: Any, role: str | None = None, *, external_id: str | None = None,
                 session_name: str = "greenfetch", duration: int = 3600, refresh_margin: float = 300.0,
                 concurrency: int = 8, region: str | None = None, clock: Callable[[], float] = time.time):
        self.engine, self.role, self.external_id = engine, role, external_id
        self.session_name, self.duration, self.refresh_margin = session_name, duration, refresh_margin
        self.concurrency, self.region, self.clock = concurrency, region, clock
        self._creds: dict[str, Credentials] = {}
        self._status: dict[str, AssumeStatus] = {}
        self.assumed = 0  # AssumeRole calls made (tests and the summary read it)

    def role_for(self, account: Account | str) -> str | None:
        return account.role or self.role if isinstance(account, Account) else self.role

    def get(self, account: Account | str) -> Credentials | None:
        """Fresh credentials for the account, None when it has none (see ``status``)."""
        account_id = account.account_id if isinstance(account, Account) else account
        role = self.role_for(account)
        if role is None:
            self._status.setdefault(account_id, AssumeStatus(account_id, None, True))
            return None
        cached = self._creds.get(account_id)
        if cached is not None and not self._expiring(cached):
            return cached
        return self.engine.dedupe_request(f"greenfetch:assume:{account_id}:{role}",
                                          lambda: self._assume(account_id, role), window=0)

    def _assume(self, account_id: str, role: str) -> Credentials | None:
        self.assumed += 1
        creds, status = assume_role_status(self.engine, account_id, role, external_id=self.external_id,
                                           session_name=self.session_name, duration=self.duration,
                                           region=self.region)
        self._status[account_id] = status
        if creds is None:
            self._creds.pop(account_id, None)
        else:
            self._creds[account_id] = creds
        return creds

    def _expiring(self, creds: Credentials) -> bool:
        expiration = creds.get("Expiration")
        if isinstance(expiration, str):
            expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        if not isinstance(expiration, datetime):
            return False
        return expiration.timestamp() - self.refresh_margin <= self.clock()

    def prefetch(self, accounts: Iterable[Account | str]) -> dict[str, Credentials | None]:
        """Credentials for many accounts, at most ``concurrency`` AssumeRole calls in flight."""
        items = list(accounts)
        for item in items:  # bad input fails before any STS call
            acc = item if isinstance(item, Account) else Account(item)
            role = self.role_for(item)
            if role is not None:
                role_arn_for(acc.account_id, role, region=self.region or self.engine.config.region)

        def one(_: int, item: Account | str) -> tuple[str, Credentials | None]:
            account_id = item.account_id if isinstance(item, Account) else item
            try:
                return account_id, self.get(item)
            except Exception:  # noqa: BLE001 - a surprise in one account must not lose the others
                return account_id, None

        return dict(iter_bounded(self.engine.backend, items, one, max(1, self.concurrency)))

    def status(self, account: Account | str) -> AssumeStatus | None:
        return self._status.get(account.account_id if isinstance(account, Account) else account)

    def failures(self) -> list[AssumeStatus]:
        return [s for s in self._status.values() if not s.ok]


def check_roles(accounts: Iterable[Account], default_role: str | None, region: str | None) -> None:
    """Every account's role ARN is well formed and in the region's partition (before any call)."""
    for account in accounts:
        role = account.role or default_role
        if role is not None:
            role_arn_for(account.account_id, role, region=region)
    if default_role is not None and not default_role.strip():
        raise InventoryError("--role-name is empty; give a role name such as OrganizationAccountAccessRole")
