"""The metrics one engine owns: Prometheus series (docs/contract.md, section 6) and the perf-stats table.

Everything lives in the engine's own ``CollectorRegistry`` (never prometheus_client's global one), so
two engines, or two tests, never collide. Labels are bounded on purpose: service, operation, outcome,
code, scope, each a short name; never params, ids, ARNs with secrets, or anything a user can vary
without limit. Past ``MAX_OPERATIONS`` distinct service:operation pairs, and for requests that could
not even be built (an unknown service is whatever the user typed), the labels become ``other`` /
``invalid``; past ``MAX_CODES`` distinct error codes outside the classifier's tables, ``code`` becomes
``other``.

``perf_stats()`` reads the same results through a bounded quantile sketch per operation, so its
percentiles cost the same memory after a million requests as after ten. ``reset()`` clears that table
only: Prometheus counters stay monotonic, as scrapers and ``rate()`` expect.
"""

from __future__ import annotations

import re
import threading
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from ._errors import UNNAMED_CODES, classify, is_throttle
from ._sketch import QuantileSketch

__all__ = ["BUCKETS", "MAX_CODES", "MAX_OPERATIONS", "Metrics"]

# AWS latencies: 5 ms (a warm regional call) to 30 s (a long paginated scan or a timeout).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MAX_OPERATIONS = 1000
MAX_CODES = 100
"""Distinct error codes outside the classifier's tables kept as ``code`` label values; past it they
are ``other``. The server chooses these codes: a broken proxy or a hostile endpoint can send a new
one per request, and each would be a new series forever in a long-lived process."""
_BATCH = 256  # queued first-attempt successes applied at once (``Metrics.result``)
_TABLED = frozenset({"throttled", "transient", "denied", "expired", "unavailable", "quota", "invalid"})
_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")


@dataclass
class _Row:
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    errors: int = 0
    throttles: int = 0


class _Success:
    """What a first-attempt success of one service:operation updates, looked up once: the histogram's
    child for (service, operation, "success"), its buckets, and the name of its perf row."""

    __slots__ = ("child", "bounds", "buckets", "row")

    def __init__(self, child: Any, row: str) -> None:
        self.child = child
        self.bounds = child._upper_bounds  # prometheus_client's, ending in +Inf
        self.buckets = child._buckets
        self.row = row


class _Inflight:
    """A reusable ``with`` block that counts requests in flight. A deque's append and pop are atomic
    in CPython, so threads need no lock (``+= 1`` would lose updates and leave the gauge skewed).
    The engine's common path appends to ``calls`` and pops from it itself (two method calls less)."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: deque[None] = deque()

    @property
    def now(self) -> int:
        return len(self.calls)

    def __enter__(self) -> None:
        self.calls.append(None)

    def __exit__(self, *exc: Any) -> None:
        self.calls.pop()


class LimitSource(Protocol):
    """What ``Metrics.watch_limits`` reads when scraped (``_adaptive.Limits``)."""

    def limit_values(self) -> Iterable[tuple[str, float]]: ...


class _LimitCollector:
    """``greenfetch_concurrency_limit{scope}``, read from the limiters when scraped (or a delta taken).

    A labelled ``Gauge`` child per scope cost more than the rest of a one-call scope's limiter (an
    inventory makes thousands: ``labels()`` built a child with its own lock, 60k instructions, and each
    export while slow start grew a limit took 11k more); this reads the live limits instead, so a
    limiter costs the metrics nothing until a scrape. The series is the same: name, help, type, the
    ``scope`` label (bounded as before: past 128 characters or outside the plain-name pattern it is
    ``other``, the last such scope's limit) and the limit. Sources are held weakly: a ``Limits`` that
    is gone takes its scopes with it. ``values`` holds limits set directly (``set_limit``), and
    ``children`` each worker process's limits as its last delta reported them (``merge_delta``: the
    process that owns a scope runs it, so its value wins over a limiter this process made only to hold
    that scope's trace; a scope the child's engine has since forgotten leaves with its next delta)."""

    NAME = "greenfetch_concurrency_limit"
    HELP = "Adaptive concurrency limit per scope."

    def __init__(self) -> None:
        self.sources: weakref.WeakSet[Any] = weakref.WeakSet()
        self.values: dict[str, float] = {}  # label -> limit
        self.children: dict[Any, dict[str, float]] = {}  # a worker process's key -> its label -> limit

    def current(self) -> dict[str, float]:
        """Label -> limit, every source's scopes in the order they were made, then ``values``, then
        each worker process's."""
        out: dict[str, float] = {}
        for source in list(self.sources):
            for scope, limit in source.limit_values():
                out[_bounded(scope, 128)] = limit
        out.update(self.values)
        for limits in list(self.children.values()):
            out.update(limits)
        return out

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["scope"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["scope"])
        for label, limit in self.current().items():
            family.add_metric([label], limit)
        yield family


