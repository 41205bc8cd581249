"""botocore's request path without its repeated work: guarded adaptations, each computing what botocore computes.

**Headers.** botocore keeps an ``AWSRequest``'s headers in ``botocore.compat.HTTPHeaders``, an
``http.client.HTTPMessage``, i.e. an ``email.message.Message`` with the compat32 policy, and builds a
second one for every SigV4 signature (``SigV4Auth.headers_to_sign``). Each set, get and listing goes
through the policy (``header_max_count``, ``header_store_parse``, ``header_fetch_parse``,
``_sanitize_header``, ``_has_surrogates``): about 11% of a call's own time in the engine's profile
(docs/performance.md, "botocore's request headers").

:class:`Headers` is a subclass of that class (``isinstance`` holds for any handler), on the same storage
(``_headers``: the (name, value) pairs in the order they were set) and with compat32's meaning, written
out: ``h[name] = value`` appends (a name may repeat); ``h[name]`` and ``get`` give the first value of that
name in any case, or None / the default; ``del h[name]`` removes every one (absent: no error); ``in`` is
case-insensitive; ``items``, ``values`` and ``get_all`` list in order. A value goes through the policy
only where the policy could change it: a ``str`` that is not ASCII (one with surrogate-escaped bytes
comes back as an ``email.header.Header``, as from botocore's own class). Every other method
(``keys``, ``replace_header``, ``as_string``...) is Message's own, on the same storage.

**The rest of a call** (docs/performance.md, issue 24 part 4): SigV4 signing with ``Host`` from the
URL remembered per URL (:func:`host_from_url`), the map of headers to sign built once per signature,
not twice (:func:`headers_to_sign`), the signing key derived once per secret, day, region and service
(:func:`signature`), ``AWSRequest.body`` read without preparing the whole request
(:data:`request_body`); botocore's ``HeadersDict`` (prepared request and response headers) with its
hot methods written out (:class:`HeadersDict`, :func:`lowercase_dict`); the endpoint ruleset's
parameters from a plan made once per operation (:func:`provider_params`); the response parse's
handler found once per parser class (:func:`parse_shape`). Then (part 6): the canonical headers in one
pass and the signed headers once per list of names (:func:`canonical_headers`, :func:`signed_headers`),
the prepared request's headers from the pairs with one ``_HeaderKey`` per name
(:func:`encode_headers`, :func:`prepare_headers`), standard mode's "no retry" for an answer without
an error read from the values that decide it (:func:`needs_retry`), and events handed to the
emitter's ``_emit`` without a second copy of their arguments (:func:`aliaser_emit`).

The guard: :func:`install` puts these in botocore's place (the ``HTTPHeaders`` names in
``botocore.awsrequest`` and ``botocore.auth``, the only places botocore makes one, and each function
named above where botocore looks it up) for the botocore versions in ``CHECKED`` (a patch checked on
fewer names its first version in ``_SINCE``), the range tests/test_headers_parity.py and
tests/test_botocore_fast_parity.py were run on: the same method, URL, headers and body, byte for byte,
over operations of every protocol, SigV4 signatures a server recomputes, the same endpoint parameters
and the same parsed responses. Outside that range botocore keeps its own code, said once in the log. It
acts from the first client greenfetch makes, not at import, for the whole process (the code is
botocore's in all but speed, so other botocore users in the process see the same requests).
"""

from __future__ import annotations

import functools
import inspect
import logging
from binascii import crc32
from collections.abc import ItemsView
from email._policybase import compat32
from typing import TYPE_CHECKING, Any

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.endpoint
import botocore.hooks
import botocore.parsers
import botocore.regions
import botocore.retries.special
import botocore.retries.standard

if TYPE_CHECKING:  # botocore ships no types; its HTTPHeaders is this class with nothing added
    from http.client import HTTPMessage as HTTPHeaders
else:
    from botocore.compat import HTTPHeaders

__all__ = ["CHECKED", "Headers", "HeadersDict", "install", "installed", "uninstall"]

