"""Botocore values to JSON-ready values, without ever failing."""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import json
import math
import re
from collections.abc import Callable
from typing import Any

from dateutil import tz as _tz  # type: ignore[import-untyped]  # botocore's dependency, untyped

from ._exceptions import GreenfetchError

__all__ = [
    "MAX_DEPTH",
    "JSONInputError",
    "compact_of_marked",
    "encode_once",
    "json_string",
    "jsonable",
    "loads_strict",
    "marked_json",
    "marked_json_of",
    "plain_json",
    "to_json",
]


def jsonable(value: Any, body_limit: int = 1 << 20) -> Any:
    """Datetimes become ISO-8601, bytes UTF-8 text (base64 when not text), Decimals numbers,
    streaming bodies their first ``body_limit`` bytes; anything else unknown becomes ``str``.

    The result is always strict JSON (RFC 8259), whatever reads it: NaN and the infinities (float or
    Decimal) become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (their value kept, as text), a
    Decimal beyond a double's range its text, and a
    lone UTF-16 surrogate in a string (not a character, so not writable as UTF-8) becomes U+FFFD."""
    kind = type(value)  # the exact types botocore's parsers build first: the inventory's per-page cost
    if kind is str:
        return value if value.isascii() else _valid_text(value)
    if kind is dict:
        return _plain_dict(value, body_limit)
    if kind is list:
        return [v if type(v) in _AS_IS else jsonable(v, body_limit) for v in value]
    if kind is _dt.datetime:  # botocore's timestamps: past the isinstance checks below
        return _datetime_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return value if value.isascii() else _valid_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {_key(k): jsonable(v, body_limit) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, body_limit) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text_or_base64(bytes(value))
    if hasattr(value, "read"):  # botocore StreamingBody and friends
        try:
            data = value.read(body_limit + 1)
        except Exception as exc:  # noqa: BLE001 - a body we cannot read still gets a value
            return f"<unreadable body: {type(exc).__name__}>"
        finally:
            close = getattr(value, "close", None)
            if close:
                close()
        text = _text_or_base64(data[:body_limit])
        return text + "…[truncated]" if len(data) > body_limit else text
    return str(value)


_AS_IS = frozenset({int, bool, type(None)})  # exact types jsonable returns unchanged, whatever the value


def _plain_dict(value: dict[Any, Any], body_limit: int) -> dict[str, Any]:
    """``jsonable`` of an exact dict: the comprehension's result, with its commonest leaves inline."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str or not key.isascii():
            key = _key(key)
        kind = type(item)
        if kind is str:
            out[key] = item if item.isascii() else _valid_text(item)
        elif kind in _AS_IS:
            out[key] = item
        else:
            out[key] = jsonable(item, body_limit)
    return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def to_json(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """The one way greenfetch turns data into JSON text: ``jsonable`` first (ISO-8601 dates, bytes
    as text or base64, no NaN), so stdout, files, sinks and caches print the same value alike."""
    if indent is None:  # a record per line or per file: one encoder each, made once
        return (_SORTED if sort_keys else _UNSORTED)(jsonable(value))
    return json.dumps(
        jsonable(value), ensure_ascii=False, allow_nan=False, indent=indent, sort_keys=sort_keys
    )


def plain_json(value: Any, *, compact: bool = False) -> str:
    """JSON text of a tree ``jsonable`` made (plain containers and scalars, no cycle): ``to_json``'s
    text without the walk again; ``compact``: ``json.dumps(value, ensure_ascii=False,
    separators=(",", ":"))``'s, the form the inventory cache stores."""
    return (_COMPACT if compact else _UNSORTED)(value)


def marked_json(value: Any) -> str:
    """JSON text of a tree ``jsonable`` made, with a NUL after every separator: one encoding that
    gives both of ``plain_json``'s texts. ``.replace("\0", "")`` is ``plain_json(value, compact=True)``
    (the cache's), ``.replace("\0", " ")`` is ``plain_json(value)`` (the file sink's): the encoder
    writes a NUL inside a string as ``\u0000``, so every NUL in the text is a separator's. The
    encoding costs ~20x what a ``replace`` over its text does."""
    return _MARKED(value)