class Metrics:
    """Prometheus series plus the perf-stats table, fed by the engine per attempt and per result."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.duration = Histogram(
            "greenfetch_request_duration_seconds",
            "Time from dispatch to result per request, retries included.",
            ["service", "operation", "outcome"],
            registry=r,
            buckets=BUCKETS,
        )
        self.errors = Counter(
            "greenfetch_request_errors_total",
            "Requests whose result is an error.",
            ["service", "operation", "code"],
            registry=r,
        )
        self.throttles = Counter(
            "greenfetch_throttles_total", "HTTP attempts AWS throttled.", ["service", "operation"], registry=r
        )
        self.retries = Counter(
            "greenfetch_retries_total",
            "HTTP attempts beyond the first of each request.",
            ["service", "operation"],
            registry=r,
        )
        self.inflight_gauge = Gauge(
            "greenfetch_inflight_requests", "Requests being executed now.", registry=r
        )
        self.inflight_gauge.set_function(lambda: self._inflight.now + self._children_inflight)
        self.limit_collector = _LimitCollector()  # greenfetch_concurrency_limit{scope}
        r.register(self.limit_collector)
        self.dedupe_total = Counter(
            "greenfetch_dedupe_total", "dedupe_request calls by outcome.", ["outcome"], registry=r
        )
        self._dedupe_outcomes: dict[str, Any] = {}  # outcome -> its child of dedupe_total (three at most)
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}
        self._names: set[tuple[str, str]] = set()
        self._codes: set[str] = set()
        self._successes: dict[tuple[str, str], _Success] = {}
        self._pending: deque[tuple[_Success, float]] = deque()  # first-attempt successes not yet applied
        self._histogram_collect = self.duration.collect
        self.duration.collect = self._collect_duration  # type: ignore[method-assign]
        self._inflight = _Inflight()
        self._children_inflight = 0.0

    # -- what the engine calls ---------------------------------------------------------------

    def inflight(self) -> _Inflight:
        """``with metrics.inflight():`` around each call. A plain counter the gauge reads when scraped:
        two locked gauge updates and a generator per call showed in the engine's profile."""
        return self._inflight

    def attempt(self, request: Any, attempt: Any) -> None:
        """One HTTP attempt ended; throttles are counted here, per attempt, retried or not."""
        if is_throttle(attempt.error_code, attempt.http_status):
            service, operation = self._labels(request, None)
            self.throttles.labels(service, operation).inc()
            with self._lock:
                self._row(service, operation).throttles += 1

    def result(self, result: Any) -> None:
        """One request finished (success or failure).

        A first-attempt success of a service:operation seen before (the common case) is queued: one
        dict lookup and one deque append, no lock (both are atomic in CPython, so threads need none).
        The queue is applied in order (``_drain``: its histogram buckets and sum, its perf row) before
        anything reads the series or the table, before any other result is recorded, and every
        ``_BATCH`` results; each value is added as ``Histogram.observe`` and ``QuantileSketch.add``
        add it, in the same order, so what a scrape or ``perf_stats`` shows is unchanged."""
        if result.error is None and result.attempts <= 1:
            request = result.request
            fast = self._successes.get((request.service, request.operation))
            if fast is not None:
                pending = self._pending
                pending.append((fast, result.duration_ms / 1000.0))
                if len(pending) >= _BATCH:
                    self._drain()
                return
        self._result(result, result.duration_ms / 1000.0)

    def _drain(self) -> None:
        """Apply the queued first-attempt successes, oldest first (see ``result``)."""
        pending = self._pending
        if not pending:
            return
        with self._lock:
            taken: list[tuple[_Success, float]] = []
            take = pending.popleft
            try:
                while True:
                    taken.append(take())
            except IndexError:
                pass
            if not taken:
                return
            # grouped by histogram child, which is one per label set (two service:operation pairs
            # whose labels are both ``other`` share one, and its perf row): each group in arrival order
            by_series: dict[Any, tuple[_Success, list[float]]] = {}
            for fast, seconds in taken:
                group = by_series.get(fast.child)
                if group is None:
                    group = by_series[fast.child] = (fast, [])
                group[1].append(seconds)
            rows = self._rows
            for fast, values in by_series.values():
                row = rows.get(fast.row)
                if row is None:
                    row = rows[fast.row] = _Row()
                row.sketch.add_many(values)
                counts = [0] * len(fast.bounds)
                bounds = fast.bounds
                for seconds in values:
                    # Histogram.observe: the first bucket whose bound is at least the value (none for NaN)
                    position = bisect_left(bounds, seconds)
                    if position < len(bounds) and seconds <= bounds[position]:
                        counts[position] += 1
                total = fast.child._sum
                with total._lock:  # the sum as observe adds it: one value at a time, in order
                    value = total._value
                    for seconds in values:
                        value += seconds
                    total._value = value
                for position, count in enumerate(counts):
                    if count:
                        fast.buckets[position].inc(count)

    def _result(self, result: Any, seconds: float) -> None:
        self._drain()  # the queued results first, so each series sees its values in order
        service, operation = self._labels(result.request, result.error_code)
        outcome = "success" if result.error is None else "error"
        duration = self.duration.labels(service, operation, outcome)
        duration.observe(seconds)
        if result.error is not None:
            self.errors.labels(service, operation, self._code(result.error_code or "Unknown")).inc()
        if result.attempts > 1:
            self.retries.labels(service, operation).inc(result.attempts - 1)
        with self._lock:
            row = self._row(service, operation)
            row.sketch.add(seconds)
            row.errors += result.error is not None
            if outcome == "success" and len(self._successes) < MAX_OPERATIONS:
                request = result.request  # keyed by its own fields, whatever labels they were given
                self._successes[(request.service, request.operation)] = _Success(
                    duration, f"{service}:{operation}"
                )

    def _collect_duration(self) -> Any:
        """The histogram's ``collect`` (what a scrape calls), with the queue applied first."""
        self._drain()
        return self._histogram_collect()

    def dedupe(self, outcome: str) -> None:
        # each outcome's child found once (``labels`` validates and locks: ~15k instructions a call);
        # nothing removes a label of this counter, so a child found stays the one the scrape reads
        child = self._dedupe_outcomes.get(outcome)
        if child is None:
            child = self._dedupe_outcomes[outcome] = self.dedupe_total.labels(outcome)
        child.inc()

    def watch_limits(self, source: LimitSource) -> None:
        """Export ``source``'s limits (``limit_values()``: scope, limit) as
        ``greenfetch_concurrency_limit{scope}``, read when scraped; held weakly."""
        self.limit_collector.sources.add(source)

    def set_limit(self, scope: str, limit: float) -> None:
        """Export a scope's limit that no watched source holds (see ``_LimitCollector``)."""
        self.limit_collector.values[_bounded(scope, 128)] = limit

    # -- what users read ---------------------------------------------------------------------

    def perf_stats(self) -> list[dict[str, Any]]:
        """Contract section 3: one row per service:operation, durations in seconds."""
        self._drain()
        with self._lock:
            rows = sorted(self._rows.items())
            return [
                {
                    "operation": name,
                    "count": row.sketch.count,
                    "errors": row.errors,
                    "throttles": row.throttles,
                    "avg_duration": row.sketch.mean,
                    "p50": row.sketch.quantile(0.5),
                    "p90": row.sketch.quantile(0.9),
                    "p99": row.sketch.quantile(0.99),
                    "max": row.sketch.max if row.sketch.count else 0.0,
                }
                for name, row in rows
            ]

    def reset(self) -> None:
        """Clear the perf-stats table (Prometheus counters stay monotonic by design)."""
        self._drain()
        with self._lock:
            self._rows.clear()

    # -- across processes (``processes=N``: children send deltas, the parent merges them) ---------

    def take_delta(self) -> dict[str, Any]:
        """What changed since the last call: counter increments and histogram bucket counts by label
        set, the perf rows (their sketches move out, so each is sent once), and the gauges as they
        stand. Counters, buckets and sketches merge exactly; gauges are summed (in flight) or owned
        (a scope's limit lives in the one process that owns the scope)."""
        self._drain()
        with self._lock:
            rows, self._rows = self._rows, {}  # a sample queued after this lands in the new table
        now = _counts(self)
        sent = getattr(self, "_sent", {})
        self._sent = now
        return {
            "counts": {k: v - sent.get(k, 0.0) for k, v in now.items() if v != sent.get(k, 0.0)},
            "rows": {k: (r.sketch, r.errors, r.throttles) for k, r in rows.items()},
            "inflight": self._inflight.now,
            "limits": {(label,): limit for label, limit in self.limit_collector.current().items()},
        }

    def merge_delta(self, delta: dict[str, Any], source: Any = None) -> None:
        """Add a child's ``take_delta()`` to this registry and table; ``source`` keys its in-flight gauge."""
        self._drain()
        metrics: dict[str, Any] = {
            m._name: m for m in (self.duration, self.errors, self.throttles, self.retries, self.dedupe_total)
        }
        for (name, labels), value in delta["counts"].items():
            metric = metrics[name]
            if name == self.duration._name:
                child = metric.labels(*labels[:-1])
                if labels[-1] == "sum":
                    child._sum.inc(value)
                else:
                    child._buckets[labels[-1]].inc(value)
            elif name == self.errors._name:  # each child bounds its own codes: bound the union too
                metric.labels(labels[0], labels[1], self._code(labels[2])).inc(value)
            else:
                metric.labels(*labels).inc(value)
        with self._lock:
            for key, (sketch, errors, throttles) in delta["rows"].items():
                row = self._rows.get(key) or self._rows.setdefault(key, _Row())
                row.sketch.merge(sketch)
                row.errors += errors
                row.throttles += throttles
        # the child's limits as they stand (not added to what it sent before: its engine forgets scopes)
        self.limit_collector.children[source] = {scope: value for (scope,), value in delta["limits"].items()}
        children = getattr(self, "_child_inflight", {})
        children[source] = delta["inflight"]
        self._child_inflight = children
        self._children_inflight = sum(children.values())

    # -- labels ------------------------------------------------------------------------------

    def _row(self, service: str, operation: str) -> _Row:
        key = f"{service}:{operation}"
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = _Row()
        return row

    def _code(self, code: str) -> str:
        """The ``code`` label: a known code as is; others as is while fewer than MAX_CODES were seen."""
        value = _bounded(code)
        if value == "other" or value in self._codes or _known_code(value):
            return value
        with self._lock:
            if len(self._codes) >= MAX_CODES:
                return "other"
            self._codes.add(value)
        return value

    def _labels(self, request: Any, error_code: str | None) -> tuple[str, str]:
        service = getattr(request, "service", None)
        operation = getattr(request, "operation", None)
        if error_code in UNNAMED_CODES or not isinstance(service, str) or not isinstance(operation, str):
            return "invalid", "invalid"
        pair = (_bounded(service), _bounded(operation))
        if pair not in self._names:
            if len(self._names) >= MAX_OPERATIONS:
                return "other", "other"
            self._names.add(pair)
        return pair


def _known_code(code: str) -> bool:
    """A code the classifier names in its tables (throttling, transient, denied, ...): a fixed set."""
    return classify(code).status in _TABLED


def _bounded(value: str, length: int = 64) -> str:
    """A label value: a short plain name, else ``other`` (never free text from a message)."""
    return value if len(value) <= length and _NAME.match(value) else "other"


def _counts(metrics: Metrics) -> dict[tuple[str, tuple[Any, ...]], float]:
    """Every counter value and histogram bucket (non-cumulative, by bucket position) and sum, keyed by
    (metric name, label values): what ``take_delta`` diffs."""
    out: dict[tuple[str, tuple[Any, ...]], float] = {}
    counters: tuple[Any, ...] = (metrics.errors, metrics.throttles, metrics.retries, metrics.dedupe_total)
    for metric in counters:
        for labels, child in list(metric._metrics.items()):
            out[(metric._name, labels)] = child._value.get()
    histogram: Any = metrics.duration
    for labels, child in list(histogram._metrics.items()):
        out[(histogram._name, (*labels, "sum"))] = child._sum.get()
        for position, bucket in enumerate(child._buckets):
            out[(histogram._name, (*labels, position))] = bucket.get()
    return out
