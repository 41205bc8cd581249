"""botocore's HTTP session on geventhttpclient: its C parser and gevent-native keep-alive pools.

Why: on the gevent backend botocore's urllib3 + http.client path is about a quarter of the CPU of a
call (a prototype measured -27..30% per call with this swap; docs/performance.md). The session keeps
botocore's contract (``send(AWSPreparedRequest) -> AWSResponse``, botocore's own exceptions, which the
standard retry mode retries) and writes the request exactly as urllib3 would: request line, ``Host``
as botocore signed it, ``Accept-Encoding: identity``, then botocore's headers in order.

It uses geventhttpclient's connection pools and response parser, not its ``HTTPClient.request``:
writing the head ourselves (``_wire``) skips a double header merge and per-header regexes, and lets
``send`` own the pool slot from checkout to response, so a greenlet killed mid-send never leaks one.
The plain answer AWS sends to every call but a download (HTTP/1.1, a Content-Length, its head in the
first read) is read without the parser (``_wire.plain_answer``, one regex pass instead of a Python
callback per header field and value and a response object of five classes: 125k instructions a call
down to ~35k, docs/performance.md, "issue 24, part 7a"); everything else goes to the parser with the
bytes already read.

TLS (docs/performance.md, "What TLS costs a call"): one ``SSLContext`` per CA bundle for the whole process
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

import os
import ssl
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import botocore.awsrequest
import botocore.exceptions as bex
import gevent.socket
from botocore.auth import _host_from_url  # the Host value botocore signs
from botocore.httpsession import get_cert_path
from gevent import getcurrent
from gevent.monkey import get_original
from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError, HTTPSocketPoolResponse

from ._wire import Fields, joined, plain_answer, write
from ._wire import head as head_of

__all__ = ["GeventHTTPSession"]

_MAX_ORIGINS = 256  # S3 virtual hosts, DynamoDB account endpoints: an origin per bucket or account
_RESPONSE_BLOCK = 65536
_select, _poll = get_original("select", ["select", "poll"])  # the system calls: no hub round trip
_POLL_IN = 0x001 | 0x002 | 0x008 | 0x010  # POLLIN, POLLPRI, POLLERR, POLLHUP
_FD_SETSIZE = 1024  # select() refuses a descriptor from here on
_CONTEXTS: dict[tuple[Any, ...], ssl.SSLContext] = {}  # per CA bundle (path, mtime, size), or unverified


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
    """One origin's keep-alive pool: socket options on each new socket, TLS with the client's verify, the
    last TLS session offered to the next connection."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        size: int,
        connect_timeout: float | None,
        read_timeout: float | None,
        socket_options: list[tuple[int, int, Any]],
        tls: ssl.SSLContext | None,
    ):
        super().__init__(
            host,
            port,
            host,
            port,
            size=size,
            connection_timeout=connect_timeout,  # type: ignore[arg-type]  # None: no timeout
            network_timeout=read_timeout,  # type: ignore[arg-type]  # None: no timeout
        )
        self._options = socket_options
        self._tls = tls
        self._session: ssl.SSLSession | None = None
        self._handshakes = 0  # full handshakes since the session was last taken: a fresher one to keep

    def _create_tcp_socket(self, family: int, socktype: int, protocol: int) -> Any:
        sock = super()._create_tcp_socket(family, socktype, protocol)
        for level, name, value in self._options:
            sock.setsockopt(level, name, value)
        return sock

    def _connect_socket(self, sock: Any, address: Any) -> Any:
        sock.connect(address)
        if self._tls is None:
            return sock
        wrapped = self._tls.wrap_socket(sock, server_hostname=self._request_host, session=self._session)
        if not wrapped.session_reused:
            self._handshakes += 1
        return wrapped

    def _is_socket_alive(self, sock: Any) -> bool:
        """An idle pooled socket is dead if it is readable (the server hung up or sent stray bytes). One
        system call: ``select`` (gevent's own would sleep through the hub), or ``poll`` for a descriptor
        ``select`` cannot take (upstream's check failed there and every call opened a new connection)."""
        try:
            fd = sock.fileno()
            if fd < 0:
                return False
            if fd < _FD_SETSIZE:
                return not _select([fd], [], [], 0)[0]
            poller = _poll()
            poller.register(fd, _POLL_IN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    # Checkout and check-in: upstream's, with the idle sockets read from the ``LifoQueue``'s list (its
    # ``queue``, newest last) instead of through ``put``/``get(block=False)``. Nothing ever waits on that
    # queue (the semaphore is the wait, and bounds it below its size), so a put is an append and a get
    # a pop of the newest, as the queue's own ``_put``/``_get`` do; ``close``, ``qsize`` and ``empty``
    # read the same list.

    def get_socket(self) -> Any:
        self._semaphore.acquire()
        if self._closed:
            raise RuntimeError("connection pool closed")
        idle = self._socket_queue.queue
        while idle:
            sock = idle.pop()
            if self._is_socket_alive(sock):
                return sock
            try:
                sock.close()
            except Exception:  # noqa: BLE001, S110 - a dead socket's close: upstream ignores its errors too
                pass
        try:
            return self._create_socket()
        except BaseException:
            self._semaphore.release()
            raise

    def return_socket(self, sock: Any) -> None:
        if self._handshakes:  # after a full handshake, a fresh session to offer (TLS 1.3 sends its ticket
            self._keep_session(sock)  # after the handshake: it has been read with the first answer)
        if self._closed:
            try:
                sock.close()
            except Exception:  # noqa: BLE001, S110 - as upstream's return_socket
                pass
            return
        self._socket_queue.queue.append(sock)
        self._semaphore.release()

    def _keep_session(self, sock: Any) -> None:
        self._handshakes = 0
        session = getattr(sock, "session", None)
        if session is not None and session.has_ticket:  # a server that sends no ticket: nothing to offer
            self._session = session


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


def _plain(
    url: str,
    sock: Any,
    pool: _Pool,
    data: bytes,
    status: int,
    headers: dict[str, str],
    length: int,
    keep: bool,
    start: int,
) -> botocore.awsrequest.AWSResponse:
    """The answer :func:`plain_answer` read the head of: its body read whole (the socket's read timeout
    on each read), the connection back to the pool (or closed, for ``Connection: close``). A body cut
    short or bytes past its end raise (the caller releases the socket)."""
    body = data[start:]
    if len(body) < length:
        parts = [body]
        size = len(body)
        while size < length:
            more = sock.recv(_RESPONSE_BLOCK)
            if not more:
                raise HTTPParseError("connection closed before the end of the body")
            parts.append(more)
            size += len(more)
        body = b"".join(parts)
    if len(body) > length:
        raise HTTPParseError("bytes past the end of the answer")
    http = botocore.awsrequest.AWSResponse(url, status, headers, _READ_OUT)
    http._content = body
    if keep:
        pool.return_socket(sock)
    else:
        pool.release_socket(sock)
    return http


def _await_answer(sock: Any) -> None:
    """Park until the answer starts to arrive, then read it (asyncio's order). Reading first, as a socket's
    recv does, costs a system call that fails with EAGAIN and an exception on every request (for TLS, a
    failed SSL_read), since an answer is never there the moment its request is written. The wait is the
    socket's own read watcher, with the socket's timeout: what ``sock._wait`` does, with a bare libev
    timer where it makes a ``gevent.Timeout`` (an exception object, a timer and five Python calls;
    ~15k instructions a call) and raising what it raises, a TimeoutError, if the timer fires first."""
    kind = type(sock)
    pending = getattr(kind, "pending", None)  # TLS: bytes already decrypted need no wait. Looked up
    if pending is not None and pending(sock):  # on the class: a plain socket's miss would raise inside
        return
    if not issubclass(kind, gevent.socket.socket):  # anything else reads as before
        return
    hub = sock.hub
    timeout = sock.timeout
    if timeout is None:
        hub.wait(sock._read_event)
        return
    timer = hub.loop.timer(timeout)
    timer.start(_time_out, getcurrent(), update=True)  # update: from now, not the loop's last look
    try:
        hub.wait(sock._read_event)
    finally:
        timer.close()


def _time_out(waiting: Any) -> None:
    waiting.throw(TimeoutError("timed out"))


def _shared_context(verify: Any) -> ssl.SSLContext:
    """The process's TLS context for a client's ``verify``: one per CA bundle file as it is on disk (a
    changed file gets a new one), or one that verifies nothing for ``verify=False``."""
    if verify is False:
        key: tuple[Any, ...] = (False,)
    else:
        path = get_cert_path(verify)
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
    context = _CONTEXTS.get(key)
    if context is None:
        import gevent.ssl

        if verify is False:
            context = gevent.ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = gevent.ssl.create_default_context(cafile=key[0])
        context = _CONTEXTS.setdefault(key, context)
    return context


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
        buffer[: len(data)] = data
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


class _ReadOut:
    """A response with nothing left to read: the raw stream under an answer read whole."""

    _sock = None

    def read(self, amt: int | None = None) -> bytes:
        return b""

    def release(self) -> None:
        pass


_READ_OUT = _Body(_ReadOut(), "")  # type: ignore[arg-type]  # one for every plain answer: it holds nothing
