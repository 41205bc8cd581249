"""Assumed-role credentials per account: through the engine, shared, refreshed before expiry.

A failed AssumeRole never raises: it is remembered as that account's status (``AccountCredentials.status``),
so one broken trust policy costs one account, not the run (the complaint behind cloudquery#5028). It is
a failure for every caller that shared the call: concurrent lookups of one account (two runs on one
engine, two shards in one worker) share one AssumeRole, and each records its outcome. No credentials
never means "use the caller's own": that happens only for an account with no role, and only when the
caller's own credentials are that account's (one GetCallerIdentity per ``AccountCredentials``).

``get`` hands out :class:`greenfetch._signing.RoleCredentials`: live credentials that know the account
they were assumed for and assume the role again before they expire, at signing time, for the whole
run. Secrets stay in memory: never logged, cached on disk or put in an error message.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.credentials

from .._engine import Engine
from .._errors import IDENTITY_MISMATCH, classify
from .._exceptions import RequestError
from .._models import Request, account_of_role
from .._scheduler import iter_bounded
from .._signing import RoleCredentials, frozen_record
from ._accounts import role_arn_for
from ._types import Account, InventoryError, check_account_id

__all__ = ["AccountCredentials", "AssumeStatus", "Credentials", "assume_role"]

# The STS ``Credentials`` record: AccessKeyId, SecretAccessKey, SessionToken, Expiration (datetime), and
# the AccountId they were assumed in. ``Request(credentials=...)`` takes it as is.
Credentials = dict[str, Any]


@dataclass(frozen=True)
class AssumeStatus:
    """How assuming the role in one account went; ``error`` names the STS error, never a secret."""

    account: str
    role_arn: str | None
    ok: bool
    status: str = "ok"  # ok, or a greenfetch.classify status (denied, throttled, ...)
    error_code: str | None = None
    error: str | None = None


def assume_role(
    engine: Engine,
    account_id: str,
    role_name_or_arn: str,
    *,
    external_id: str | None = None,
    session_name: str = "greenfetch",
    duration: int = 3600,
    region: str | None = None,
) -> Credentials | None:
    """Credentials for the role in ``account_id``, or None when STS refuses (see assume_role_status).

    Bad input (malformed account id, role ARN in the wrong partition) raises InventoryError: that is
    the caller's mistake, not the account's state."""
    creds, _ = assume_role_status(
        engine,
        account_id,
        role_name_or_arn,
        external_id=external_id,
        session_name=session_name,
        duration=duration,
        region=region,
    )
    return creds


def assume_role_status(
    engine: Engine,
    account_id: str,
    role_name_or_arn: str,
    *,
    external_id: str | None = None,
    session_name: str = "greenfetch",
    duration: int = 3600,
    region: str | None = None,
) -> tuple[Credentials | None, AssumeStatus]:
    """assume_role, plus the status record that says why credentials are missing."""
    region = region or engine.config.home_region
    arn = role_arn_for(check_account_id(account_id), role_name_or_arn, region=region)
    params: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": session_name, "DurationSeconds": duration}
    if external_id:
        params["ExternalId"] = external_id
    # ``Request.built``: the same fields without the frozen dataclass's ``__init__`` (~10k an account)
    result = engine.execute(Request.built("sts", "AssumeRole", params, region=region))
    if not result.ok:
        return None, _failed(account_id, arn, result.error_code, f"cannot assume {arn}: {result.error}")
    creds = dict(result.result["Credentials"])
    # The account STS says the session is in (its AssumedRoleUser ARN), else the one asked for: the
    # engine refuses to sign a request for any other account with these.
    user = (result.result.get("AssumedRoleUser") or {}).get("Arn", "")
    creds["AccountId"] = _account_of_arn(user) or account_of_role(arn) or account_id
    return creds, AssumeStatus(account_id, arn, True)


def _account_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() and len(parts[4]) == 12 else None


def _failed(account_id: str, arn: str | None, code: str | None, message: str) -> AssumeStatus:
    return AssumeStatus(
        account_id, arn, False, classify(code, service="sts", operation="AssumeRole").status, code, message
    )


class AccountCredentials:
    """Credentials per account for one role setup, shared by a whole run (and the DRS pipeline).

    ``get(account)`` returns the account's :class:`RoleCredentials`, assuming the role on first use;
    they assume it again by themselves within ``refresh_margin`` seconds of expiry (at most half their
    lifetime), for as long as the run uses them. Concurrent ``get`` calls for one account share one
    AssumeRole (the engine's singleflight, also across ``AccountCredentials`` on one engine), and every
    one of them records the outcome. ``prefetch(accounts)`` assumes for many accounts with at most
    ``concurrency`` STS calls at once (STS throttles org-wide fan-outs). ``status(account)`` says why an
    account has no credentials: ``get`` returns None exactly when its status is not ok, or when the
    account has no role and the caller's own credentials are that account's (an ok status whose
    ``role_arn`` is None: pass no credentials).
    """

    def __init__(
        self,
        engine: Engine,
        role: str | None = None,
        *,
        external_id: str | None = None,
        session_name: str = "greenfetch",
        duration: int = 3600,
        refresh_margin: float = 300.0,
        concurrency: int = 8,
        region: str | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.engine, self.role, self.external_id = engine, role, external_id
        self.session_name, self.duration, self.refresh_margin = session_name, duration, refresh_margin
        self.concurrency, self.region, self.clock = concurrency, region, clock
        self._creds: dict[str, RoleCredentials] = {}
        self._status: dict[str, AssumeStatus] = {}
        self._own: tuple[str | None, AssumeStatus | None] | None = None  # (own account, why unknown)
        self._setups: dict[tuple[Any, ...], str] = {}  # a role setup -> its flight key's digest
        self.assumed = 0  # AssumeRole calls made by this instance's flights (tests and the summary read it)

    def role_for(self, account: Account | str) -> str | None:
        return account.role or self.role if isinstance(account, Account) else self.role

    def get(self, account: Account | str) -> RoleCredentials | None:
        """The account's live credentials; None when it has none (see ``status``) or needs none."""
        account_id = account.account_id if isinstance(account, Account) else account
        role = self.role_for(account)
        if role is None:
            self._status[account_id] = self._own_status(account_id)
            return None
        cached = self._creds.get(account_id)
        if cached is not None:
            return cached
        creds, status = self._assume(account_id, role)
        self._status[account_id] = status
        if creds is None:
            return None
        live = self._creds.get(account_id)  # a concurrent get of this instance may have made it already
        if live is None:
            live = self._creds[account_id] = RoleCredentials(
                creds["AccountId"],
                lambda: self._refresh(account_id, role),
                *_frozen(creds),
                refresh=self.refresh_margin,
                clock=self.clock,
            )
        return live

    def _assume(self, account_id: str, role: str) -> tuple[Credentials | None, AssumeStatus]:
        """One AssumeRole shared with every concurrent caller of the same setup on this engine; each
        caller gets the credentials *and* the status (never only the one whose call it was)."""

        def call() -> tuple[Credentials | None, AssumeStatus]:
            self.assumed += 1
            return assume_role_status(
                self.engine,
                account_id,
                role,
                external_id=self.external_id,
                session_name=self.session_name,
                duration=self.duration,
                region=self.region,
            )

        return self.engine.dedupe_request(self._flight_key(account_id, role), call, window=0)

    def _flight_key(self, account_id: str, role: str) -> str:
        setup = (role, self.external_id, self.session_name, self.duration, self.region)
        digest = self._setups.get(setup)
        if digest is None:  # once per setup: every account of a run shares it (a SHA-256 was ~12k each)
            text = "\0".join(map(str, setup))
            digest = self._setups[setup] = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"greenfetch:assume:{account_id}:{digest}"

    def _refresh(self, account_id: str, role: str) -> tuple[Any, float | None]:
        """RoleCredentials' refresh: assume again; a failure raises (the request being signed fails
        with the STS error) and is the account's status until an AssumeRole succeeds again."""
        creds, status = self._assume(account_id, role)
        self._status[account_id] = status
        if creds is None:
            raise RequestError(
                f"cannot refresh the credentials of account {account_id}: {status.error}",
                code=status.error_code or "AssumeRoleFailed",
            )
        return _frozen(creds)

    def _own_status(self, account_id: str) -> AssumeStatus:
        """An account with no role runs with the caller's own credentials: only if they are its own."""
        if self._own is None:

            def whoami() -> tuple[str | None, AssumeStatus | None]:
                result = self.engine.execute(
                    Request(
                        "sts", "GetCallerIdentity", {}, region=self.region or self.engine.config.home_region
                    )
                )
                if result.ok and (result.result or {}).get("Account"):
                    return result.result["Account"], None
                why = result.error if not result.ok else "GetCallerIdentity named no account"
                return None, _failed(
                    "",
                    None,
                    result.error_code,
                    f"cannot tell which account these credentials belong to: {why}",
                )

            self._own = self.engine.dedupe_request(f"greenfetch:whoami:{id(self)}", whoami, window=0)
        own, why = self._own
        if own == account_id:
            return AssumeStatus(account_id, None, True)
        if why is not None:
            return AssumeStatus(account_id, None, False, why.status, why.error_code, why.error)
        return AssumeStatus(
            account_id,
            None,
            False,
            "error",
            IDENTITY_MISMATCH,
            f"no role to assume in account {account_id}, and these credentials are account "
            f"{own}'s: give a role (--role-name, or roleName in the accounts table)",
        )

    def prefetch(self, accounts: Iterable[Account | str]) -> dict[str, RoleCredentials | None]:
        """Credentials for many accounts, at most ``concurrency`` AssumeRole calls in flight."""
        items = list(accounts)
        for item in items:  # bad input fails before any STS call
            acc = item if isinstance(item, Account) else Account(item)
            role = self.role_for(item)
            if role is not None:
                role_arn_for(acc.account_id, role, region=self.region or self.engine.config.region)

        def one(_: int, item: Account | str) -> tuple[str, RoleCredentials | None]:
            account_id = item.account_id if isinstance(item, Account) else item
            try:
                return account_id, self.get(item)
            except Exception as exc:  # noqa: BLE001 - a surprise in one account must not lose the others
                self._status[account_id] = AssumeStatus(
                    account_id,
                    None,
                    False,
                    "error",
                    type(exc).__name__,
                    f"cannot get credentials: {type(exc).__name__}: {exc}",
                )
                return account_id, None

        return dict(iter_bounded(self.engine.backend, items, one, max(1, self.concurrency)))

    def status(self, account: Account | str) -> AssumeStatus | None:
        return self._status.get(account.account_id if isinstance(account, Account) else account)

    def failures(self) -> list[AssumeStatus]:
        return [s for s in self._status.values() if not s.ok]


def _frozen(creds: Credentials) -> tuple[botocore.credentials.ReadOnlyCredentials, float | None]:
    """(frozen credentials with their account, expiry in epoch seconds) from an STS record."""
    frozen = frozen_record(creds)
    expiration = creds.get("Expiration")
    if isinstance(expiration, str):
        expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    return frozen, expiration.timestamp() if isinstance(expiration, datetime) else None


def check_roles(accounts: Iterable[Account], default_role: str | None, region: str | None) -> None:
    """Every account's role ARN is well formed and in the region's partition (before any call)."""
    for account in accounts:
        role = account.role or default_role
        if role is not None:
            role_arn_for(account.account_id, role, region=region)
    if default_role is not None and not default_role.strip():
        raise InventoryError("--role-name is empty; give a role name such as OrganizationAccountAccessRole")
