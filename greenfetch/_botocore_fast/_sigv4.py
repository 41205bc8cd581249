"""SigV4 signing without its repeated work (docs/performance/engine-call.md, issue 24 parts 4 and 6).

``Host`` from the URL remembered per URL (:func:`host_from_url`), the map of headers to sign built once
per signature, not twice, and in one pass (:func:`headers_to_sign`), the signing key derived once per
secret, day, region and service, its date and region links once per secret and day and per region
(:func:`signature`), the canonical headers in one pass and the signed headers once per list of names
(:func:`canonical_headers`, :func:`signed_headers`).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
from typing import Any

import botocore.auth
import botocore.compat

from .._kept import kept
from ._request import Headers, _plain_pairs

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
    found = _build_headers_to_sign(self, request)
    if type(found) is Headers:
        self._greenfetch_signed = (request, key, tuple(found._headers))
    return found


# botocore builds the map a header at a time: each name lowered, looked for in the list
# ``SIGNED_HEADERS_BLACKLIST`` (14 names from 1.40: up to 14 comparisons a header), set through the
# map's ``__setitem__`` (a Python frame each), then ``'host'`` looked for in a scan of the map: ~33k
# instructions over a call's eight headers, ~5k more with a session token's. The same pairs in one
# comprehension, the names looked up in a set of the list (made again whenever the list changes).
_skipped: tuple[list[Any], frozenset[Any]] = ([], frozenset())


def _skip_set(blacklist: Any) -> frozenset[Any] | None:
    """``SIGNED_HEADERS_BLACKLIST`` as a set (None: not a list of hashable names)."""
    global _skipped
    names, found = _skipped
    if type(blacklist) is not list or blacklist != names:
        try:
            found = frozenset(blacklist)
        except TypeError:
            return None
        _skipped = (list(blacklist), found)
    return found


def _build_headers_to_sign(self: Any, request: Any) -> Any:
    """botocore's ``SigV4Auth.headers_to_sign`` for a :class:`Headers` of plain pairs (``str`` names, no
    value that is a ``str`` not ASCII) where botocore makes its map as a :class:`Headers`: every pair
    whose lowered name is not in ``SIGNED_HEADERS_BLACKLIST``, in order, then ``host`` from the URL
    unless one of them is ``host``. Anything else: botocore's own code."""
    pairs = _plain_pairs(request.headers)
    skip = _skip_set(botocore.auth.SIGNED_HEADERS_BLACKLIST)
    if pairs is None or skip is None or botocore.auth.HTTPHeaders is not Headers:
        return _headers_to_sign(self, request)
    names = [name.lower() for name, _ in pairs]
    kept_pairs = [(name, pair[1]) for name, pair in zip(names, pairs, strict=True) if name not in skip]
    if "host" not in names or "host" in skip:
        kept_pairs.append(("host", botocore.auth._host_from_url(request.url)))
    found = Headers()
    found._headers = kept_pairs
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
        found = kept(_signed, names, ";".join(sorted([n.lower().strip() for n in set(names)])), _SIGNED)
    return found


_signature = botocore.auth.SigV4Auth.signature
_SigV4_sign = botocore.auth.SigV4Auth._sign
# (secret, day, region, service) -> the signing key, after its second signature its HMAC states
# (:func:`_hmac_states`); all dropped when full
_signing_keys: dict[tuple[Any, ...], Any] = {}
_SIGNING_KEYS = 256
# The chain's first two links, kept apart from the signing keys: an account's role is used in many
# regions and services, most of them once a run (an inventory signs each (account, region, service)
# once or for a few pages), so its date key and each region's key are what repeats. Each link is an
# HMAC (~25k instructions here: OpenSSL's context set up for a few bytes).
_date_keys: dict[tuple[str, str], bytes] = {}
_DATE_KEYS = 256  # (secret, day) -> the date key
_region_keys: dict[tuple[bytes, str], bytes] = {}
_REGION_KEYS = 1024  # (date key, region) -> the region key


