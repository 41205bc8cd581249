"""adaptive_batch: a concurrency limit that follows AWS's latency, and a send rate that follows its throttling.

The control law is ``_controller``'s (``Controller`` and its ``RateCap``: pure, with an injected clock;
the algorithm is described there). Here it is put to work, outermost last. Samples are HTTP attempts
(``_attempts``), never backoff sleeps; what an attempt *says* comes from the one classifier
(``_errors.classify``, see ``signal_of``): throttled (a throttling code or HTTP 429), dropped (a
timeout), or an answer (any other status, errors included; connection errors give no latency).
``ClientLoad`` (``_clientload``) tells the controller how busy this process is (up to saturated: its
own bottleneck): then latency measures our run queue too, and the controller does not cut on it.

``Limiter``: one controller per scope (service, region, account) with a blocking slot count that
follows the limit and, under a rate cap, a pacer (one send at a time waits its turn, so a cut applies
to the very next send). ``Limits`` keeps the limiters; the engine makes one in ``Engine.__init__``
(``engine.limits``), so every batch and greenlet on one engine shares one view of an account's quota,
whatever ``processes`` a call asks for; ``greenfetch_concurrency_limit{scope}`` reads their limits when
scraped (``Metrics.watch_limits``: nothing per scope or per answer until then). ``Gate`` is
what one run passes to ``Engine.iter_results(gate=...)``: a slot per request, a sample per attempt.

What carries over, and when it resets: a scope's limit, baseline and rate cap live as long as the
engine, so the next batch starts where the last one ended (clamped to its min/max) and a short batch
does not pay the ramp again. They reset with a new engine, ``adaptive_batch(..., reset=True)`` (every
scope) or ``engine.limits.reset(scope)``. With ``processes=N`` each worker process has the limiters of
the scopes routed to it; the engine keeps its worker pool between calls, so they carry over there too,
and ``reset=True`` reaches them.

The trace: ``adaptive_batch`` returns an ``AdaptiveResults`` list whose ``.trace`` holds, per scope,
the ``TracePoint``s (time, limit, latency, throttles, samples, rate, the client's load and CPU share) of the windows closed during the
run; ``engine.limits.trace(scope)`` has the limiter's whole recent history (the last 10,000 windows).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import Any

from ._attempts import Attempt
from ._clientload import ClientLoad
from ._config import ConfigError
from ._controller import Controller, Settings, TracePoint
from ._errors import classify
from ._metrics import Metrics
from ._models import Request, Result, account_of_role

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


class _Held:
    """The slots held in every scope of one ``Limits``: one count, changed under its limiters' lock."""

    __slots__ = ("slots",)

    def __init__(self) -> None:
        self.slots = 0


_LOG_MAX = 64  # events a scope keeps unreplayed before it makes its controller anyway (bounded memory)