def compact_of_marked(marked: str) -> str:
    """``marked.replace("\0", "")``: the compact text of a ``marked_json`` text. For an ASCII text (most
    pages: O(1) to tell) through its bytes, whose ``replace`` finds the NULs with ``memchr`` where
    ``str.replace`` first counts them a character at a time (a page's 7.0k instructions -> 4.8k); a NUL
    byte in UTF-8 is only U+0000, so the text is the same. Any other text: ``str.replace`` (the UTF-8
    round trip of a non-ASCII text costs more than it saves)."""
    if marked.isascii():
        return marked.encode().replace(b"\0", b"").decode()
    return marked.replace("\0", "")


def marked_json_of(value: Any, str_keys: bool = False) -> tuple[str, Any]:
    """``(marked_json(jsonable(value)), plain)``, in one pass of the C encoder where that gives the same
    text: ``plain`` is ``jsonable(value)`` when it had to be made (else None, for a caller that needs
    only the text, as the inventory cache does with a TTL of 0).

    The one pass writes what the encoder writes natively (str, int, float, bool, None, list, tuple,
    dict, and their subclasses, which ``jsonable`` returns unchanged or walks as the encoder does), and
    turns the exact non-JSON types botocore's parsers build into what ``jsonable`` makes of them
    (``_one_pass_default``). Anything else falls back to ``jsonable`` and ``marked_json``, before any
    side effect (a streaming body is read once, by ``jsonable``), and so does a text the encoder wrote
    where ``jsonable`` would not have: a non-finite float (``"nan"``: the encoder refuses it), a lone
    surrogate (U+FFFD), a key the encoder may have written from a non-str (``_maybe_non_str_key``).
    The one case it does not catch: a dict subclass whose ``items()`` gives one key twice
    (``jsonable`` keeps the last, the encoder writes both).

    ``str_keys``: the caller knows every key in ``value`` is a str (botocore's parsers make a dict's
    keys only from a shape's member names and a map's string keys), so the key check, ~13k
    instructions a page of objects, is not made."""
    try:
        text = _MARKED_ONCE(value)
    except Exception:  # noqa: BLE001 - anything the one pass refuses is jsonable's (which raises as before)
        text = None
    if (
        text is not None
        and (text.isascii() or not _SURROGATE.search(text))
        and (str_keys or not _maybe_non_str_key(text))
    ):
        return text, None
    plain = jsonable(value)
    return marked_json(plain), plain


def _maybe_non_str_key(text: str) -> bool:
    """Whether a marked text (no lone surrogate) may hold a key the encoder wrote from a non-str, where
    ``jsonable`` writes ``str(key)`` and keeps one of two keys that meet: ``true``, ``false``, ``null``
    (``True`` is ``"True"`` to ``jsonable``) or a number (an int or float subclass's ``str`` is not
    ``int.__repr__``; ``{1: .., "1": ..}`` is one key to ``jsonable``, two to the encoder). A key is
    the only text followed by ``":\0`` (a NUL in a string is written ``\u0000``). Substring scans,
    the cheapest in instructions here (a regex or a walk of the keys costs 2-6x): the three words,
    then a key ending in a digit (digits made ``0`` by ``bytes.translate``), and only then a key
    that is wholly a number (``-?[0-9][0-9.e+-]*``: its characters made ``0``), so a str key such as
    ``"CodeSha256"`` costs a scan more, not the fallback. A text without ``{`` holds no object, so no
    key (one ``memchr``: a page of names or URLs)."""
    if "{" not in text:
        return False
    if '"true":\0' in text or '"false":\0' in text or '"null":\0' in text:
        return True
    data = text.encode()  # UTF-8: no byte of a non-ASCII character is ASCII
    if b'0":\0' not in data.translate(_DIGITS_AS_0):
        return False
    return _NUMBER_KEY.search(data.translate(_NUMBER_AS_0)) is not None


_DIGITS_AS_0 = bytes.maketrans(b"123456789", b"0" * 9)
_NUMBER_AS_0 = bytes.maketrans(b"123456789.e+-", b"0" * 13)
_NUMBER_KEY = re.compile(b'"0+":\0')  # a key of repr(int) or repr(float) characters only


