"""adaptive_batch: a concurrency limit that follows AWS's latency and throttling.

Three parts, outermost last:

``Controller`` (pure, injectable clock) turns per-attempt samples into a limit, once per update
window (at least 2x the no-load latency and 10 samples, at most 1 s; a drop closes the window early):
- *drop* (a throttling code, HTTP 429, or a timeout) in the window: ``limit *= 0.85``, at most once per
  window, and drops from attempts sent before the last cut are ignored (they saw the old limit);
- *queueing*: two windows in a row whose latency (25th percentile) is above ``min(target_latency,
  1.2 x baseline)`` (baseline = the lowest window latency seen; re-measured after 5 windows at the
  floor that still queue) gives ``limit *= max(0.5, threshold / latency)``; one such window alone
  only stops growth, and a rise this process's own hub delay explains (``HubLag``: CPU-bound or
  starved by neighbours) is not a signal at all;
- otherwise, if the limit is in use (in flight >= half of it): ``x1.5`` until the first congestion
  signal (slow start: 5 -> 38 in 5 windows), then ``+1`` per window (after a throttle: CUBIC-like,
  back to the throttling point fast, then past it slowly, see ``_grown``).
A window's latency comes only from attempts sent after it opened (so it measures its own limit, and
lasts at least one round trip); drops from attempts sent before the last cut are ignored.
Always clamped to [min_concurrency, max_concurrency]. Backoff sleeps never count: samples are HTTP
attempts (``_attempts``), not calls. Errors that say nothing about load (4xx other than throttling)
still give a latency sample; connection errors give none.

``Limiter``: one controller per scope (service, region, account) with a blocking slot count that
follows the limit. ``Limits`` (``engine.limits``) keeps the limiters, so every batch and greenlet on
one engine shares one view of an account's quota, and exports ``greenfetch_concurrency_limit{scope}``.

The trace: ``adaptive_batch`` returns an ``AdaptiveResults`` list whose ``.trace`` holds, per scope,
the ``TracePoint``s (time, limit, latency, throttles, samples) of the windows closed during the run;
``engine.limits.trace(scope)`` has the limiter's whole recent history (the last 10,000 windows).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._controller import Controller, Settings, TracePoint
from ._metrics import is_throttle
from ._models import Request, Result

__all__ = ["AdaptiveResults", "Controller", "Limiter", "Limits", "Settings", "TracePoint", "adaptive_batch"]

_TIMEOUTS = frozenset({"ReadTimeoutError", "ConnectTimeoutError", "RequestTimeout", "RequestTimeoutException"})


def is_drop(error_code: str | None, http_status: int | None) -> bool:
    """An attempt that says "too much": throttled (codes or 429) or timed out."""
    return is_throttle(error_code, http_status) or error_code in _TIMEOUTS


class HubLag:
    """How late a 5 ms timer fires on the gevent hub (smoothed): this process's own scheduling delay.

    When the process is CPU-bound, or starved by its neighbours, every response waits for its
    greenlet to run, so measured latency rises although the server is no slower. The controller
    discounts it (``client_delay``) so it does not cut the limit for its own busyness (the issue's
    fast-server case). The watcher runs only while requests are in flight.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.value = 0.0
        self._running = False

    def ensure(self, busy: Callable[[], bool]) -> None:
        if not self._running:
            import gevent

            self._running = True
            gevent.spawn(self._watch, busy)

    def _watch(self, busy: Callable[[], bool]) -> None:
        import gevent

        try:
            while busy():
                began = time.perf_counter()
                gevent.sleep(self.interval)
                late = max(0.0, time.perf_counter() - began - self.interval)
                self.value += 0.3 * (late - self.value)
        finally:
            self._running, self.value = False, 0.0


class Limiter:
    """A slot count that follows one controller's limit; shared by every greenlet of the scope."""

    def __init__(self, scope: str, controller: Controller, on_limit: Callable[[str, float], None] | None = None,
                 lag: HubLag | None = None):
        self.scope = scope
        self.controller = controller
        self.inflight = 0
        self.lag = lag
        self._on_limit = on_limit
        self._cond = threading.Condition()  # gevent-cooperative once patched

    @property
    def limit(self) -> int:
        return max(1, int(self.controller.limit))

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        """Hold one of ``limit`` slots while the request runs; yields the limit in force."""
        with self._cond:
            self._cond.wait_for(lambda: self.inflight < self.limit)
            self.inflight += 1
            limit = self.limit
            self.controller.note_inflight(self.inflight)
        try:
            yield limit
        finally:
            with self._cond:
                self.inflight -= 1
                self._cond.notify()

    def observe(self, attempt: Any) -> None:
        """One HTTP attempt of a request in this scope ended."""
        dropped = is_drop(attempt.error_code, attempt.http_status)
        usable = attempt.http_status is not None or dropped
        with self._cond:
            before = self.limit
            point = self.controller.sample(attempt.seconds if usable else None, dropped=dropped,
                                           inflight=self.inflight, client_delay=self.lag.value if self.lag else 0.0)
            if point is not None and self.limit > before:
                self._cond.notify(self.limit - before)
        if point is not None and self._on_limit is not None:
            self._on_limit(self.scope, point.limit)


