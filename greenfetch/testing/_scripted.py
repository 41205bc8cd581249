"""A scripted HTTP/1.1 server on 127.0.0.1 (optionally HTTPS), in this process, for wire-level tests.

The loopback server answers like AWS; this one answers exactly the bytes a test scripts, so a test
can send what real servers do only sometimes: a chunked body, a repeated header, a body cut off
mid-way (the connection reset after part of it), an answer slower than the read timeout. It records
every request it reads (head and body), so two HTTP sessions can be compared on the wire.

Runs on gevent in the test's own process (the tests run patched); it is a real server on a real
socket, and the HTTP client under test cannot tell. ``tls=throwaway_ca(dir)`` serves HTTPS.
"""

from __future__ import annotations

import collections
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.server import StreamServer

from ._tls import ThrowawayCA

__all__ = ["Reply", "Seen", "ScriptedServer", "http_response"]


@dataclass(frozen=True)
class Reply:
    """What to do with one request: send ``raw`` (after ``delay`` seconds), then close if ``close``."""

    raw: bytes
    close: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request as it arrived: the head exactly as sent (bytes) and the body (de-chunked)."""

    head: bytes
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def headers(self) -> list[tuple[str, str]]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines if line)]


def http_response(
    status: int = 200,
    body: bytes | str = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    chunked: bool = False,
    reason: str = "OK",
) -> bytes:
    """The bytes of one response; ``chunked`` frames the body in 7-byte chunks."""
    data = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers or []]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        framed = b"".join(
            b"%x\r\n%b\r\n" % (len(data[i : i + 7]), data[i : i + 7]) for i in range(0, len(data), 7)
        )
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + framed + b"0\r\n\r\n"
    lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class ScriptedServer:
    """``with ScriptedServer(default) as url:``; ``server.script(Reply(...), ...)`` queues answers in order;
    when the queue is empty ``default(seen) -> Reply`` answers. ``server.seen`` lists the requests."""

    def __init__(self, default: Callable[[Seen], Reply] | None = None, *, tls: ThrowawayCA | None = None):
        self.default = default or (lambda _seen: Reply(http_response(200, b"{}")))
        self.seen: list[Seen] = []
        self.connections = 0
        self._queue: collections.deque[Reply] = collections.deque()
        kwargs: dict[str, Any] = {}
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            kwargs["ssl_context"] = context
        self._server = StreamServer(("127.0.0.1", 0), self._connection, **kwargs)
        self._scheme = "https" if tls else "http"
        self.url = ""

    def script(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def start(self) -> str:
        self._server.start()
        self.url = f"{self._scheme}://127.0.0.1:{self._server.server_port}"
        return self.url

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _connection(self, sock: Any, _address: Any) -> None:
        self.connections += 1
        buf = b""
        try:
            while True:
                seen, buf = _read(sock, buf)
                if seen is None:
                    return
                self.seen.append(seen)
                reply = self._queue.popleft() if self._queue else self.default(seen)
                if reply.delay:
                    gevent.sleep(reply.delay)
                sock.sendall(reply.raw)
                if reply.close:
                    return
        except OSError:
            return
        finally:
            sock.close()


def _read(sock: Any, buf: bytes) -> tuple[Seen | None, bytes]:
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    fields = {k.lower(): v for k, v in Seen(head, b"").headers}
    if fields.get("expect", "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += sock.recv(65536)
            body, buf = body + buf[:size], buf[size + 2 :]
            if size == 0:
                return Seen(head, body), buf
    length = int(fields.get("content-length", "0"))
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buf += data
    return Seen(head, buf[:length]), buf[length:]
