"""botocore's HTTP session on geventhttpclient: its C parser and gevent-native keep-alive pools.

Why: on the gevent backend botocore's urllib3 + http.client path is about a quarter of the CPU of a
call (a prototype measured -27..30% per call with this swap; docs/performance/engine-call.md). The session keeps
botocore's contract (``send(AWSPreparedRequest) -> AWSResponse``, botocore's own exceptions, which the
standard retry mode retries) and writes the request exactly as urllib3 would: request line, ``Host``
as botocore signed it, ``Accept-Encoding: identity``, then botocore's headers in order.

It uses geventhttpclient's connection pools and response parser, not its ``HTTPClient.request``:
writing the head ourselves (``_wire``) skips a double header merge and per-header regexes, and lets
``send`` own the pool slot from checkout to response, so a greenlet killed mid-send never leaks one.
The pools and TLS contexts are ``_pool``'s; an answer is read off the socket by ``_answer``.
The plain answer AWS sends to every call but a download (HTTP/1.1, a Content-Length, its head in the
first read) is read without the parser (``_wire.plain_answer``, one regex pass instead of a Python
callback per header field and value and a response object of five classes: 125k instructions a call
down to ~35k, docs/performance/engine-call.md, "issue 24, part 7a"); everything else goes to the parser with the
bytes already read.

TLS (docs/performance/engine-call.md, "What TLS costs a call"): one ``SSLContext`` per CA bundle for the whole process
(loading botocore's default bundle costs ~18 ms of CPU, which every client paid once); a pool offers the
TLS session of an earlier connection to the same origin when it opens another (TLS 1.3 resumption: no
certificate chain to parse and verify again; a server that declines gets a full handshake); a pooled
socket is checked for a hang-up with one ``select`` system call, without the hub round trip gevent's
``select`` makes even with a zero timeout; and the answer is read once the socket is readable, not tried
first (a failed read per request).

Known differences from urllib3, on purpose: a response body shorter than its Content-Length raises
ConnectionClosedError (retried) where urllib3 hands botocore the partial body; ``max_pool_connections``
is a hard cap per origin (greenlets queue for a connection); no HTTP/2 (botocore has none either);
``Expect: 100-continue`` bodies are sent without waiting for the interim answer (RFC 9110 allows it).
"""

from __future__ import annotations

import ssl
from collections import OrderedDict
from typing import Any

import botocore.awsrequest
import botocore.exceptions as bex
from botocore.auth import _host_from_url  # the Host value botocore signs
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError

from ._answer import _RESPONSE_BLOCK, _await_answer, _Body, _plain, _Response
from ._pool import _Pool, _shared_context
from ._wire import Fields, joined, plain_answer, write
from ._wire import head as head_of

__all__ = ["GeventHTTPSession"]

_MAX_ORIGINS = 256  # S3 virtual hosts, DynamoDB account endpoints: an origin per bucket or account


class _Origin:
    """What ``send`` needs per scheme://host:port, computed once."""

    __slots__ = ("pool", "head")

    def __init__(self, pool: _Pool, host_header: str):
        self.pool = pool
        self.head = f"Host: {host_header}\r\nAccept-Encoding: identity\r\n"


