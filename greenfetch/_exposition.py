"""Getting an engine's metrics out: scraped, pushed, or left in a file.

Three ways, for three kinds of run (Prometheus's own guidance):
- ``serve``: HTTP ``/metrics`` while a long-lived process runs (``--metrics-port``);
- ``push``: one PUT to a Pushgateway when a batch job ends (``--pushgateway URL``), since a job that
  exits is gone before a scrape would find it;
- ``write_textfile``: node_exporter's textfile collector (``--metrics-textfile PATH``), written to a
  temporary file and renamed, so the collector never reads half a file.
Failures raise ``ExpositionError`` with one line naming the port, URL or path.
"""

from __future__ import annotations

import http.client
import os
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

from ._exceptions import ExpositionError

__all__ = ["ExpositionError", "check_url", "push", "render", "serve", "write_textfile"]


def render(registry: CollectorRegistry) -> str:
    """The text exposition format (what /metrics returns and the textfile holds)."""
    return generate_latest(registry).decode("utf-8")


def serve(registry: CollectorRegistry, port: int, addr: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` on ``port`` in the background; returns the server (``.shutdown()`` stops it).

    Port 0 picks a free port: read it back from ``server.server_port``.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ExpositionError(f"metrics port: {port!r} is not a port; use a number from 1 to 65535 (e.g. 9464)")
    try:
        started = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise ExpositionError(f"metrics port {port}: cannot listen on {addr}:{port}: {exc.strerror or exc}") from None
    return started[0] if isinstance(started, tuple) else started


def push(registry: CollectorRegistry, url: str, job: str = "greenfetch", timeout: float = 10.0,
         grouping_key: dict[str, str] | None = None) -> None:
    """Replace this job's group on the Pushgateway at ``url`` with the registry's current values."""
    if not isinstance(url, str) or not url.strip():
        raise ExpositionError(f"pushgateway: {url!r} is not a URL; use e.g. http://localhost:9091")
    try:
        push_to_gateway(url.strip(), job=job, registry=registry, timeout=timeout, grouping_key=grouping_key)
    except (URLError, OSError, ValueError, http.client.HTTPException) as exc:  # InvalidURL is an HTTPException
        reason = getattr(exc, "reason", None) or exc
        raise ExpositionError(f"pushgateway {url}: push failed: {reason}") from None


def check_url(url: str, name: str = "pushgateway") -> str:
    """``url`` if it looks like an http(s) URL with a host; ExpositionError otherwise. Checked when the
    flag is read, so a typo fails before the run, not after the data was written."""
    parsed = urllib.parse.urlsplit(url.strip()) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https", "") or not (parsed.netloc or parsed.path) \
            or any(c.isspace() for c in url.strip()):
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
