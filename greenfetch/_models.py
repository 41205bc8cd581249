"""The request and result shapes users rely on (docs/contract.md, sections 1 and 2)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import RequestError
from ._jsonable import encode_once, jsonable
from ._kept import kept

# a signature's canonical JSON (sorted keys, no spaces), its C encoder made once: ``json.dumps`` with
# options builds an encoder per call. ``jsonable``'s output is a tree, so no circular check is needed.
_canonical = encode_once(
    json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str, check_circular=False)
)

# one string as ``_canonical`` writes it (ASCII, escaped): the encoder's own function
_ascii = json.encoder.encode_basestring_ascii
_TEXTS: dict[str, str] = {}  # a signature's strings as ``_ascii`` wrote them: an inventory's repeat
_TEXTS_KEPT = 4096  # strings kept at most (services, operations, regions, identities, endpoints)


def _text(value: str) -> str:
    """``_ascii(value)``, kept in ``_TEXTS`` (a signature's services, regions and identities repeat)."""
    return kept(_TEXTS, value, _ascii(value), _TEXTS_KEPT)


__all__ = [
    "ROLE_ARN",
    "Request",
    "RequestError",
    "Result",
    "UnreadableInput",
    "account_of_role",
    "failed_result",
    "names_of",
]

# An IAM role ARN: the one pattern greenfetch checks role ARNs with (engine and inventory alike).
ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path_name>[\w+=,.@/-]+)$"
)

_new_object, _set_field = object.__new__, object.__setattr__  # a frozen instance's fields set at once

# A request record's fields, in the order they are documented (and cross to worker processes).
REQUEST_FIELDS = (
    "service",
    "operation",
    "params",
    "region",
    "account",
    "role",
    "profile",
    "endpoint_url",
    "paginate",
    "id",
)
_ACCEPTED = frozenset(REQUEST_FIELDS) | {"credentials"}