def signature(self: Any, string_to_sign: str, request: Any) -> Any:
    """``SigV4Auth.signature`` with the signing key (four HMACs of the secret, the day, the region
    and the service) derived once per (secret, day, region, service), as the AWS SDKs for Go and
    Java keep it, and its first two links once per (secret, day) and (secret, day, region): a new
    region or service of a known secret costs two or three HMACs, not four; from a key's second
    signature on, the signature's HMAC from the key's padded states (:func:`hex_hmac`). The keys live
    in this process's memory only, bounded, as the secret they are derived from already did."""
    if type(self)._sign is not _SigV4_sign:
        return _signature(self, string_to_sign, request)
    secret = self.credentials.secret_key
    day = request.context["timestamp"][0:8]
    region, service = self._region_name, self._service_name
    key = (secret, day, region, service)
    known = _signing_keys.get(key)
    if type(known) is tuple:
        return hex_hmac(known, string_to_sign)
    if known is not None:  # the key's second signature: its states pay for themselves from here
        _signing_keys[key] = states = _hmac_states(known)
        return hex_hmac(states, string_to_sign)
    dated = (secret, day)
    k_date = _date_keys.get(dated)
    if k_date is None:
        k_date = kept(_date_keys, dated, self._sign(f"AWS4{secret}".encode(), day), _DATE_KEYS)
    regional = (k_date, region)
    k_region = _region_keys.get(regional)
    if k_region is None:
        k_region = kept(_region_keys, regional, self._sign(k_date, region), _REGION_KEYS)
    k_service = self._sign(k_region, service)
    signing_key = kept(_signing_keys, key, self._sign(k_service, "aws4_request"), _SIGNING_KEYS)
    return self._sign(signing_key, string_to_sign, hex=True)


# The signature itself is ``self._sign(signing_key, string_to_sign, hex=True)``: ``hmac.new(key, text,
# sha256).hexdigest()``, ~30k instructions, most of it OpenSSL setting up an HMAC context for the key.
# HMAC is two hashes over the key padded to the block (RFC 2104): H((K ^ opad) + H((K ^ ipad) + text)).
# The two padded-key states are hashed once per signing key (~14k, so not for a key's first signature:
# an inventory signs some once) and copied per signature (~18k).
_BLOCK = 64  # SHA-256's block size, hmac's for sha256
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _hmac_states(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's inner and outer hash, each fed its padded key (a key longer than the block is
    hashed first, as hmac does)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    block = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


def hex_hmac(states: tuple[Any, Any], text: str) -> str:
    """``hmac.new(key, text.encode("utf-8"), sha256).hexdigest()`` from the key's :func:`_hmac_states`."""
    inner, outer = states[0].copy(), states[1].copy()
    inner.update(text.encode("utf-8"))
    outer.update(inner.digest())
    return outer.hexdigest()  # type: ignore[no-any-return]


# -- the payload hash ---------------------------------------------------------------------------------
#
# A JSON request without parameters sends ``{}`` (every list call's first page), and its payload hash
# is SHA-256 of those two bytes each time (~7k instructions, OpenSSL's context set up for them). No
# other body's hash is kept: a body can carry a secret.

_payload = botocore.auth.SigV4Auth.payload
_EMPTY_JSON = b"{}"
_EMPTY_JSON_SHA256 = hashlib.sha256(_EMPTY_JSON).hexdigest()


def payload(self: Any, request: Any) -> Any:
    """``SigV4Auth.payload``: for a signed payload of bytes, their SHA-256 (``{}``'s known), of none,
    the empty string's; a streaming checksum, an unsigned payload, a body to read: botocore's."""
    if self._is_streaming_checksum_payload(request) or not self._should_sha256_sign_payload(request):
        return _payload(self, request)
    body = request.body
    if not body:
        return botocore.auth.EMPTY_SHA256_HASH
    if type(body) is not bytes or botocore.auth.sha256 is not hashlib.sha256:
        return _payload(self, request)  # it reads the body again
    if body == _EMPTY_JSON:
        return _EMPTY_JSON_SHA256
    return hashlib.sha256(body).hexdigest()


# -- the request's timestamp (issue 24, part 7b) ----------------------------------------------------
#
# ``SigV4Auth.add_auth`` reads the clock and formats it with ``strftime('%Y%m%dT%H%M%SZ')`` (17k
# instructions: a time tuple, then the C library's ``strftime``), and asks for four debug lines (one
# ``Logger.debug`` each). The replacement is botocore's ``add_auth`` with the same clock read the same
# way (``get_current_datetime()`` from 1.43, ``datetime.datetime.utcnow()`` before: each looked up in
# ``botocore.auth`` when called, so a clock stopped there stays stopped; botocore's own
# ``get_current_datetime`` is ``datetime.now(timezone.utc)`` without its tzinfo, so its fields are
# read from ``now`` itself, through ``botocore.compat.datetime``), the timestamp formatted from
# the fields of a plain ``datetime`` whose year has four digits (what ``strftime`` gives then; any other
# object or year: ``strftime``), and each debug line asked for only where ``Logger`` does not already
# know it would log nothing (as ``emitter_emit`` does, see ``_events``).

_add_auth = botocore.auth.SigV4Auth.add_auth
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_clock_names = _add_auth.__code__.co_names
# which clock botocore's add_auth reads, or None: then add_auth stays botocore's (__init__._SINCE)
CLOCK = (
    "get_current_datetime"
    if "get_current_datetime" in _clock_names
    else "utcnow"
    if "utcnow" in _clock_names
    else None
)
_datetime = datetime.datetime
_get_current_datetime = getattr(botocore.compat, "get_current_datetime", None)  # 1.43+
_DEBUG = logging.DEBUG
_Logger = logging.Logger


