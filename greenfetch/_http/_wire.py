"""HTTP/1.1 framing as botocore's urllib3 session puts it on the wire, for the gevent session.

One home for the bytes: the request head in urllib3 2.x's order (request line, ``Host``,
``Accept-Encoding: identity``, a ``Content-Length`` or chunked framing where botocore set neither, then
botocore's headers in order), bodies framed in urllib3's 16 KiB blocks, and response header fields joined
as urllib3 joins repeated ones. tests/test_http_session.py compares the bytes with urllib3's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["Fields", "head", "joined", "write"]

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
    headers = request.headers
    lines = [method, " ", target, " HTTP/1.1\r\n", host_lines]
    names = {name.lower() for name in headers}
    if isinstance(body, str):
        body = body.encode("utf-8")
    te = headers.get("Transfer-Encoding")
    chunked = (
        te is not None and (te.lower() if isinstance(te, str) else te.lower().decode("latin-1")) == "chunked"
    )
    if "content-length" not in names and "transfer-encoding" not in names:
        if isinstance(body, (bytes, bytearray)):
            lines.append(f"Content-Length: {len(body)}\r\n")
        elif body is None and method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0\r\n")
        elif body is not None:
            chunked = True
            lines.append("Transfer-Encoding: chunked\r\n")
    for name, value in headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"invalid header value for {name!r}")
        lines.append(f"{name}: {text}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1"), body, chunked


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


def joined(fields: Fields) -> dict[str, str]:
    """Response headers as urllib3 gives them: repeated fields joined with ", "."""
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
    return out
