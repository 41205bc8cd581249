"""One bounded fan-out, apart from AWS: items in, ``run(index, item)`` on at most ``limit`` at once,
outcomes out as they complete.

The engine's batches, the inventory's credential prefetch and the demo's seeding all use this one
loop (``iter_bounded``), and the worker-process pool feeds its children with the same loop
(``feed_bounded``, which leaves to its caller where an item runs). It pulls items lazily and frees a
slot only when the consumer has taken an outcome, so memory stays bounded by ``limit``, not by the
number of items. Closing the iterator early (``stop`` said so, the consumer broke out, or Ctrl-C)
kills what is in flight and stops the feeder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ._backends import Backend, Task

__all__ = ["FeedEnd", "feed_bounded", "iter_bounded"]

T = TypeVar("T")
R = TypeVar("R")


class FeedEnd:
    """What the feeder puts on its outcome queue last: how many items it started, and the input's
    error, if the input raised (re-raised after the outcomes of the items before it)."""

    __slots__ = ("started", "error")

    def __init__(self, started: int, error: BaseException | None = None):
        self.started, self.error = started, error


def iter_bounded(
    backend: Backend,
    items: Iterable[T],
    run: Callable[[int, T], R],
    limit: int,
    *,
    stop: Callable[[R], bool] | None = None,
) -> Iterator[R]:
    """``run(index, item)`` for every item, at most ``limit`` at once; outcomes as they complete.

    ``run`` must not raise (turn failures into outcomes). After an outcome for which ``stop`` is
    true nothing more is yielded and everything in flight is killed. An exception raised by
    ``items`` itself is re-raised after the outcomes of the items that came before it."""
    done = backend.queue()
    tasks: dict[int, Task] = {}

    def one(index: int, item: T) -> None:
        try:
            done.put(run(index, item))
        finally:
            tasks.pop(index, None)

    def start(index: int, item: T) -> None:
        tasks[index] = backend.spawn(one, index, item)

    def kill_in_flight() -> None:
        for task in list(tasks.values()):
            task.kill()

    return feed_bounded(backend, items, start, limit, done, stop=stop, close=kill_in_flight)


def feed_bounded(
    backend: Backend,
    items: Iterable[T],
    start: Callable[[int, T], None],
    limit: int,
    inbox: Any,
    *,
    unpack: Callable[[Any], Iterable[R]] | None = None,
    stop: Callable[[R], bool] | None = None,
    complete: Callable[[], None] | None = None,
    close: Callable[[], None] | None = None,
) -> Iterator[R]:
    """The loop under ``iter_bounded``, for whatever runs the items: a feeder pulls the next item only
    when one of ``limit`` slots is free and hands it to ``start(index, item)``, which sees to it that
    its outcome reaches ``inbox``. What comes off ``inbox`` is an outcome, or with ``unpack`` a message
    that ``unpack`` turns into outcomes (none or several: a worker process's batch of results).

    A slot frees only when the consumer has taken an outcome. After an outcome for which ``stop`` is
    true nothing more is yielded. Once every started item's outcome is in, ``complete()`` runs, then an
    exception raised by ``items`` itself is re-raised. However the stream ends, the feeder stops and
    ``close()`` runs."""
    # The slots: a token per free slot in a list, and an event the feeder waits on when there is none.
    # Only the feeder pops and only the consumer appends, each one atomic step (on OS threads too),
    # so a slot taken or given back is a list operation; the event is set once per wait of the
    # feeder (a semaphore's acquire and release, and a stop event read per item, were ~2k
    # instructions a request on gevent).
    free: list[None] = [None] * limit
    wake = backend.event()
    waiting = stopped = False

    def feed() -> None:
        nonlocal waiting
        started = 0
        try:
            for index, item in enumerate(items):
                if not free:  # every slot held: wait for the consumer to give one back (or to stop)
                    while True:
                        wake.clear()
                        waiting = True  # after the clear, before the check: a slot given back sets `wake`
                        if free or stopped:
                            break
                        wake.wait()
                    waiting = False
                if stopped:
                    break
                free.pop()
                start(index, item)
                started += 1
        except Exception as exc:  # a failing input iterator ends the run; the consumer re-raises it
            inbox.put(FeedEnd(started, exc))
            return
        inbox.put(FeedEnd(started))

    feeder = backend.spawn(feed)
    received, end = 0, None
    try:
        while end is None or received < end.started:
            message = inbox.get()
            if isinstance(message, FeedEnd):
                end = message
                continue
            if unpack is None:  # the engine's path, written out: a 1-tuple and an inner loop cost ~5% here
                received += 1
                yield message
                free.append(None)
                if waiting:  # once per wait: the feeder takes every slot given back meanwhile
                    waiting = False
                    wake.set()
                if stop is not None and stop(message):
                    return
                continue
            for outcome in unpack(message):
                received += 1
                yield outcome
                free.append(None)
                if waiting:  # once per wait: the feeder takes every slot given back meanwhile
                    waiting = False
                    wake.set()
                if stop is not None and stop(outcome):
                    return
        if complete is not None:
            complete()
        if end.error is not None:
            raise end.error
    finally:
        stopped = True
        wake.set()  # wake the feeder if it waits for a slot, so it sees `stopped`
        feeder.kill()
        if close is not None:
            close()
