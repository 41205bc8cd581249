"""Issue 24, the feed's ``done`` without its lock (docs/performance/inventory-cost.md, part 12, "scope"): the consumer
queues each ``done`` and the iteration settles them, in order, under the lock it takes anyway to hand
out the next item. The order handed out is ``test_catalog_pacing``'s model test's; here: the lock is
taken once an item, a ``done`` wakes an iteration that waits, and on OS threads none is lost between
the iteration's last look at the queue and its wait."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import gevent

import greenfetch.inventory._pacing as pacing
from greenfetch.inventory._pacing import FairFeed


class _CountingLock:
    """The feed's lock, counting how often it is taken."""

    def __init__(self, lock) -> None:
        self.lock, self.taken = lock, 0

    def acquire(self, *args):
        self.taken += 1
        return self.lock.acquire(*args)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def test_a_one_call_scope_takes_the_feeds_lock_once(monkeypatch):
    locks: list[_CountingLock] = []

    def counting():
        locks.append(_CountingLock(pacing.threading.Lock()))
        return locks[-1]

    monkeypatch.setattr(pacing, "quick_lock", counting)
    items = [(n, f"scope{n}") for n in range(100)]
    feed = FairFeed(items, lambda item: item[1], lambda scope: 5)
    got = []
    for item in feed:  # each handed out and done at once (the iteration ends when all are done)
        got.append(item)
        feed.done(item)
    assert got == items
    assert locks[0].taken <= len(items) + 1  # twice an item before (the take, and ``done``)


def test_a_done_wakes_an_iteration_waiting_at_its_cap():
    feed = FairFeed([1, 2, 3], lambda item: "one", lambda scope: 1)
    got: list[int] = []

    def pull() -> None:
        for item in feed:
            got.append(item)

    puller = gevent.spawn(pull)
    gevent.sleep(0)
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
            feed.done(item)
        assert sorted(seen) == items, run
    print("ok")
    """
)


def test_no_done_is_lost_between_os_threads():
    """On OS threads (``GREENFETCH_ENGINE=threads``: nothing patched) the consumer's ``done`` races
    the iteration going to wait at a cap of 1: every item still comes out once and the iteration ends."""
    env = {**os.environ, "GREENFETCH_ENGINE": "threads"}
    done = subprocess.run(
        [sys.executable, "-c", _THREADS], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
