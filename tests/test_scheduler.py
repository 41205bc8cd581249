"""The one bounded fan-out (greenfetch._scheduler.iter_bounded), on both backends, with no AWS at all."""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import SimpleNamespace
from typing import Any
from weakref import WeakSet

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._backends import GeventBackend, ThreadBackend
from greenfetch._scheduler import feed_bounded, iter_bounded


@pytest.fixture(params=["gevent", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    made = GeventBackend() if request.param == "gevent" else ThreadBackend(16)
    yield made
    made.shutdown()


class Peak:
    """run(index, item) that records how many runs overlap. The first ``fill`` runs hold (events, with
    a deadline) until all of them run at once, then until the scheduler either waits for a free slot
    (``events``, below) or has started one more run: a scheduler that admits ``fill`` at a time shows a
    peak of exactly ``fill``, one that lets more through shows more."""

    def __init__(self, backend: Any, fill: int) -> None:
        self.event, self.fill = backend.event, fill
        self.full, self.released = backend.event(), backend.event()
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def events(self) -> Any:
        """The backend's event, releasing the holders when someone (the feeder, every slot held) must
        wait on it."""
        inner, released = self.event(), self.released

        class Wake:
            def wait(self) -> None:
                released.set()
                inner.wait()

            def set(self) -> None:
                inner.set()

            def clear(self) -> None:
                inner.clear()

        return Wake()

    def __call__(self, index: int, item: Any) -> tuple[int, Any]:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if self.now >= self.fill:
                self.full.set()
            if self.now > self.fill:
                self.released.set()
        if index < self.fill:  # with a scheduler that admits fewer, the holders give up after 10 s
            self.full.wait(10) and self.released.wait(10)
        with self.lock:
            self.now -= 1
        return index, item


@settings(max_examples=25, deadline=None)
@given(items=st.lists(st.integers(), max_size=60), limit=st.integers(1, 9))
def test_every_item_runs_once_and_comes_back_with_its_index(items: list[int], limit: int) -> None:
    backend = GeventBackend()
    outcomes = sorted(iter_bounded(backend, items, lambda i, item: (i, item), limit))
    assert outcomes == list(enumerate(items))


def test_never_more_than_limit_at_once(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Peak(backend, 4)
    monkeypatch.setattr(backend, "event", run.events)
    assert len(list(iter_bounded(backend, range(200), run, 4))) == 200
    assert run.peak == 4  # the limit, reached and never passed


def test_items_are_pulled_lazily(backend: Any) -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10_000):
            pulled.append(i)
            yield i

    stream = iter_bounded(backend, items(), lambda i, item: item, 3)
    assert len([next(stream) for _ in range(5)]) == 5
    assert len(pulled) <= 5 + 3 + 1  # taken, in flight, the one the feeder waits to start
    stream.close()


def test_stop_ends_the_stream_after_the_outcome_that_asked() -> None:
    outcomes = list(iter_bounded(GeventBackend(), range(100), lambda i, item: item, 1, stop=lambda o: o == 7))
    assert outcomes == list(range(8))


def test_an_input_error_comes_after_the_outcomes_of_the_items_before_it(backend: Any) -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("line 6 is not JSON")

    seen: list[int] = []
    with pytest.raises(ValueError, match="line 6"):
        for outcome in iter_bounded(backend, items(), lambda i, item: item, 2):
            seen.append(outcome)
    assert sorted(seen) == [0, 1, 2, 3, 4]


def test_a_slot_taken_and_given_back_calls_no_semaphore_or_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24, part 7e (docs/performance/engine-call.md): a slot is a list's pop (the feeder) and append (the
    consumer); the event is touched only when the feeder has to wait for a slot. Before, each item
    cost a semaphore ``acquire`` and ``release`` and the stop event's ``is_set`` (3 calls an item,
    ~2k instructions on gevent)."""
    backend = GeventBackend()
    calls: Counter[str] = Counter()

    def counted(make: Any) -> Any:
        def made(*args: Any) -> Any:
            inner = make(*args)

            class Counted:
                def __getattr__(self, name: str) -> Any:
                    method = getattr(inner, name)

                    def call(*a: Any, **k: Any) -> Any:
                        calls[name] += 1
                        return method(*a, **k)

                    return call

            return Counted()

        return made

    monkeypatch.setattr(backend, "semaphore", counted(backend.semaphore))
    monkeypatch.setattr(backend, "event", counted(backend.event))
    assert sorted(iter_bounded(backend, range(1000), lambda i, item: item, 10)) == list(range(1000))
    # here the feeder waits once per 10 items (the limit): 2 clears, a wait and a set; 3,000 before
    assert sum(calls.values()) <= 500, calls


@settings(max_examples=30, deadline=None)
@given(
    delays=st.lists(st.sampled_from([0.0, 0.0, 0.0001, 0.001]), max_size=40),
    limit=st.integers(1, 6),
    consumer_delay=st.sampled_from([0.0, 0.0005]),
)
def test_no_slot_is_lost_between_os_threads(delays: list[float], limit: int, consumer_delay: float) -> None:
    """On OS threads the feeder and the consumer race for the slots' list and the event: every item
    still comes back once, never more than ``limit`` run at once, and the stream ends (a wake-up
    lost between the feeder's check and its wait would hang it: the watchdog reports that)."""
    backend = ThreadBackend(8)
    now, peak, lock = [0], [0], threading.Lock()

    def run(index: int, delay: float) -> int:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(delay)
        with lock:
            now[0] -= 1
        return index

    seen: list[int] = []

    def consume() -> None:
        for index in iter_bounded(backend, delays, run, limit):
            seen.append(index)
            time.sleep(consumer_delay)

    try:
        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        consumer.join(5)
        assert not consumer.is_alive(), f"the stream hung after {len(seen)} of {len(delays)}"
    finally:
        backend.shutdown()
    assert sorted(seen) == list(range(len(delays))) and peak[0] <= limit


# Mutation audit (docs/testing.md): each test below failed on a one-line change to _scheduler.py
# that every test above let through.


class _JoinableThreads(ThreadBackend):
    """A thread backend whose spawned tasks a test can wait for (a thread cannot be killed)."""

    def __init__(self) -> None:
        super().__init__(8)
        self.futures: list[Future[Any]] = []
        self.pool = ThreadPoolExecutor(8)

    def spawn(self, fn: Any, *args: Any) -> Any:
        future = self.pool.submit(fn, *args)
        self.futures.append(future)
        return SimpleNamespace(kill=future.cancel)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        super().shutdown()


def test_on_threads_no_item_starts_after_stop() -> None:
    """A feeder thread cannot be killed: once the consumer stopped, the next item it pulls is not
    started, though slots are free (the engine's fail-fast: no request after the failure)."""
    backend, gate, ran = _JoinableThreads(), threading.Event(), []

    def items() -> Iterator[int]:
        yield 0
        gate.wait(10)  # the consumer stops meanwhile
        yield from range(1, 10)

    def run(index: int, item: int) -> int:
        ran.append(item)
        return item

    try:
        assert list(iter_bounded(backend, items(), run, 5, stop=lambda outcome: True)) == [0]
        gate.set()
        backend.futures[0].result(10)  # the feeder ends
        wait(backend.futures, 10)
    finally:
        backend.shutdown()
    assert ran == [0]


def test_a_stream_closed_early_kills_the_runs_in_flight() -> None:
    backend = GeventBackend()
    never, killed, all_killed = backend.event(), [], backend.event()

    def run(index: int, item: int) -> int:
        if index:
            try:
                never.wait()
            except BaseException:  # GreenletExit, thrown by the kill
                killed.append(index)
                if len(killed) == 3:
                    all_killed.set()
                raise
        return index

    assert list(iter_bounded(backend, range(4), run, 4, stop=lambda outcome: outcome == 0)) == [0]
    assert all_killed.wait(5) and sorted(killed) == [1, 2, 3]


def test_finished_runs_are_not_kept() -> None:
    """Memory stays bounded by the limit, not by the number of items: a task is dropped once it ran."""
    backend, live = GeventBackend(), WeakSet[Any]()
    spawn = backend.spawn

    class Handle:
        def __init__(self, task: Any) -> None:
            self.task = task

        def kill(self) -> None:
            self.task.kill()

    def spawn_tracked(fn: Any, *args: Any) -> Any:
        handle = Handle(spawn(fn, *args))
        live.add(handle)
        return handle

    backend.spawn = spawn_tracked  # type: ignore[method-assign]
    stream = iter_bounded(backend, range(300), lambda i, item: item, 4)
    assert len([next(stream) for _ in range(200)]) == 200
    gc.collect()
    assert len(live) <= 4 + 2  # in flight, and the feeder
    stream.close()


def _fed(backend: Any, items: Any, limit: int, log: list[Any], **kwargs: Any) -> Iterator[Any]:
    """feed_bounded as the worker-process pool drives it: each item's outcome arrives in a message
    of its own, after a message that carries none (a metrics delta)."""
    inbox = backend.queue()

    def start(index: int, item: Any) -> None:
        inbox.put([])
        inbox.put([(index, item)])

    return feed_bounded(
        backend,
        items,
        start,
        limit,
        inbox,
        unpack=lambda message: message,
        complete=lambda: log.append("complete"),
        close=lambda: log.append("close"),
        **kwargs,
    )


def test_fed_outcomes_free_their_slots_then_complete_and_close_run_once() -> None:
    log: list[Any] = []
    for outcome in _fed(GeventBackend(), range(20), 2, log):  # a lost slot blocks forever: gevent says so
        log.append(outcome)
    assert sorted(log[:-2]) == list(enumerate(range(20))) and log[-2:] == ["complete", "close"]


def test_fed_stop_ends_the_stream_without_complete() -> None:
    log: list[Any] = []
    for outcome in _fed(GeventBackend(), range(20), 1, log, stop=lambda outcome: outcome[0] == 3):
        log.append(outcome)
    assert log == [(0, 0), (1, 1), (2, 2), (3, 3), "close"]


def test_fed_close_runs_when_the_consumer_breaks_or_the_input_fails() -> None:
    log: list[Any] = []
    stream = _fed(GeventBackend(), range(20), 2, log)
    next(stream)
    stream.close()
    assert log == ["close"]

    def items() -> Iterator[int]:
        yield 0
        raise ValueError("line 2 is not JSON")

    log.clear()
    with pytest.raises(ValueError, match="line 2"):
        for outcome in _fed(GeventBackend(), items(), 2, log):
            log.append(outcome)
    assert log == [(0, 0), "complete", "close"]
