"""adaptive_batch: a concurrency limit that follows AWS's latency, and a send rate that follows its throttling.

The control law is ``_controller``'s (``Controller`` and its ``RateCap``: pure, with an injected clock;
the algorithm is described there). Here it is put to work, outermost last. Samples are HTTP attempts
(``_attempts``), never backoff sleeps; what an attempt *says* comes from the one classifier
(``_errors.classify``, see ``signal_of``): throttled (a throttling code or HTTP 429), dropped (a
timeout), or an answer (any other status, errors included; connection errors give no latency).
``ClientLoad`` (``_clientload``) tells the controller how busy this process is (up to saturated: its
own bottleneck): then latency measures our run queue too, and the controller does not cut on it.

``Limiter`` (``_limiter``): one controller per scope (service, region, account) with a blocking slot
count that follows the limit and, under a rate cap, a pacer (one send at a time waits its turn, so a
cut applies to the very next send). ``Limits`` keeps the limiters; the engine makes one in ``Engine.__init__``
(``engine.limits``), so every batch and greenlet on one engine shares one view of an account's quota,
whatever ``processes`` a call asks for; ``greenfetch_concurrency_limit{scope}`` reads their limits when
scraped (``Metrics.watch_limits``: nothing per scope or per answer until then). ``Gate`` is
what one run passes to ``Engine.iter_results(gate=...)``: a slot per request, a sample per attempt.

What carries over, and when it resets: a scope's limit, baseline and rate cap live as long as the
engine, so the next batch starts where the last one ended (clamped to its min/max) and a short batch
does not pay the ramp again. They reset with a new engine, ``adaptive_batch(..., reset=True)`` (every
scope) or ``engine.limits.reset(scope)``. A run's settings and ``reset=True`` are noted once
(``_openings.Openings``) and each limiter applies them, at the instant of the run's start, when next
used or read (the limit series included): a long-lived engine's run costs the same for its thousands
of scopes as for one. With ``processes=N`` each worker process has the limiters of
the scopes routed to it; the engine keeps its worker pool between calls, so they carry over there too,
and ``reset=True`` reaches them.

How many scopes it keeps: a long-lived engine (a worker, the Nushell plugin) makes a scope per
service, region and account of every inventory it serves, most for one call that taught nothing.
Past ``SCOPES_KEPT`` an engine forgets idle limiters that learned nothing, least recently handed out
first, and past ``LEARNED_KEPT`` those that learned something too (``Limits._sweep``); a forgotten
scope is made again, as a new one, when next used, and leaves ``greenfetch_concurrency_limit`` meanwhile.
Never forgotten: a limiter with a slot held or a request waiting, one handed out since the oldest
gate still alive was opened (that gate, or its run's feed, may hold it: a run's scopes are kept to
its end), and one whose open window holds answers no run's opening has closed since (the window
could close on the next ones). (A limiter a program takes from ``limiter`` outside any gate is pinned
by no gate: idle, it may be forgotten while the program holds it.) Learned (``_learned``): a controller (made for an answer
that could move the limit or the rate, a wait, or a read from outside; whatever it then moved), a
logged close (its trace point and baseline), or a limit other than the settings' initial (an
earlier run's initial, clamped: a new limiter would start at this run's). What else a lazy limiter's
log holds, a new limiter does without, and nothing it decides depends on it but this: its window
opened at the last run's start, a new one's when it is made (a ``max_window`` close on a later first
answer); and its answers' instants, which a controller made from the log would count in the rate
accepted before a throttle (a look-back of at most a second, and back to the first answer: a new
one's to its own). That is what "behaves as a new one" means, and the only change forgetting makes.

The trace: ``adaptive_batch`` returns an ``AdaptiveResults`` list whose ``.trace`` holds, per scope,
the ``TracePoint``s (time, limit, latency, throttles, samples, rate, the client's load and CPU share) of the windows closed during the
run; ``engine.limits.trace(scope)`` has the limiter's whole recent history (the last 10,000 windows).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from ._attempts import Attempt
from ._clientload import ClientLoad
from ._config import ConfigError
from ._controller import Controller, Settings, TracePoint
from ._limiter import Limiter, quick_lock, signal_of
from ._metrics import Metrics
from ._models import Request, Result, account_of_role
from ._openings import Held, Openings

__all__ = [
    "LEARNED_KEPT",
    "SCOPES_KEPT",
    "AdaptiveResults",
    "Controller",
    "Gate",
    "Limiter",
    "Limits",
    "Settings",
    "TracePoint",
    "open_gate",
    "quick_lock",
    "signal_of",
]


_made = attrgetter("_made")

SCOPES_KEPT = 10_000
"""Scopes an engine keeps past which the idle ones that learned nothing are forgotten, least recently
used first (``Limits._sweep``; ``_learned`` says what learning is): ~0.6 KB each with its log and
name (6 MB), and as many ``greenfetch_concurrency_limit`` series. A forgotten scope is made again,
as a new one, when next used (what that changes: the module doc, "How many scopes")."""
LEARNED_KEPT = 50_000
"""Scopes kept past which idle ones that learned something (a controller: a moved limit, a rate cap,
a baseline, a trace) are forgotten too, least recently used first: ~2 KB each or more (its trace),
~100 MB. A scope's quota is learned again in a window or a throttle; an engine that kept every
throttled scope of an organisation for its life would not stay bounded."""


class Limits:
    """``engine.limits``: the limiters of one engine, by scope (service/region/account)."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        gevent: bool = False,
        scopes_kept: int = SCOPES_KEPT,
        learned_kept: int = LEARNED_KEPT,
    ):
        self._clock = clock
        self.load = ClientLoad() if gevent else None
        self._lock = quick_lock()  # the scopes (making a limiter: once per scope, thousands in an inventory)
        self._limiter_lock = quick_lock()  # every limiter's own state (``Limiter``)
        self._held = Held()  # the slots held in any scope (``busy``)
        self._openings = Openings()  # the runs' settings and resets, for each limiter to apply when used
        # by scope, least recently handed out first (``limiter``: a scope handed out again in a later
        # gate's run moves to the end), so the first ones are those a bound forgets (``_sweep``)
        self._by_scope: dict[str, Limiter] = {}
        self._gates: weakref.WeakSet[Gate] = weakref.WeakSet()  # the gates alive (what pins a scope)
        self._epoch = 0  # gates opened: a limiter's ``_used`` is the epoch it was last handed out in
        self._made = 0  # limiters made: a limiter's ``_made`` (the series' order: ``limit_values``)
        self.scopes_kept = scopes_kept  # the bounds (``SCOPES_KEPT``, ``LEARNED_KEPT``)
        self.learned_kept = max(learned_kept, scopes_kept)
        self._sweep_at = scopes_kept  # the number of scopes at which the next new one sweeps
        self.settings = Settings()
        if metrics is not None:  # greenfetch_concurrency_limit{scope}: read from here when scraped
            metrics.watch_limits(self)

    @staticmethod
    def scope_of(request: Request) -> str:
        """service/region/account: AWS quotas are per account and region, per service."""
        who = request.account or (request.role and account_of_role(request.role)) or request.profile
        return f"{request.service}/{request.region or 'default'}/{who or 'default'}"

    def configure(self, settings: Settings) -> None:
        """A run's settings, for every limiter: what each learned carries over, clamped (``open``)."""
        self._opened(settings, False)

    def _opened(self, settings: Settings, reset: bool) -> None:
        """``settings`` (after forgetting with ``reset``) for every scope, now: noted once
        (``Openings``), not handed to each limiter, which applies it, at this instant, when it is
        next used or read; a long-lived engine keeps thousands of scopes, most of which a run never
        reaches. Past ``Openings.RUNS_MAX`` changes every limiter applies them (bounded memory)."""
        with self._lock:
            self.settings = settings
            openings = self._openings
            with self._limiter_lock:
                openings.add(settings, self._clock(), reset)
            if len(openings.runs) > openings.RUNS_MAX:
                for limiter in self._by_scope.values():
                    limiter._caught_up()
                with self._limiter_lock:
                    openings.runs.clear()

    def limiter(self, scope: str) -> Limiter:
        """The scope's limiter (made if it has none: a new one, or again after it was forgotten)."""
        found = self._by_scope.get(scope)  # a dict read is atomic: the lock only to make one, or to
        if found is not None and found._used == self._epoch:  # note its first hand-out in a new epoch
            return found
        self._lock.acquire()  # (not a ``with``: ``_limiter.quick_lock``)
        try:
            by_scope = self._by_scope
            found = by_scope.get(scope)
            if found is None:
                if len(by_scope) >= self._sweep_at:  # (before: the new one is handed out)
                    self._sweep()
                found = by_scope[scope] = Limiter(  # lazy: no controller yet (``Limiter``)
                    scope,
                    None,
                    self.load,
                    self._limiter_lock,
                    self._held,
                    self.settings,
                    self._clock,
                    self._openings,
                )
                found._made = self._made = self._made + 1
            elif found._used != self._epoch:  # used again since a gate opened: the most recent now
                del by_scope[scope]
                by_scope[scope] = found
            found._used = self._epoch
        finally:
            self._lock.release()
        return found

    def _sweep(self) -> None:
        """Forget idle limiters, least recently handed out first, until ``scopes_kept`` are kept
        (those that learned nothing: ``_learned``) or ``learned_kept`` (any): never a
        limiter handed out since the oldest live gate opened (that gate may hold it), nor one in use.
        Under the scopes' lock, when a new scope passes ``_sweep_at``; that is set past what is kept
        by a quarter of it, so a sweep that must walk the limiters it cannot forget (a large run in
        progress) comes only after as many new scopes as a quarter of them: O(1) a new scope."""
        by_scope = self._by_scope
        floor = min((gate._epoch for gate in self._gates), default=self._epoch + 1)
        over = len(by_scope) - self.scopes_kept * 3 // 4  # (down to 3/4: the next sweep a quarter on)
        over_learned = len(by_scope) - self.learned_kept
        gone = []
        with self._limiter_lock:
            for scope, limiter in by_scope.items():
                if over <= 0:
                    break
                if limiter._used >= floor:  # this one and every later one: handed out in a live run
                    break
                learned = _learned(limiter)
                if learned is None or (learned and over_learned <= 0):
                    continue
                gone.append(scope)
                over -= 1
                over_learned -= 1
        for scope in gone:
            del by_scope[scope]
        kept = len(by_scope)
        self._sweep_at = max(self.scopes_kept, kept + kept // 4)

    def limit_values(self) -> list[tuple[str, float]]:
        """(scope, limit) of every limiter kept, in the order they were made: what
        ``greenfetch_concurrency_limit{scope}`` shows when scraped (``Metrics.watch_limits``)."""
        with self._lock:
            kept = sorted(self._by_scope.values(), key=_made)  # (kept by use: mostly in order already)
            return [(limiter.scope, limiter.limit_value()) for limiter in kept]

    def reset(self, scope: str | None = None) -> None:
        """Forget what the limiters learned (limit, baseline, rate cap), for one scope or all: the
        next batch starts again from ``initial_concurrency``. Requests in flight finish first."""
        if scope is None:
            self._opened(self.settings, True)
            return
        with self._lock:
            limiter = self._by_scope.get(scope)
            if limiter is not None:
                limiter._reset(self.settings)

    def open(self, settings: Settings, *, reset: bool = False) -> Gate:
        """A gate for one run: every limiter takes ``settings`` (what it learned carries over, clamped),
        after forgetting everything with ``reset``; the same cost however many scopes (``_opened``)."""
        self._opened(settings, reset)
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


def _learned(limiter: Limiter) -> bool | None:
    """Whether ``limiter`` learned what a new limiter would not know (True: kept to ``learned_kept``;
    False: it may be forgotten, and made again as a new one), or None: not now (a slot held, a
    request waiting, answers in a window no run since has closed). Under its lock, for
    ``Limits._sweep``; what learning is, exactly: the module doc ("How many scopes")."""
    if limiter.inflight or limiter._waiters:
        return None
    if limiter._controller is not None or limiter._closed:
        return True
    openings, seen = limiter._openings, limiter._seen
    if seen != openings.count:
        # runs opened since it was last used: applied, each empties its window; the common case
        # without applying them (one stretch of its own settings, whose clamp keeps its limit)
        first, _, settings, _, reset = openings.runs[-1]
        limit = limiter._limit
        if (
            first > seen + 1
            or reset
            or settings != limiter._settings
            or not settings.min <= limit <= settings.max
        ):
            limiter._apply_openings()
            if limiter._controller is not None:  # (its log full: made)
                return True
        return limiter._limit != limiter._settings.initial
    if limiter._samples:
        return None
    return limiter._limit != limiter._settings.initial


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
        with limits._lock:  # alive, it pins every limiter handed out from now on (``Limits._sweep``)
            limits._epoch = self._epoch = limits._epoch + 1
            limits._gates.add(self)

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