class Limits:
    """``engine.limits``: the limiters of one engine, by scope (service/region/account)."""

    def __init__(self, metrics: Any = None, clock: Callable[[], float] = time.monotonic, gevent: bool = False):
        self._metrics = metrics
        self._clock = clock
        self.lag = HubLag() if gevent else None
        self._lock = threading.Lock()
        self._by_scope: dict[str, Limiter] = {}
        self.settings = Settings()

    @staticmethod
    def scope_of(request: Request) -> str:
        """service/region/account: AWS quotas are per account and region, per service."""
        who = request.account or (request.role.split(":")[4] if request.role and request.role.count(":") >= 4
                                  else None) or request.profile or "default"
        return f"{request.service}/{request.region or 'default'}/{who}"

    def configure(self, settings: Settings) -> None:
        with self._lock:
            self.settings = settings
            for limiter in self._by_scope.values():
                limiter.controller.reconfigure(settings)

    def limiter(self, scope: str) -> Limiter:
        with self._lock:
            found = self._by_scope.get(scope)
            if found is None:
                found = Limiter(scope, Controller(self.settings, self._clock), self._export, self.lag)
                self._by_scope[scope] = found
                self._export(scope, found.controller.limit)
            return found

    def scopes(self) -> list[str]:
        with self._lock:
            return sorted(self._by_scope)

    def busy(self) -> bool:
        return any(limiter.inflight for limiter in list(self._by_scope.values()))

    def trace(self, scope: str) -> list[TracePoint]:
        limiter = self._by_scope.get(scope)
        return list(limiter.controller.trace) if limiter else []

    def _export(self, scope: str, limit: float) -> None:
        if self._metrics is not None:
            self._metrics.set_limit(scope, limit)


class Gate:
    """What ``Engine.iter_results(gate=...)`` calls: a slot per request, a sample per attempt."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.started = limits._clock()
        self.scopes: set[str] = set()

    def __call__(self, request: Request) -> contextlib.AbstractContextManager[int | None]:
        scope = Limits.scope_of(request)
        self.scopes.add(scope)
        slot = self.limits.limiter(scope).slot()
        if self.limits.lag is not None:
            self.limits.lag.ensure(self.limits.busy)
        return slot

    def attempt(self, request: Request, attempt: Any) -> None:
        self.limits.limiter(Limits.scope_of(request)).observe(attempt)

    def trace(self) -> dict[str, list[TracePoint]]:
        """The windows each scope closed since this gate was made."""
        return {scope: [p for p in self.limits.trace(scope) if p.time >= self.started] for scope in sorted(self.scopes)}


class AdaptiveResults(list[Result]):
    """A list of Results (request order) that also carries the controller's ``trace`` per scope."""

    trace: dict[str, list[TracePoint]]


def limits_of(engine: Any) -> Limits:
    """The engine's shared Limits, created on first use (stored as ``engine.limits``)."""
    found = getattr(engine, "limits", None)
    if not isinstance(found, Limits):
        backend = getattr(getattr(engine, "backend", None), "name", None)
        found = Limits(getattr(engine, "metrics", None), gevent=backend == "gevent")
        engine.limits = found
    return found


def adaptive_batch(engine: Any, requests: Iterable[Any], initial_concurrency: Any = 5, target_latency: Any = 0.5,
                   min_concurrency: Any = 1, max_concurrency: Any = 256, fail_fast: bool = False,
                   **options: Any) -> AdaptiveResults:
    """Like ``batch_requests`` with the concurrency limit set by the engine's adaptive limiters.

    ``max_concurrency`` bounds the requests pulled from ``requests`` at once; the limiter of each
    request's scope decides how many of those run. Raises ConfigError for bad numbers before starting.
    """
    settings = Settings.checked(initial_concurrency, target_latency, min_concurrency, max_concurrency)
    limits = limits_of(engine)
    limits.configure(settings)
    gate = Gate(limits)
    results = AdaptiveResults()
    results.trace = {}
    try:
        results.extend(engine.batch_requests(requests, settings.max, fail_fast=fail_fast, gate=gate, **options))
    finally:
        results.trace = gate.trace()
    return results
