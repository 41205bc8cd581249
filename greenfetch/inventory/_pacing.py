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


class _Added(Generic[T]):
    """``add(items)`` in the feed's queue of dones: settled in its place among them."""

    __slots__ = ("items",)

    def __init__(self, items: list[T]):
        self.items = items


class _Scope(deque[T]):
    """A scope's queue of items not handed out yet (it is that deque: one object a scope, made
    without a Python ``__init__``, its fields set where it is made, in ``_put``)."""

    __slots__ = ("name", "rank", "inflight", "full")

    name: str
    rank: int  # its place in the plan (ties between scopes as busy go to the first)
    inflight: int
    full: bool  # at its cap: out of the heap until one of its requests is done


_SAID = (_Added, _Again)  # what ``_said`` settles (anything else in the queue is an item done)


class FairFeed(Generic[T]):
    """Iterate it (once) to get the items least-busy scope first (blocking while every scope with items
    left is at its cap); ``sent[i]`` is the i-th item handed out (what ``Result.index`` refers to when the
    iteration feeds ``iter_results``); ``done(item)`` when its outcome has been taken, or
    ``done(item, again=True)`` to send it once more. The iteration ends when every item is done (not
    only handed out: one may come back), or at ``close()`` (a consumer that stopped early).

    The scopes, their counts and the turns belong to the iteration alone: ``done`` and ``add`` (the
    consumer's, maybe on another thread) queue what they say, and the iteration settles the queue,
    in order, before each take. So a take needs no lock (a deque's append and popleft are each
    atomic, on OS threads too); the lock is only for waiting (every scope with items left at its
    cap) and waking that wait. An item's scope is found again by ``scope_of`` when it is done (the
    same name every time: a key such as the inventory's ``attrgetter`` costs less than a map of
    every item to its scope kept for the run, ~1k instructions a scope)."""

    def __init__(self, items: Iterable[T], scope_of: Callable[[T], str], cap: Callable[[str], int]):
        self._cap, self._scope_of = cap, scope_of
        self._scopes: dict[str, _Scope[T]] = {}
        self._left = 0  # items not handed out yet
        self._put(items)
        # (in flight, rank, scope): a stale entry (its scope's count moved on) is skipped when popped.
        # The scopes' first turns, (0, rank) in rank order, are the scopes in a list the iteration
        # reads in order, merged with the heap of those pushed since (the smaller of the two heads
        # first: the same order as one heap of all of them); the heap holds only scopes already sent
        # to, so an inventory's thousands of one-call scopes cost no heap pop of a heap of thousands
        self._fresh: list[_Scope[T]] = list(self._scopes.values())
        self._heap: list[tuple[int, int, _Scope[T]]] = []
        # for the wait only: gevent-cooperative once patched, the limiters' kind (``quick_lock``)
        self._lock = quick_lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = False  # the iteration waits on ``_cond``: ``done`` and ``add`` must wake it
        self._closed = False
        self.sent: list[T] = []
        # what the consumer said, settled in order by the iteration before its next take: an item
        # done, ``_Again(item)`` to send it again, ``_Added(items)`` (``add``)
        self._done: deque[T | _Again[T] | _Added[T]] = deque()

    def _put(self, items: Iterable[T]) -> list[_Scope[T]]:
        """Each item into its scope's queue (a scope made for a name not seen yet); the scopes that
        had none queued before (no call an item: the plan's thousands of one-call scopes)."""
        scopes, scope_of = self._scopes, self._scope_of
        woken: list[_Scope[T]] = []
        count = 0
        for item in items:
            name = scope_of(item)
            scope = scopes.get(name)
            if scope is None:
                scope = _Scope()
                scope.name = name
                scope.rank = len(scopes)
                scope.inflight = 0
                scope.full = False
                scopes[name] = scope
            if not scope:
                woken.append(scope)
            scope.append(item)
            count += 1
        self._left += count
        return woken

    def add(self, items: Iterable[T]) -> None:
        """More items while the iteration runs (a child type's calls, once its parent is listed). Add
        them before ``done`` of the item they come from, so the iteration cannot end in between."""
        self._done.append(_Added(list(items)))
        if self._waiting:  # (read after the append: see ``_wait``)
            self._wake()

    def inflight(self, name: str) -> int:
        """The scope's items handed out and not done, as the iteration last settled them (exact
        between two takes of the iterating thread: it settles every ``done`` before it takes)."""
        scope = self._scopes.get(name)
        return scope.inflight if scope is not None else 0

    def __iter__(self) -> Iterator[T]:
        """The next item: the scopes' first turns (plan order) merged with the heap of those sent to
        since, the least busy first; a stale heap entry (its scope's count moved on) is skipped;
        while every scope with items left is at its cap, wait for a ``done``."""
        sent, heap, fresh, pending = self.sent, self._heap, self._fresh, self._done
        scopes, key = self._scopes, self._scope_of
        # the iteration's own counts, locals (no attribute a take): the next of ``fresh``, and the
        # items handed out and not done
        first = out = 0
        while True:
            while pending:  # what the consumer said, in order (``add`` and ``again``: ``_said``)
                entry = pending.popleft()
                scope = self._said(entry) if type(entry) in _SAID else scopes[key(entry)]  # type: ignore[arg-type]
                if scope is not None:  # an item done: one fewer in flight, its scope's next turn
                    scope.inflight -= 1
                    out -= 1
                    scope.full = False
                    if scope:
                        heapq.heappush(heap, (scope.inflight, scope.rank, scope))
            if self._closed or not (self._left or out):
                return
            if first < len(fresh) and (not heap or heap[0][0] > 0 or heap[0][1] > fresh[first].rank):
                scope = fresh[first]
                count = 0
                first += 1
            elif heap:
                count, _, scope = heapq.heappop(heap)
            else:  # every scope with items left is at its cap: wait for a ``done``
                self._wait()
                continue
            if count != scope.inflight or not scope or scope.full:
                continue
            # a scope with none in flight is under any cap (at least 1): ``cap`` only once one is
            # (an inventory's scope is mostly one call: its limiter's limit never read); with one or
            # more in flight, ``count >= max(1, cap)`` is ``count >= cap`` (no ``max`` call: 1.2k)
            if count and count >= self._cap(scope.name):
                scope.full = True
                continue
            item = scope.popleft()
            scope.inflight = count + 1
            out += 1
            self._left -= 1
            if scope:
                heapq.heappush(heap, (count + 1, scope.rank, scope))
            sent.append(item)
            yield item

    def _wait(self) -> None:
        """Until the consumer says something (``done``, ``add``) or the feed is closed."""
        with self._lock:
            self._waiting = True
            try:
                # (``done`` appends, then reads ``_waiting``: what came before it was set is seen
                # here, what comes after wakes the wait; ``close`` sets ``_closed`` under the lock)
                if not self._done and not self._closed:
                    self._cond.wait()
            finally:
                self._waiting = False

    def done(self, item: T, *, again: bool = False) -> None:
        """``item``'s outcome has been taken: its scope may send another; with ``again`` that is
        ``item`` itself (ahead of the scope's others: a throttled call sent again, through the pacer).
        Settled by the iteration before its next take, in the order said."""
        self._done.append(_Again(item) if again else item)
        if self._waiting:  # (read after the append: see ``_wait``)
            self._wake()

    def _wake(self) -> None:
        with self._lock:
            self._cond.notify()

    def _said(self, entry: _Again[T] | _Added[T]) -> _Scope[T] | None:
        """``add``'s items into their scopes, and the turns of the scopes they give items again
        (None: nothing was done); or ``done(item, again=True)``'s item back at the head of its
        scope's queue, ahead of its others (its scope, whose count the iteration then lowers)."""
        if type(entry) is _Added:
            for scope in self._put(entry.items):
                if not scope.full:
                    heapq.heappush(self._heap, (scope.inflight, scope.rank, scope))
            return None
        item = entry.item  # type: ignore[union-attr]
        scope = self._scopes[self._scope_of(item)]
        scope.appendleft(item)
        self._left += 1
        return scope

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cond.notify_all()