class GeventHTTPSession:
    """A drop-in for ``botocore.httpsession.URLLib3Session`` on gevent (no proxies, no client certs)."""

    def __init__(
        self,
        *,
        verify: Any = True,
        timeout: Any = 60,
        max_pool_connections: int = 10,
        socket_options: list[tuple[int, int, Any]] | None = None,
    ):
        self._connect_timeout, self._read_timeout = _timeouts(timeout)
        self._size = max_pool_connections
        self._options = list(socket_options or [])
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._origins: OrderedDict[str, _Origin] = OrderedDict()
        self._last: tuple[str, _Origin, str] | None = None  # the last URL, its origin and target

    @classmethod
    def like(cls, session: Any) -> GeventHTTPSession:
        """The same settings as a URLLib3Session botocore built for a client."""
        return cls(
            verify=session._verify,
            timeout=session._timeout,
            max_pool_connections=session._max_pool_connections,
            socket_options=session._socket_options,
        )

    # -- pools ---------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = _shared_context(self._verify)
        return self._tls

    def _origin(self, url: str) -> tuple[_Origin, str]:
        last = self._last  # most calls repeat the URL before (an API's endpoint): its origin is the most
        if last is not None and last[0] == url:  # recently used already
            return last[1], last[2]
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        target, _, _fragment = (slash + path or "/").partition("#")
        key = scheme + "://" + netloc
        origin = self._origins.get(key)
        if origin is None:
            origin = self._new_origin(key, scheme, netloc)
        elif len(self._origins) > 1:
            self._origins.move_to_end(key)  # least recently used goes first
        self._last = (url, origin, target)
        return origin, target

    def _new_origin(self, key: str, scheme: str, netloc: str) -> _Origin:
        from urllib.parse import urlsplit

        parts = urlsplit(key)
        tls = self._context() if scheme == "https" else None
        port = parts.port or (443 if tls is not None else 80)
        pool = _Pool(
            parts.hostname or netloc,
            port,
            size=self._size,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            socket_options=self._options,
            tls=tls,
        )
        origin = self._origins[key] = _Origin(pool, _host_from_url(key))
        while len(self._origins) > _MAX_ORIGINS:
            _, evicted = self._origins.popitem(last=False)
            evicted.pool.close()  # idle sockets close now; checked-out ones close when returned
        return origin

    def close(self) -> None:
        origins, self._origins = self._origins, OrderedDict()
        self._last = None
        for origin in origins.values():
            origin.pool.close()

    # -- one request ---------------------------------------------------------------------------

    def send(self, request: Any) -> botocore.awsrequest.AWSResponse:
        url = request.url
        try:
            origin, target = self._origin(url)
            head, body, chunked = head_of(request, target, origin.head)
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
        except Exception as exc:  # e.g. its pool was evicted (closed) while this greenlet waited for a slot
            raise bex.HTTPClientError(error=exc) from None
        try:
            timeout = (getattr(request, "context", None) or {}).get("read_timeout") or self._read_timeout
            if sock.timeout != timeout:
                sock.settimeout(timeout)
            write(sock, head, body, chunked)
            _await_answer(sock)
            data = sock.recv(_RESPONSE_BLOCK)
            if not data:
                raise HTTPConnectionClosed("connection closed.")
            answer = None if request.stream_output else plain_answer(data, request.method)
            if answer is not None:
                return _plain(url, sock, pool, data, *answer)
        except Exception as exc:
            pool.release_socket(sock)
            raise _mapped(exc, request) from None
        except BaseException:  # a greenlet killed mid-send: the slot goes back, the half-written socket goes
            pool.release_socket(sock)
            raise
        try:  # anything but a plain answer: from here the response owns the socket and releases it
            response = _Response(
                sock,
                pool,
                block_size=_RESPONSE_BLOCK,
                method=request.method,
                headers_type=Fields,
                pre_buffered=data,
            )
            fields: Any = response._headers_index
            http = botocore.awsrequest.AWSResponse(
                url, response.status_code, joined(fields), _Body(response, url)
            )
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
    return (
        float(connect) if isinstance(connect, (int, float)) else None,
        float(read) if isinstance(read, (int, float)) else None,
    )


def _mapped(exc: BaseException, request: Any) -> BaseException:
    """botocore's exception for a failure after the connection was made (as URLLib3Session maps)."""
    url = request.url
    mapped: BaseException  # botocore ships no types: its exception classes are Any to mypy
    if isinstance(exc, bex.BotoCoreError):
        mapped = exc
    elif isinstance(exc, TimeoutError):
        mapped = bex.ReadTimeoutError(endpoint_url=url, error=exc)
    elif isinstance(exc, ssl.SSLError):
        mapped = bex.SSLError(endpoint_url=url, error=exc)
    elif isinstance(exc, (OSError, HTTPParseError)):
        mapped = bex.ConnectionClosedError(error=exc, request=request, endpoint_url=url)
    else:
        mapped = bex.HTTPClientError(error=exc)
    return mapped