@dataclass(frozen=True)
class Request:
    """One AWS API call. ``operation`` is the API name once normalized (``ListBuckets``)."""

    service: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    region: str | None = None
    account: str | None = None
    role: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    paginate: bool | Mapping[str, Any] = False
    id: Any = None
    # Credentials handed in by the inventory layer (assumed roles). Never serialized or logged.
    credentials: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def coerce(
        cls,
        raw: Request | Mapping[str, Any],
        defaults: tuple[str | None, str | None, str | None] | None = None,
    ) -> Request:
        """A Request from a dict as users write it; RequestError says what is wrong with it.

        ``defaults``: (profile, region, endpoint_url), each taken where the request has none (the
        engine's run defaults, applied while the Request is built rather than on a copy of it)."""
        if isinstance(raw, Request):
            if defaults is None:
                return raw
            # each default read and tested in place (the inventory's requests come with every call):
            # a comprehension over ``zip`` with ``getattr`` and ``_evolve``'s keywords cost ~9k, most
            # of it when no default applies at all
            profile, region, endpoint_url = defaults
            take_profile = bool(profile) and not raw.profile
            take_region = bool(region) and not raw.region
            take_endpoint = bool(endpoint_url) and not raw.endpoint_url
            if not (take_profile or take_region or take_endpoint):
                return raw
            copy = object.__new__(Request)
            copied = copy.__dict__
            copied.update(raw.__dict__)
            if take_profile:
                copied["profile"] = profile
            if take_region:
                copied["region"] = region
            if take_endpoint:
                copied["endpoint_url"] = endpoint_url
            return copy
        if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict: no ABC check
            raise RequestError(
                f"a request must be a record like {{service, operation, params}}, not {type(raw).__name__}: {raw!r:.80}"
            )
        if not raw.keys() <= _ACCEPTED:
            if isinstance(raw, UnreadableInput):  # here, off the path of every request that has no odd field
                raise RequestError(raw.reason, code="InvalidInput", guidance=_UNREADABLE_GUIDANCE)
            unknown = sorted(map(str, raw.keys() - _ACCEPTED))
            raise RequestError(
                f"unknown request field(s) {unknown}; valid fields are: {', '.join(REQUEST_FIELDS)}"
            )
        get = raw.get
        service, operation = get("service"), get("operation")
        if isinstance(service, str) and isinstance(operation, str):
            service, operation = service.strip(), operation.strip()
        if not (service and operation and type(service) is str and type(operation) is str):
            service, operation = _required(raw, "service"), _required(raw, "operation")  # raises
        params = get("params")
        if not params:
            params = {}
        elif type(params) is dict or isinstance(params, Mapping):
            params = dict(params)
        else:
            raise RequestError(f"params must be a record of the operation's parameters, not {params!r:.80}")
        paginate = get("paginate", False)
        if type(paginate) is not bool and not isinstance(paginate, (bool, Mapping)):
            raise RequestError(f'paginate: {paginate!r}; use true, false or {{"max_items": N}}')
        profile, region, endpoint_url = get("profile"), get("region"), get("endpoint_url")
        if defaults is not None:
            if not profile and defaults[0]:
                profile = defaults[0]
            if not region and defaults[1]:
                region = defaults[1]
            if not endpoint_url and defaults[2]:
                endpoint_url = defaults[2]
        fields: dict[str, Any] = {  # every field, in the dataclass's order
            "service": service,
            "operation": operation,
            "params": params,
            "region": region,
            "account": get("account"),
            "role": get("role"),
            "profile": profile,
            "endpoint_url": endpoint_url,
            "paginate": paginate,
            "id": get("id"),
            "credentials": get("credentials"),
        }
        if cls is not Request:
            return cls(**fields)
        # the frozen dataclass's __init__ sets each field through object.__setattr__ (11 calls, ~a
        # third of this method's cost); the same fields, in the same order, set at once
        new = object.__new__(Request)
        new.__dict__.update(fields)
        return new

    @classmethod
    def built(
        cls,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        *,
        region: str | None = None,
        account: str | None = None,
        role: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        paginate: bool | Mapping[str, Any] = False,
        id: Any = None,
        credentials: Any = None,
    ) -> Request:
        """``Request(...)`` with the same fields, without the frozen dataclass's ``__init__`` (11
        ``object.__setattr__`` calls: ~30k instructions in CPython 3.11, most of what the inventory's
        plan spent a unit); set at once, in the dataclass's order, as ``coerce`` does. No validation
        runs here, as none runs in ``__init__``."""
        new = object.__new__(Request)
        new.__dict__.update(
            service=service,
            operation=operation,
            params=params,
            region=region,
            account=account,
            role=role,
            profile=profile,
            endpoint_url=endpoint_url,
            paginate=paginate,
            id=id,
            credentials=credentials,
        )
        return new

    @staticmethod
    def listed(
        service: str,
        operation: str,
        params: Mapping[str, Any],
        region: str | None,
        account: str | None,
        role: str | None,
        credentials: Any,
        paginate: bool | Mapping[str, Any],
    ) -> Request:
        """``Request.built(service, operation, params, region=region, account=account, role=role,
        credentials=credentials, paginate=paginate)``, its arguments positional and its fields one dict
        display made the instance's dict: the inventory's plan makes one a list call, and ``built``'s
        eight keywords (matched by name) and ``update``'s keyword dict merged into the instance's were
        ~5k of its ~9k. The same fields in the same order; no validation, as in ``built``."""
        new = _new_object(Request)
        _set_field(
            new,
            "__dict__",
            {
                "service": service,
                "operation": operation,
                "params": params,
                "region": region,
                "account": account,
                "role": role,
                "profile": None,
                "endpoint_url": None,
                "paginate": paginate,
                "id": None,
                "credentials": credentials,
            },
        )
        return new

    def _evolve(self, **changes: Any) -> Request:
        """A copy with ``changes``, as ``dataclasses.replace`` but ~7x cheaper: the engine makes one
        or two per call (run defaults, the API name), and replace's per-field walk showed in its
        profile. Only for field names (no validation runs here, as none runs in ``__init__``)."""
        new = object.__new__(Request)
        fields = new.__dict__
        fields.update(self.__dict__)
        fields.update(changes)
        return new

    @property
    def identity(self) -> str:
        """Who the call runs as, without any secret: a role ARN, an account, a profile, or 'default'."""
        return (
            self.role
            or (f"account:{self.account}" if self.account else None)
            or (f"profile:{self.profile}" if self.profile else "default")
        )

    @property
    def account_id(self) -> str | None:
        """The account the call runs in, when the request says: its ``account``, or its role ARN's."""
        return self.account or account_of_role(self.role)

    @property
    def signature(self) -> str:
        """Stable across processes: equal for the same call, so dedupe and the cache can key on it."""
        service, operation, region, identity, endpoint = (
            self.service,
            self.operation,
            self.region,
            self.identity,
            self.endpoint_url,
        )
        if (
            type(service) is str
            and type(operation) is str
            and type(identity) is str
            and (region is None or type(region) is str)
            and (endpoint is None or type(endpoint) is str)
        ):  # the canonical list's text field by field: the encoder's call costs more than its few strings
            params, paginate, texts = self.params, self.paginate, _TEXTS
            canon = (
                f"[{texts.get(service) or _text(service)},{texts.get(operation) or _text(operation)},"
                f"{'{}' if type(params) is dict and not params else _canonical(jsonable(dict(params)))},"
                f"{'null' if region is None else texts.get(region) or _text(region)},"
                f"{texts.get(identity) or _text(identity)},"
                f"{'null' if endpoint is None else texts.get(endpoint) or _text(endpoint)},"
                f"{'true' if paginate is True else 'false' if paginate is False else _canonical(jsonable(paginate))}]"
            )
        else:
            canon = _canonical(
                [
                    service,
                    operation,
                    jsonable(dict(self.params)),
                    region,
                    identity,
                    endpoint,
                    jsonable(self.paginate),
                ]
            )
        return f"{service}:{operation}:{hashlib.sha256(canon.encode()).hexdigest()[:24]}"

    @property
    def max_items(self) -> int | None:
        if isinstance(self.paginate, Mapping):
            value = self.paginate.get("max_items")
            return int(value) if value is not None else None
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "operation": self.operation,
            "params": jsonable(dict(self.params)),
        }
        for name in ("region", "account", "role", "profile", "endpoint_url", "id"):
            if getattr(self, name) is not None:
                out[name] = jsonable(getattr(self, name))
        if self.paginate:
            out["paginate"] = jsonable(self.paginate)
        return out


