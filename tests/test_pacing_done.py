"""Issue 24, the feed's ``done`` without its lock (docs/performance/inventory-cost.md, part 12, "scope"): the consumer
queues each ``done`` and the iteration settles them, in order, under the lock it takes anyway to hand
out the next item. The order handed out is ``test_catalog_pacing``'s model test's; here: the lock is
taken once an item, a ``done`` wakes an iteration that waits, and on OS threads none is lost between
the iteration's last look at the queue and its wait. Since part 14 (helper ``gatefeed``) the
iteration takes no lock at all to hand out an item: ``add`` is queued too, and the lock is only for
its wait; a ``close`` or an ``add`` landing just before the wait is not lost either."""

from __future__ import annotations

import operator
import os
import subprocess
import sys
import textwrap
from collections import deque

import gevent
from test_gate_cost import _calls

import greenfetch.inventory._pacing as pacing
from greenfetch.inventory._pacing import FairFeed


class _CountingLock:
    """A lock (the feed's, the limiters'), counting how often it is taken, and how often of those
    by a ``with``."""

    def __init__(self, lock) -> None:
        self.lock, self.taken, self.entered = lock, 0, 0

    def acquire(self, *args):
        self.taken += 1
        return self.lock.acquire(*args)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self):
        self.entered += 1
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _counting_locks(monkeypatch) -> list[_CountingLock]:
    locks: list[_CountingLock] = []

    def counting():
        locks.append(_CountingLock(pacing.threading.Lock()))
        return locks[-1]

    monkeypatch.setattr(pacing, "quick_lock", counting)
    return locks


def test_a_take_takes_no_lock(monkeypatch):
    """The scopes and turns are the iteration's own, the consumer's ``done`` queued: a take that
    need not wait takes no lock (once an item before, twice before that)."""
    locks = _counting_locks(monkeypatch)
    items = [(n, f"scope{n % 50}") for n in range(100)]
    feed = FairFeed(items, lambda item: item[1], lambda scope: 5)
    got = []
    for item in feed:  # each handed out and done at once (the iteration ends when all are done)
        got.append(item)
        feed.done(item)
    assert sorted(got) == items
    assert locks[0].taken == 0


def test_a_scope_is_one_object_made_without_a_python_call():
    """A scope is its own queue (a ``deque``), its fields set where it is made: the feed's set-up
    makes no Python call a scope (an inventory's thousands of one-call scopes; before, a
    ``_Scope.__init__`` and a deque of its own each)."""
    items = [(n, f"scope{n}") for n in range(300)]
    made: list[FairFeed] = []
    calls = _calls(lambda: made.append(FairFeed(items, operator.itemgetter(1), lambda scope: 5)))
    [feed] = made
    assert sum(calls.values()) < 10, calls
    assert all(type(scope).__mro__[1] is deque for scope in feed._scopes.values())


def _pulling(feed: FairFeed) -> tuple[list, gevent.Greenlet]:
    """The items a greenlet iterating ``feed`` got so far, and that greenlet (run until it waits)."""
    got: list = []

    def pull() -> None:
        for item in feed:
            got.append(item)

    puller = gevent.spawn(pull)
    gevent.sleep(0)
    return got, puller


def test_a_done_wakes_an_iteration_waiting_at_its_cap():
    feed = FairFeed([1, 2, 3], lambda item: "one", lambda scope: 1)
    got, puller = _pulling(feed)
    assert got == [1]  # at the scope's cap: waiting for a ``done``
    feed.done(1)
    gevent.sleep(0)
    assert got == [1, 2]
    feed.done(2, again=True)  # sent again, ahead of the scope's others
    gevent.sleep(0)
    assert got == [1, 2, 2]
    feed.done(2)
    gevent.sleep(0)
    feed.done(3)
    puller.join(1)
    assert got == [1, 2, 2, 3] and puller.dead


class _DoneJustBeforeTheWait(FairFeed):
    """A feed whose consumer's ``done`` lands at the worst instant: after the iteration's last
    settle, just before it says it waits (``_waiting``), so ``done`` sees no one to wake."""

    inject = None

    @property
    def _waiting(self) -> bool:
        return self.__dict__.get("_waits", False)

    @_waiting.setter
    def _waiting(self, value: bool) -> None:
        if value and self.inject is not None:
            item, self.inject = self.inject, None
            self.done(item)  # reads ``_waiting``: False, so it notifies no one
        self.__dict__["_waits"] = value


