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
    """run(index, item) that records how many runs overlap."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, index: int, item: Any) -> tuple[int, Any]:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        with self.lock:
            self.now -= 1
        return index, item


@settings(max_examples=25, deadline=None)
@given(items=st.lists(st.integers(), max_size=60), limit=st.integers(1, 9))
def test_every_item_runs_once_and_comes_back_with_its_index(items: list[int], limit: int) -> None:
    backend = GeventBackend()
    outcomes = sorted(iter_bounded(backend, items, lambda i, item: (i, item), limit))
    assert outcomes == list(enumerate(items))


def test_never_more_than_limit_at_once(backend: Any) -> None:
    run = Peak()
    assert len(list(iter_bounded(backend, range(200), run, 4))) == 200
    assert 1 <= run.peak <= 4


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
