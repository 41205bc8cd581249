"""The loopback server's child process: a raw HTTP/1.1 keep-alive loop on a gevent StreamServer.

Run as a script (``python _loopback_child.py CONFIG_JSON``), so the child imports only the standard
library, gevent and the sibling ``_loopback_faults``: no greenfetch, no botocore, no monkey-patching
(unless a ``handler`` module imports them). A raw loop was chosen over ``gevent.pywsgi`` because it
spends several times less CPU per request (no WSGI environ, no header objects), which matters when the
server shares two cores with the client it measures (numbers in docs/performance.md).

While a request "waits out" its latency the child watches the socket: a client that hangs up (greenfetch
cancelling in-flight work) ends the request at once and counts as ``cancelled``, so tests can observe
cancellation from the server side.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys
import traceback
from collections.abc import Callable
from importlib import import_module
from typing import Any

import gevent
from gevent.server import StreamServer
from gevent.socket import wait_read

try:
    from . import _loopback_faults as faults
except ImportError:  # run as a script: the sibling is a top-level module
    import _loopback_faults as faults  # type: ignore[import-not-found,no-redef]

_CONTROL_ROUTES = frozenset({"/_stats", "/_control", "/_reset"})
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
Handler = Callable[[str, dict[str, str], bytes], tuple[int | None, dict[str, str], bytes | str]]


class _Hangup(Exception):
    """End this connection without an answer (a drop, a cancelled client, a broken request)."""


class _Waited(Exception):
    pass


_WAITED = _Waited()


class App:
    """One server: the fault policy, the counters and the handler that makes the successful answers."""

    def __init__(self, knobs: dict[str, Any], handler: str | None):
        self.faults = faults.Faults(knobs)
        self.stats = faults.Stats()
        self.handler: Handler | None = _load_handler(handler) if handler else None
        self.ids = itertools.count(1)

    def connection(self, sock: Any, _address: Any) -> None:
        self.stats.connections += 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                request, buf = _read_request(sock, buf)
                if request is None or not self.respond(sock, *request):
                    return
        except (OSError, _Hangup, ValueError):
            return
        finally:
            sock.close()

    def respond(
        self, sock: Any, method: str, path: str, headers: dict[str, str], body: bytes, keep: bool
    ) -> bool:
        if path.partition("?")[0] in _CONTROL_ROUTES:
            status, rheaders, rbody = self.control(method, path, body)
        else:
            status, rheaders, rbody = self.serve(sock, method, path, headers, body)
        sock.sendall(_response(status, rheaders, rbody, f"{next(self.ids):08d}-loopback", keep))
        return keep

    def serve(
        self, sock: Any, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        target = headers.get("x-amz-target") or _action(body) or f"{method} {path.partition('?')[0]}"
        stats = self.stats
        inflight = stats.arrive(target)
        try:
            delay, outcome = self.faults.decide(target, inflight)
            stats.delayed(delay)
            if delay > 0 and not _wait(sock, delay):
                stats.cancelled += 1
                raise _Hangup
            if outcome == "drop":
                stats.dropped += 1
                raise _Hangup
            return self.answer(outcome, headers.get("x-amz-target") or path, headers, body)
        finally:
            stats.inflight -= 1

    def answer(
        self, outcome: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        stats, knobs = self.stats, self.faults.knobs
        protocol = faults.protocol_of(headers, body, knobs["protocol"])
        if outcome == "ok":
            try:
                return self.success(target, headers, body)
            except _Hangup:
                raise
            except Exception:  # noqa: BLE001 - a broken handler answers 500, like a broken service
                traceback.print_exc()
                outcome = "error"
        if outcome == "http429":
            stats.http429 += 1
            return 429, {"content-type": "application/json"}, b""
        if outcome == "html":
            stats.html += 1
            rheaders, rbody = faults.html_page(knobs["html_status"])
            return knobs["html_status"], rheaders, rbody
        if outcome == "throttle":
            stats.throttled += 1
            code, status = faults.PROTOCOLS[protocol][1]
            rheaders, rbody = faults.error_body(protocol, code, "Rate exceeded", "throttled")
            return status, rheaders, rbody
        stats.errors += 1
        code = faults.PROTOCOLS[protocol][2]
        rheaders, rbody = faults.error_body(protocol, code, "Injected server error", "error")
        return 500, rheaders, rbody

    def success(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.handler is None:
            status, rheaders, rbody = faults.default_response(target, self.faults.knobs["tables"])
        else:
            got, rheaders, raw = self.handler(target, headers, body)
            if got is None:  # the handler asks for a dropped connection
                self.stats.dropped += 1
                raise _Hangup
            status, rbody = got, raw.encode() if isinstance(raw, str) else raw
        if status < 400:
            self.stats.ok += 1
        else:
            self.stats.errors += 1
        return status, rheaders, rbody

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """``GET /_stats``, ``POST /_control`` (JSON knobs), ``POST /_reset`` (zero the counters)."""
        route = path.partition("?")[0]
        try:
            if route == "/_control" and method == "POST":
                self.faults.update(json.loads(body or b"{}"))
                payload: Any = self.faults.knobs
            elif route == "/_reset" and method == "POST":
                self.stats.reset()
                payload = {"reset": True}
            elif route == "/_stats":
                payload = self.stats.snapshot()
            else:
                return (
                    405,
                    {"content-type": "application/json"},
                    b'{"error": "use GET /_stats, POST /_control or POST /_reset"}',
                )
        except ValueError as exc:
            return 400, {"content-type": "application/json"}, json.dumps({"error": str(exc)}).encode()
        return 200, {"content-type": "application/json"}, json.dumps(payload).encode()


def _wait(sock: Any, delay: float) -> bool:
    """Sleep ``delay`` seconds unless the client hangs up first (then False)."""
    try:
        wait_read(sock.fileno(), timeout=delay, timeout_exc=_WAITED)
    except _Waited:
        return True
    if _hung_up(sock):
        return False
    gevent.sleep(delay)  # pipelined bytes, not a hang-up: wait the full delay (rare; over-waits a little)
    return True


def _hung_up(sock: Any) -> bool:
    """Whether a readable socket is at end of stream. Peeks the raw TCP bytes through a duplicate of the
    descriptor, because a TLS socket refuses ``MSG_PEEK`` (a TLS client's close_notify then reads as
    pipelined bytes: the answer waits out its delay and fails to send, which also ends the request)."""
    try:
        with socket.fromfd(sock.fileno(), socket.AF_INET, socket.SOCK_STREAM) as raw:
            return not raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _action(body: bytes) -> str | None:
    """The ``Action`` of a query-protocol request (EC2, STS, IAM...), for the per-target counts."""
    if not body.startswith(b"Action=") and b"&Action=" not in body:
        return None
    for pair in body.split(b"&"):
        if pair.startswith(b"Action="):
            return pair[7:].decode("latin-1")
    return None


def _read_request(sock: Any, buf: bytes) -> tuple[Any, bytes]:
    """((method, path, headers, body, keep-alive), rest of the buffer), or (None, b"") at end of stream."""
    while (end := buf.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    lines = buf[:end].decode("latin-1").split("\r\n")
    buf = buf[end + 4 :]
    method, path, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, buf = _read_chunked(sock, buf)
    else:
        body, buf = _read_exactly(sock, buf, int(headers.get("content-length") or 0))
    headers[":method"], headers[":path"] = method, path
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    return (method, path, headers, body, keep), buf


def _read_exactly(sock: Any, buf: bytes, length: int) -> tuple[bytes, bytes]:
    while len(buf) < length:
        chunk = sock.recv(max(65536, length - len(buf)))
        if not chunk:
            raise _Hangup
        buf += chunk
    return buf[:length], buf[length:]


def _read_chunked(sock: Any, buf: bytes) -> tuple[bytes, bytes]:
    parts: list[bytes] = []
    while True:
        while (eol := buf.find(b"\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise _Hangup
            buf += chunk
        size = int(buf[:eol].split(b";")[0], 16)
        data, buf = _read_exactly(sock, buf[eol + 2 :], size + 2)
        if size == 0:
            return b"".join(parts), buf  # (trailers are not supported; botocore sends none)
        parts.append(data[:-2])


def _response(status: int, headers: dict[str, str], body: bytes, request_id: str, keep: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Length: {len(body)}",
        f"x-amzn-RequestId: {request_id}",
        f"x-amz-request-id: {request_id}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("content-length", "connection")]
    if not keep:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _load_handler(spec: str) -> Handler:
    """The handler function; its module's ``warm()``, when it has one, runs now (before the port is bound)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"handler {spec!r} must look like 'package.module:function'")
    loaded = import_module(module)
    handler: Handler = getattr(loaded, name)
    if callable(getattr(loaded, "warm", None)):
        loaded.warm()
    return handler


