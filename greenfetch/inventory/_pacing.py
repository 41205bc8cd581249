"""Pacing an inventory's calls per scope (service, region, account): the fair feeder.

The fetch runs its calls through ``engine.iter_results`` with the engine's adaptive gate
(``_adaptive.open_gate``), whose limiter per scope caps that scope's concurrency and, after a
throttle, its send rate. The gate alone is not enough: ``iter_results`` takes one of the run's
``concurrency`` slots for a request *before* the request waits for its scope's limiter, so requests
queued behind one throttled scope's pacer would hold the slots every other scope needs. ``FairFeed``
orders what ``iter_results`` pulls: it hands out next the request of the scope with the fewest in
flight (ties: the scope that comes first in the plan, so the active scopes stay a small window of the
plan and the engine's client LRU stays hot), and never more in flight for a scope than its limiter's
limit (``cap``). A request counts as in flight from the moment it is handed out until the consumer
calls ``done`` for it.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from .._limiter import quick_lock

__all__ = ["FairFeed"]

T = TypeVar("T")


class _Again(Generic[T]):
    """``done(item, again=True)`` in the feed's queue of dones (an item may itself be a tuple)."""

    __slots__ = ("item",)

    def __init__(self, item: T):
        self.item = item


class _Scope(Generic[T]):
    __slots__ = ("name", "rank", "queue", "inflight", "full")

    def __init__(self, name: str, rank: int):
        self.name, self.rank = name, rank
        self.queue: deque[T] = deque()
        self.inflight = 0
        self.full = False  # at its cap: out of the heap until one of its requests is done


