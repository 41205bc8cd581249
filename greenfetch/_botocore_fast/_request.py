"""The request's and the response's header objects, without ``email.message``'s policy walk.

**Headers.** botocore keeps an ``AWSRequest``'s headers in ``botocore.compat.HTTPHeaders``, an
``http.client.HTTPMessage``, i.e. an ``email.message.Message`` with the compat32 policy, and builds a
second one for every SigV4 signature (``SigV4Auth.headers_to_sign``). Each set, get and listing goes
through the policy (``header_max_count``, ``header_store_parse``, ``header_fetch_parse``,
``_sanitize_header``, ``_has_surrogates``): about 11% of a call's own time in the engine's profile
(docs/performance/engine-call.md, "botocore's request headers").

:class:`Headers` is a subclass of that class (``isinstance`` holds for any handler), on the same storage
(``_headers``: the (name, value) pairs in the order they were set) and with compat32's meaning, written
out: ``h[name] = value`` appends (a name may repeat); ``h[name]`` and ``get`` give the first value of that
name in any case, or None / the default; ``del h[name]`` removes every one (absent: no error); ``in`` is
case-insensitive; ``items``, ``values`` and ``get_all`` list in order. A value goes through the policy
only where the policy could change it: a ``str`` that is not ASCII (one with surrogate-escaped bytes
comes back as an ``email.header.Header``, as from botocore's own class). Every other method
(``keys``, ``replace_header``, ``as_string``...) is Message's own, on the same storage.

Then (docs/performance/engine-call.md, issue 24 parts 4 and 6): ``AWSRequest.body`` read without preparing the
whole request (:data:`request_body`); botocore's ``HeadersDict`` (prepared request and response
headers) with its hot methods written out (:class:`HeadersDict`, :func:`lowercase_dict`); the prepared
request's headers from the pairs with one ``_HeaderKey`` per name (:func:`encode_headers`,
:func:`prepare_headers`).
"""

from __future__ import annotations

import operator
import urllib.parse
from collections.abc import ItemsView
from email._policybase import compat32
from typing import TYPE_CHECKING, Any

import botocore.awsrequest
import botocore.endpoint
import botocore.parsers

from .._kept import kept

if TYPE_CHECKING:  # botocore ships no types; its HTTPHeaders is this class with nothing added
    from http.client import HTTPMessage as HTTPHeaders
else:
    from botocore.compat import HTTPHeaders


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

    def replace_header(self, _name: str, _value: Any) -> None:
        name = _name.lower()
        headers = self._headers
        for i, (key, _) in enumerate(headers):
            if key.lower() == name:
                headers[i] = (key, _value)  # compat32's header_store_parse: the pair as given
                return
        raise KeyError(name)

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


# -- AWSRequest.body (issue 24, part 4) ---------------------------------------------------------

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

# -- a query body's text (issue 24, an answer's parse, part 2) -----------------------------------------
#
# A query or EC2 request's body is its parameters urlencoded (``AWSRequestPreparer._prepare_body``:
# ``urlencode`` of their UTF-8 pairs, each name and value through ``quote_plus``), and it is made twice
# a request: once for the signature's payload hash (``AWSRequest.body``) and once when the request is
# prepared. Each name and value is quoted as ``urlencode`` quotes it; the names (a model's parameter
# names) and the values of ``Action`` and ``Version`` are remembered as quoted. No other value is kept
# across requests (a body can carry a password or an external id). The body's text is kept on the
# request itself (``_MADE``), with the very names and values it was made of: the second time it is
# asked for (the signature's payload hash, then the prepared request) it is that text if the request's
# data holds the same objects (immutable: text, bytes, numbers), without quoting them again (~54k
# instructions an AssumeRole). It goes when the request goes.