def _watch_parent(parent: int) -> None:
    """Exit when the parent goes away, so a crashed test run leaves no server behind."""
    while os.getppid() == parent:
        gevent.sleep(0.5)
    os._exit(0)


def serve(config: dict[str, Any]) -> None:
    """Bind, print the port on stdout (the parent waits for that line), then serve until killed."""
    app = App(config.get("knobs") or {}, config.get("handler"))
    tls: dict[str, Any] = {}
    if config.get("tls"):  # HTTPS: gevent's SSL context, so each handshake yields like any socket read
        # imported here, after the handler: a handler that imports greenfetch must patch ssl first
        from gevent import ssl as gevent_ssl

        context = gevent_ssl.SSLContext(gevent_ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config["tls"]["cert"], config["tls"]["key"])
        tls.update(ssl_context=context, do_handshake_on_connect=False)  # a failed handshake: an OSError
        # in connection(), not a traceback
    server = StreamServer(("127.0.0.1", int(config.get("port") or 0)), app.connection, backlog=2048, **tls)
    server.start()
    print(server.server_port, flush=True)
    gevent.spawn(_watch_parent, int(config.get("parent") or os.getppid()))
    server.serve_forever()


if __name__ == "__main__":
    try:
        serve(json.loads(sys.argv[1]))
    except (ValueError, ImportError, AttributeError) as exc:
        print(f"error: {exc}", flush=True)
        sys.exit(2)