def timestamp(now: Any) -> Any:
    """``now.strftime('%Y%m%dT%H%M%SZ')``."""
    if type(now) is not _datetime or not 1000 <= now.year <= 9999:
        return now.strftime(_SIGV4_TIMESTAMP)
    # printf's %02d: half the instructions of format specs (``f"{now.month:02d}"``), a third of strftime's
    return "%d%02d%02dT%02d%02d%02dZ" % (  # noqa: UP031
        now.year,
        now.month,
        now.day,
        now.hour,
        now.minute,
        now.second,
    )


# -- the headers set before signing (issue 24 part 12) ---------------------------------------------
#
# ``SigV4Auth._modify_request_before_signing`` asks ``in`` of the request's headers once for each name
# it may replace (``Authorization``, ``Date``, ``X-Amz-Date``, with a session token
# ``X-Amz-Security-Token``, without payload signing ``X-Amz-Content-SHA256``): each ``in`` of a
# :class:`Headers` lowers every stored name (~7k instructions over a call's nine headers, the more where
# the name is absent, as on a first attempt). :func:`before_signing` finds the names present in one
# pass and then does what botocore's does, in its order.

_modify_request_before_signing = botocore.auth.SigV4Auth._modify_request_before_signing
_set_necessary_date_headers = botocore.auth.SigV4Auth._set_necessary_date_headers


def before_signing(self: Any, request: Any) -> None:
    """``self._modify_request_before_signing(request)``: for botocore's own method (and date headers)
    over a :class:`Headers` without ``Date``, the same deletions and settings, in the same order, the
    names present read once; anything else (a signer of its own, a ``Date`` header): botocore's."""
    headers = request.headers
    kind = type(self)
    if (
        type(headers) is not Headers
        or kind._modify_request_before_signing is not _modify_request_before_signing
        or kind._set_necessary_date_headers is not _set_necessary_date_headers
    ):
        self._modify_request_before_signing(request)
        return
    present = {name.lower() for name, _ in headers._headers}  # a name without lower raises, as ``in`` did
    if "date" in present:  # botocore's Date branch (the timestamp parsed and written as a Date)
        self._modify_request_before_signing(request)
        return
    if "authorization" in present:
        del headers["Authorization"]
    if "x-amz-date" in present:
        del headers["X-Amz-Date"]
    headers["X-Amz-Date"] = request.context["timestamp"]
    token = self.credentials.token
    if token:
        if "x-amz-security-token" in present:
            del headers["X-Amz-Security-Token"]
        headers["X-Amz-Security-Token"] = token
    if not request.context.get("payload_signing_enabled", True):
        if "x-amz-content-sha256" in present:
            del headers["X-Amz-Content-SHA256"]
        headers["X-Amz-Content-SHA256"] = botocore.auth.UNSIGNED_PAYLOAD


def add_auth(self: Any, request: Any) -> None:
    """``SigV4Auth.add_auth`` with the timestamp formatted by :func:`timestamp`, its debug lines
    asked for only where they could be logged and the headers set by :func:`before_signing` (see above)."""
    if self.credentials is None:
        raise botocore.auth.NoCredentialsError()
    if CLOCK == "get_current_datetime":
        clock = botocore.auth.get_current_datetime
        if clock is _get_current_datetime:  # its fields, without the copy that drops tzinfo
            datetime_now = botocore.compat.datetime.datetime.now(botocore.compat.datetime.timezone.utc)
        else:
            datetime_now = clock()
    else:
        datetime_now = botocore.auth.datetime.datetime.utcnow()
    if botocore.auth.SIGV4_TIMESTAMP == _SIGV4_TIMESTAMP:
        request.context["timestamp"] = timestamp(datetime_now)
    else:
        request.context["timestamp"] = datetime_now.strftime(botocore.auth.SIGV4_TIMESTAMP)
    # This could be a retry.  Make sure the previous
    # authorization header is removed first.
    before_signing(self, request)
    canonical_request = self.canonical_request(request)
    logger = botocore.auth.logger
    own = logger.__dict__
    quiet = type(logger) is _Logger and "debug" not in own and "isEnabledFor" not in own
    known = logger._cache if quiet else {}
    if known.get(_DEBUG) is not False:
        logger.debug("Calculating signature using v4 auth.")
    if known.get(_DEBUG) is not False:
        logger.debug("CanonicalRequest:\n%s", canonical_request)
    string_to_sign = self.string_to_sign(request, canonical_request)
    if known.get(_DEBUG) is not False:
        logger.debug("StringToSign:\n%s", string_to_sign)
    signature = self.signature(string_to_sign, request)
    if known.get(_DEBUG) is not False:
        logger.debug("Signature:\n%s", signature)

    self._inject_signature_to_request(request, signature)
