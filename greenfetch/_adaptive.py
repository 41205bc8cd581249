"""adaptive_batch: a concurrency limit that follows AWS's latency and throttling.

Three parts, outermost last:

``Controller`` (pure, injectable clock) turns per-attempt samples into a limit, once per update
window (at least 2x the no-load latency and 10 samples, at most 1 s; a drop closes the window early):
- *drop* (a throttling code, HTTP 429, or a timeout) in the window: ``limit *= 0.85``, at most once per
  window, and drops from attempts sent before the last cut are ignored (they saw the old limit);
- *queueing*: two windows in a row whose latency (10th percentile) is above ``min(target_latency,
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
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ._config import ConfigError, parse_duration
from ._metrics import is_throttle
from ._models import Request, Result

__all__ = ["AdaptiveResults", "Controller", "Limiter", "Limits", "Settings", "TracePoint", "adaptive_batch"]

_TIMEOUTS = frozenset({"ReadTimeoutError", "ConnectTimeoutError", "RequestTimeout", "RequestTimeoutException"})


@dataclass(frozen=True)
class Settings:
    """The knobs; ``Settings.checked`` turns user input into these or a ConfigError naming the value."""

    initial: int = 5
    target_latency: float = 0.5
    min: int = 1
    max: int = 256
    tolerance: float = 1.2
    backoff: float = 0.85
    growth: float = 1.5
    min_window: float = 0.02
    max_window: float = 1.0
    min_samples: int = 10
    quota_probe: float = 0.1  # growth per window near the last throttle point (see Controller._grown)

    @classmethod
    def checked(cls, initial_concurrency: Any = 5, target_latency: Any = 0.5, min_concurrency: Any = 1,
                max_concurrency: Any = 256) -> Settings:
        lo = _whole(min_concurrency, "min_concurrency")
        hi = _whole(max_concurrency, "max_concurrency")
        start = _whole(initial_concurrency, "initial_concurrency")
        if lo > hi:
            raise ConfigError(f"min_concurrency: {lo} is above max_concurrency {hi}; use min <= max")
        if not lo <= start <= hi:
            raise ConfigError(f"initial_concurrency: {start} is outside [{lo}, {hi}]; use a value between "
                              "min_concurrency and max_concurrency")
        target = parse_duration(target_latency, "target_latency")
        if not target > 0 or math.isinf(target):
            raise ConfigError(f"target_latency: {target_latency!r} must be a positive duration (e.g. 500ms or 0.5)")
        return cls(initial=start, target_latency=target, min=lo, max=hi)


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: {value!r} is not allowed; use a whole number of 1 or more")
    return value


@dataclass(frozen=True)
class TracePoint:
    """One closed update window: when, the limit it set, its latency (10th percentile of the
    attempts, seconds), throttled attempts, latency samples."""

    time: float
    limit: float
    latency: float | None
    throttles: int
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "limit": self.limit, "latency": self.latency, "throttles": self.throttles,
                "samples": self.samples}


class Controller:
    """Per-attempt samples in, a concurrency limit out. Pure: no I/O, time only from ``clock``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic, history: int = 10_000):
        self.settings = settings
        self.clock = clock
        self.limit = float(settings.initial)
        self.trace: deque[TracePoint] = deque(maxlen=history)
        self._baseline: float | None = None
        self._at_floor = 0
        self._growth = "slow-start"
        self._quota = 0.0
        self._last_cut = -math.inf
        self._previous: float | None = None
        self._start, self._count, self._drops, self._max_inflight = 0.0, 0, 0, 0
        self._samples: list[float] = []
        self._delay, self._delays = 0.0, 0
        self._open_window(clock())

    @property
    def baseline(self) -> float | None:
        """The no-load latency estimate: the lowest window latency seen (re-measured, see ``_remeasure``)."""
        return self._baseline

    def reconfigure(self, settings: Settings) -> None:
        """New bounds and target for a new batch; the learned limit carries over (clamped)."""
        self.settings = settings
        self.limit = min(max(self.limit, settings.min), settings.max)

    def note_inflight(self, inflight: int) -> None:
        self._max_inflight = max(self._max_inflight, inflight)

    def sample(self, latency: float | None, *, dropped: bool = False, inflight: int = 0,
               client_delay: float = 0.0) -> TracePoint | None:
        """One finished attempt (``latency`` None = no usable latency; ``client_delay`` = this
        process's current scheduling delay, see HubLag); returns a TracePoint when a window closed."""
        now = self.clock()
        self._delay += client_delay
        self._delays += 1
        self.note_inflight(inflight)
        if latency is not None and now - latency < self._last_cut:
            return None  # sent before the last cut: it measured the old limit, not the new one
        if dropped:
            self._drops += 1
            return self._close(now)
        if latency is not None and latency > 1e-4 and now - latency >= self._start:
            self._samples.append(latency)  # only attempts sent in this window measure its limit
            self._count += 1
        if self._window_due(now):
            return self._close(now)
        return None

    def _window_due(self, now: float) -> bool:
        s, elapsed = self.settings, now - self._start
        length = max(s.min_window, 2 * (self.baseline or 0.0))
        if elapsed >= s.max_window and self._count:
            return True
        return elapsed >= min(length, s.max_window) and self._count >= s.min_samples

    def _close(self, now: float) -> TracePoint:
        s = self.settings
        latency = _low_percentile(self._samples) if self._samples else None
        if latency is not None and (self._baseline is None or latency < self._baseline):
            self._baseline = latency  # from raw latency: a discounted one could undercut the true floor
        server = None if self._own_delay(latency) else latency  # what the server's answer times say
        threshold, sustained = self._threshold(), self._sustained(server)
        if self._drops:
            self._quota = self.limit  # where the quota was hit (the cut comes next)
            self._growth, self._last_cut = "throttled", now
            self.limit *= s.backoff
        elif sustained is not None and sustained > threshold:
            self.limit *= max(0.5, threshold / sustained)
            self._growth, self._last_cut = "queueing", now
        elif server is not None and server > threshold:
            pass  # one slow window: hold, and let the next one confirm or clear it
        elif self._max_inflight * 2 >= self.limit:
            self.limit = self._grown(self.limit)
        self.limit = min(max(self.limit, s.min), s.max)
        self._remeasure(latency)
        point = TracePoint(now, self.limit, latency, self._drops, self._count)
        self.trace.append(point)
        self._open_window(now)
        return point

    def _own_delay(self, latency: float | None) -> bool:
        """Does this process's own hub delay (HubLag) account for at least half of the rise over
        the baseline? Then the rise is mostly ours (CPU-bound, or starved by neighbours): cutting
        would only throttle ourselves (the common case of a busy gevent client; AWS says "too much"
        with throttles), so the window counts as one without a signal."""
        if latency is None or self._baseline is None or not self._delays:
            return False
        rise = latency - self._baseline
        return rise > 0 and self._delay / self._delays >= 0.5 * rise

    def _sustained(self, latency: float | None) -> float | None:
        """The lower of this window's and the previous window's latency: queueing at the server
        lasts, while a pause of this process (CPU starvation, a GC) delays one window and is gone,
        so one slow window alone never cuts the limit."""
        previous, self._previous = self._previous, latency
        if latency is None or previous is None:
            return None
        return min(latency, previous)

    def _grown(self, limit: float) -> float:
        """Slow start until the first signal, then +1 per window: past a knee throughput *falls*
        (latency * (n/C)^2 servers), so probe gently. After a throttle, every probe past the quota
        costs throttled attempts: return quickly to 30% of the gap per window, then probe by 0.1
        plus 10% of the distance past it (a quota that was raised is found again in ~30 windows)."""
        if self._growth == "slow-start":
            return limit * self.settings.growth
        if self._growth == "throttled":  # CUBIC-like: quickly back to where the quota bit, then
            gap = self._quota - limit  # probe past it slowly, faster the longer it holds
            return limit + (max(self.settings.quota_probe, 0.3 * gap) if gap > 0
                            else self.settings.quota_probe * (1.0 - gap))
        return limit + 1.0

    def _remeasure(self, latency: float | None) -> None:
        """Five windows at the floor and still "queueing": the service got slower for good (not
        our load), so the current latency becomes the new baseline (Envoy re-measures alike) and the
        limit slow-starts again from the floor.
        Without this a baseline that only ever falls would pin the limit at the floor."""
        queueing = latency is not None and latency > self._threshold()
        self._at_floor = self._at_floor + 1 if queueing and self.limit <= self.settings.min else 0
        if self._at_floor >= 5:
            self._baseline, self._at_floor, self._growth = latency, 0, "slow-start"

    def _threshold(self) -> float:
        base = self.baseline
        ceiling = self.settings.target_latency
        return min(ceiling, self.settings.tolerance * base) if base is not None else ceiling

    def _open_window(self, now: float) -> None:
        self._start, self._count, self._drops, self._max_inflight = now, 0, 0, 0
        self._samples = []
        self._delay, self._delays = 0.0, 0  # sum and count of this process's hub delay (HubLag)


def _low_percentile(samples: list[float], q: float = 0.1) -> float:
    """The window's 10th-percentile latency: server-side queueing delays every request, so it moves
    this; scattered client-side hiccups (a GC, a busy moment of the hub) mostly do not."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


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
