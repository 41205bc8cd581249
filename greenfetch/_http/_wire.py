"""HTTP/1.1 framing as botocore's urllib3 session puts it on the wire, for the gevent session.

One home for the bytes: the request head in urllib3 2.x's order (request line, ``Host``,
``Accept-Encoding: identity``, a ``Content-Length`` or chunked framing where botocore set neither, then
botocore's headers in order), bodies framed in urllib3's 16 KiB blocks, response header fields joined
as urllib3 joins repeated ones, and the plain answer's head read without geventhttpclient's parser
(:func:`plain_answer`). tests/test_http_session.py compares the bytes with urllib3's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import botocore.awsrequest

from .._kept import kept

__all__ = ["Fields", "head", "joined", "plain_answer", "write"]

_BLOCK = 16384  # urllib3's blocksize: chunked request bodies are framed in the same pieces
_JOIN_BELOW = 64 * 1024  # a body up to this is sent with its head in one segment; larger ones are not copied


class Fields(list[tuple[str, str]]):
    """The parser's header store: a list of pairs (the parser only adds and clears)."""

    def add(self, name: str, value: str) -> None:
        self.append((name, value))

    def get(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        for key, value in self:
            if key.lower() == name:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        return self.get(str(name)) is not None

    def items(self) -> list[tuple[str, str]]:
        return self


def head(request: Any, target: str, host_lines: str) -> tuple[bytes, Any, bool]:
    """The request head as urllib3 2.x writes it, the body, and whether to frame it chunked."""
    method = request.method
    body = request.body
    lines, chunked, framed = _fields(request.headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    framing = b""
    if not framed:
        if isinstance(body, (bytes, bytearray)):
            framing = b"Content-Length: %d\r\n" % len(body)
        elif body is None and method in ("POST", "PUT", "PATCH"):
            framing = b"Content-Length: 0\r\n"
        elif body is not None:
            chunked = True
            framing = b"Transfer-Encoding: chunked\r\n"
    start = f"{method} {target} HTTP/1.1\r\n{host_lines}".encode("latin-1")
    return b"".join((start, framing, lines, b"\r\n")), body, chunked


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _chunked(te: Any) -> bool:
    return (
        te is not None and (te.lower() if isinstance(te, str) else te.lower().decode("latin-1")) == "chunked"
    )


# botocore's HeadersDict (a prepared request's headers) keeps the fields in ``_dict``, in order, keyed
# by ``_HeaderKey`` (``_key``: the name as set, ``_lower``: its lower case), and lists them from there.
# Its subclasses that list them the same way (greenfetch's own, ``_botocore_fast``) are read there too.
_ORIGINAL: Any = next(
    cls for cls in botocore.awsrequest.HeadersDict.__mro__ if cls.__module__ == "botocore.awsrequest"
)
_stored: dict[type, bool] = {}
_prefixes: dict[str, bytes] = {}  # b"Name: " per header name; all dropped at _PREFIXES
_PREFIXES = 256


def _reads_storage(cls: type) -> bool:
    known = _stored.get(cls)
    if known is None:
        known = _stored[cls] = (
            issubclass(cls, _ORIGINAL)
            and getattr(cls, "__iter__", None) is _ORIGINAL.__iter__
            and getattr(cls, "__getitem__", None) is _ORIGINAL.__getitem__
        )
    return known


def _fields(headers: Any) -> tuple[bytes, bool, bool]:
    """A prepared request's header lines (``name: value``, CRLF each, in order, Latin-1), whether its
    Transfer-Encoding says chunked, and whether it has a Transfer-Encoding or a Content-Length. Read
    from a ``HeadersDict``'s storage (most values are botocore's UTF-8 bytes already: no text in
    between; a value with a CR or LF of its own is left to the listing), else through the
    mapping's own listing, which also finds the first error of a request whose fields are wrong (a
    name that is not a ``str``, CR or LF in a value, text that is not Latin-1)."""
    if _reads_storage(type(headers)):
        parts: list[bytes] = []
        te = None
        framed = False
        for key, value in headers._dict.items():
            name = key._key
            prefix = _prefixes.get(name)
            if prefix is None:
                if type(name) is not str or not name.isascii():
                    break
                prefix = kept(_prefixes, name, (name + ": ").encode("ascii"), _PREFIXES)
            lower = key._lower
            if lower == "transfer-encoding":
                te = value
                framed = True
            elif lower == "content-length":
                framed = True
            if type(value) is not bytes:
                text = value if type(value) is str else _text(value)
                if not text.isascii():
                    break
                value = text.encode("ascii")
            if 13 in value or 10 in value:  # CR, LF: an int's ``in`` is one memchr, not a count of the head
                break
            parts += (prefix, value, b"\r\n")
        else:
            return b"".join(parts), te is not None and _chunked(te), framed
    names = {name.lower() for name in headers}
    chunked = _chunked(headers.get("Transfer-Encoding"))
    texts = [(name, _text(value)) for name, value in headers.items()]
    for name, text in texts:
        if "\n" in text or "\r" in text:
            raise ValueError(f"invalid header value for {name!r}")
    lines = "".join([f"{name}: {text}\r\n" for name, text in texts]).encode("latin-1")
    return lines, chunked, "content-length" in names or "transfer-encoding" in names


def write(sock: Any, head: bytes, body: Any, chunked: bool) -> None:
    if body is None or body == b"":
        _send(sock, head + b"0\r\n\r\n" if chunked else head)
    elif isinstance(body, (bytes, bytearray)) and not chunked:
        if len(body) <= _JOIN_BELOW:  # one segment for a small request
            _send(sock, head + body)
        else:  # an upload part: joining would copy it (8 MiB more per S3 part in flight)
            sock.sendall(head)
            sock.sendall(body)
    else:
        sock.sendall(head)
        for block in _blocks(body):
            sock.sendall(b"%x\r\n%b\r\n" % (len(block), block) if chunked else block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")


def _send(sock: Any, data: bytes) -> None:
    """``sendall`` for one small segment: gevent's asks the kernel for SO_SNDBUF on every call (a system
    call per request) to size chunks this never needs; a short write falls back to it."""
    sent = sock.send(data)
    if sent != len(data):
        sock.sendall(memoryview(data)[sent:])


def _blocks(body: Any) -> Iterator[bytes]:
    if isinstance(body, (bytes, bytearray)):
        for start in range(0, len(body), _BLOCK):
            yield bytes(body[start : start + _BLOCK])
    elif hasattr(body, "read"):
        while block := body.read(_BLOCK):
            yield block.encode("utf-8") if isinstance(block, str) else block
    else:
        for block in body:
            if block:
                yield block.encode("utf-8") if isinstance(block, str) else block


def joined(fields: list[tuple[str, str]]) -> dict[str, str]:
    """Response headers as urllib3 gives them: repeated fields joined with ", "."""
    return _joined(fields)[0]


def _joined(fields: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    """:func:`joined`, and each name's lower case mapped to the spelling it is kept under."""
    out: dict[str, str] = {}
    lower: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        first = lower.get(key)
        if first is None:
            lower[key] = name
            out[name] = value
        else:
            out[first] = out[first] + ", " + value
    return out, lower


# The plain answer: what AWS sends for every call but downloads (HTTP/1.1, a final status with a body,
# a Content-Length, no Transfer-Encoding), its head whole in the first read. Within that subset the
# fields are read as llhttp (geventhttpclient's parser) reads them: a token, a colon, the value after
# its leading blanks (trailing ones kept), no control character but a tab, bytes as Latin-1.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = r"[^\x00-\x08\x0a-\x1f\x7f]*"  # no control character but a tab
_STATUS = re.compile(r"HTTP/1\.1 ([2-9][0-9][0-9])(?: [\t\x20-\x7e]*)?\r\n")
_FIELD = re.compile(rf"^({_TOKEN}):[ \t]*({_VALUE})\r\n", re.MULTILINE)  # each at the start of a line


def plain_answer(data: bytes, method: str) -> tuple[int, dict[str, str], int, bool, int] | None:
    """(status, headers as :func:`joined` makes them, Content-Length, keep the connection, where the body
    starts in ``data``) if ``data`` starts with a plain answer's whole head, else None: anything else
    (an interim 1xx, HEAD, 204/304, chunked, no length, HTTP/1.0, a ``Connection`` but ``close`` or
    ``keep-alive``, a field llhttp might read otherwise) is for geventhttpclient's parser."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or method == "HEAD":
        return None
    text = data[: end + 2].decode("latin-1")
    status = _STATUS.match(text)
    if status is None:
        return None
    code = int(status.group(1))
    fields = status.end()
    pairs = _FIELD.findall(text, fields)
    if code in (204, 304) or len(pairs) != text.count("\n", fields):  # a line that is not a field
        return None
    headers, names = _joined(pairs)
    if "transfer-encoding" in names:
        return None
    length = headers.get(names.get("content-length", ""), "").rstrip(" \t")
    if not (length.isdigit() and length.isascii()):  # none, repeated (joined), or not a number
        return None
    keep = True
    if "connection" in names:
        connection = headers[names["connection"]].rstrip(" \t").lower()
        if connection not in ("close", "keep-alive"):
            return None
        keep = connection == "keep-alive"
    return code, headers, int(length), keep, end + 4
