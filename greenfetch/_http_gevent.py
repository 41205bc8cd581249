"""botocore's HTTP session on geventhttpclient: its C parser and gevent-native keep-alive pools.

Why: on the gevent backend botocore's urllib3 + http.client path is about a quarter of the CPU of a
call (../shared/reference/http-layer.md measured -27..30% per call with this swap). The session keeps
botocore's contract (``send(AWSPreparedRequest) -> AWSResponse``, botocore's own exceptions, which the
standard retry mode retries) and writes the request exactly as urllib3 would: request line, ``Host``
as botocore signed it, ``Accept-Encoding: identity``, then botocore's headers in order.

It uses geventhttpclient's connection pools and response parser, not its ``HTTPClient.request``:
writing the head here skips a double header merge and per-header regexes, and lets ``send`` own the
pool slot from checkout to response, so a greenlet killed mid-send never leaks one.
"""

from __future__ import annotations

import ssl
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import botocore.awsrequest
import botocore.exceptions as bex
from botocore.auth import _host_from_url  # the Host value botocore signs
from botocore.httpsession import get_cert_path
from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.response import HTTPParseError, HTTPSocketPoolResponse

__all__ = ["GeventHTTPSession"]

_MAX_ORIGINS = 256  # S3 virtual hosts, DynamoDB account endpoints: an origin per bucket or account
_BLOCK = 16384  # urllib3's blocksize: chunked request bodies are framed in the same pieces
_RESPONSE_BLOCK = 65536


class _Fields(list[tuple[str, str]]):
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

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return self


class _Response(HTTPSocketPoolResponse):
    """geventhttpclient's pooled response, except that an interim 1xx (``100 Continue``, which servers
    send for botocore's ``Expect: 100-continue`` uploads) does not hand the socket back to the pool:
    upstream releases it at the end of *any* message, so the final response would be read from a socket
    the pool had already given to another request."""

    def _on_message_complete(self) -> None:
        if self.get_code() < 200:
            self.message_complete = True
            return
        super()._on_message_complete()


class _Pool(ConnectionPool):
    """One origin's keep-alive pool: socket options on each new socket, TLS with the client's verify."""

    def __init__(self, host: str, port: int, *, size: int, connect_timeout: float | None,
                 read_timeout: float | None,
                 socket_options: list[tuple[int, int, Any]], tls: ssl.SSLContext | None):
        super().__init__(host, port, host, port, size=size,
                         connection_timeout=connect_timeout,  # type: ignore[arg-type]  # None: no timeout
                         network_timeout=read_timeout)  # type: ignore[arg-type]
        self._options = socket_options
        self._tls = tls

    def _create_tcp_socket(self, family: int, socktype: int, protocol: int) -> Any:
        sock = super()._create_tcp_socket(family, socktype, protocol)
        for level, name, value in self._options:
            sock.setsockopt(level, name, value)
        return sock

    def _connect_socket(self, sock: Any, address: Any) -> Any:
        sock.connect(address)
        if self._tls is None:
            return sock
        return self._tls.wrap_socket(sock, server_hostname=self._request_host)


class _Origin:
    """What ``send`` needs per scheme://host:port, computed once."""

    __slots__ = ("pool", "head")

    def __init__(self, pool: _Pool, host_header: str):
        self.pool = pool
        self.head = f"Host: {host_header}\r\nAccept-Encoding: identity\r\n"


class GeventHTTPSession:
    """A drop-in for ``botocore.httpsession.URLLib3Session`` on gevent (no proxies, no client certs)."""

    def __init__(self, *, verify: Any = True, timeout: Any = 60, max_pool_connections: int = 10,
                 socket_options: list[tuple[int, int, Any]] | None = None):
        self._connect_timeout, self._read_timeout = _timeouts(timeout)
        self._size = max_pool_connections
        self._options = list(socket_options or [])
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._origins: OrderedDict[str, _Origin] = OrderedDict()

    @classmethod
    def like(cls, session: Any) -> GeventHTTPSession:
        """The same settings as a URLLib3Session botocore built for a client."""
        return cls(verify=session._verify, timeout=session._timeout,
                   max_pool_connections=session._max_pool_connections, socket_options=session._socket_options)

    # -- pools ---------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            import gevent.ssl

            if self._verify is False:
                ctx = gevent.ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            else:
                ctx = gevent.ssl.create_default_context(cafile=get_cert_path(self._verify))
            self._tls = ctx
        return self._tls

    def _origin(self, url: str) -> tuple[_Origin, str]:
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        target, _, _fragment = (slash + path or "/").partition("#")
        key = scheme + "://" + netloc
        origin = self._origins.get(key)
        if origin is None:
            origin = self._new_origin(key, scheme, netloc)
        return origin, target

    def _new_origin(self, key: str, scheme: str, netloc: str) -> _Origin:
        from urllib.parse import urlsplit

        parts = urlsplit(key)
        tls = self._context() if scheme == "https" else None
        port = parts.port or (443 if tls is not None else 80)
        pool = _Pool(parts.hostname or netloc, port, size=self._size, connect_timeout=self._connect_timeout,
                     read_timeout=self._read_timeout, socket_options=self._options, tls=tls)
        origin = self._origins[key] = _Origin(pool, _host_from_url(key))
        while len(self._origins) > _MAX_ORIGINS:
            _, evicted = self._origins.popitem(last=False)
            evicted.pool.close()  # idle sockets close now; checked-out ones close when returned
        return origin

    def close(self) -> None:
        origins, self._origins = self._origins, OrderedDict()
        for origin in origins.values():
            origin.pool.close()

    # -- one request ---------------------------------------------------------------------------

    def send(self, request: Any) -> botocore.awsrequest.AWSResponse:
        url = request.url
        try:
            origin, target = self._origin(url)
            head, body, chunked = _head(request, target, origin.head)
        except ValueError as exc:  # http.client rejects the same (CR/LF in a header value)
            raise bex.HTTPClientError(error=exc) from None
        pool = origin.pool
        try:
            sock = pool.get_socket()
        except TimeoutError as exc:
            raise bex.ConnectTimeoutError(endpoint_url=url, error=exc) from None
        except ssl.SSLError as exc:
            raise bex.SSLError(endpoint_url=url, error=exc) from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror)
            raise bex.EndpointConnectionError(endpoint_url=url, error=exc) from None
        try:
            timeout = (getattr(request, "context", None) or {}).get("read_timeout") or self._read_timeout
            sock.settimeout(timeout)
            _write(sock, head, body, chunked)
        except Exception as exc:
            pool.release_socket(sock)
            raise _mapped(exc, request) from None
        except BaseException:  # a greenlet killed mid-send: the slot goes back, the half-written socket goes
            pool.release_socket(sock)
            raise
        try:  # from here the response owns the socket and releases it on any failure
            response = _Response(sock, pool, block_size=_RESPONSE_BLOCK, method=request.method,
                                              headers_type=_Fields)
            fields: Any = response._headers_index
            http = botocore.awsrequest.AWSResponse(url, response.status_code, _joined(fields), _Body(response, url))
            if not request.stream_output:
                http._content = response.read()
        except Exception as exc:
            raise _mapped(exc, request) from None
        return http