_Preparer_body = botocore.awsrequest.AWSRequestPreparer._prepare_body
_to_utf8 = botocore.awsrequest.AWSRequestPreparer._to_utf8
_urlencode = urllib.parse.urlencode
_quoted: dict[bytes, str] = {}  # a name, or an Action's or Version's value -> its quoted text
_QUOTED_KEPT = 4096
_KEPT_VALUES = frozenset((b"Action", b"Version"))
_MADE = "_greenfetch_body"  # an AWSRequest's attribute: (its data's names then values, the text)
# ``quote_plus(bytes)`` (``safe=''``) in C where it can be: a value of safe bytes only is its ASCII text
# (``quote_plus`` takes three Python frames to find that, ~8k instructions), any other is each byte's
# text from a table of urllib's own choices (``quote_from_bytes`` builds the same list in a
# comprehension, ~800 instructions a byte: an AssumeRole's role ARN cost ~39k, twice a request)
_SAFE = urllib.parse._ALWAYS_SAFE_BYTES  # type: ignore[attr-defined]  # urllib's private name (3.7+)
_QUOTE_TABLE = [chr(b) if b in _SAFE else f"%{b:02X}" for b in range(256)]
_QUOTE_TABLE[ord(" ")] = "+"


def _quote(text: bytes) -> str:
    """``urllib.parse.quote_plus(text)`` of bytes."""
    if not text.translate(None, _SAFE):
        return text.decode("ascii")
    return "".join(map(_QUOTE_TABLE.__getitem__, text))


def prepare_body(self: Any, original: Any) -> Any:
    """``AWSRequestPreparer._prepare_body``: a dict of text or bytes names and values written as
    ``urlencode(..., doseq=True)`` writes their UTF-8 pairs (a number as its text); anything else (a
    sequence, a bool, a body that is not a dict, a replaced ``_to_utf8`` or ``urlencode``) is botocore's."""
    body = original.data
    if (
        type(body) is not dict
        or type(self)._to_utf8 is not _to_utf8
        or botocore.awsrequest.urlencode is not _urlencode
    ):
        return _Preparer_body(self, original)
    own = getattr(original, "__dict__", None)  # the request's own attributes (None: it keeps no memo)
    seen = own.get(_MADE) if own is not None else None
    if seen is not None and _same(seen[0], body):
        return seen[1]
    parts = []
    for name, value in body.items():
        key = _utf8(name)
        text = _utf8(value)
        if key is None or text is None:
            return _Preparer_body(self, original)
        quoted = _quoted.get(key)
        if quoted is None:
            quoted = kept(_quoted, key, _quote(key), _QUOTED_KEPT)
        if key in _KEPT_VALUES:
            value_quoted = _quoted.get(text)
            if value_quoted is None:
                value_quoted = kept(_quoted, text, _quote(text), _QUOTED_KEPT)
        else:
            value_quoted = _quote(text)
        parts.append(quoted + "=" + value_quoted)
    made = "&".join(parts)
    if own is not None:
        own[_MADE] = ((*body, *body.values()), made)
    return made


def _same(items: tuple[Any, ...], body: dict[Any, Any]) -> bool:
    """Whether ``body`` holds the very names and values ``items`` (names, then values) recorded."""
    now = (*body, *body.values())
    return len(now) == len(items) and all(map(operator.is_, now, items))


def _utf8(item: Any) -> bytes | None:
    """What ``urlencode`` quotes for a name or value: its UTF-8 bytes (a number: its text's, as
    ``str()`` writes it); None for anything else (a list, a bool, None...: botocore's code)."""
    kind = type(item)
    if kind is str:
        return item.encode("utf-8")  # type: ignore[no-any-return]
    if kind is bytes:
        return item  # type: ignore[no-any-return]
    if kind is int or kind is float:
        return str(item).encode("ascii")
    return None


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
        return (_key(key) if type(key) is str else _HeaderKey(key)) in self._dict

    def get(self, key: Any, default: Any = None) -> Any:
        return self._dict.get(_key(key) if type(key) is str else _HeaderKey(key), default)

    def items(self) -> Any:
        return _Items(self)