log = logging.getLogger("greenfetch")

# botocore versions (major, minor) the parity suite passed on, inclusive. A new minor is added here
# after tests/test_headers_parity.py passes on it.
CHECKED = ((1, 36), (1, 43))

_said = False


class Headers(HTTPHeaders):
    """``botocore.compat.HTTPHeaders`` with compat32's semantics written out (see the module docstring)."""

    _headers: list[tuple[str, Any]]

    def __new__(cls, policy: Any = compat32) -> Any:
        if policy is not compat32:  # only compat32 is written out here; any other policy: botocore's own
            return HTTPHeaders(policy)
        return super().__new__(cls)

    def __setitem__(self, name: str, val: Any) -> None:
        self._headers.append((name, val))  # compat32: no header_max_count, header_store_parse is (name, val)

    def get(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        for key, value in self._headers:
            if key.lower() == name:
                if isinstance(value, str) and not value.isascii():
                    return self.policy.header_fetch_parse(key, value)
                return value
        return failobj

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        name = name.lower()  # type: ignore[attr-defined]  # as Message: a name that is not a str raises
        for key, _ in self._headers:
            if key.lower() == name:
                return True
        return False

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self._headers = [pair for pair in self._headers if pair[0].lower() != name]

    def items(self) -> list[tuple[str, Any]]:
        fetch = self.policy.header_fetch_parse
        return [
            (key, fetch(key, value) if isinstance(value, str) and not value.isascii() else value)
            for key, value in self._headers
        ]

    def values(self) -> list[Any]:
        return [value for _, value in self.items()]

    def get_all(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        fetch = self.policy.header_fetch_parse
        found = [
            fetch(key, value) if isinstance(value, str) and not value.isascii() else value
            for key, value in self._headers
            if key.lower() == name
        ]
        return found or failobj


# -- SigV4 signing (issue 24, part 4) ---------------------------------------------------------------
#
# Per signature botocore parses the URL for ``Host`` twice (``headers_to_sign`` runs for the canonical
# request and again for the ``Authorization`` header, each through ``_host_from_url``: two ``urlsplit``
# and an IPv6 check), prepares the whole request (a ``HeadersDict``, the URL's query) to read its body
# for the payload hash, and derives the signing key with four HMACs. The replacements below compute the
# same values from the same inputs, once.

_host_from_url = botocore.auth._host_from_url


@functools.lru_cache(maxsize=256)
def _cached_host(url: str) -> str:
    return _host_from_url(url)  # type: ignore[no-any-return]  # botocore ships no types


def host_from_url(url: Any) -> Any:
    """botocore's ``_host_from_url``, remembered per URL (a pure function of the string)."""
    if type(url) is str:
        return _cached_host(url)
    return _host_from_url(url)


_headers_to_sign = botocore.auth.SigV4Auth.headers_to_sign


def headers_to_sign(self: Any, request: Any) -> Any:
    """``SigV4Auth.headers_to_sign``, built once per signature: the second call of one ``add_auth``
    (same request, same URL, the same header pairs) gets a fresh copy of the first one's map."""
    headers = request.headers
    if type(headers) is not Headers:
        return _headers_to_sign(self, request)
    key = (request.url, tuple(headers._headers))
    memo = self.__dict__.get("_greenfetch_signed")
    if memo is not None and memo[0] is request and memo[1] == key:
        copy = Headers()
        copy._headers = list(memo[2])
        return copy
    found = _headers_to_sign(self, request)
    if type(found) is Headers:
        self._greenfetch_signed = (request, key, tuple(found._headers))
    return found


_canonical_headers = botocore.auth.SigV4Auth.canonical_headers
_signed_headers = botocore.auth.SigV4Auth.signed_headers
_header_value = botocore.auth.SigV4Auth._header_value


def canonical_headers(self: Any, headers_to_sign: Any) -> Any:
    """``SigV4Auth.canonical_headers`` in one pass over a :class:`Headers`' pairs when its names are
    distinct, lower case ASCII (as ``headers_to_sign`` makes them) and its values ASCII ``str``: each
    name, sorted, with its one value trimmed as ``_header_value`` trims. botocore's code instead scans
    every pair again for each name (``get_all``). Anything else (a repeated name, a value ``get_all``
    could hand back changed, a signer with its own ``_header_value``): botocore's own code."""
    if type(headers_to_sign) is not Headers or type(self)._header_value is not _header_value:
        return _canonical_headers(self, headers_to_sign)
    pairs = headers_to_sign._headers
    names = [name for name, _ in pairs]
    if not all(type(name) is str for name in names):
        return _canonical_headers(self, headers_to_sign)
    joined = "".join(names)
    if len(set(names)) != len(names) or not joined.isascii() or joined.lower() != joined:
        return _canonical_headers(self, headers_to_sign)
    lines = []
    for name, value in sorted(pairs):  # distinct names: the values are never compared
        if type(value) is not str or not value.isascii():
            return _canonical_headers(self, headers_to_sign)
        lines.append(f"{name}:{' '.join(value.split())}")
    return "\n".join(lines)


_signed: dict[tuple[Any, ...], str] = {}
_SIGNED = 256  # lists of header names kept; all dropped when full


def signed_headers(self: Any, headers_to_sign: Any) -> Any:
    """``SigV4Auth.signed_headers`` remembered per list of names of a :class:`Headers` (it reads
    only the names: a signature computes it twice, and every call of one operation has the same)."""
    if type(headers_to_sign) is not Headers:
        return _signed_headers(self, headers_to_sign)
    names = tuple([name for name, _ in headers_to_sign._headers])
    found = _signed.get(names)
    if found is None:
        found = ";".join(sorted([n.lower().strip() for n in set(names)]))
        if len(_signed) >= _SIGNED:
            _signed.clear()
        _signed[names] = found
    return found


_signature = botocore.auth.SigV4Auth.signature
_SigV4_sign = botocore.auth.SigV4Auth._sign
_signing_keys: dict[tuple[Any, ...], bytes] = {}
_SIGNING_KEYS = 256  # (secret, day, region, service) keys kept; all dropped when full


def signature(self: Any, string_to_sign: str, request: Any) -> Any:
    """``SigV4Auth.signature`` with the signing key (four HMACs of the secret, the day, the region
    and the service) derived once per (secret, day, region, service), as the AWS SDKs for Go and
    Java keep it. The cache lives in this process's memory only, bounded."""
    if type(self)._sign is not _SigV4_sign:
        return _signature(self, string_to_sign, request)
    secret = self.credentials.secret_key
    day = request.context["timestamp"][0:8]
    key = (secret, day, self._region_name, self._service_name)
    signing_key = _signing_keys.get(key)
    if signing_key is None:
        k_date = self._sign(f"AWS4{secret}".encode(), day)
        k_region = self._sign(k_date, self._region_name)
        k_service = self._sign(k_region, self._service_name)
        signing_key = self._sign(k_service, "aws4_request")
        if len(_signing_keys) >= _SIGNING_KEYS:
            _signing_keys.clear()
        _signing_keys[key] = signing_key
    return self._sign(signing_key, string_to_sign, hex=True)


_body = botocore.awsrequest.AWSRequest.body
_prepare = botocore.awsrequest.AWSRequestPreparer.prepare


def _request_body(self: Any) -> Any:
    """``AWSRequest.body`` without preparing the whole request: ``prepare().body`` is
    ``_prepare_body`` (the URL and the header map it also builds are thrown away)."""
    preparer = self._request_preparer
    if type(preparer).prepare is not _prepare:
        return _body.fget(self)
    body = preparer._prepare_body(self)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body


request_body = property(_request_body, doc=_body.__doc__)


# -- HeadersDict: a prepared request's and a response's headers (issue 24, part 4) ----------------
#
# ``botocore.awsrequest.HeadersDict`` is a ``MutableMapping`` on a dict keyed by ``_HeaderKey`` (the
# name and its lower case). Built from pairs it goes through ``MutableMapping.update`` and one
# ``__setitem__`` per pair; ``in`` and ``get`` on an absent name raise and catch a KeyError; ``items()``
# looks every name up again. :class:`HeadersDict` is that class with those four written out on the
# same storage (the same ``_HeaderKey`` keys, in the same order).

_HeaderKey = botocore.awsrequest._HeaderKey
_HeadersDict: Any = botocore.awsrequest.HeadersDict


class _Items(ItemsView):  # type: ignore[type-arg]  # of botocore's headers, which are Any
    """``ItemsView`` of a :class:`HeadersDict`, read from its storage: the same pairs in the same order."""

    __slots__ = ()

    def __iter__(self) -> Any:
        for key, value in self._mapping._dict.items():  # type: ignore[attr-defined]  # a HeadersDict's storage
            name = key._key
            yield (name if type(name) is str else str(key)), value


class HeadersDict(_HeadersDict):  # type: ignore[misc]  # botocore ships no types: its class is Any
    """``botocore.awsrequest.HeadersDict`` with construction, ``in``, ``get`` and ``items`` written out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs or len(args) != 1 or type(args[0]) not in (dict, list):
            super().__init__(*args, **kwargs)
            return
        data = args[0]
        store: dict[Any, Any] = {}
        for key, value in data.items() if type(data) is dict else data:
            store[_HeaderKey(key)] = value
        self._dict = store

    def __contains__(self, key: object) -> bool:
        return _HeaderKey(key) in self._dict

    def get(self, key: Any, default: Any = None) -> Any:
        return self._dict.get(_HeaderKey(key), default)

    def items(self) -> Any:
        return _Items(self)


_keys: dict[str, Any] = {}
_KEYS = 256  # header names kept; all dropped when full


def _key(name: str) -> Any:
    """The ``_HeaderKey`` of a name, made once per name (botocore never changes one once made)."""
    key = _keys.get(name)
    if key is None:
        if len(_keys) >= _KEYS:
            _keys.clear()
        key = _keys[name] = _HeaderKey(name)
    return key


def _plain_pairs(headers: Any) -> Any:
    """A :class:`Headers`' pairs if every name is a ``str`` and no value is a ``str`` that is not
    ASCII (what its listing hands out as stored), else None."""
    if type(headers) is not Headers:
        return None
    pairs = headers._headers
    for name, value in pairs:
        if type(name) is not str or (isinstance(value, str) and not value.isascii()):
            return None
    return pairs


_Endpoint = botocore.endpoint.Endpoint
_encode_headers = _Endpoint._encode_headers


def encode_headers(self: Any, headers: Any) -> None:
    """``Endpoint._encode_headers`` on a :class:`Headers`' pairs: each ``str`` value's UTF-8 bytes
    set after the pairs (set appends: botocore's loop leaves the ``str`` pair and adds the bytes)."""
    pairs = _plain_pairs(headers)
    if pairs is None:
        _encode_headers(self, headers)
        return
    pairs.extend([(key, value.encode("utf-8")) for key, value in pairs if isinstance(value, str)])


_Preparer = botocore.awsrequest.AWSRequestPreparer
_prepare_headers = _Preparer._prepare_headers


def prepare_headers(self: Any, original: Any, prepared_body: Any = None) -> Any:
    """``AWSRequestPreparer._prepare_headers`` from a :class:`Headers`' pairs: the ``HeadersDict``
    of them (each name once, under its first spelling, with its last value) built with one
    ``_HeaderKey`` per name, then ``Content-Length`` as botocore sets it. A body whose length
    botocore cannot tell (chunked), or headers that are not plain pairs: botocore's own code."""
    pairs = _plain_pairs(original.headers)
    if pairs is None or botocore.awsrequest.HeadersDict is not HeadersDict:
        return _prepare_headers(self, original, prepared_body)
    last: dict[str, Any] = {}
    first: dict[str, str] = {}
    for name, value in pairs:
        lower = name.lower()
        if lower not in first:
            first[lower] = name
        last[lower] = value
    length = None
    if "transfer-encoding" not in last and "content-length" not in last:
        if original.method not in ("GET", "HEAD", "OPTIONS"):
            length = self._determine_content_length(prepared_body)
            if length is None:  # botocore logs it and sends chunked
                return _prepare_headers(self, original, prepared_body)
    store = {}
    for lower, name in first.items():
        store[_key(name)] = last[lower]
    if length is not None:
        store[_key("Content-Length")] = str(length)
    headers = HeadersDict.__new__(HeadersDict)
    headers._dict = store
    return headers


_lowercase_dict = botocore.parsers.lowercase_dict


def lowercase_dict(original: Any) -> Any:
    """``botocore.utils.lowercase_dict`` as the parsers use it (a response's ``HTTPHeaders`` in its
    metadata): for a :class:`HeadersDict`, read from its storage, whose keys hold each name's lower
    case already; the same dict, in the same order."""
    if type(original) is not HeadersDict:
        return _lowercase_dict(original)
    out = {}
    for key, value in original._dict.items():
        if type(key._key) is not str:  # botocore's str(key) raises: let it
            return _lowercase_dict(original)
        out[key._lower] = value
    return out


# -- endpoint ruleset parameters (issue 24, part 4) ----------------------------------------------
#
# The endpoint ruleset's answer is cached by botocore (``EndpointProvider.resolve_endpoint`` is an LRU
# keyed by the parameters), but the parameters are gathered again for every call: for each of the
# ruleset's parameters (9 for DynamoDB, 20 for S3) four instance-cached lookups (static context,
# operation member, operation context path, client context) and a builtin name checked against the
# enum's members. What each lookup reads from the operation and the client is the same every call, so
# it is worked out once per operation (a plan) and the call reads only the values.

_Resolver = botocore.regions.EndpointRulesetResolver
_get_provider_params = _Resolver._get_provider_params
_BUILTINS = frozenset(member.value for member in botocore.regions.EndpointResolverBuiltins)
_PLAN = "greenfetch-provider-plan"


def _plan(resolver: Any, operation_model: Any) -> Any:
    """Per ruleset parameter, in the ruleset's order: (name, static value, operation member,
    operation context path (present or not), client context name, builtin), each None where
    botocore finds none;
    or False where the plan cannot stand for botocore (a builtin botocore would refuse)."""
    static = resolver._get_static_context_params(operation_model)
    dynamic = resolver._get_dynamic_context_params(operation_model)
    paths = operation_model.operation_context_parameters
    client = resolver._get_client_context_params()
    plan = []
    for name, definition in resolver._param_definitions.items():
        builtin = definition.builtin
        if builtin is not None and builtin not in _BUILTINS:
            return False  # botocore raises when it gets there: let it
        plan.append(
            (
                name,
                static.get(name),
                dynamic[name] if name in dynamic else None,
                paths[name]["path"] if name in paths else None,
                client[name] if name in client else None,
                builtin,
            )
        )
    return tuple(plan)


def provider_params(self: Any, operation_model: Any, call_args: Any, request_context: Any) -> Any:
    """``EndpointRulesetResolver._get_provider_params`` from a plan made once per operation: the
    same order (static context, operation member, operation context path, client context, then the
    builtin), a value that is None falling through to the next, as botocore's lookups do."""
    if type(self) is not _Resolver:
        return _get_provider_params(self, operation_model, call_args, request_context)
    cache = self._instance_cache
    plan = cache.get((_PLAN, operation_model))
    if plan is None:
        plan = cache[(_PLAN, operation_model)] = _plan(self, operation_model)
    if plan is False:
        return _get_provider_params(self, operation_model, call_args, request_context)
    builtins = self._get_customized_builtins(operation_model, call_args, request_context)
    params = {}
    for name, value, member, path, client_name, builtin in plan:
        if value is None:
            if member is not None:
                value = call_args.get(member)
            if value is None and path is not None:  # botocore's own: a JMESPath search of the input
                value = self._resolve_param_as_operation_context_param(name, operation_model, call_args)
            if value is None and client_name is not None:
                value = self._client_context.get(client_name)
            if value is None and builtin is not None:
                value = builtins.get(builtin)
                if callable(value):
                    value = value()
        if value is not None:
            params[name] = value
            self._register_endpoint_feature_ids(name, value)
    return params


# -- the response parse (issue 24, part 4) --------------------------------------------------------
#
# Every node of a response (each member, each list item) goes through ``ResponseParser._parse_shape``,
# which builds the handler's name (``f"_handle_{type}"``) and looks it up with a default: for a type
# the parser has no handler for (a JSON string, integer or boolean) that lookup raises and catches an
# AttributeError inside ``getattr``, once per value. botocore makes a new parser for every response,
# so the replacement looks each type's handler up once per parser class and remembers it.

_parse_shape = botocore.parsers.ResponseParser._parse_shape
_handlers: dict[type, tuple[int, dict[str, Any]]] = {}


def _own_handler(attributes: dict[str, Any]) -> bool:
    return any(key.startswith("_handle_") or key == "_default_handle" for key in attributes)


def parse_shape(self: Any, shape: Any, node: Any) -> Any:
    """``ResponseParser._parse_shape`` with the handler of each type found once per parser class and
    remembered as a function. A parser with attributes of its own beyond those its class's first
    parser had (a handler set on the instance, say) is parsed by botocore's own code."""
    cls = type(self)
    attributes = self.__dict__
    known = _handlers.get(cls)
    if known is None:
        if _own_handler(attributes):
            return _parse_shape(self, shape, node)
        known = _handlers[cls] = (len(attributes), {})
    if len(attributes) != known[0]:
        return _parse_shape(self, shape, node)
    functions = known[1]
    function: Any = functions.get(shape.type_name)
    if function is None:
        found = getattr(cls, f"_handle_{shape.type_name}", None)
        if found is None:
            found = cls._default_handle
        function = functions[shape.type_name] = found if inspect.isfunction(found) else False
    if function is False:
        return _parse_shape(self, shape, node)
    return function(self, shape, node)


# -- standard mode's retry decision on an answer it keeps (issue 24, part 6) -----------------------
#
# After every attempt ``needs-retry`` asks ``RetryHandler.needs_retry``, which wraps the event's
# arguments in a ``RetryContext`` and walks the standard conditions: max attempts, then any of
# transient, throttled, modeled-retryable, STS's IDPCommunicationError and DynamoDB's CRC32 check.
# For an answer without an error every one of them is decided by a few values (the error code is
# None), so those values are checked directly; wherever any condition could hold, the whole
# handler is botocore's.

_RetryHandler = botocore.retries.standard.RetryHandler
_needs_retry = _RetryHandler.needs_retry
_std = botocore.retries.standard
_special = botocore.retries.special
_CHECKERS = (
    _std.TransientRetryableChecker,
    _std.ThrottledRetryableChecker,
    _std.ModeledRetryableChecker,
    _std.OrRetryChecker,
)
_SPECIAL = (_special.RetryIDPCommunicationError, _special.RetryDDBChecksumError)


def _kept(self: Any, kwargs: dict[str, Any]) -> bool:
    """Whether standard mode's conditions say "no retry" for this ``needs-retry``, known without
    botocore's walk; with the one side effect the walk has on the way (the max attempts written into
    the request's retries context, which botocore's own walk writes again alike). False is "not
    known": botocore decides."""
    response = kwargs.get("response")
    operation = kwargs.get("operation")
    if response is None or kwargs.get("caught_exception") is not None or operation is None:
        return False
    http, parsed = response
    if type(parsed) is not dict or "Error" in parsed:
        return False  # an error code (or one botocore's get_error_code could find): botocore decides
    if type(self._retry_event_adapter) is not _std.RetryEventAdapter:
        return False
    policy = self._retry_policy
    if type(policy) is not _std.RetryPolicy:
        return False
    conditions = policy._retry_checker
    if type(conditions) is not _std.StandardRetryConditions:
        return False
    attempts = conditions._max_attempts_checker
    others = conditions._additional_checkers
    if type(attempts) is not _std.MaxAttemptsChecker or type(others) is not _std.OrRetryChecker:
        return False
    checkers = others._checkers
    if len(checkers) != 4 or tuple(map(type, checkers)) != _CHECKERS:
        return False
    transient, throttled, _, special = checkers
    specials = special._checkers
    if len(specials) != 2 or tuple(map(type, specials)) != _SPECIAL:
        return False
    if not kwargs["attempts"] < attempts._max_attempts:
        return False  # botocore notes MaxAttemptsReached in the metadata
    context = kwargs["request_dict"]["context"]
    retries = context.get("retries") if context is not None else None
    if retries:
        retries["max"] = max(retries.get("max", 0), attempts._max_attempts)
    # the error code is None: transient and throttled look it up in their lists; modeled and STS's
    # check need a code; DynamoDB's compares the body's CRC32 with its header
    if None in transient._transient_error_codes or None in throttled._throttled_error_codes:
        return False
    if http is not None and http.status_code in transient._transient_status_codes:
        return False
    service = operation.service_model.service_name  # STS's check reads it first, whatever the answer
    ddb = specials[1]
    if http is not None and service == ddb._SERVICE_NAME:
        checksum = http.headers.get(ddb._CHECKSUM_HEADER)
        if checksum is not None:
            try:
                if crc32(http.content) & 0xFFFFFFFF != int(checksum):
                    return False
            except Exception:  # noqa: BLE001 - botocore's walk raises it
                return False
    return True


def needs_retry(self: Any, **kwargs: Any) -> Any:
    """``RetryHandler.needs_retry`` (standard mode) for an answer its conditions would not retry:
    the same log line, the response's metadata made present as botocore's adapter makes it (with
    nothing to add) and no delay. Anything else: botocore's own handler."""
    if type(self) is not _RetryHandler or not _kept(self, kwargs):
        return _needs_retry(self, **kwargs)
    _std.logger.debug("Not retrying request.")
    kwargs["response"][1].setdefault("ResponseMetadata", {})
    return None


# -- event emission (issue 24, part 6) -----------------------------------------------------------
#
# A client's events go through an ``EventAliaser`` (old event names to new) in front of a
# ``HierarchicalEmitter``; a call emits about a dozen events, each through four Python frames and two
# copies of its keyword arguments (``EventAliaser.emit`` -> ``_alias_event_name`` ->
# ``HierarchicalEmitter.emit`` -> ``_emit``), most of them to no handler or one. The aliaser's
# ``emit`` below reads its own name cache and calls the emitter's ``_emit`` with the arguments it
# was given, which is what the emitter's ``emit`` does with its copy of them.

_Aliaser = botocore.hooks.EventAliaser
_Emitter = botocore.hooks.HierarchicalEmitter
_aliaser_emit = _Aliaser.emit
_aliaser_until = _Aliaser.emit_until_response
_alias_event_name = _Aliaser._alias_event_name
_emitter_emit = _Emitter.emit
_emitter_until = _Emitter.emit_until_response


def _aliased(self: Any, event_name: str) -> Any:
    cache = self._alias_name_cache
    if event_name in cache:  # as _alias_event_name begins
        return cache[event_name]
    return self._alias_event_name(event_name)


def aliaser_emit(self: Any, event_name: str, **kwargs: Any) -> Any:
    """``EventAliaser.emit`` in front of a ``HierarchicalEmitter`` whose ``emit`` is botocore's:
    ``_emit`` called with this call's own copy of the arguments (it adds ``event_name`` to it)."""
    emitter = self._emitter
    if type(emitter).emit is not _emitter_emit or type(self)._alias_event_name is not _alias_event_name:
        return _aliaser_emit(self, event_name, **kwargs)
    return emitter._emit(_aliased(self, event_name), kwargs)


def aliaser_emit_until_response(self: Any, event_name: str, **kwargs: Any) -> Any:
    """``EventAliaser.emit_until_response`` likewise: the emitter's ``_emit`` stopping at the first
    answer, then the last (handler, answer) or (None, None), as its ``emit_until_response`` does."""
    emitter = self._emitter
    if (
        type(emitter).emit_until_response is not _emitter_until
        or type(self)._alias_event_name is not _alias_event_name
    ):
        return _aliaser_until(self, event_name, **kwargs)
    responses = emitter._emit(_aliased(self, event_name), kwargs, stop_on_response=True)
    if responses:
        return responses[-1]
    return (None, None)


# -- what install() sets: (object, attribute, botocore's own, greenfetch's) ------------------------

_PATCHES: tuple[tuple[Any, str, Any, Any], ...] = (
    *((module, "HTTPHeaders", HTTPHeaders, Headers) for module in (botocore.awsrequest, botocore.auth)),
    (botocore.awsrequest, "HeadersDict", _HeadersDict, HeadersDict),
    (botocore.parsers, "lowercase_dict", _lowercase_dict, lowercase_dict),
    (_Endpoint, "_encode_headers", _encode_headers, encode_headers),
    (_Preparer, "_prepare_headers", _prepare_headers, prepare_headers),
    (botocore.auth, "_host_from_url", _host_from_url, host_from_url),
    (botocore.auth.SigV4Auth, "headers_to_sign", _headers_to_sign, headers_to_sign),
    (botocore.auth.SigV4Auth, "signature", _signature, signature),
    (botocore.auth.SigV4Auth, "canonical_headers", _canonical_headers, canonical_headers),
    (botocore.auth.SigV4Auth, "signed_headers", _signed_headers, signed_headers),
    (botocore.awsrequest.AWSRequest, "body", _body, request_body),
    (_Resolver, "_get_provider_params", _get_provider_params, provider_params),
    (botocore.parsers.ResponseParser, "_parse_shape", _parse_shape, parse_shape),
    (_RetryHandler, "needs_retry", _needs_retry, needs_retry),
    (_Aliaser, "emit", _aliaser_emit, aliaser_emit),
    (_Aliaser, "emit_until_response", _aliaser_until, aliaser_emit_until_response),
)
# A patch checked on fewer versions than CHECKED: its first version. The endpoint plan follows
# botocore 1.40+, which calls a builtin that is callable and registers endpoint feature ids (1.36 does
# neither); checked on 1.40.0 and 1.43.117.
_SINCE = {provider_params: (1, 40)}


def _applicable() -> list[tuple[Any, str, Any, Any]]:
    version = _version()
    return [patch for patch in _PATCHES if _SINCE.get(patch[3], CHECKED[0]) <= version]


def _version() -> tuple[int, int]:
    major, minor = botocore.__version__.split(".")[:2]
    return int(major), int(minor)


def checked(version: tuple[int, int] | None = None) -> bool:
    """Whether this botocore (or ``version``) is one the parity suite passed on."""
    low, high = CHECKED
    return low <= (version or _version()) <= high


def install() -> bool:
    """Make botocore use the adaptations where this botocore was checked; True if it does."""
    global _said
    if installed():
        return True
    if not checked():
        if not _said:
            _said = True
            log.info(
                "greenfetch: botocore %s is outside the versions its request-path adaptations were "
                "checked on (%d.%d-%d.%d): botocore's own code is used",
                botocore.__version__,
                *CHECKED[0],
                *CHECKED[1],
            )
        return False
    for owner, name, _, ours in _applicable():
        setattr(owner, name, ours)
    return True


def installed() -> bool:
    return all(owner.__dict__.get(name) is ours for owner, name, _, ours in _applicable())


def uninstall() -> None:
    """botocore's own code again (the parity suite runs both ways)."""
    for owner, name, theirs, _ in _PATCHES:
        setattr(owner, name, theirs)
