"""Two ways to run work concurrently behind one small interface.

``gevent`` (the default): greenlets on a patched standard library; in-flight work can be killed.
Its greenlets are long-lived workers, reused from one task to the next: creating and starting a
greenlet cost ~14 us of CPU here, handing a task to a waiting one under 1 us (docs/performance/engine-call.md,
"the engine's own path").
On this backend the process's garbage collector gets a first threshold of 10,000 instead of Python's 700
(``young_threshold``), unless the program set its own: docs/performance/engine-call.md, "where CPU time goes beyond
instructions".
``threads``: a ThreadPoolExecutor, what most teams run today; kept for comparison and for programs
that cannot be monkey-patched. A running thread cannot be killed, so cancellation there stops new
work at once and lets in-flight calls finish (bounded by botocore's timeouts) with results dropped.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

__all__ = ["Backend", "GeventBackend", "ThreadBackend", "backend_for"]


# The collector's first threshold on the gevent backend. With Python's 700, 100 calls in flight keep
# enough young objects alive that each lives through several young collections and is promoted: a
# warm ListTables ran ~60 young, ~5 middle and ~0.5 full collections per 1,000 calls, and a full one
# walks the whole heap (botocore's models: 45-60 ms each), 45-57 µs of CPU a call in the collector,
# 8% of a call and six times its share of instructions (the heap walks miss the caches). At 10,000
# it is under 2 young and no full collection per 1,000 calls, 10-16 µs a call in the collector.
_YOUNG = 10_000
_PYTHON_DEFAULTS = {(700, 10, 10), (2000, 10, 10), (2000, 10, 0)}  # 3.10-3.12, 3.13, 3.14
_young_set = False


def young_threshold() -> bool:
    """Raise the collector's first threshold to ``_YOUNG``, once per process, if it is still Python's
    default (a program that set its own keeps it, and one that sets it later wins). True if changed."""
    global _young_set
    if _young_set:
        return False
    _young_set = True
    current = gc.get_threshold()
    if current not in _PYTHON_DEFAULTS or current[0] >= _YOUNG:
        return False
    gc.set_threshold(_YOUNG, *current[1:])
    return True


class Task(Protocol):
    def kill(self) -> None: ...


class Backend(Protocol):
    name: str

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Task: ...
    def queue(self) -> Any: ...
    def semaphore(self, value: int) -> Any: ...
    def event(self) -> Any: ...
    def sleep(self, seconds: float) -> None: ...
    def shutdown(self) -> None: ...


class GeventBackend:
    name = "gevent"

    def __init__(self, max_idle: int = 1024) -> None:
        import gevent
        import gevent.event
        import gevent.lock
        import gevent.queue

        self._gevent = gevent
        self.queue = gevent.queue.Queue
        self.semaphore = gevent.lock.Semaphore
        self.event = gevent.event.Event
        self.sleep = gevent.sleep
        self._max_idle = max_idle
        self._jobs: Any = gevent.queue.Queue()  # tasks for idle workers; None tells one to exit
        self._idle = 0  # workers waiting on _jobs (one hub per thread: no lock needed)
        young_threshold()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Task:
        job = _Job(fn, args)
        if self._idle > self._jobs.qsize():  # a waiting worker will take it
            self._jobs.put(job)
        else:
            self._gevent.spawn(self._work, job)
        return job

    @property
    def idle(self) -> int:
        """Workers waiting for a task."""
        return self._idle

    def shutdown(self) -> None:
        for _ in range(self._idle):
            self._jobs.put(None)

    def _work(self, job: _Job | None) -> None:
        """Run a task, then wait for the next, while fewer than ``max_idle`` workers wait. A task
        killed while running raises GreenletExit here: this worker ends with it."""
        me = self._gevent.getcurrent()
        while job is not None:
            job.run(me, self._gevent.get_hub())
            if self._idle >= self._max_idle:
                return
            self._idle += 1
            try:
                job = self._jobs.get()
            finally:
                self._idle -= 1


class _Job:
    """One task of a GeventBackend: ``kill()`` cancels it if no worker took it yet, or ends the
    worker running it, never the task a reused worker runs next. The kill is thrown from the hub,
    as gevent's own non-blocking kill is, but only if this task still runs there at that moment:
    by then the worker may have finished it and taken another."""

    __slots__ = ("fn", "args", "worker", "hub")

    def __init__(self, fn: Callable[..., Any] | None, args: tuple[Any, ...]):
        self.fn, self.args = fn, args
        self.worker: Any = None
        self.hub: Any = None

    def run(self, worker: Any, hub: Any) -> None:
        fn, args = self.fn, self.args
        if fn is None:  # killed before it started
            return
        self.worker, self.hub = worker, hub
        try:
            fn(*args)
        except Exception:  # as a plain greenlet would: reported by the hub, the worker goes on
            hub.handle_error(worker, *sys.exc_info())
        finally:
            self.fn, self.args, self.worker = None, (), None

    def kill(self) -> None:
        self.fn = None
        if self.worker is not None:
            self.hub.loop.run_callback(self._throw, self.worker)

    def _throw(self, worker: Any) -> None:
        if self.worker is not worker:  # it finished meanwhile: the worker is idle or on another task
            return
        try:
            worker.throw()  # GreenletExit: the task unwinds, the worker ends
        except BaseException:
            self.hub.handle_error(worker, *sys.exc_info())


class ThreadBackend:
    name = "threads"
    queue = queue.Queue
    semaphore = threading.Semaphore
    event = threading.Event
    sleep = staticmethod(time.sleep)

    def __init__(self, max_workers: int = 256):
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="greenfetch")

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Task:
        return _Future(self._pool.submit(fn, *args))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Future:
    __slots__ = ("_f",)

    def __init__(self, future: Future[Any]):
        self._f = future

    def kill(self) -> None:
        self._f.cancel()


def backend_for(kind: str, max_workers: int = 256) -> Backend:
    """``max_workers``: threads in the pool, or greenlets kept waiting for work."""
    return GeventBackend(max_workers) if kind == "gevent" else ThreadBackend(max_workers)