class Limiter:
    """A slot count that follows one controller's limit; shared by every greenlet of the scope.

    An inventory makes one per (service, region, account), thousands of them for one call each, and
    every object it keeps lives as long as the engine (where the garbage collector walks it again at
    each full collection): so slots, no queue until a request waits, and the lock of its ``Limits``
    (one lock for all its limiters: what it guards never blocks or switches greenlets while held).

    Lazy: a limiter ``Limits`` makes has no ``Controller`` until something needs one. While none
    of its answers could have moved the limit (``observe``'s test: no throttle, no timeout, no slow
    start step, no window that could close), its limit is the initial one, unpaced, with no trace,
    so it keeps what the controller would have been told (``_log``: the slots' in-flight counts, the
    samples with their instants, ``reconfigure``s) and answers ``limit`` itself. The first thing that
    needs the controller (an answer that may move the limit, a slot that must wait, ``controller``
    read from outside) makes it from the log (``_materialize``: the same calls, in order, on a clock
    that reads the recorded instants), so it holds what it would hold had it been made at once."""

    __slots__ = (
        "scope",
        "_controller",
        "inflight",
        "load",
        "_lock",
        "_waiters",
        "_pace",
        "_held",
        "_log",
        "_clock",
        "_settings",
        "_start",
        "_limit",
        "_samples",
    )

    def __init__(
        self,
        scope: str,
        controller: Controller | None = None,
        load: ClientLoad | None = None,
        lock: Any = None,
        held: _Held | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        # (positional: ``Limits.limiter`` makes one per new scope, 3k instructions less than keywords
        # and a method call for the lazy part)
        self.scope = scope
        self.inflight = 0
        self.load = load
        # the controller and the counts (gevent-cooperative once patched)
        self._lock = lock if lock is not None else threading.Lock()
        # a locked lock per request waiting for a slot, first come first (made when one first waits)
        self._waiters: deque[Any] | None = None
        # one sender at a time waits out the rate cap; the rest queue here (made at the first rate cap:
        # most scopes never have one, and a lock costs as much as a fifth of a one-call scope's limiter)
        self._pace: Any = None
        # the slots held in every scope of one ``Limits`` (``Limits.busy``), counted under the lock
        self._held = held if held is not None else _Held()
        self._clock = clock
        self._controller: Controller | None = controller
        if controller is not None:
            self._log: list[Any] | None = None
        else:  # lazy: ``_lazy`` written out (see the class doc)
            if settings is None:
                settings = Settings()
            now = clock()
            self._log = [now, settings]
            self._settings = settings
            self._start = now
            self._limit = float(settings.initial)
            self._samples = 0

    def _lazy(self, settings: Settings) -> None:
        """Lazy from now: what a controller made now with ``settings`` would hold (the log starts with
        when and with what: ``_materialize`` makes it so)."""
        now = self._clock()
        self._controller = None
        self._log = [now, settings]
        self._settings = settings  # in force (``reconfigure`` changes it)
        self._start = now  # when the controller's open window opened
        self._limit = float(settings.initial)  # its limit
        self._samples = 0  # the samples of its open window

    @property
    def controller(self) -> Controller:
        """The scope's ``Controller`` (made now from the log if it was not yet)."""
        controller = self._controller
        if controller is None:
            with self._lock:
                controller = self._controller or self._materialize()
        return controller

    def _materialize(self) -> Controller:
        """The controller, made from the log (under the lock): ``Controller(settings)`` at the first
        entry's instant, then each entry as the limiter would have passed it: a slot's in-flight
        count (``note_inflight``), a sample (``observe``'s call, at its instant), a ``reconfigure``.
        Its clock meanwhile reads the entry's instant (``repeat(t).__next__``: a C callable)."""
        log = self._log
        assert log is not None
        controller = Controller(log[1], repeat(log[0]).__next__)
        for entry in log[2:]:
            if type(entry) is int:
                controller.note_inflight(entry)
            elif len(entry) == 2:
                controller.clock = repeat(entry[0]).__next__
                controller.reconfigure(entry[1])
            else:
                now, latency, throttled, dropped, inflight, load, cpu, held = entry
                controller.clock = repeat(now).__next__
                before = controller.limit
                controller.sample(
                    latency,
                    throttled=throttled,
                    dropped=dropped,
                    inflight=inflight,
                    load=load,
                    cpu=cpu,
                    held=held,
                )
                if int(controller.limit) > int(before):  # ``_grant`` with no one waiting (never, logged)
                    controller.note_inflight(inflight)
        controller.clock = controller.cap.clock = self._clock
        self._controller, self._log = controller, None
        return controller

    @property
    def limit(self) -> int:
        controller = self._controller
        return max(1, int(self._limit if controller is None else controller.limit))

    def limit_value(self) -> float:
        """The limit as the controller holds it (a float; what the metric shows)."""
        controller = self._controller
        return self._limit if controller is None else controller.limit

    def slot(self) -> contextlib.AbstractContextManager[int]:
        """Wait for the rate cap's turn (after a throttle), then hold one of ``limit`` slots while
        the request runs; gives the limit in force. Only one turn is reserved ahead at a time, so a
        rate cut applies to the very next send. The limiter is its own ``with`` block (entered once
        per request, it keeps no state per entry)."""
        return self

    def __enter__(self) -> int:
        # ``acquire``'s common case written out (once per request): no rate cap, a slot free and no
        # one queued for one (a lazy limiter has neither); anything else is ``acquire``'s
        controller = self._controller
        if controller is not None:
            if controller.cap.rate is None:
                with self._lock:
                    limit = max(1, int(controller.limit))
                    if self.inflight < limit and not self._waiters:
                        self.inflight = inflight = self.inflight + 1
                        self._held.slots += 1
                        controller.note_inflight(inflight)
                        return limit
            return self.acquire()
        with self._lock:
            if self._controller is None:  # (still lazy: another thread may have made it meanwhile)
                limit = max(1, int(self._limit))
                if self.inflight < limit:  # (no one waits while lazy: a wait makes the controller)
                    self.inflight = inflight = self.inflight + 1
                    self._held.slots += 1
                    self._log.append(inflight)  # type: ignore[union-attr]  # lazy: a log
                    return limit
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._waiters:
                self._free()
            else:  # ``_free`` with no one waiting: once per request
                self.inflight -= 1
                self._held.slots -= 1

    def acquire(self) -> int:
        """``slot``'s entry: the rate cap's turn, then a slot, or a place in the queue for one (a
        freed slot is handed to the first waiter directly: one wake-up per slot, no re-check)."""
        controller = self._controller
        if controller is None:  # a slot that may wait (or the lazy path's race lost): the controller
            with self._lock:
                controller = self._controller or self._materialize()
        if controller.cap.rate is not None:  # (``Controller.rate``, without the property's call)
            with self._lock:
                if self._pace is None:
                    self._pace = threading.Lock()
            with self._pace:
                with self._lock:
                    wait = controller.reserve()
                if wait > 0:
                    time.sleep(wait)  # gevent's sleep once patched
        with self._lock:
            controller = self._controller  # (``Limits.reset`` may have replaced it meanwhile)
            assert controller is not None
            limit = max(1, int(controller.limit))  # ``limit``, inline: once per request
            if self.inflight < limit and not self._waiters:
                self.inflight = inflight = self.inflight + 1
                self._held.slots += 1
                controller.note_inflight(inflight)
                return limit
            waiter = threading.Lock()
            waiter.acquire()
            if self._waiters is None:
                self._waiters = deque()
            self._waiters.append(waiter)
        try:
            waiter.acquire()  # released by whoever hands this request its slot (and counted it)
        except BaseException:  # killed while queued: leave the queue, or pass on a slot already handed
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:
                    self._free()
            raise
        return self.limit

    def release(self) -> None:
        """``slot``'s exit: the slot goes to the first request waiting, if the limit allows."""
        with self._lock:
            self._free()

    def _free(self) -> None:
        if self._waiters and self.inflight <= max(1, int(self._controller.limit)):  # type: ignore[union-attr]
            self._waiters.popleft().release()  # handed on: as many in flight as before
        else:
            self.inflight -= 1
            self._held.slots -= 1

    def _grant(self, controller: Controller) -> None:
        """The limit grew: slots for the first requests waiting."""
        while self._waiters and self.inflight < max(1, int(controller.limit)):
            self.inflight += 1
            self._held.slots += 1
            self._waiters.popleft().release()
        controller.note_inflight(self.inflight)

    def observe(self, attempt: Attempt) -> None:
        """One HTTP attempt of a request in this scope ended: a sample for the controller, and the
        slots a grown limit frees (slow start grows it per answer, not only when a window closes).
        A lazy limiter logs a sample that cannot move the limit, the rate or the trace (see the class
        doc), and makes its controller for any other."""
        status = attempt.http_status
        if attempt.error_code is None and (status is None or status < 400):  # ``signal_of``'s fast path
            throttled = dropped = False
            usable = status is not None
        else:
            throttled, dropped = signal_of(attempt.error_code, status)
            usable = status is not None or throttled or dropped
        load, cpu, held = self.load.read(attempt.seconds) if self.load else (0.0, 0.0, 0.0)
        latency = attempt.seconds if usable else None
        with self._lock:
            controller = self._controller
            if controller is None:
                # What ``Controller.sample`` does with a sample while slow start has no baseline, no
                # window closed, no rate cap: it tallies it, and moves the limit only by slow start's
                # step (a flat answer at half the limit in flight or more, under the target) or by
                # closing the window (``max_window`` since it opened, or ``min_samples`` answers); a
                # throttle or a timeout always moves something. None of those: logged.
                now = self._clock()
                s = self._settings
                if (
                    not throttled
                    and not dropped
                    and now - self._start < s.max_window
                    and self._samples + 1 < s.min_samples
                    and (
                        latency is None
                        or latency <= 1e-4
                        or latency > s.target_latency
                        or self.inflight * 2 < self._limit
                    )
                    and len(self._log) < _LOG_MAX  # type: ignore[arg-type]
                ):
                    self._samples += 1
                    self._log.append((now, latency, False, False, self.inflight, load, cpu, held))  # type: ignore[union-attr]
                    return
                controller = self._materialize()
            before = controller.limit
            controller.sample(
                latency,
                throttled=throttled,
                dropped=dropped,
                inflight=self.inflight,
                load=load,
                cpu=cpu,
                held=held,
            )
            if int(controller.limit) > int(before):  # a whole slot more (the limit is at least 1)
                self._grant(controller)

    def _reconfigure(self, settings: Settings) -> None:
        """``Controller.reconfigure`` (a new batch's settings), or its entry in a lazy limiter's log:
        the limit clamped to the new bounds, a new window."""
        with self._lock:
            controller = self._controller
            if controller is None and len(self._log) < _LOG_MAX:  # type: ignore[arg-type]
                now = self._clock()
                self._log.append((now, settings))  # type: ignore[union-attr]
                self._settings = settings
                self._limit = min(max(self._limit, settings.min), settings.max)  # as ``reconfigure``
                self._start, self._samples = now, 0
                return
            (controller or self._materialize()).reconfigure(settings)

    def _reset(self, settings: Settings) -> None:
        """``Limits.reset``: what was learned is forgotten (the trace kept). A lazy limiter (no trace,
        nothing learned that shows) starts its log again; else a new controller with the old trace."""
        with self._lock:
            controller = self._controller
            if controller is None:
                self._lazy(settings)
            else:
                fresh = Controller(settings, self._clock)
                fresh.trace.extend(controller.trace)
                self._controller = fresh

    def trace(self) -> list[TracePoint]:
        """The windows its controller closed (none while lazy)."""
        controller = self._controller
        return [] if controller is None else list(controller.trace)


def quick_lock() -> Any:
    """The limiters' lock, taken three times per request: once gevent has patched ``threading``,
    its ``Semaphore`` (what a patched ``threading.Lock`` is, without the Python-level ``acquire``
    wrapper: 3.1k instructions a ``with`` against 5.4k, counted under callgrind); else a real lock."""
    monkey = sys.modules.get("gevent.monkey")  # not imported: not patched (GREENFETCH_ENGINE=threads)
    if monkey is not None and monkey.is_module_patched("threading"):
        from gevent.lock import Semaphore

        return Semaphore()
    return threading.Lock()


class Limits:
    """``engine.limits``: the limiters of one engine, by scope (service/region/account)."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        gevent: bool = False,
    ):
        self._clock = clock
        self.load = ClientLoad() if gevent else None
        self._lock = quick_lock()  # the scopes (making a limiter: once per scope, thousands in an inventory)
        self._limiter_lock = quick_lock()  # every limiter's own state (``Limiter``)
        self._held = _Held()  # the slots held in any scope (``busy``)
        self._by_scope: dict[str, Limiter] = {}
        self.settings = Settings()
        if metrics is not None:  # greenfetch_concurrency_limit{scope}: read from here when scraped
            metrics.watch_limits(self)

    @staticmethod
    def scope_of(request: Request) -> str:
        """service/region/account: AWS quotas are per account and region, per service."""
        who = request.account or (request.role and account_of_role(request.role)) or request.profile
        return f"{request.service}/{request.region or 'default'}/{who or 'default'}"

    def configure(self, settings: Settings) -> None:
        with self._lock:
            self.settings = settings
            for limiter in self._by_scope.values():
                limiter._reconfigure(settings)

    def limiter(self, scope: str) -> Limiter:
        found = self._by_scope.get(scope)  # a dict read is atomic: the lock only to make one
        if found is None:
            with self._lock:
                found = self._by_scope.get(scope)
                if found is None:
                    found = self._by_scope[scope] = Limiter(  # lazy: no controller yet (``Limiter``)
                        scope, None, self.load, self._limiter_lock, self._held, self.settings, self._clock
                    )
        return found

    def limit_values(self) -> list[tuple[str, float]]:
        """(scope, limit) of every limiter, in the order they were made: what
        ``greenfetch_concurrency_limit{scope}`` shows when scraped (``Metrics.watch_limits``)."""
        with self._lock:
            return [(scope, limiter.limit_value()) for scope, limiter in self._by_scope.items()]

    def reset(self, scope: str | None = None) -> None:
        """Forget what the limiters learned (limit, baseline, rate cap), for one scope or all: the
        next batch starts again from ``initial_concurrency``. Requests in flight finish first."""
        with self._lock:
            for name in [scope] if scope is not None else list(self._by_scope):
                limiter = self._by_scope.get(name)
                if limiter is not None:
                    limiter._reset(self.settings)

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
        """A slot is held in some scope (what keeps the ``ClientLoad`` watcher sampling): one check,
        however many scopes (an inventory has thousands)."""
        return self._held.slots > 0

    def trace(self, scope: str) -> list[TracePoint]:
        limiter = self._by_scope.get(scope)
        return limiter.trace() if limiter else []


class Gate:
    """What ``Engine.iter_results(gate=...)`` calls: a slot per request, a sample per attempt. It
    carries the ``settings`` it was opened with, and ``reset`` (the run began by forgetting what the
    limiters learned), so worker processes open theirs the same way."""

    def __init__(self, limits: Limits, settings: Settings | None = None, reset: bool = False):
        self.limits = limits
        self.settings = settings or limits.settings
        self.reset = reset
        self.started = limits._clock()
        self._limiters: dict[str, Limiter] = {}  # by scope: this run's (a limiter outlives a reset)

    @property
    def scopes(self) -> set[str]:
        """The scopes this gate has seen (its requests', and those whose trace joined it)."""
        return set(self._limiters)

    def __call__(self, request: Request) -> contextlib.AbstractContextManager[int | None]:
        scope = Limits.scope_of(request)  # per request: the dict read inline; a new scope's made (or an
        limiter = self._limiters.get(scope)  # earlier run's found) by ``Limits.limiter`` directly
        if limiter is None:
            limiter = self._limiters[scope] = self.limits.limiter(scope)
        load = self.limits.load
        if load is not None and not load._running:
            load.ensure(self.limits.busy)
        return limiter  # its own slot (``Limiter.slot``)

    def attempt(self, request: Request, attempt: Attempt) -> None:
        """The sample of a request's attempt. The engine observes through the limiter ``__call__``
        returned instead (the same limiter: ``Limiter.observe``), so the scope is found once a request."""
        scope = Limits.scope_of(request)
        (self._limiters.get(scope) or self._limiter(scope)).observe(attempt)

    def _limiter(self, scope: str) -> Limiter:
        """A scope this gate has not seen yet: its limiter (made, or one an earlier run made)."""
        found = self._limiters[scope] = self.limits.limiter(scope)
        return found

    def add_trace(self, traces: dict[str, list[TracePoint]]) -> None:
        """Windows closed elsewhere (a worker process owns these scopes) join this gate's trace."""
        for scope, points in traces.items():
            limiter = self._limiters.get(scope) or self._limiter(scope)
            if points:  # (an empty one makes no controller)
                limiter.controller.trace.extend(points)

    def trace(self) -> dict[str, list[TracePoint]]:
        """The windows each scope closed since this gate was made."""
        return {
            scope: [p for p in self.limits.trace(scope) if p.time >= self.started]
            for scope in sorted(self._limiters)
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
