"""The seam above botocore: a normalized Request in, the response dict out.

As httpx's transport sits under its client, a ``Caller`` sits under the engine: the engine owns the
rules (order, fail-fast, attempts, error mapping, dedupe, adaptive gating) and asks its caller only
to make one call. ``BotocoreCaller`` is the real one; ``greenfetch.testing.MockCaller`` answers from
a function, so the engine's rules run in tests with no network. A caller raises botocore's
exceptions as they are (``ClientError`` and friends); the engine translates them in one place
(``_errors.describe``).

Two steps, each once per request: ``resolve`` builds the call (region, client and API name
together) and hands what it found to ``call``, which makes it; nothing is looked up twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import botocore.exceptions
from botocore import xform_name
from botocore.paginate import Paginator

from . import _paging
from ._clients import ClientCache
from ._errors import EXPIRED_CODES, suggest
from ._exceptions import BodyTooLarge, RequestError
from ._models import Request
from ._signing import AccountClient, RoleCredentials, signed

__all__ = ["BotocoreCaller", "Caller"]


class Caller:
    """Base class of the AWS seam. Subclasses implement :meth:`call`; the rest has defaults."""

    def resolve(self, request: Request) -> tuple[Request, Any]:
        """The request as it will be called (e.g. ``list_tables`` -> ``ListTables``) and what
        :meth:`call` needs to make it (``BotocoreCaller``: the client it looked up; here None).
        A request that cannot be built raises RequestError here, before the adaptive gate's slot
        is taken for it (the scheduler's slot frees as soon as its failed Result is taken)."""
        return request, None

    def call(self, request: Request, client: Any = None) -> Mapping[str, Any]:
        """Make the call with what :meth:`resolve` handed on; return the response (with
        ResponseMetadata), or raise botocore's exception."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the caller is not used afterwards."""


class BotocoreCaller(Caller):
    """Calls through botocore's shared clients (``ClientCache``), with pagination and bounded bodies."""

    def __init__(self, clients: ClientCache):
        self.clients = clients
        self._body_limit = clients.config.body_limit
        self._operations: dict[str, tuple[frozenset[str], dict[str, str]]] = {}
        self._regions: dict[str | None, str | None] = {}
        # (client class, operation) -> (method name, page config or None: not paginated, its plan)
        self._paging: dict[tuple[type, str], tuple[str, Any, _paging.Plan | None]] = {}

    def resolve(self, request: Request) -> tuple[Request, Any]:
        """The region (the profile's, if the request names none), the client for it (unknown
        service, bad role, no region: RequestError), and the operation's API name, together."""
        if request.region is None:
            request = request._evolve(region=self._profile_region(request.profile))
        client = self.clients.client(request)
        operation = self._api_name(request, client)
        if operation != request.operation:
            request = request._evolve(operation=operation)
        return request, client

    def call(self, request: Request, client: Any = None) -> Mapping[str, Any]:
        if client is None:  # a request that did not come through resolve
            request, client = self.resolve(request)
        creds = request.credentials
        if isinstance(creds, RoleCredentials):
            generation = creds.generation
            try:
                return self._call(request, client)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in EXPIRED_CODES:
                    raise
            # AWS says they expired (a clock behind AWS's, or a session cut short): assume the role
            # again, once for every call that saw it, and make this call once more, through a client
            # looked up again (S3 keeps a client per credentials). If AWS still says so, the error
            # stands (status ``expired``).
            creds.refresh_after(generation)
            return self._call(request, self.clients.client(request))
        value = self._call(request, client)
        if (
            request.operation == "GetCallerIdentity"
            and request.service == "sts"
            and creds is None
            and not request.role
        ):
            self.clients.note_own_account(request.profile, value.get("Account"))  # the seam's guard uses it
        return value

    def _call(self, request: Request, client: Any) -> Mapping[str, Any]:
        if isinstance(client, AccountClient):  # the whole call (every page) signs as the account
            base, credentials = client.unwrapped()
            return signed(credentials, self._call, request, base)  # type: ignore[no-any-return]
        if request.paginate:
            key = (type(client), request.operation)
            paging = self._paging.get(key)
            if paging is None:  # what can_paginate says, and the page config, once per client class
                paging = self._paging[key] = _paging_of(client, request.operation)
            method, config, plan = paging
            if config is not None:
                return _paginated(client, method, request, config, plan)
        else:
            method = xform_name(request.operation)
        try:
            value = getattr(client, method)(**request.params)
        except TypeError:  # some botocore handlers run before validation and trip on wrong types
            _validate_params(client, request)
            raise
        for key, item in value.items():  # read streaming bodies now: they hold a pooled connection
            if hasattr(item, "read"):
                value[key] = _read_body(item, self._body_limit, key, value.get("ContentLength"))
        return value  # type: ignore[no-any-return]  # botocore ships no types

    def close(self) -> None:
        self.clients.close()

    def _api_name(self, request: Request, client: Any) -> str:
        names = self._operations.get(request.service)
        if names is None:
            api = frozenset(client.meta.service_model.operation_names)
            names = self._operations[request.service] = (api, {xform_name(n): n for n in api})
        api_names, by_method = names
        if request.operation in api_names:
            return request.operation
        if request.operation in by_method:
            return by_method[request.operation]
        near = suggest(request.operation, api_names | set(by_method))
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise RequestError(
            f"unknown operation {request.operation!r} for service {request.service!r}{hint} "
            f"(it has {len(api_names)} operations, e.g. {', '.join(sorted(api_names)[:3])})",
            code="UnknownOperation",
            guidance=f"nearest valid names: {', '.join(near)}" if near else None,
        )

    def _profile_region(self, profile: str | None) -> str | None:
        """The profile's configured region, read once per profile: botocore's config chain is too
        slow to consult on every request that names no region."""
        if profile not in self._regions:
            region = self.clients.session(profile).get_config_variable("region")
            self._regions[profile] = str(region) if region else None
        return self._regions[profile]


# an operation botocore's client can paginate whose page config is not where botocore keeps it
_NO_CONFIG = object()


def _paging_of(client: Any, operation: str) -> tuple[str, Any, _paging.Plan | None]:
    """(the client's method name, the operation's page config or None when the client cannot paginate
    it, the config's ``_paging`` plan): what a paginated call needs, asked of the client once. Clients of
    one class share a service model, and so its paginators (botocore's loader hands each the same dict)."""
    method = xform_name(operation)
    if not client.can_paginate(method):
        return method, None, None
    try:
        config = client._cache["page_config"][operation]  # filled by can_paginate, asked just before
    except (AttributeError, KeyError, TypeError):
        return method, _NO_CONFIG, None
    return method, config, _paging.plan(config)


def _paginated(
    client: Any, method: str, request: Request, config: Any, plan: _paging.Plan | None
) -> dict[str, Any]:
    """botocore's ``paginate(...).build_full_result()``; a call whose first page is its only page (most
    of an inventory's scopes) skips botocore's page iterator: see ``_paging``."""
    # paginate=True (the inventory's) has no max_items: ``Request.max_items`` asks isinstance(Mapping),
    # an ABC check (~3k instructions) a paginated call
    max_items = None if request.paginate is True else request.max_items or None
    if plan is not None and "PaginationConfig" not in request.params:
        return plan.full_result(
            getattr(client, method), request.params, max_items, lambda: _paginator(client, method, config)
        )
    pages = _paginator(client, method, config).paginate(
        **request.params, PaginationConfig={"MaxItems": max_items} if max_items else {}
    )
    return pages.build_full_result()  # type: ignore[no-any-return]  # botocore ships no types


def _paginator(client: Any, method: str, config: Any) -> Any:
    """``client.get_paginator(method)`` without the class botocore builds on every call only to
    document it (``type(...)``: a third of a paginated call's own cost): the same ``Paginator`` on the
    same method, page config and operation model. Any client not shaped like botocore's gets its own."""
    if config is _NO_CONFIG:
        return client.get_paginator(method)
    try:
        model = client._service_model.operation_model(client._PY_TO_OP_NAME[method])
    except (AttributeError, KeyError, TypeError):
        return client.get_paginator(method)
    return Paginator(getattr(client, method), config, model)


def _validate_params(client: Any, request: Request) -> None:
    """Raise botocore's ParamValidationError (which names the bad parameter) if the params are invalid."""
    from botocore.validate import validate_parameters

    model = client.meta.service_model.operation_model(request.operation)
    validate_parameters(dict(request.params), model.input_shape)


def _read_body(body: Any, limit: int, member: str, size: Any) -> bytes:
    """The whole body, or BodyTooLarge: one byte past the limit tells a cut body from a whole one."""
    try:
        data = body.read(limit + 1)
    finally:
        body.close()
    if len(data) > limit:
        raise BodyTooLarge(member, limit, size if isinstance(size, int) else None)
    return bytes(data)
