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
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import botocore.credentials

__all__ = ["AccountClient", "CallCredentials", "share_credentials"]

_local = threading.local()
_ACCOUNT_ID = "AWS::Auth::AccountId"


def _current() -> Any:
    return getattr(_local, "credentials", None)


class CallCredentials(botocore.credentials.Credentials):
    """The credentials of the call in progress, else the client's own (``default``, may be None)."""

    def __init__(self, default: Any):  # no super().__init__: every attribute is a live lookup
        self._default = default

    def _active(self) -> Any:
        current = _current()
        return current if current is not None else self._default

    def get_frozen_credentials(self) -> Any:
        active = self._active()  # None: botocore's signers raise NoCredentialsError, as for their own None
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
    active = credentials._active()
    if active is None:
        return None
    if hasattr(active, "get_frozen_credentials"):
        return getattr(active.get_frozen_credentials(), "account_id", None)
    return getattr(active, "account_id", None)


class _Signing:
    """``with _Signing(creds):``: calls in this greenlet/thread sign with ``creds`` (nesting restores)."""

    __slots__ = ("credentials", "previous")

    def __init__(self, credentials: Any):
        self.credentials = credentials

    def __enter__(self) -> None:
        self.previous = _current()
        _local.credentials = self.credentials

    def __exit__(self, *exc: object) -> None:
        _local.credentials = self.previous


def _bound(function: Callable[..., Any], credentials: Any) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _Signing(credentials):
            return function(*args, **kwargs)

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
        if callable(value) and (name in type(self._base)._PY_TO_OP_NAME or name.startswith("generate_presigned")):
            return _bound(value, self._credentials)
        return value

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