def _required(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        what = "is missing" if value is None or value == "" else "has a non-name"
        raise RequestError(
            f"request {what} {name!r} (got {value!r:.80}); every request needs 'service' (e.g. \"s3\") "
            f'and \'operation\' (e.g. "ListBuckets" or "list_buckets")',
            code="MissingField",
        )
    return value.strip()


@dataclass
class Result:
    """Exactly one per request: the response or the error, and always the request it answers."""

    index: int
    request: Request | Mapping[str, Any]
    result: Any = None
    error: str | None = None
    error_code: str | None = None
    retryable: bool = False
    guidance: str | None = None
    request_id: str | None = None
    duration_ms: float = 0.0
    attempts: int = 0
    concurrency: int | None = None
    deduped: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        req = (
            self.request.to_dict() if isinstance(self.request, Request) else jsonable(_redacted(self.request))
        )
        out = {
            "index": self.index,
            "request": req,
            "result": jsonable(self.result),
            "error": self.error,
            "error_code": self.error_code,
            "retryable": self.retryable,
            "guidance": self.guidance,
            "request_id": self.request_id,
            "duration_ms": round(self.duration_ms, 3),
            "attempts": self.attempts,
        }
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        if self.deduped:
            out["deduped"] = True
        return out


def failed_result(
    index: int,
    request: Any,
    code: str,
    message: str,
    *,
    retryable: bool = False,
    guidance: str | None = None,
    request_id: str | None = None,
) -> Result:
    """A failed Result, shaped one way wherever it is made (the engine, the worker-process pool): the
    error reads ``service.operation: Code: message`` when the request names both; the request is kept
    as given, with a record's ``credentials`` replaced by the marker, and anything that is not a
    record shows as ``{"invalid": its repr, cut at 200}``."""
    service, operation = names_of(request)
    where = f"{service}.{operation}: " if service and operation else ""
    if isinstance(request, Mapping):
        request = _redacted(request) if request.get("credentials") is not None else request
    elif not isinstance(request, Request):
        request = {"invalid": repr(request)[:200]}
    return Result(
        index,
        request,
        error=f"{where}{code}: {message}",
        error_code=code,
        retryable=retryable,
        guidance=guidance,
        request_id=request_id,
    )


def names_of(request: Any) -> tuple[str | None, str | None]:
    """(service, operation) of a Request or a request record as given; None where it names none, or
    names it with something that is not a string (``{"service": [null]}`` names no service)."""
    if isinstance(request, Request):
        return request.service, request.operation
    if isinstance(request, Mapping):
        service, operation = request.get("service"), request.get("operation")
        return (
            service if isinstance(service, str) else None,
            operation if isinstance(operation, str) else None,
        )
    return None, None


class UnreadableInput(dict[str, Any]):
    """An input record that could not be read, in its place: ``{"input": NAME, "line": N}``.

    The CLI reader yields one for a JSON Lines line that is not strict JSON (not UTF-8, NaN, nested
    too deep, a number out of range, cut off). ``Request.coerce`` refuses it like any request that
    cannot be built, so it becomes that line's failed Result (``InvalidInput``: no attempt, nothing
    sent) and the lines around it still run. It names the place and the parser's reason, never the
    bytes themselves: a broken line may hold a secret."""

    def __init__(self, source: str, line: int, reason: str):
        super().__init__(input=source, line=line)
        self.reason = reason


_UNREADABLE_GUIDANCE = (
    "each JSON Lines line must be one JSON object in strict JSON (UTF-8, no NaN or Infinity, "
    "nesting at most 100 deep): fix this line and run it again; the other lines ran"
)


def _redacted(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A request that could not be built, as given, but never its ``credentials``: output, logs and
    brokers get the marker, so it shows they were there and not what they were."""
    out = dict(raw)
    if out.get("credentials") is not None:
        out["credentials"] = "<redacted>"
    return out


def account_of_role(role: object) -> str | None:
    """The 12-digit account id in an IAM role ARN; None for anything that is not one (not a string
    included: it may come from a request record as given)."""
    return _account_of_arn(role) if isinstance(role, str) else None


@functools.lru_cache(maxsize=4096)
def _account_of_arn(role: str) -> str | None:
    """Memoized: the engine asks per request (the identity guard, the adaptive limiter's scope), and a
    batch has few roles."""
    match = ROLE_ARN.match(role)
    return match["account"] if match else None
