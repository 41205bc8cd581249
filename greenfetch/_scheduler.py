"""One bounded fan-out, apart from AWS: items in, ``run(index, item)`` on at most ``limit`` at once,
outcomes out as they complete.

The engine's batches, the inventory's credential prefetch and the demo's seeding all use this one
loop. It pulls items lazily and frees a slot only when the consumer has taken an outcome, so memory
stays bounded by ``limit``, not by the number of items. Closing the iterator early (``stop`` said so,
the consumer broke out, or Ctrl-C) kills what is in flight and stops the feeder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ._backends import Backend

__all__ = ["FeedEnd", "iter_bounded"]

T = TypeVar("T")
R = TypeVar("R")


class FeedEnd:
    """What a feeder puts on its outcome queue last: how many items it started, and the input's error,
    if the input raised (re-raised after the outcomes of the items before it). The worker-process pool's
    feeder ends its runs the same way."""

    __slots__ = ("started", "error")

    def __init__(self, started: int, error: BaseException | None = None):
        self.started, self.error = started, error


def iter_bounded(backend: Backend, items: Iterable[T], run: Callable[[int, T], R], limit: int, *,
                 stop: Callable[[R], bool] | None = None) -> Iterator[R]:
    """``run(index, item)`` for every item, at most ``limit`` at once; outcomes as they complete.

    ``run`` must not raise (turn failures into outcomes). After an outcome for which ``stop`` is
    true nothing more is yielded and everything in flight is killed. An exception raised by
    ``items`` itself is re-raised after the outcomes of the items that came before it."""
    slots, done, stopping = backend.semaphore(limit), backend.queue(), backend.event()
    tasks: dict[int, Any] = {}

    def one(index: int, item: T) -> None:
        try:
            done.put(run(index, item))
        finally:
            tasks.pop(index, None)

    def feed() -> None:
        started = 0
        try:
            for index, item in enumerate(items):
                slots.acquire()
                if stopping.is_set():
                    break
                tasks[index] = backend.spawn(one, index, item)
                started += 1
        except Exception as exc:  # a failing input iterator ends the run; the consumer re-raises it
            done.put(FeedEnd(started, exc))
            return
        done.put(FeedEnd(started))

    feeder = backend.spawn(feed)
    received, end = 0, None
    try:
        while end is None or received < end.started:
            outcome = done.get()
            if isinstance(outcome, FeedEnd):
                end = outcome
                continue
            received += 1
            yield outcome
            slots.release()
            if stop is not None and stop(outcome):
                return
        if end.error is not None:
            raise end.error
    finally:
        stopping.set()
        slots.release()  # wake the feeder if it waits for a slot, so it sees `stopping`
        feeder.kill()
        for task in list(tasks.values()):
            task.kill()