def _decimal(value: decimal.Decimal) -> Any:
    """A Decimal as a number: whole ones as ``int``, others as ``float``; as text (its value kept) where
    a float cannot hold it: NaN, the infinities, and a finite value beyond a double's range (as a float
    it would be ``inf``, which strict JSON cannot write)."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else str(value)


class _NotOnePass(Exception):
    """A value ``marked_json_of`` leaves to ``jsonable``."""


def _one_pass_default(value: Any) -> Any:
    """What ``jsonable`` makes of a value the encoder cannot write, for the exact types whose conversion
    has no side effect; ``_NotOnePass`` for anything else (subclasses, bodies, unknown objects)."""
    kind = type(value)
    if kind is _dt.datetime:
        return _datetime_text(value)
    if kind is _dt.date or kind is _dt.time:
        return value.isoformat()
    if kind is decimal.Decimal:
        return _decimal(value)
    if kind is bytes:
        return _text_or_base64(value)
    if kind is bytearray or kind is memoryview:
        return _text_or_base64(bytes(value))
    if kind is set or kind is frozenset:
        return list(value)  # the encoder then writes each element, as jsonable walks them
    raise _NotOnePass


def _datetime_text(value: _dt.datetime) -> str:
    """``value.isoformat()`` of an exact datetime. botocore's timestamps carry dateutil's ``tzlocal`` (a
    JSON protocol's epoch numbers) or ``tzutc``, whose ``utcoffset`` is Python: ~4k instructions of a
    ~13k ``isoformat``. ``tzutc``'s offset is zero; a ``tzlocal`` made where there is no daylight saving
    time answers its ``_std_offset`` whatever the date and the zone now (its ``_isdst`` is False at
    once). For those the text is the naive date's and time's with the offset's text, kept per offset;
    any other zone, its own ``isoformat``. The naive text is written from the fields as ``isoformat``
    writes them (``%04d-%02d-%02dT%02d:%02d:%02d``, then ``.%06d`` when there are microseconds): its
    ``PyUnicode_FromFormat`` goes through C's ``sprintf``, ~4.5k instructions for the date and as much
    for the time, where two-digit texts taken from a table cost ~5k for both."""
    zone = value.tzinfo
    kind = type(zone)
    if kind is _TZLOCAL and _TZLOCAL_FIXED and not zone._hasdst:  # type: ignore[union-attr]
        suffix = _OFFSETS.get(zone._std_offset) or _offset_text(zone._std_offset)  # type: ignore[union-attr]
    elif kind is _TZUTC:
        suffix = "+00:00"
    else:
        return value.isoformat()
    if suffix is None:
        return value.isoformat()
    year = value.year  # four digits from 1000 on; below, padded as isoformat pads them
    text = (
        f"{year if year >= 1000 else f'{year:04d}'}-{_TWO_DIGITS[value.month]}-{_TWO_DIGITS[value.day]}"
        f"T{_TWO_DIGITS[value.hour]}:{_TWO_DIGITS[value.minute]}:{_TWO_DIGITS[value.second]}"
    )
    micro = value.microsecond
    return text + suffix if not micro else f"{text}.{micro:06d}{suffix}"


_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))  # a month's, day's, hour's, minute's, second's text


def _offset_text(offset: _dt.timedelta) -> str | None:
    """What ``isoformat`` writes after the time for a zone of this fixed offset (kept; a handful a
    process), or None where ``timezone`` refuses the offset (``isoformat`` then says why)."""
    try:
        text = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone(offset)).isoformat()[19:]
    except (ValueError, TypeError):
        return None
    if len(_OFFSETS) < 64:
        _OFFSETS[offset] = text
    return text


_TZLOCAL, _TZUTC = _tz.tzlocal, _tz.tzutc
_OFFSETS: dict[_dt.timedelta, str] = {}
# the attributes ``tzlocal.utcoffset`` reads, as dateutil has had them since 2.7: else no shortcut
_TZLOCAL_FIXED = all(hasattr(_tz.tzlocal(), name) for name in ("_hasdst", "_std_offset"))


# the JSON text of one string as ``plain_json`` writes it (quoted, escaped, non-ASCII kept): the encoder's
# own function, for a caller that builds an object's text around a part encoded already
json_string: Callable[[str], str] = json.encoder.encode_basestring


def encode_once(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode``, with its C encoder made once instead of at every call (``JSONEncoder.encode``
    builds one, and a closure, per call: a fifth of the cost of a 1 KB item). For an encoder without
    the check for circular references and without indent; any other, or a Python without the C
    accelerator or whose private constructor takes other arguments (checked on a probe), gets
    ``encoder.encode`` itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    name = "c_encode_basestring_ascii" if encoder.ensure_ascii else "c_encode_basestring"
    strings = getattr(json.encoder, name, None)
    if make is None or strings is None or encoder.check_circular or encoder.indent is not None:
        return encoder.encode
    try:  # a private constructor: should its arguments ever change, the encoder's own way
        made = make(
            None,
            encoder.default,
            strings,
            None,
            encoder.key_separator,
            encoder.item_separator,
            encoder.sort_keys,
            encoder.skipkeys,
            encoder.allow_nan,
        )
        probe = {"k": [1, 2.5, None, True, "\u00e9\n\u2028"], "a": {"z": 1, "b": []}}
        if "".join(made(probe, 0)) != encoder.encode(probe):
            return encoder.encode
    except TypeError:
        return encoder.encode
    return lambda value: "".join(made(value, 0))


def _encoder(allow_nan: bool = False, **options: Any) -> Callable[[Any], str]:
    """``json.dumps``'s text with these options, made once: ``json.dumps`` makes an encoder per call
    when given any option, and a record's few hundred bytes then cost a third more. Without the check
    for circular references: it is for what ``jsonable`` returns, a tree of new containers (a cycle in
    the input never gets this far), and the check costs a dict entry per container."""
    return encode_once(
        json.JSONEncoder(ensure_ascii=False, allow_nan=allow_nan, check_circular=False, **options)
    )


_UNSORTED = _encoder()
_SORTED = _encoder(sort_keys=True)
_COMPACT = _encoder(allow_nan=True, separators=(",", ":"))
_MARKED = _encoder(allow_nan=True, separators=(",\0", ":\0"))  # jsonable's trees hold no NaN
_MARKED_ONCE = _encoder(separators=(",\0", ":\0"), default=_one_pass_default)  # NaN: jsonable's


def _key(key: Any) -> str:
    text = key if isinstance(key, str) else str(jsonable(key))
    return text if text.isascii() else _valid_text(text)


def _valid_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _text_or_base64(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode("ascii")


# -- strict JSON in ------------------------------------------------------------------------------

MAX_DEPTH = 100
"""Nesting a request may have (DynamoDB allows 32 levels; nothing AWS takes comes near 100)."""


class JSONInputError(GreenfetchError, ValueError):
    """Input that is not strict JSON (RFC 8259) greenfetch can take; the message says where and why."""


def loads_strict(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """One JSON text, read the way every face (CLI files and stdin, the nu plugin) reads input.

    Stricter than ``json.loads`` in each way that otherwise surfaced as a traceback or as output no
    other JSON reader accepts: bytes that are not UTF-8, NaN/Infinity, numbers out of range (1e400,
    integers past Python's 4,300-digit limit), nesting deeper than ``max_depth``, and lone UTF-16
    surrogates (``"\\ud800"``, which cannot be written back as UTF-8). Raises JSONInputError naming
    the line and column (or byte) and what was wrong; never RecursionError or UnicodeError.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = _utf8(bytes(data))
    text = data[1:] if data.startswith("\ufeff") else data
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise JSONInputError(f"nested deeper than {max_depth} levels") from None
    except JSONInputError:
        raise
    except ValueError as exc:  # int digits past sys.get_int_max_str_digits()
        raise JSONInputError(f"a number is out of range: {str(exc).split(';')[0]}") from None
    if text.count("[") + text.count("{") > max_depth or _ESCAPED_SURROGATE.search(text):
        _check_tree(value, max_depth)
    return value


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise JSONInputError(
            f"line {line} byte {exc.start}: 0x{data[exc.start]:02x} is not UTF-8 (JSON input must be UTF-8)"
        ) from None


def _no_constant(name: str) -> Any:
    raise JSONInputError(f'{name} is not JSON; use null or a string such as "{name}"')


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"the number {text[:40]} is out of range for a double; quote it as a string")
    return value


_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_tree(value: Any, max_depth: int) -> None:
    """Depth and lone surrogates, iteratively (a recursive walk would fail the way the parser did)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > max_depth:
            raise JSONInputError(f"nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JSONInputError(
                f"the string {text[:40]!r} holds a lone UTF-16 surrogate (\\u{ord(text[exc.start]):04x}), "
                "which is not a character; pair it or remove it"
            ) from None
