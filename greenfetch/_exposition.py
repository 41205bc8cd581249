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

__all__ = ["ExpositionError", "bucket_quantile", "check_url", "perf_stats_from_text", "push", "render", "serve", "write_textfile"]


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



def perf_stats_from_text(text: str) -> list[dict[str, Any]]:
    """perf_stats-shaped rows rebuilt from an exposition (a textfile or a /metrics page), so another
    process can show a run's table. Percentiles come from the histogram buckets, interpolated the way
    Prometheus's ``histogram_quantile`` does; ``max`` is unknown from buckets and given as None."""
    from prometheus_client.parser import text_string_to_metric_families

    rows: dict[str, dict[str, Any]] = {}
    buckets: dict[str, dict[float, float]] = {}

    def row(labels: dict[str, str]) -> dict[str, Any]:
        name = f"{labels.get('service', '')}:{labels.get('operation', '')}"
        return rows.setdefault(name, {"operation": name, "count": 0, "errors": 0, "throttles": 0, "_sum": 0.0})

    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise ExpositionError(f"not a Prometheus text exposition: {exc}") from None
    for family in families:
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "greenfetch_request_duration_seconds_count":
                row(labels)["count"] += int(value)
            elif sample.name == "greenfetch_request_duration_seconds_sum":
                row(labels)["_sum"] += value
            elif sample.name == "greenfetch_request_duration_seconds_bucket":
                per = buckets.setdefault(row(labels)["operation"], {})
                bound = float(labels["le"])
                per[bound] = per.get(bound, 0.0) + value
            elif sample.name == "greenfetch_request_errors_total":
                row(labels)["errors"] += int(value)
            elif sample.name == "greenfetch_throttles_total":
                row(labels)["throttles"] += int(value)
    out = []
    for name, r in sorted(rows.items()):
        cumulative = sorted(buckets.get(name, {}).items())
        total = r.pop("_sum")
        out.append({**r, "avg_duration": total / r["count"] if r["count"] else 0.0,
                    "p50": bucket_quantile(0.5, cumulative), "p90": bucket_quantile(0.9, cumulative),
                    "p99": bucket_quantile(0.99, cumulative), "max": None})
    return out


def bucket_quantile(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """histogram_quantile over (upper bound, cumulative count) pairs sorted by bound."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = bound, count
    return lower
