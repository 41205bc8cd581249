"""Accounts that cost nothing: one botocore client per (profile, service, region, endpoint), signing each
call with the credentials of the account it runs for.

Why: a botocore client per account cost ~5 ms of CPU to create here (DynamoDB or EC2, with classes
already shared), plus its own connection pool: a new TCP connection (and, against AWS, a TLS handshake)
for a handful of calls. An inventory of 60 accounts x 8 regions x 6 types made 2,880 of them.

How: the shared client's signer and its endpoint rules read credentials through
:class:`CallCredentials`, which answers with the credentials of the call in progress (a thread-local,
greenlet-local under gevent) and else the client's own. :class:`AccountClient` is the view a caller
gets for one account's credentials: every API method, paginator and waiter it hands out runs with those
credentials set for exactly the duration of the call. Refreshable credentials stay live objects, so
botocore refreshes them at signing time as it would for its own client.

:class:`RoleCredentials` are such live credentials for one account's assumed role: they know the
account they were assumed for (the engine refuses to sign a request for any other account with them)
and assume the role again before they expire, at signing time, in whichever greenlet signs first.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import botocore.credentials

__all__ = ["AccountClient", "CallCredentials", "RefusedCredentials", "RoleCredentials", "share_credentials"]


# The call in progress's credentials, None until a call sets them: a context variable, which is per
# thread and per greenlet (greenlet gives each greenlet a context of its own, empty at its start, as a
# new thread's is). A read costs ~0.3k instructions and a set with its reset ~1.6k, where gevent's
# greenlet-local took ~1.5k for each read and each write: a call sets, restores and reads it
# (docs/performance/inventory-cost.md, issue 24 part 12).
_current: contextvars.ContextVar[Any] = contextvars.ContextVar("greenfetch_call_credentials", default=None)
_get_current = _current.get
_ACCOUNT_ID = "AWS::Auth::AccountId"


# botocore 1.37 gave frozen credentials a fourth field, the account they belong to (for account-based
# endpoints); 1.36, the lowest botocore greenfetch supports, has three and refuses a fourth argument.
_FROZEN_HAS_ACCOUNT = "account_id" in botocore.credentials.ReadOnlyCredentials._fields


def frozen_record(record: Any) -> Any:
    """An STS ``Credentials`` record (``AccessKeyId``, ``SecretAccessKey``, ``SessionToken``, perhaps
    ``AccountId``) as botocore's frozen credentials, with the account where this botocore's carry one."""
    keys = (record["AccessKeyId"], record["SecretAccessKey"], record.get("SessionToken"))
    if _FROZEN_HAS_ACCOUNT:
        return botocore.credentials.ReadOnlyCredentials(*keys, record.get("AccountId"))
    return botocore.credentials.ReadOnlyCredentials(*keys)


class CallCredentials(botocore.credentials.Credentials):  # type: ignore[misc]  # botocore ships no types
    """The credentials of the call in progress, else the client's own (``default``, may be None)."""

    def __init__(self, default: Any):  # no super().__init__: every attribute is a live lookup
        self._default = default

    def _active(self) -> Any:
        current = _get_current()
        return current if current is not None else self._default

    def get_frozen_credentials(self) -> Any:
        active = _get_current()
        if active is None:
            active = self._default  # None: botocore's signers raise NoCredentialsError, as for their own None
        return active.get_frozen_credentials() if hasattr(active, "get_frozen_credentials") else active

    def __getattr__(self, name: str) -> Any:  # access_key, secret_key, token, account_id, method
        if name.startswith("__") or name == "_default":
            raise AttributeError(name)
        return getattr(self._active(), name, None)

    def __bool__(self) -> bool:
        return self._active() is not None


