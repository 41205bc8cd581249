"""The one bounded fan-out (greenfetch._scheduler.iter_bounded), on both backends, with no AWS at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._backends import GeventBackend, ThreadBackend
from greenfetch._scheduler import iter_bounded


@pytest.fixture(params=["gevent", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    made = GeventBackend() if request.param == "gevent" else ThreadBackend(16)
    yield made
    made.shutdown()


class Peak:
    """run(index, item) that records how many runs overlap. The first ``fill`` runs hold (events, with
    a deadline) until all of them run at once, then until the scheduler either waits for a free slot
    (``slots``, below) or has started one more run: a scheduler that admits ``fill`` at a time shows a
    peak of exactly ``fill``, one that lets more through shows more."""

    def __init__(self, backend: Any, fill: int) -> None:
        self.semaphore, self.fill = backend.semaphore, fill
        self.full, self.released = backend.event(), backend.event()
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def slots(self, value: int) -> Any:
        """The backend's semaphore, releasing the holders when someone (the feeder) must wait on it."""
        inner, released = self.semaphore(value), self.released

        class Slots:
            def acquire(self) -> None:
                if not inner.acquire(blocking=False):
                    released.set()
                    inner.acquire()

            def release(self) -> None:
                inner.release()

        return Slots()

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
    monkeypatch.setattr(backend, "semaphore", run.slots)
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
