"""Getting an engine's metrics out: scraped, pushed, or left in a file.

Three ways, for three kinds of run (Prometheus's own guidance):
- ``serve``: HTTP ``/metrics`` while a long-lived process runs (``--metrics-port``);
- ``push``: one PUT to a Pushgateway when a batch job ends (``--pushgateway URL``), since a job that
  exits is gone before a scrape would find it;
- ``write_textfile``: node_exporter's textfile collector (``--metrics-textfile PATH``), written to a
  temporary file and renamed, so the collector never reads half a file.
Failures raise ``ExpositionError`` with one line naming the port, URL or path (and, for a port in
use, a neighbour that is free now).
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import urllib.parse
from typing import Any
from urllib.error import URLError

from prometheus_client import (
    CollectorRegistry,
    generate_latest,
    push_to_gateway,
    start_http_server,
    write_to_textfile,
)

from ._config import bad_port
from ._exceptions import ExpositionError

__all__ = ["ExpositionError", "check_url", "push", "render", "serve", "write_textfile"]


def render(registry: CollectorRegistry) -> str:
    """The text exposition format (what /metrics returns and the textfile holds)."""
    return generate_latest(registry).decode("utf-8")


def serve(registry: CollectorRegistry, port: int, addr: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` on ``port`` in the background; returns the server (``.shutdown()`` stops it).

    Port 0 picks a free port: read it back from ``server.server_port``.
    """
    problem = bad_port(port)
    if problem is not None:
        raise ExpositionError(f"metrics port: {problem}")
    try:
        started = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise ExpositionError(_cannot_listen(exc, port, addr)) from None
    return started[0] if isinstance(started, tuple) else started


def _cannot_listen(exc: OSError, port: int, addr: str) -> str:
    """One line naming the port, why it cannot be used, and a port that would work."""
    where = f"metrics port {port}: cannot listen on {addr}:{port}"
    if exc.errno == errno.EADDRINUSE:
        free = _free_port_near(port, addr)
        instead = f"a free port such as {free}" if free is not None else "a free port"
        return f"{where}: it is already in use by another process; use {instead}, or stop what listens there"
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need root); use a port from 1024 to 65535, e.g. 9464"
    return f"{where}: {exc.strerror or exc}"


def _free_port_near(port: int, addr: str, tries: int = 32) -> int | None:
    """The first port after ``port`` that binds now (as the HTTP server binds: SO_REUSEADDR), or None.
    Only a suggestion: a neighbour is easier to put in a scrape config than a random free port."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((addr, candidate))
            except OSError:
                continue
        return candidate
    return None


def push(
    registry: CollectorRegistry,
    url: str,
    job: str = "greenfetch",
    timeout: float = 10.0,
    grouping_key: dict[str, str] | None = None,
) -> None:
    """Replace this job's group on the Pushgateway at ``url`` with the registry's current values."""
    if not isinstance(url, str) or not url.strip():
        raise ExpositionError(f"pushgateway: {url!r} is not a URL; use e.g. http://localhost:9091")
    try:
        push_to_gateway(url.strip(), job=job, registry=registry, timeout=timeout, grouping_key=grouping_key)
    except (
        URLError,
        OSError,
        ValueError,
        http.client.HTTPException,
    ) as exc:  # InvalidURL is an HTTPException
        reason = getattr(exc, "reason", None) or exc
        raise ExpositionError(f"pushgateway {url}: push failed: {reason}") from None


def check_url(url: str, name: str = "pushgateway") -> str:
    """``url`` if it looks like an http(s) URL with a host; ExpositionError otherwise. Checked when the
    flag is read, so a typo fails before the run, not after the data was written."""
    parsed = urllib.parse.urlsplit(url.strip()) if isinstance(url, str) else None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https", "")
        or not (parsed.netloc or parsed.path)
        or any(c.isspace() for c in url.strip())
    ):
        raise ExpositionError(f"{name}: {url!r} is not a URL; use e.g. http://localhost:9091")
    return url


def write_textfile(registry: CollectorRegistry, path: str | os.PathLike[str]) -> None:
    """Write the exposition to ``path`` atomically, by prometheus_client's own ``write_to_textfile``
    (a temp file beside it, then a rename; it removes the temp file when it fails)."""
    target = os.fspath(path)
    try:
        write_to_textfile(target, registry)
    except OSError as exc:
        raise ExpositionError(f"metrics textfile {target}: {exc.strerror or exc}") from None
