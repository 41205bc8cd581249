"""A scope's limiter: a blocking slot count that follows its controller's limit and, under a rate cap,
a pacer (one send at a time waits its turn, so a cut applies to the very next send).

``Limiter`` is one scope's (service, region, account): ``_adaptive.Limits`` makes and keeps them, and
the engine's gate (``_adaptive.Gate``) takes a slot from one per request and hands it each HTTP attempt
(``observe``). An inventory makes thousands, most for one call, so a limiter makes its ``Controller``
(``_controller``) only when something needs it: until then it logs what the controller would have been
told and answers its initial limit, no rate and no trace itself (docs/performance/inventory-cost.md, "the inventory
command's own cost, part 9"). ``signal_of`` says what an attempt means to the controller (the one
classifier's answer: throttled, dropped, or an answer); ``quick_lock`` is the lock its state is kept
under. A run's new settings and a reset reach a limiter through ``_openings.Openings`` when it is next
used.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat
from math import floor
from typing import Any

from ._attempts import Attempt
from ._clientload import ClientLoad
from ._controller import Controller, Settings, TracePoint
from ._errors import classify
from ._openings import Held, Openings

__all__ = ["Limiter", "quick_lock", "signal_of"]


def signal_of(error_code: str | None, http_status: int | None) -> tuple[bool, bool]:
    """(throttled, dropped) for one attempt, from the one classifier (``_errors.classify``):
    throttled = the server said "too fast" (a throttling code or HTTP 429): the send rate backs off;
    dropped = a transient failure that is a timeout: the concurrency backs off. Other errors say
    nothing about load (a 500 is not "too much"), and answers without an error are the fast path."""
    if error_code is None and (http_status is None or http_status < 400):
        return False, False
    found = classify(error_code, http_status=http_status)
    return found.throttle, found.timeout


_LOG_MAX = 64  # events a scope keeps unreplayed before it makes its controller anyway (bounded memory)


class Limiter:
    """A slot count that follows one controller's limit; shared by every greenlet of the scope.

    An inventory makes one per (service, region, account), thousands of them for one call each, and
    every object it keeps lives as long as the engine (where the garbage collector walks it again at
    each full collection): so slots, no queue until a request waits, and the lock of its ``Limits``
    (one lock for all its limiters: what it guards never blocks or switches greenlets while held).

    Lazy: a limiter ``Limits`` makes has no ``Controller`` until something needs one. While none
    of its answers could have moved the limit (``observe``'s test: no throttle, no timeout, no slow
    start step, no window that could close on its count, and at ``max_window`` only the first
    window's close on its first answer, which keeps the limit), its limit is the initial one,
    unpaced, so it keeps what the controller would have been told (``_log``: the slots' in-flight
    counts, the samples with their instants, ``reconfigure``s) and answers ``limit`` itself. The
    first thing that needs the controller (an answer that may move the limit, a slot that must wait,
    another answer or a reset after a logged close, the trace of a close, ``controller`` read
    from outside) makes it from the log (``_materialize``: the same calls, in order, on a clock that
    reads the recorded instants), so it holds what it would hold had it been made at once."""

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
        "_closed",
        "_openings",
        "_seen",
        "_used",
        "_made",
    )

    def __init__(
        self,
        scope: str,
        controller: Controller | None = None,
        load: ClientLoad | None = None,
        lock: Any = None,
        held: Held | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
        openings: Openings | None = None,
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
        self._held = held if held is not None else Held()
        self._clock = clock
        # the runs' settings and resets (``Openings``), applied up to ``_seen`` (those since it was made:
        # none; it is made with the settings in force)
        self._openings = openings if openings is not None else Openings()
        self._seen = self._openings.count
        # the gate epoch it was last handed out in, and its number (``Limits.limiter`` sets them)
        self._used = self._made = 0
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
            self._closed = False

    def _lazy(self, settings: Settings, now: float) -> None:
        """Lazy from ``now``: what a controller made then with ``settings`` would hold (the log starts
        with when and with what: ``_materialize`` makes it so)."""
        self._controller = None
        self._log = [now, settings]
        self._settings = settings  # in force (``reconfigure`` changes it)
        self._start = now  # when the controller's open window opened
        self._limit = float(settings.initial)  # its limit
        self._samples = 0  # the samples of its open window
        self._closed = False  # the log holds a window's close (``observe``): it has a trace point

    @property
    def controller(self) -> Controller:
        """The scope's ``Controller`` (made now from the log if it was not yet)."""
        controller = self._controller
        if controller is None or self._seen != self._openings.count:
            with self._lock:
                self._apply_openings()
                controller = self._controller or self._materialize()
        return controller

    def _apply_openings(self) -> None:
        """The runs' settings and resets this limiter has not applied yet (``Openings``), each at its
        instant, as if each had reached it then (under the lock): from the last reset among them (it
        forgets what came before; the trace is kept either way), a stretch of equal settings as two
        ``reconfigure``s (one if it is one opening)."""
        openings = self._openings
        seen = self._seen
        if seen == openings.count:
            return
        runs = openings.runs
        start = len(runs)
        while start and runs[start - 1][1] > seen:
            start -= 1
            if runs[start][4]:
                break
        self._seen = openings.count
        for first, last, settings, when, reset in runs[start:]:
            if reset:
                self._reset_to(settings, when)
            else:
                self._reconfigured(settings, when)
                if last > max(first, seen + 1):
                    self._reconfigured(settings, when)

    def _caught_up(self) -> None:
        """``_apply_openings``, taking the lock (a read from outside: the limit, its value, the trace)."""
        with self._lock:
            self._apply_openings()

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
        if self._seen != self._openings.count:
            self._caught_up()
        controller = self._controller
        limit = floor(self._limit if controller is None else controller.limit)  # (see ``__enter__``)
        return limit if limit > 1 else 1

    def limit_value(self) -> float:
        """The limit as the controller holds it (a float; what the metric shows), the runs' settings
        applied (a limit a new run's bounds clamp shows clamped, as the run will use it)."""
        if self._seen != self._openings.count:
            self._caught_up()
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
        # one queued for one (a lazy limiter has neither), no run's settings to apply; anything else
        # is ``acquire``'s
        controller = self._controller
        if controller is not None:
            if controller.cap.rate is None:
                self._lock.acquire()  # (not a ``with``: ``quick_lock``)
                try:
                    # ``max(1, int(limit))``: 1.8k instructions (the builtins' argument handling); this
                    # is the same for every float (``floor`` and ``int`` differ only under 0)
                    limit = floor(controller.limit)
                    if limit < 1:
                        limit = 1
                    if self.inflight < limit and not self._waiters and self._seen == self._openings.count:
                        self.inflight = inflight = self.inflight + 1
                        self._held.slots += 1
                        controller.note_inflight(inflight)
                        return limit
                finally:
                    self._lock.release()
            return self.acquire()
        self._lock.acquire()  # (not a ``with``: ``quick_lock``)
        try:
            if self._seen != self._openings.count:  # (a run's settings first: they may clamp the limit)
                self._apply_openings()
            if self._controller is None:  # (still lazy: another thread may have made it meanwhile)
                limit = floor(self._limit)  # (``max(1, int(...))``, as above)
                if limit < 1:
                    limit = 1
                if self.inflight < limit:  # (no one waits while lazy: a wait makes the controller)
                    self.inflight = inflight = self.inflight + 1
                    self._held.slots += 1
                    self._log.append(inflight)  # type: ignore[union-attr]  # lazy: a log
                    return limit
        finally:
            self._lock.release()
        return self.acquire()

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._lock.acquire()  # (not a ``with``: ``quick_lock``; nor ``*exc``: a tuple)
        try:
            if self._waiters:
                self._apply_openings()  # (the limit it reads; a count alone needs none)
                self._free()
            else:  # ``_free`` with no one waiting: once per request
                self.inflight -= 1
                self._held.slots -= 1
        finally:
            self._lock.release()

    def acquire(self) -> int:
        """``slot``'s entry: the rate cap's turn, then a slot, or a place in the queue for one (a
        freed slot is handed to the first waiter directly: one wake-up per slot, no re-check)."""
        with self._lock:  # a slot that may wait (or the lazy path's race lost): the controller
            self._apply_openings()
            controller = self._controller or self._materialize()
        if controller.cap.rate is not None:  # (``Controller.rate``, without the property's call)
            with self._lock:
                if self._pace is None:
                    self._pace = threading.Lock()
            with self._pace:
                with self._lock:
                    self._apply_openings()
                    wait = controller.reserve()
                if wait > 0:
                    time.sleep(wait)  # gevent's sleep once patched
        with self._lock:
            self._apply_openings()
            current = self._controller  # (``Limits.reset`` may have replaced it meanwhile)
            assert current is not None
            controller = current
            limit = floor(controller.limit)  # ``limit``, inline: once per request
            if limit < 1:
                limit = 1
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
                    self._apply_openings()
                    self._free()
            raise
        return self.limit

    def release(self) -> None:
        """``slot``'s exit: the slot goes to the first request waiting, if the limit allows."""
        with self._lock:
            self._apply_openings()
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
        self._lock.acquire()  # (not a ``with``: ``quick_lock``)
        try:
            if self._seen != self._openings.count:
                self._apply_openings()
            controller = self._controller
            if controller is None and not self._closed:
                # What ``Controller.sample`` does with a sample while slow start has no baseline, no
                # window closed, no rate cap: it tallies it, and moves the limit only by slow start's
                # step (a flat answer at half the limit in flight or more, under the target) or by
                # closing the window (``max_window`` since it opened, or ``min_samples`` answers); a
                # throttle or a timeout always moves something. None of those: logged. Nor does the
                # first window's close at ``max_window`` on its first answer with the limit within
                # the settings' bounds (the clamp keeps it), when the client was not saturated (its
                # latency is the new baseline, so Little's law reads no queue, no window before it
                # makes one "sustained", slow start goes on) or was but the window's most in flight
                # was under half the limit (``LatencyLaw.saturated`` grows only a limit in use);
                # logged too, as a close (its trace point, the baseline: the next answer, a
                # ``reset`` or the trace read make the controller). A one-call scope whose answer
                # takes over ``max_window`` (a client slowed down: under callgrind, most of an
                # inventory's) then makes none.
                now = self._clock()
                s = self._settings
                closes = now - self._start >= s.max_window
                if (
                    not throttled
                    and not dropped
                    and (
                        not closes
                        or (
                            not self._samples
                            and s.min <= self._limit <= s.max
                            and (load < s.saturated or 2 * self._peak() < self._limit)
                        )
                    )
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
                    self._closed = closes
                    self._log.append((now, latency, False, False, self.inflight, load, cpu, held))  # type: ignore[union-attr]
                    return
            if controller is None:
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
            limit = controller.limit
            # a whole slot more (the limit is at least 1); ``int`` only for a limit that grew (``int``
            # keeps the order: a limit that did not grow has no more slots), not at every answer
            if limit > before and int(limit) > int(before):
                self._grant(controller)
        finally:
            self._lock.release()

    def _peak(self) -> int:
        """A lazy limiter's open window's most in flight (``Controller``'s ``_max_inflight``), from
        its log: the slots taken since the window opened (made, or the last ``reconfigure``) and
        now. Read only for a close at ``max_window`` (``observe``), on its window's first answer."""
        log = self._log
        assert log is not None
        peak = self.inflight
        for n in range(len(log) - 1, 1, -1):
            entry = log[n]
            if type(entry) is int:
                if entry > peak:
                    peak = entry
            elif len(entry) == 2:  # a reconfigure opened the window
                break
        return peak

    def _reconfigure(self, settings: Settings) -> None:
        """A new batch's settings, now (``_reconfigured``)."""
        with self._lock:
            self._apply_openings()
            self._reconfigured(settings, None)

    def _reconfigured(self, settings: Settings, when: float | None) -> None:
        """``Controller.reconfigure`` at ``when`` (None: now), or its entry in a lazy limiter's log:
        the limit clamped to the new bounds, a new window (under the lock). A lazy limiter's
        controller is in slow start, with no re-measure and no slow answer to forget: the same
        settings again with nothing logged between only move its window's start, so that entry's
        instant is overwritten, and a scope runs skip stays lazy however often their limits are read."""
        controller = self._controller
        # (after a logged close too: ``_closed`` stays, so the next answer makes the controller)
        if controller is None:
            log = self._log
            assert log is not None
            now = self._clock() if when is None else when
            last = log[-1]
            if type(last) is tuple and len(last) == 2 and last[1] == settings:
                log[-1] = (now, settings)
                self._start = now  # (the rest the entry it overwrites set already)
                return
            if len(log) < _LOG_MAX:
                log.append((now, settings))
                self._settings = settings
                self._limit = min(max(self._limit, settings.min), settings.max)  # as ``reconfigure``
                self._start, self._samples = now, 0
                return
            controller = self._materialize()
        if when is None:
            controller.reconfigure(settings)
        else:  # on a clock that reads the opening's instant (as ``_materialize`` replays)
            clock, controller.clock = controller.clock, repeat(when).__next__
            controller.reconfigure(settings)
            controller.clock = clock

    def _reset(self, settings: Settings) -> None:
        """``Limits.reset`` of this scope, now (``_reset_to``)."""
        with self._lock:
            self._apply_openings()
            self._reset_to(settings, None)

    def _reset_to(self, settings: Settings, when: float | None) -> None:
        """What was learned is forgotten at ``when`` (None: now; the trace kept), under the lock. A
        lazy limiter (no trace, nothing learned that shows) starts its log again; else a new
        controller with the old trace."""
        controller = self._controller
        now = self._clock() if when is None else when
        if controller is None and not self._closed:
            self._lazy(settings, now)
        else:  # (a logged close: its trace point is kept)
            controller = controller or self._materialize()
            fresh = Controller(settings, repeat(now).__next__)
            fresh.clock = fresh.cap.clock = self._clock
            fresh.trace.extend(controller.trace)
            self._controller = fresh

    def trace(self) -> list[TracePoint]:
        """The windows its controller closed (none while lazy, unless its log holds a close)."""
        if self._seen != self._openings.count:
            self._caught_up()
        controller = self._controller
        if controller is None:
            if not self._closed:
                return []
            controller = self.controller
        return list(controller.trace)


def quick_lock() -> Any:
    """The limiters' lock, taken three times per request: once gevent has patched ``threading``,
    its ``Semaphore`` (what a patched ``threading.Lock`` is, without the Python-level ``acquire``
    wrapper: 3.1k instructions a ``with`` against 5.4k, counted under callgrind); else a real lock.
    A request's path takes it by ``acquire``, then ``release`` in a ``finally``: a ``with``'s lookups cost 0.6k more."""
    monkey = sys.modules.get("gevent.monkey")  # not imported: not patched (GREENFETCH_ENGINE=threads)
    if monkey is not None and monkey.is_module_patched("threading"):
        from gevent.lock import Semaphore

        return Semaphore()
    return threading.Lock()
