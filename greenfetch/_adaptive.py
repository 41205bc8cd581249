"""adaptive_batch: a concurrency limit that follows AWS's latency, and a send rate that follows its throttling.

The control law is ``_controller``'s (``Controller`` and its ``RateCap``: pure, with an injected clock;
the algorithm is described there). Here it is put to work, outermost last. Samples are HTTP attempts
(``_attempts``), never backoff sleeps; what an attempt *says* comes from the one classifier
(``_errors.classify``, see ``signal_of``): throttled (a throttling code or HTTP 429), dropped (a
timeout), or an answer (any other status, errors included; connection errors give no latency).
``HubLag`` measures this process's own scheduling delay, which the controller takes off the latency.

``Limiter``: one controller per scope (service, region, account) with a blocking slot count that
follows the limit and, under a rate cap, a pacer (one send at a time waits its turn, so a cut applies
to the very next send). ``Limits`` keeps the limiters; the engine makes one in ``Engine.__init__``
(``engine.limits``), so every batch and greenlet on one engine shares one view of an account's quota,
whatever ``processes`` a call asks for; it exports ``greenfetch_concurrency_limit{scope}``. ``Gate`` is
what one run passes to ``Engine.iter_results(gate=...)``: a slot per request, a sample per attempt.

What carries over, and when it resets: a scope's limit, baseline and rate cap live as long as the
engine, so the next batch starts where the last one ended (clamped to its min/max) and a short batch
does not pay the ramp again. They reset with a new engine, ``adaptive_batch(..., reset=True)`` (every
scope) or ``engine.limits.reset(scope)``. With ``processes=N`` each worker process has the limiters of
the scopes routed to it; the engine keeps its worker pool between calls, so they carry over there too,
and ``reset=True`` reaches them.

The trace: ``adaptive_batch`` returns an ``AdaptiveResults`` list whose ``.trace`` holds, per scope,
the ``TracePoint``s (time, limit, latency, throttles, samples, rate) of the windows closed during the
run; ``engine.limits.trace(scope)`` has the limiter's whole recent history (the last 10,000 windows).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ._attempts import Attempt
from ._config import ConfigError
from ._controller import Controller, Settings, TracePoint
from ._errors import classify
from ._metrics import Metrics
from ._models import Request, Result

__all__ = [
    "AdaptiveResults",
    "Controller",
    "Gate",
    "Limiter",
    "Limits",
    "Settings",
    "TracePoint",
    "open_gate",
]


def signal_of(error_code: str | None, http_status: int | None) -> tuple[bool, bool]:
    """(throttled, dropped) for one attempt, from the one classifier (``_errors.classify``):
    throttled = the server said "too fast" (a throttling code or HTTP 429): the send rate backs off;
    dropped = a transient failure that is a timeout: the concurrency backs off. Other errors say
    nothing about load (a 500 is not "too much"), and answers without an error are the fast path."""
    if error_code is None and (http_status is None or http_status < 400):
        return False, False
    found = classify(error_code, http_status=http_status)
    return found.throttle, found.timeout


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

    def __init__(
        self,
        scope: str,
        controller: Controller,
        on_limit: Callable[[str, float], None] | None = None,
        lag: HubLag | None = None,
    ):
        self.scope = scope
        self.controller = controller
        self.inflight = 0
        self.lag = lag
        self._on_limit = on_limit
        self._cond = threading.Condition()  # gevent-cooperative once patched
        self._pace = threading.Lock()  # one sender at a time waits out the rate cap; the rest queue here

    @property
    def limit(self) -> int:
        return max(1, int(self.controller.limit))

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        """Wait for the rate cap's turn (after a throttle), then hold one of ``limit`` slots while
        the request runs; yields the limit in force. Only one turn is reserved ahead at a time, so a
        rate cut applies to the very next send."""
        if self.controller.rate is not None:
            with self._pace:
                with self._cond:
                    wait = self.controller.reserve()
                if wait > 0:
                    time.sleep(wait)  # gevent's sleep once patched
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

    def observe(self, attempt: Attempt) -> None:
        """One HTTP attempt of a request in this scope ended."""
        throttled, dropped = signal_of(attempt.error_code, attempt.http_status)
        usable = attempt.http_status is not None or throttled or dropped
        with self._cond:
            before, exact = self.limit, self.controller.limit
            point = self.controller.sample(
                attempt.seconds if usable else None,
                throttled=throttled,
                dropped=dropped,
                inflight=self.inflight,
                client_delay=self.lag.value if self.lag else 0.0,
            )
            if self.limit > before:  # slow start grows per answer, not only when a window closes
                self._cond.notify(self.limit - before)
        if self._on_limit is not None and (point is not None or self.controller.limit != exact):
            self._on_limit(self.scope, self.controller.limit)


class Limits:
    """``engine.limits``: the limiters of one engine, by scope (service/region/account)."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        gevent: bool = False,
    ):
        self._metrics = metrics
        self._clock = clock
        self.lag = HubLag() if gevent else None
        self._lock = threading.Lock()
        self._by_scope: dict[str, Limiter] = {}
        self.settings = Settings()

    @staticmethod
    def scope_of(request: Request) -> str:
        """service/region/account: AWS quotas are per account and region, per service."""
        who = request.account_id or request.profile or "default"
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

    def reset(self, scope: str | None = None) -> None:
        """Forget what the limiters learned (limit, baseline, rate cap), for one scope or all: the
        next batch starts again from ``initial_concurrency``. Requests in flight finish first."""
        with self._lock:
            for name in [scope] if scope is not None else list(self._by_scope):
                limiter = self._by_scope.get(name)
                if limiter is not None:
                    fresh = Controller(self.settings, self._clock)
                    fresh.trace.extend(limiter.controller.trace)
                    limiter.controller = fresh
                    self._export(name, fresh.limit)

    def open(self, settings: Settings, *, reset: bool = False) -> Gate:
        """A gate for one run: every limiter takes ``settings`` (what it learned carries over, clamped),
        after forgetting everything with ``reset``."""
        self.configure(settings)
        if reset:
            self.reset()
        return Gate(self, settings, reset)

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
    """What ``Engine.iter_results(gate=...)`` calls: a slot per request, a sample per attempt. It
    carries the ``settings`` it was opened with, and ``reset`` (the run began by forgetting what the
    limiters learned), so worker processes open theirs the same way."""

    def __init__(self, limits: Limits, settings: Settings | None = None, reset: bool = False):
        self.limits = limits
        self.settings = settings or limits.settings
        self.reset = reset
        self.started = limits._clock()
        self.scopes: set[str] = set()

    def __call__(self, request: Request) -> contextlib.AbstractContextManager[int | None]:
        scope = Limits.scope_of(request)
        self.scopes.add(scope)
        slot = self.limits.limiter(scope).slot()
        if self.limits.lag is not None:
            self.limits.lag.ensure(self.limits.busy)
        return slot

    def attempt(self, request: Request, attempt: Attempt) -> None:
        self.limits.limiter(Limits.scope_of(request)).observe(attempt)

    def add_trace(self, traces: dict[str, list[TracePoint]]) -> None:
        """Windows closed elsewhere (a worker process owns these scopes) join this gate's trace."""
        for scope, points in traces.items():
            self.scopes.add(scope)
            self.limits.limiter(scope).controller.trace.extend(points)

    def trace(self) -> dict[str, list[TracePoint]]:
        """The windows each scope closed since this gate was made."""
        return {
            scope: [p for p in self.limits.trace(scope) if p.time >= self.started]
            for scope in sorted(self.scopes)
        }


class AdaptiveResults(list[Result]):
    """A list of Results (request order) that also carries the controller's ``trace`` per scope."""

    trace: dict[str, list[TracePoint]]


def open_gate(
    limits: Limits,
    initial_concurrency: Any = 5,
    target_latency: Any = 0.5,
    min_concurrency: Any = 1,
    max_concurrency: Any = 256,
    reset: Any = False,
) -> Gate:
    """A gate on ``limits`` for one run, from the user's numbers (a ConfigError names a bad one, before
    anything starts); with ``reset`` every scope first forgets what it learned."""
    settings = Settings.checked(initial_concurrency, target_latency, min_concurrency, max_concurrency)
    if not isinstance(reset, bool):
        raise ConfigError(f"reset: {reset!r} is not allowed; use True or False")
    return limits.open(settings, reset=reset)