def share_credentials(client: Any) -> CallCredentials:
    """Make ``client`` sign with (and resolve account-id endpoints from) the call's credentials."""
    signer = client._request_signer
    shared = signer._credentials
    if not isinstance(shared, CallCredentials):
        shared = signer._credentials = CallCredentials(signer._credentials)
    resolver = getattr(client, "_ruleset_resolver", None)
    builtins = getattr(resolver, "_builtins", None)
    if isinstance(builtins, dict) and _ACCOUNT_ID in builtins:
        builtins[_ACCOUNT_ID] = lambda: _account_id(shared)
    return shared


def _account_id(credentials: CallCredentials) -> Any:
    active = _get_current()
    if active is None:
        active = credentials._default
    if active is None:
        return None
    if hasattr(active, "get_frozen_credentials"):
        return getattr(active.get_frozen_credentials(), "account_id", None)
    return getattr(active, "account_id", None)


class RoleCredentials(botocore.credentials.Credentials):  # type: ignore[misc]  # botocore ships no types
    """An assumed role's credentials for one account (``assumed_for``), assumed again before they expire.

    ``fetch()`` assumes the role again: it returns ``(ReadOnlyCredentials, expiry)`` (expiry in epoch
    seconds, None when the credentials do not expire) or raises, and the request being signed then fails
    with that error. Signing reads :meth:`get_frozen_credentials`: within ``refresh`` seconds of the
    expiry the first signer assumes again while the others go on with the current credentials; within
    half of that every signer waits for fresh ones (as botocore's advisory and mandatory windows). The
    window is at most half the credentials' lifetime, so short role sessions refresh too. A failed
    early refresh keeps the current credentials and is tried again a little later, never on every call.
    """

    method = "assume-role"

    def __init__(
        self,
        account_id: str,
        fetch: Callable[[], tuple[Any, float | None]],
        frozen: Any,
        expiry: float | None,
        *,
        refresh: float = 300.0,
        clock: Callable[[], float] = time.time,
    ):
        self.assumed_for = account_id
        self._fetch, self._margin, self._clock = fetch, refresh, clock
        self._lock = threading.Lock()  # cooperative under gevent's patching
        self._retry_at = 0.0
        self.generation = 0  # one more per refresh: ``refresh_after`` tells a stale failure from a fresh one
        self._set(frozen, expiry)

    def _set(self, frozen: Any, expiry: float | None) -> None:
        lifetime = None if expiry is None else expiry - self._clock()
        # Credentials that are already expired by this clock (a clock behind the server's): no schedule,
        # AWS's ExpiredToken says when (see ``refresh_after``).
        self._advisory = min(self._margin, lifetime / 2) if lifetime is not None and lifetime > 0 else None
        self._mandatory = self._advisory / 2 if self._advisory is not None else None
        self._frozen, self._expiry = frozen, expiry
        self.generation += 1

    def get_frozen_credentials(self) -> Any:
        advisory = self._advisory
        # _expiry is a number whenever _advisory is (``_set``)
        if advisory is not None and self._expiry - self._clock() <= advisory:  # type: ignore[operator]
            self._refresh_due()
        return self._frozen

    def _refresh_due(self) -> None:
        advisory, mandatory = self._advisory, self._mandatory
        if advisory is None or mandatory is None or self._expiry is None:
            return
        must = self._expiry - self._clock() <= mandatory
        if not must and self._clock() < self._retry_at:
            return
        if not self._lock.acquire(blocking=must):
            return  # another signer is refreshing; these credentials are still good for a while
        try:
            if self._advisory is None or self._expiry - self._clock() > self._advisory:
                return  # refreshed while this signer waited
            try:
                self._renew()
            except Exception:
                if must:
                    raise
                self._retry_at = self._clock() + (advisory - mandatory) / 4
        finally:
            self._lock.release()

    def refresh_after(self, generation: int) -> None:
        """AWS said the credentials of ``generation`` expired: assume again, unless another caller
        already did since (one AssumeRole for the many calls that saw the same expiry)."""
        with self._lock:
            if self.generation == generation:
                self._renew()

    def _renew(self) -> None:
        with _Signing(None):  # the AssumeRole call signs with the caller's own credentials, never these
            frozen, expiry = self._fetch()
        self._set(frozen, expiry)

    @property
    def access_key(self) -> Any:
        return self.get_frozen_credentials().access_key

    @property
    def secret_key(self) -> Any:
        return self.get_frozen_credentials().secret_key

    @property
    def token(self) -> Any:
        return self.get_frozen_credentials().token

    @property
    def account_id(self) -> Any:
        return self.assumed_for

    def __repr__(self) -> str:
        return f"<RoleCredentials for account {self.assumed_for}>"


