"""The gevent session's connections: one origin's keep-alive pool (``_Pool``: socket options, TLS with the
client's verify, the last TLS session offered to the next connection, a pooled socket checked for a
hang-up with one system call) and the process's TLS contexts, one per CA bundle (``_shared_context``).
Why each is so: ``_gevent``'s docstring and docs/performance/engine-call.md, "What TLS costs a call".
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from botocore.httpsession import get_cert_path
from gevent.monkey import get_original
from geventhttpclient.connectionpool import ConnectionPool

_select, _poll = get_original("select", ["select", "poll"])  # the system calls: no hub round trip
_POLL_IN = 0x001 | 0x002 | 0x008 | 0x010  # POLLIN, POLLPRI, POLLERR, POLLHUP
_FD_SETSIZE = 1024  # select() refuses a descriptor from here on
_CONTEXTS: dict[tuple[Any, ...], ssl.SSLContext] = {}  # per CA bundle (path, mtime, size), or unverified


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