class _Key(str, _HeaderKey):  # type: ignore[misc,valid-type]  # botocore's _HeaderKey is Any
    """A ``_HeaderKey`` hashed in C (issue 24, part 9). botocore's ``__hash__`` is Python,
    ``hash(self._lower)``: a frame for every store and lookup, ~26 a call (the prepared request's
    headers, the response's, their lookups). This key is also its name's lower case as a ``str``, so
    its hash is that ``str``'s, computed in C and kept in the object: the same number. Everything
    else is botocore's: the name as set (``_key``) and its lower case (``_lower``), equal only to a
    ``_HeaderKey`` of the same lower case (``__eq__``; never to a ``str``), unordered, always true,
    shown as the name as set (``__str__``, ``__repr__``)."""

    __hash__ = str.__hash__
    __eq__ = _HeaderKey.__eq__
    __ne__ = object.__ne__  # the opposite of __eq__, as for botocore's key
    __str__ = _HeaderKey.__str__
    __repr__ = _HeaderKey.__repr__

    def __new__(cls, key: str) -> _Key:
        return super().__new__(cls, key.lower())  # then _HeaderKey.__init__ sets _key and _lower

    def __bool__(self) -> bool:
        return True

    # No order, as botocore's key has none: against a ``str`` (itself included) the ``str``'s own
    # comparison would answer, so that is a TypeError here; anything else is asked the other way round.
    def __lt__(self, other: object) -> Any:
        return _unordered("<", other)

    def __le__(self, other: object) -> Any:
        return _unordered("<=", other)

    def __gt__(self, other: object) -> Any:
        return _unordered(">", other)

    def __ge__(self, other: object) -> Any:
        return _unordered(">=", other)


def _unordered(operation: str, other: object) -> Any:
    if isinstance(other, str):
        raise TypeError(f"{operation!r} not supported between header keys and {type(other).__name__!r}")
    return NotImplemented


_keys: dict[str, Any] = {}
_KEYS = 256  # header names kept; all dropped when full


def _key(name: str) -> Any:
    """The ``_HeaderKey`` of a ``str`` name (a :class:`_Key`), made once per name (botocore never
    changes one once made)."""
    key = _keys.get(name)
    if key is None:
        key = kept(_keys, name, _Key(name), _KEYS)
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
_CONTENT_LENGTH = _Key("Content-Length")
_TRANSFER_ENCODING = _Key("Transfer-Encoding")


def prepare_headers(self: Any, original: Any, prepared_body: Any = None) -> Any:
    """``AWSRequestPreparer._prepare_headers`` from a :class:`Headers`' pairs: the ``HeadersDict``
    of them (each name once, under its first spelling, with its last value) built on its storage with
    one ``_HeaderKey`` per name, then ``Content-Length`` as botocore sets it. A body whose length
    botocore cannot tell (chunked), or headers that are not plain pairs: botocore's own code."""
    pairs = _plain_pairs(original.headers)
    if pairs is None or botocore.awsrequest.HeadersDict is not HeadersDict:
        return _prepare_headers(self, original, prepared_body)
    store = {}
    for name, value in pairs:  # as HeadersDict's own update: an equal key keeps its place, gets the value
        key = _keys.get(name)
        store[_key(name) if key is None else key] = value
    if (
        _CONTENT_LENGTH not in store
        and _TRANSFER_ENCODING not in store
        and original.method not in ("GET", "HEAD", "OPTIONS")
    ):
        length = self._determine_content_length(prepared_body)
        if length is None:  # botocore logs it and sends chunked
            return _prepare_headers(self, original, prepared_body)
        store[_CONTENT_LENGTH] = str(length)
    headers = HeadersDict.__new__(HeadersDict)
    headers._dict = store
    return headers


_AWSResponse = botocore.awsrequest.AWSResponse
_response_init = _AWSResponse.__init__


def response_init(self: Any, url: Any, status_code: Any, headers: Any, raw: Any) -> None:
    """``AWSResponse.__init__`` for headers in a plain dict of ``str`` names (what the HTTP session
    hands over): the :class:`HeadersDict` built on its storage with each name's ``_HeaderKey`` made
    once per name (:func:`_key`), the same keys, values and order as ``HeadersDict(headers)``; the same
    five attributes. Anything else (another mapping, a name that is not a ``str``, botocore's own
    ``HeadersDict`` in place): botocore's own ``__init__``."""
    if type(headers) is not dict or botocore.awsrequest.HeadersDict is not HeadersDict:
        _response_init(self, url, status_code, headers, raw)
        return
    store = {}
    for name, value in headers.items():
        if type(name) is not str:
            _response_init(self, url, status_code, headers, raw)
            return
        store[_key(name)] = value
    fields = HeadersDict.__new__(HeadersDict)
    fields._dict = store
    self.url = url
    self.status_code = status_code
    self.headers = fields
    self.raw = raw
    self._content = None


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
