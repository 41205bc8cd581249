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

**SigV4 signing** (docs/performance.md, issue 24 part 4): ``Host`` from the URL remembered per URL
(:func:`host_from_url`), the map of headers to sign built once per signature, not twice
(:func:`headers_to_sign`), the signing key derived once per secret, day, region and service
(:func:`signature`), and ``AWSRequest.body`` read without preparing the whole request
(:data:`request_body`).

The guard: :func:`install` puts these in botocore's place (the ``HTTPHeaders`` names in
``botocore.awsrequest`` and ``botocore.auth``, the only places botocore makes one, and the functions
named above) for the botocore versions in ``CHECKED``, the range tests/test_headers_parity.py and
tests/test_botocore_fast_parity.py were run on: the same method, URL, headers and body, byte for byte,
over operations of every protocol, and SigV4 signatures a server recomputes. Outside that range botocore
keeps its own code, said once in the log. It acts from the first client greenfetch makes, not at
import, for the whole process (the code is botocore's in all but speed, so other botocore users in the
process see the same requests).
"""

from __future__ import annotations

import functools
import logging
from email._policybase import compat32
from typing import TYPE_CHECKING, Any

import botocore
import botocore.auth
import botocore.awsrequest

if TYPE_CHECKING:  # botocore ships no types; its HTTPHeaders is this class with nothing added
    from http.client import HTTPMessage as HTTPHeaders
else:
    from botocore.compat import HTTPHeaders

__all__ = ["CHECKED", "Headers", "install", "installed", "uninstall"]

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
    return _host_from_url(url)  # type: ignore[no-any-return]


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


# -- what install() sets: (object, attribute, botocore's own, greenfetch's) ------------------------

_PATCHES: tuple[tuple[Any, str, Any, Any], ...] = (
    *((module, "HTTPHeaders", HTTPHeaders, Headers) for module in (botocore.awsrequest, botocore.auth)),
    (botocore.auth, "_host_from_url", _host_from_url, host_from_url),
    (botocore.auth.SigV4Auth, "headers_to_sign", _headers_to_sign, headers_to_sign),
    (botocore.auth.SigV4Auth, "signature", _signature, signature),
    (botocore.awsrequest.AWSRequest, "body", _body, request_body),
)


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
    for owner, name, _, ours in _PATCHES:
        setattr(owner, name, ours)
    return True


def installed() -> bool:
    return all(owner.__dict__.get(name) is ours for owner, name, _, ours in _PATCHES)


def uninstall() -> None:
    """botocore's own code again (the parity suite runs both ways)."""
    for owner, name, theirs, _ in _PATCHES:
        setattr(owner, name, theirs)