class FairFeed(Generic[T]):
    """Iterate it to get the items least-busy scope first (blocking while every scope with items left
    is at its cap); ``sent[i]`` is the i-th item handed out (what ``Result.index`` refers to when the
    iteration feeds ``iter_results``); ``done(item)`` when its outcome has been taken, or
    ``done(item, again=True)`` to send it once more. The iteration ends when every item is done (not
    only handed out: one may come back), or at ``close()`` (a consumer that stopped early)."""

    def __init__(self, items: Iterable[T], scope_of: Callable[[T], str], cap: Callable[[str], int]):
        self._cap, self._scope_of = cap, scope_of
        self._scopes: dict[str, _Scope[T]] = {}
        self._of: dict[int, _Scope[T]] = {}  # id(item) -> its scope
        self._left = 0  # items not handed out yet
        self._inflight = 0  # handed out, not done
        self._put(items)
        # (in flight, rank): a stale entry (its scope's count moved on) is skipped when popped. The
        # scopes' first entries, (0, rank) in rank order, are a sorted list read from ``_next`` on,
        # merged with the heap of those pushed since (the smaller of the two heads first: the same
        # order as one heap of all of them); the heap holds only scopes already sent to, so an
        # inventory's thousands of one-call scopes cost no heap pop of a heap of thousands
        self._fresh: list[tuple[int, int, str]] = [(0, s.rank, s.name) for s in self._scopes.values()]
        self._next = 0
        self._heap: list[tuple[int, int, str]] = []
        # gevent-cooperative once patched; a plain lock: nothing here takes it twice (the default
        # RLock is Python code, and this one is taken twice per request), taken directly (a
        # Condition's ``with`` is one Python call more) and the limiters' kind (``quick_lock``)
        self._lock = quick_lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = False  # the iteration waits on ``_cond``: ``done`` and ``add`` must wake it
        self._closed = False
        self.sent: list[T] = []
        # ``done``'s items (an item, or ``_Again(item)`` to send it again), settled in order under the lock
        # by the next take (or ``add``, ``inflight``): the consumer's ``done`` takes no lock (a
        # deque's append and popleft are each atomic, on OS threads too), so a one-call scope's item
        # costs the lock once, not twice
        self._done: deque[T | _Again[T]] = deque()

    def _put(self, items: Iterable[T]) -> list[_Scope[T]]:
        """Each item into its scope's queue (a scope made for a name not seen yet); the scopes that
        had none queued before (no call an item: the plan's thousands of one-call scopes)."""
        scopes, of, scope_of = self._scopes, self._of, self._scope_of
        woken: list[_Scope[T]] = []
        count = 0
        for item in items:
            name = scope_of(item)
            scope = scopes.get(name)
            if scope is None:
                scope = scopes[name] = _Scope(name, len(scopes))
            if not scope.queue:
                woken.append(scope)
            scope.queue.append(item)
            of[id(item)] = scope
            count += 1
        self._left += count
        return woken

    def add(self, items: Iterable[T]) -> None:
        """More items while the iteration runs (a child type's calls, once its parent is listed). Add
        them before ``done`` of the item they come from, so the iteration cannot end in between."""
        with self._lock:
            if self._done:
                self._settle()
            for scope in self._put(items):
                if not scope.full:
                    heapq.heappush(self._heap, (scope.inflight, scope.rank, scope.name))
            if self._waiting:
                self._cond.notify()

    def inflight(self, name: str) -> int:
        with self._lock:
            if self._done:
                self._settle()
            scope = self._scopes.get(name)
            return scope.inflight if scope is not None else 0

    def __iter__(self) -> Iterator[T]:
        """The next item, under the lock: the scopes' first turns (plan order) merged with the heap of
        those sent to since, the least busy first; a stale heap entry (its scope's count moved on) is
        skipped; while every scope with items left is at its cap, wait for a ``done``."""
        sent, lock, heap, fresh, scopes, pending = (
            self.sent,
            self._lock,
            self._heap,
            self._fresh,
            self._scopes,
            self._done,
        )
        while True:
            with lock:
                while True:
                    if pending:
                        self._settle()
                    if self._closed or not (self._left or self._inflight):
                        return
                    if self._next < len(fresh) and (not heap or fresh[self._next] < heap[0]):
                        count, rank, name = fresh[self._next]
                        self._next += 1
                    elif heap:
                        count, rank, name = heapq.heappop(heap)
                    else:  # every scope with items left is at its cap: wait for a ``done``
                        self._waiting = True
                        try:
                            # (``done`` appends, then reads ``_waiting``: one that came before it
                            # was set is settled here, one after it wakes the wait)
                            if not pending:
                                self._cond.wait()
                        finally:
                            self._waiting = False
                        continue
                    scope = scopes[name]
                    if count != scope.inflight or not scope.queue or scope.full:
                        continue
                    # a scope with none in flight is under any cap (at least 1): ``cap`` only once
                    # one is (an inventory's scope is mostly one call: its limiter's limit never read)
                    if count and count >= max(1, self._cap(name)):
                        scope.full = True
                        continue
                    item = scope.queue.popleft()
                    scope.inflight = count + 1
                    self._inflight += 1
                    self._left -= 1
                    if scope.queue:
                        heapq.heappush(heap, (count + 1, rank, name))
                    break
                sent.append(item)
            yield item

    def done(self, item: T, *, again: bool = False) -> None:
        """``item``'s outcome has been taken: its scope may send another; with ``again`` that is
        ``item`` itself (ahead of the scope's others: a throttled call sent again, through the pacer).
        Settled by the iteration's next take (``_settle``), in the order ``done`` was called."""
        self._done.append(_Again(item) if again else item)
        if self._waiting:  # (read after the append: see ``__iter__``'s wait)
            with self._lock:
                self._cond.notify()

    def _settle(self) -> None:
        """Every ``done`` so far, in order (under the lock): its scope's count, and its scope's next
        turn if it has items left."""
        pending, of, heap = self._done, self._of, self._heap
        while pending:
            entry = pending.popleft()
            if type(entry) is _Again:  # ``done(item, again=True)``: ahead of its scope's others
                item = entry.item
                scope = of[id(item)]
                scope.queue.appendleft(item)
                self._left += 1
            else:
                scope = of.pop(id(entry))
            scope.inflight -= 1
            self._inflight -= 1
            scope.full = False
            if scope.queue:
                heapq.heappush(heap, (scope.inflight, scope.rank, scope.name))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cond.notify_all()