class RefusedCredentials(botocore.credentials.Credentials):  # type: ignore[misc]  # botocore ships no types
    """Credentials that could not be had (a role that could no longer be assumed), carried to where
    they would sign: signing with them fails the request with that error. A worker process gets these
    when the parent's refresh failed, instead of a misleading "invalid credentials"."""

    method = "refused"

    def __init__(self, code: str, message: str):  # no super().__init__: there is nothing to sign with
        self.code, self.message = code, message

    def get_frozen_credentials(self) -> Any:
        from ._exceptions import RequestError

        raise RequestError(self.message, code=self.code)

    def __repr__(self) -> str:
        return f"<RefusedCredentials {self.code}>"


class _Signing:
    """``with _Signing(creds):``: calls in this greenlet/thread sign with ``creds`` (nesting restores)."""

    __slots__ = ("credentials", "previous")

    def __init__(self, credentials: Any):
        self.credentials = credentials

    def __enter__(self) -> None:
        self.previous = _current.set(self.credentials)

    def __exit__(self, *exc: object) -> None:
        _current.reset(self.previous)


def signed(credentials: Any, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` signing with ``credentials``: ``with _Signing(credentials)``
    without its object and its ``with`` (the engine's every call for an account goes through here)."""
    token = _current.set(credentials)
    try:
        return function(*args, **kwargs)
    finally:
        _current.reset(token)


def _bound(function: Callable[..., Any], credentials: Any) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        return signed(credentials, function, *args, **kwargs)

    return call


class _PageIterator:
    """Pages fetched lazily, each with the account's credentials."""

    def __init__(self, pages: Any, credentials: Any):
        self._pages, self._credentials = pages, credentials

    def __iter__(self) -> Iterator[Any]:
        iterator = iter(self._pages)
        while True:
            with _Signing(self._credentials):
                try:
                    page = next(iterator)
                except StopIteration:
                    return
            yield page

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._pages, name)
        return _bound(value, self._credentials) if callable(value) else value


class AccountClient:
    """A shared client as one account sees it: same class, model, endpoint and connection pool."""

    def __init__(self, base: Any, credentials: Any):
        self._base = base
        self._credentials = credentials

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._base, name)
        if name == "get_paginator":
            return self._paginator
        if name == "get_waiter":
            return self._waiter
        if callable(value) and (
            name in type(self._base)._PY_TO_OP_NAME or name.startswith("generate_presigned")
        ):
            return _bound(value, self._credentials)
        return value

    def unwrapped(self) -> tuple[Any, Any]:
        """(the shared client, the credentials its calls sign with as this account): what every bound
        method of the view does per call, for a caller that makes a whole (paginated) call at once
        through :func:`signed`."""
        return self._base, self._credentials

    def _paginator(self, operation_name: str) -> Any:
        paginator = self._base.get_paginator(operation_name)
        credentials = self._credentials
        paginate = paginator.paginate
        paginator.paginate = lambda *args, **kwargs: _PageIterator(paginate(*args, **kwargs), credentials)
        return paginator

    def _waiter(self, waiter_name: str) -> Any:
        waiter = self._base.get_waiter(waiter_name)
        waiter.wait = _bound(waiter.wait, self._credentials)
        return waiter

    def close(self) -> None:
        """A view owns nothing: the shared client closes with its cache."""

    def __repr__(self) -> str:
        return f"<AccountClient of {self._base!r}>"
