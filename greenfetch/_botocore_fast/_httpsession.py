"""A client's HTTP session without the pool manager it may never use: botocore's ``URLLib3Session``
builds its urllib3 ``PoolManager`` and that manager's SSL context (``create_urllib3_context``: an
OpenSSL ``SSL_CTX_new`` and a cipher list, ~1.6M instructions) when the session is made, that is for
every client. On the gevent backend greenfetch replaces the session right after the client is made
(``greenfetch/_http``'s ``install_http_session``) and closes botocore's unused: the manager and its
context were made for nothing. docs/performance/client-and-parse.md, issue 24, "a botocore client's creation", part 2.

Here the session is made as botocore makes it, all but ``_manager``, which is built on its first read
(``_DeferredManager``): by botocore's own ``_get_pool_manager_kwargs`` and ``PoolManager`` (looked up
where botocore looks them up, when it is built), given the same pool classes, kept in the instance as
botocore's ``__init__`` keeps it. Any reader (``send``'s ``_get_connection_manager``, anyone's code)
gets the manager botocore would have made: the same timeout, pool size, socket options, client
certificate, an SSL context from the same ``_get_ssl_context``. Two first reads at once keep one
(``dict.setdefault``; the other, never used, has no pools). ``close`` clears a manager only if one was
built (one never built holds no connection) and, as botocore's, every proxy manager. Only
``URLLib3Session`` itself is made so (a subclass may rely on its manager at once): botocore's code for
anything else.

What moves is when: the context is made at the session's first request, so ``SSLKEYLOGFILE`` is read
then, not when the client was made.
"""

from __future__ import annotations

from typing import Any

import botocore.awsrequest
import botocore.httpsession

_Session = botocore.httpsession.URLLib3Session
_session_init = _Session.__init__
_session_close = _Session.close


class _DeferredManager:
    """``URLLib3Session._manager`` of a session :func:`session_init` made: built when first read.

    A non-data descriptor: once built, the manager is in the instance's ``__dict__`` and is read from
    there, as is the one botocore's own ``__init__`` puts there (this class is never asked for it)."""

    def __get__(self, session: Any, owner: Any = None) -> Any:
        if session is None:
            return self
        manager = botocore.httpsession.PoolManager(**session._get_pool_manager_kwargs())
        manager.pool_classes_by_scheme = session._pool_classes_by_scheme
        return session.__dict__.setdefault("_manager", manager)


DEFERRED_MANAGER = _DeferredManager()


def session_init(
    self: Any,
    verify: Any = True,
    proxies: Any = None,
    timeout: Any = None,
    max_pool_connections: Any = botocore.httpsession.MAX_POOL_CONNECTIONS,
    socket_options: Any = None,
    client_cert: Any = None,
    proxies_config: Any = None,
) -> None:
    """``URLLib3Session.__init__`` (botocore 1.36-1.43's, unchanged over that range), its pool
    manager left to its first read."""
    if type(self) is not _Session or type(self).__dict__.get("_manager") is not DEFERRED_MANAGER:
        _session_init(
            self,
            verify=verify,
            proxies=proxies,
            timeout=timeout,
            max_pool_connections=max_pool_connections,
            socket_options=socket_options,
            client_cert=client_cert,
            proxies_config=proxies_config,
        )
        return
    module = botocore.httpsession
    self._verify = verify
    self._proxy_config = module.ProxyConfiguration(proxies=proxies, proxies_settings=proxies_config)
    self._pool_classes_by_scheme = {
        "http": botocore.awsrequest.AWSHTTPConnectionPool,
        "https": botocore.awsrequest.AWSHTTPSConnectionPool,
    }
    if timeout is None:
        timeout = module.DEFAULT_TIMEOUT
    if not isinstance(timeout, (int, float)):
        timeout = module.Timeout(connect=timeout[0], read=timeout[1])

    self._cert_file = None
    self._key_file = None
    if isinstance(client_cert, str):
        self._cert_file = client_cert
    elif isinstance(client_cert, tuple):
        self._cert_file, self._key_file = client_cert

    self._timeout = timeout
    self._max_pool_connections = max_pool_connections
    self._socket_options = socket_options
    if socket_options is None:
        self._socket_options = []
    self._proxy_managers = {}
    # self._manager: DEFERRED_MANAGER, on its first read


def session_close(self: Any) -> None:
    """``URLLib3Session.close``, without building a manager to clear it."""
    if type(self) is not _Session or "_manager" in self.__dict__:
        _session_close(self)
        return
    for manager in self._proxy_managers.values():
        manager.clear()


__all__ = ["DEFERRED_MANAGER", "session_close", "session_init"]
