"""Metrics the engine owns (placeholder: the primitives issue replaces this with the full set)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.duration = Histogram("greenfetch_request_duration_seconds", "Request duration.",
                                  ["service", "operation", "outcome"], registry=self.registry, buckets=_BUCKETS)
        self.errors = Counter("greenfetch_request_errors_total", "Failed requests.",
                              ["service", "operation", "code"], registry=self.registry)
        self.inflight_gauge = Gauge("greenfetch_inflight_requests", "Requests in flight.", registry=self.registry)
        self._lock = threading.Lock()
        self._rows: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def inflight(self) -> Iterator[None]:
        self.inflight_gauge.inc()
        try:
            yield
        finally:
            self.inflight_gauge.dec()

    def attempt(self, request: Any, attempt: Any) -> None:
        pass

    def result(self, result: Any) -> None:
        req = result.request
        service = getattr(req, "service", None) or "invalid"
        operation = getattr(req, "operation", None) or "invalid"
        outcome = "success" if result.error is None else "error"
        self.duration.labels(service, operation, outcome).observe(result.duration_ms / 1000.0)
        if result.error is not None:
            self.errors.labels(service, operation, result.error_code or "Unknown").inc()
        with self._lock:
            self._rows.setdefault(f"{service}:{operation}", []).append(result.duration_ms / 1000.0)

    def perf_stats(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = {k: sorted(v) for k, v in self._rows.items()}
        out = []
        for op, xs in sorted(rows.items()):
            def q(p: float, xs: list[float] = xs) -> float:
                return xs[min(len(xs) - 1, int(p * len(xs)))]
            out.append({"operation": op, "count": len(xs), "errors": 0, "throttles": 0,
                        "avg_duration": sum(xs) / len(xs), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                        "max": xs[-1]})
        return out

    def reset(self) -> None:
        with self._lock:
            self._rows.clear()
