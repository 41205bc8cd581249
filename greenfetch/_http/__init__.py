"""The seam below botocore: the HTTP session every client the engine creates sends through.

botocore has no public hook for this; the one place is ``client._endpoint.http_session``, replaced
right after the client is created (see docs/architecture.md, "the two seams"). Everything that
decides which session a client gets lives here, so a faster session changes this module only.

On the gevent backend that is :class:`~greenfetch._http._gevent.GeventHTTPSession` (geventhttpclient:
about a quarter less CPU per call, measured in docs/performance/engine-call.md). botocore's URLLib3Session stays
where geventhttpclient lacks what the client's config asks for (proxies, client certificates, a CA
directory), on the threads backend, and for sessions someone else already replaced; each reason is
logged once per process.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from botocore.httpsession import URLLib3Session

from .._config import Config

__all__ = ["install_http_session", "pool_size", "session_kind"]

log = logging.getLogger("greenfetch")

# Per origin. The engine asks for one connection per concurrent call, but never fewer than
# botocore-with-urllib3 would reuse well, and never more than a sane number of sockets per endpoint:
# beyond it, greenlets queue for a connection instead of opening thousands (and running out of fds).
_MIN_POOL = 256
_MAX_POOL = 1024
_said: set[str] = set()


def pool_size(concurrency: int) -> int:
    """``max_pool_connections`` for a client serving ``concurrency`` calls at once."""
    return min(max(concurrency, _MIN_POOL), _MAX_POOL)


def install_http_session(client: Any, config: Config) -> None:
    """Give ``client`` the HTTP session greenfetch wants for it (see the module docstring)."""
    if config.backend != "gevent":
        return
    endpoint: Any = getattr(client, "_endpoint", None)
    current: Any = getattr(endpoint, "http_session", None)
    if type(current) is not URLLib3Session:  # a subclass or a stub someone installed: theirs to keep
        return
    reason = _unsupported(current)
    if reason is None:
        try:
            from ._gevent import GeventHTTPSession
        except ImportError:
            reason = "geventhttpclient is not installed"
    if reason is not None:
        if reason not in _said:
            _said.add(reason)
            log.info("greenfetch: using botocore's urllib3 HTTP session: %s", reason)
        return
    endpoint.http_session = GeventHTTPSession.like(current)
    current.close()


def session_kind(client: Any) -> str:
    """``geventhttpclient`` or ``urllib3`` (or the session's class name): for tests and diagnostics."""
    name = type(getattr(client._endpoint, "http_session", None)).__name__
    return {"GeventHTTPSession": "geventhttpclient", "URLLib3Session": "urllib3"}.get(name, name)


def _unsupported(session: Any) -> str | None:
    """Why geventhttpclient cannot honour this client's HTTP config, or None. Never names a secret
    (a proxy URL may carry a password): only which setting it is."""
    if getattr(session._proxy_config, "_proxies", None):
        return "the client's config (or HTTP(S)_PROXY) sets a proxy"
    if getattr(session, "_cert_file", None):
        return "the client's config sets a client certificate"
    verify = getattr(session, "_verify", True)
    if isinstance(verify, str) and os.path.isdir(verify):
        return "the CA bundle is a directory"
    return None