def _timeouts(timeout: Any) -> tuple[float | None, float | None]:
    """(connect, read) seconds from what botocore gives urllib3: a Timeout, a pair or one number."""
    if isinstance(timeout, tuple):
        connect, read = timeout
    elif hasattr(timeout, "connect_timeout"):  # urllib3.Timeout
        connect, read = timeout.connect_timeout, timeout.read_timeout
    else:
        connect = read = timeout
    return (float(connect) if isinstance(connect, (int, float)) else None,
            float(read) if isinstance(read, (int, float)) else None)


def _head(request: Any, target: str, host_lines: str) -> tuple[bytes, Any, bool]:
    """The request head as urllib3 2.x writes it, the body, and whether to frame it chunked."""
    method = request.method
    body = request.body
    headers = request.headers
    lines = [method, " ", target, " HTTP/1.1\r\n", host_lines]
    names = {name.lower() for name in headers}
    if isinstance(body, str):
        body = body.encode("utf-8")
    te = headers.get("Transfer-Encoding")
    chunked = te is not None and (te.lower() if isinstance(te, str) else te.lower().decode("latin-1")) == "chunked"
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


def _write(sock: Any, head: bytes, body: Any, chunked: bool) -> None:
    if body is None or body == b"":
        sock.sendall(head + b"0\r\n\r\n" if chunked else head)
    elif isinstance(body, (bytes, bytearray)) and not chunked:
        sock.sendall(head + body)
    else:
        sock.sendall(head)
        for block in _blocks(body):
            sock.sendall(b"%x\r\n%b\r\n" % (len(block), block) if chunked else block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")


def _blocks(body: Any) -> Iterator[bytes]:
    if isinstance(body, (bytes, bytearray)):
        for start in range(0, len(body), _BLOCK):
            yield bytes(body[start:start + _BLOCK])
    elif hasattr(body, "read"):
        while block := body.read(_BLOCK):
            yield block.encode("utf-8") if isinstance(block, str) else block
    else:
        for block in body:
            if block:
                yield block.encode("utf-8") if isinstance(block, str) else block


def _joined(fields: _Fields) -> dict[str, str]:
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


def _mapped(exc: BaseException, request: Any) -> BaseException:
    """botocore's exception for a failure after the connection was made (as URLLib3Session maps)."""
    url = request.url
    if isinstance(exc, bex.BotoCoreError):
        return exc
    if isinstance(exc, TimeoutError):
        return bex.ReadTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, ssl.SSLError):
        return bex.SSLError(endpoint_url=url, error=exc)
    if isinstance(exc, (OSError, HTTPParseError)):
        return bex.ConnectionClosedError(error=exc, request=request, endpoint_url=url)
    return bex.HTTPClientError(error=exc)


class _SocketRef:
    """``raw._fp.fp.raw._sock``: the path ``StreamingBody.set_socket_timeout`` walks (urllib3's shape)."""

    def __init__(self, response: HTTPSocketPoolResponse):
        self.fp = self.raw = self
        self._response = response

    @property
    def _sock(self) -> Any:
        return self._response._sock


class _Body:
    """The raw stream under ``AWSResponse``/``StreamingBody``: read, readinto, stream, readlines, tell,
    close. Failures surface as botocore's streaming errors, as they do through urllib3."""

    def __init__(self, response: HTTPSocketPoolResponse, url: str):
        self._response = response
        self._url = url
        self._read = 0
        self._fp = _SocketRef(response)

    def read(self, amt: int | None = None) -> bytes:
        try:
            data = self._response.read(amt)
        except TimeoutError as exc:
            raise bex.ReadTimeoutError(endpoint_url=self._url, error=exc) from None
        except (OSError, HTTPParseError) as exc:
            raise bex.ResponseStreamingError(error=exc) from None
        self._read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        del decode_content
        while data := self.read(amt):
            yield data

    def readlines(self) -> list[bytes]:
        return self.read().splitlines(keepends=True)

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._read

    def close(self) -> None:
        self._response.release()  # back to the pool if fully read, else the socket is closed
