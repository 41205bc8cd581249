"""Two ways to run work concurrently behind one small interface.

``gevent`` (the default): greenlets on a patched standard library; in-flight work can be killed.
``threads``: a ThreadPoolExecutor, what most teams run today; kept for comparison and for programs
that cannot be monkey-patched. A running thread cannot be killed, so cancellation there stops new
work at once and lets in-flight calls finish (bounded by botocore's timeouts) with results dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

__all__ = ["Backend", "GeventBackend", "ThreadBackend", "backend_for"]


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

    def __init__(self) -> None:
        import gevent
        import gevent.event
        import gevent.lock
        import gevent.queue

        self._gevent = gevent
        self.queue = gevent.queue.Queue
        self.semaphore = gevent.lock.Semaphore
        self.event = gevent.event.Event
        self.sleep = gevent.sleep

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Task:
        greenlet = self._gevent.spawn(fn, *args)
        return _Greenlet(greenlet)

    def shutdown(self) -> None:
        pass


class _Greenlet:
    __slots__ = ("_g",)

    def __init__(self, greenlet: Any):
        self._g = greenlet

    def kill(self) -> None:
        self._g.kill(block=False)


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
    return GeventBackend() if kind == "gevent" else ThreadBackend(max_workers)  # type: ignore[return-value]