def test_a_done_just_before_the_wait_is_not_lost():
    feed = _DoneJustBeforeTheWait([1, 2], lambda item: "one", lambda scope: 1)
    stream = iter(feed)
    assert next(stream) == 1
    feed.inject = 1  # the scope is at its cap: the next pull goes to wait, and 1 is done meanwhile
    assert next(stream) == 2  # (a wait that did not look at the queue again: blocks for ever)
    feed.done(2)
    assert next(stream, None) is None


_THREADS = textwrap.dedent(
    """
    import queue, sys, threading
    from greenfetch.inventory._pacing import FairFeed
    sys.setswitchinterval(1e-6)  # as many interleavings of the two threads as can be had
    for run in range(200):
        items = [(n, "s%d" % (n % 2)) for n in range(40)]
        feed = FairFeed(items, lambda item: item[1], lambda scope: 1)
        out = queue.Queue()

        def pull():
            for item in feed:
                out.put(item)
            out.put(None)

        puller = threading.Thread(target=pull, daemon=True)
        puller.start()
        seen = []
        while True:
            item = out.get(timeout=5)  # a lost wake-up: the iteration waits for ever, Empty here
            if item is None:
                break
            seen.append(item)
            if item[0] % 5 == 0 and item[0] < 1000:  # a parent: its child's call joins first
                feed.add([(1000 + item[0], "s%d" % (item[0] % 3))])
            feed.done(item)
        children = [(1000 + n, "s%d" % (n % 3)) for n in range(0, 40, 5)]
        assert sorted(seen) == sorted(items + children), run
    print("ok")
    """
)


def test_no_done_is_lost_between_os_threads():
    """On OS threads (``GREENFETCH_ENGINE=threads``: nothing patched) the consumer's ``done`` races
    the iteration going to wait at a cap of 1, and so does ``add`` (a parent's child call, before
    its ``done``): every item still comes out once and the iteration ends."""
    env = {**os.environ, "GREENFETCH_ENGINE": "threads"}
    done = subprocess.run(
        [sys.executable, "-c", _THREADS], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_an_add_wakes_an_iteration_waiting_at_its_cap():
    """``add`` is queued like ``done``: settled in its place, and it wakes a waiting iteration."""
    feed = FairFeed([1, 2], lambda item: "one" if item < 10 else "two", lambda scope: 1)
    got, puller = _pulling(feed)
    assert got == [1]  # "one" at its cap of 1
    feed.add([10, 11])  # a new scope's items (a child type's calls)
    gevent.sleep(0)
    assert got == [1, 10]  # both scopes at their cap now
    feed.add([3])
    feed.done(10)
    gevent.sleep(0)
    assert got == [1, 10, 11]
    for item in (1, 11, 2, 3):
        feed.done(item)
        gevent.sleep(0)
    puller.join(1)
    assert got == [1, 10, 11, 2, 3] and puller.dead


class _CloseJustBeforeTheWait(_CountingLock):
    """The feed's lock, whose first taking lets ``close`` run whole first: a close that lands after the
    iteration saw the feed open, before it waits."""

    def __init__(self, lock, feed) -> None:
        super().__init__(lock)
        self.feed = feed

    def acquire(self, *args):
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.close()
        return super().acquire(*args)


def test_a_close_just_before_the_wait_is_not_lost():
    """(a wait that did not look at ``_closed`` again under the lock: blocks for ever, LoopExit here)"""
    feed = FairFeed([1, 2], lambda item: "one", lambda scope: 1)
    stream = iter(feed)
    assert next(stream) == 1
    feed._lock = _CloseJustBeforeTheWait(feed._lock, feed)
    feed._cond = pacing.threading.Condition(feed._lock)
    assert next(stream, None) is None  # at its cap: the next pull goes to wait, and is closed meanwhile
    assert feed._closed


def test_an_item_done_is_settled_without_a_python_call():
    """The iteration settles an item done in its own loop (``_said`` only for ``add`` and
    ``again``): a take and a ``done`` are the iteration's resume and ``done`` itself, no third call
    (``_settle`` a take before)."""
    items = [(n, f"scope{n}") for n in range(200)]
    feed = FairFeed(items, operator.itemgetter(1), lambda scope: 5)
    stream = iter(feed)
    first = next(stream)

    def run() -> None:
        feed.done(first)
        for item in stream:
            feed.done(item)

    calls = _calls(run)
    assert sum(calls.values()) <= 2 * len(items) + 1, calls
