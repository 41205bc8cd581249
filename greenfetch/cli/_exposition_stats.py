"""``greenfetch stats`` from another process's metrics: perf-stats rows rebuilt from a Prometheus
text exposition (a ``--metrics-textfile`` or a ``/metrics`` page).

Percentiles come from the histogram buckets, interpolated as Prometheus's ``histogram_quantile``
does; ``max`` cannot be known from buckets and is None. So these p99s are bucket estimates, while
``perf_stats()`` in the running process reads its quantile sketch (1% relative error): the two can
differ for the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ExpositionError

__all__ = ["bucket_quantile", "perf_stats_from_text"]


@dataclass
class _Operation:
    """What the exposition says of one service:operation, summed over its label sets."""

    count: int = 0
    seconds: float = 0.0
    errors: int = 0
    throttles: int = 0
    buckets: dict[float, float] = field(default_factory=dict)

    def row(self, name: str) -> dict[str, Any]:
        cumulative = sorted(self.buckets.items())
        return {
            "operation": name,
            "count": self.count,
            "errors": self.errors,
            "throttles": self.throttles,
            "avg_duration": self.seconds / self.count if self.count else 0.0,
            "p50": bucket_quantile(0.5, cumulative),
            "p90": bucket_quantile(0.9, cumulative),
            "p99": bucket_quantile(0.99, cumulative),
            "max": None,
        }


def perf_stats_from_text(text: str) -> list[dict[str, Any]]:
    """perf_stats-shaped rows, one per service:operation; ExpositionError when ``text`` is not an exposition."""
    operations: dict[str, _Operation] = {}
    for name, labels, value in _samples(text):
        op = operations.setdefault(f"{labels.get('service', '')}:{labels.get('operation', '')}", _Operation())
        if name == "greenfetch_request_duration_seconds_count":
            op.count += int(value)
        elif name == "greenfetch_request_duration_seconds_sum":
            op.seconds += value
        elif name == "greenfetch_request_duration_seconds_bucket":
            bound = float(labels["le"])
            op.buckets[bound] = op.buckets.get(bound, 0.0) + value
        elif name == "greenfetch_request_errors_total":
            op.errors += int(value)
        elif name == "greenfetch_throttles_total":
            op.throttles += int(value)
    return [op.row(name) for name, op in sorted(operations.items())]


_WANTED = ("greenfetch_request_duration_seconds", "greenfetch_request_errors", "greenfetch_throttles")


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise ExpositionError(f"not a Prometheus text exposition: {exc}") from None
    return [
        (s.name, s.labels, s.value) for family in families if family.name in _WANTED for s in family.samples
    ]


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
