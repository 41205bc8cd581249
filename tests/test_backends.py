"""The gevent backend's long-lived workers: a task handed to a waiting greenlet, never to the wrong one.

Reuse is what makes ``spawn`` cheap (docs/performance/engine-call.md, the engine's own path); these tests pin
what reuse must not change: every task runs once, ``kill`` reaches only its own task, a failing task
does not take its worker down, and idle workers stay bounded.
"""

from __future__ import annotations

import gc
from typing import Any

import gevent
import gevent.event
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._backends import GeventBackend
from greenfetch.testing import wait_until


def test_sequential_batches_reuse_the_same_workers() -> None:
    backend = GeventBackend()
    seen: list[Any] = []
    for _ in range(3):
        done = [gevent.event.Event() for _ in range(20)]
        for event in done:
            backend.spawn(lambda e: (seen.append(gevent.getcurrent()), e.set()), event)
        for event in done:
            event.wait()
        gevent.sleep(0)  # let the workers go back to waiting
    assert len(seen) == 60
    assert len(set(seen)) <= 20  # the second and third batches found the first batch's workers
    assert backend.idle == len(set(seen))
    backend.shutdown()
    wait_until(lambda: backend.idle == 0, what="idle workers to end at shutdown")


def test_idle_workers_are_capped() -> None:
    backend = GeventBackend(max_idle=3)
    gate = gevent.event.Event()
    for _ in range(10):
        backend.spawn(gate.wait)
    gate.set()
    wait_until(lambda: backend.idle == 3, what="three workers left waiting")
    gevent.sleep(0)
    assert backend.idle == 3


def test_kill_before_start_means_the_task_never_runs() -> None:
    backend = GeventBackend()
    ran: list[int] = []
    finished = gevent.event.Event()
    backend.spawn(finished.set)
    finished.wait()
    gevent.sleep(0)  # one idle worker now
    assert backend.idle == 1
    task = backend.spawn(ran.append, 1)  # queued for the idle worker, which has not run yet
    task.kill()
    backend.spawn(ran.append, 2)
    wait_until(lambda: ran == [2], what="the second task")
    gevent.sleep(0)
    assert ran == [2]


def test_killing_a_finished_task_leaves_its_worker_s_next_task_alone() -> None:
    backend = GeventBackend()
    first_done = gevent.event.Event()
    first = backend.spawn(first_done.set)
    first_done.wait()
    gevent.sleep(0)
    release, second_done = gevent.event.Event(), gevent.event.Event()

    def second() -> None:
        release.wait()
        second_done.set()

    backend.spawn(second)  # the same worker takes it (the only one waiting)
    gevent.sleep(0)
    first.kill()  # must not reach the worker, which now runs `second`
    release.set()
    assert second_done.wait(timeout=5)


def test_killing_a_running_task_ends_it_and_its_worker() -> None:
    backend = GeventBackend()
    started, finished = gevent.event.Event(), []

    def slow() -> None:
        started.set()
        gevent.sleep(60)
        finished.append(True)

    task = backend.spawn(slow)
    started.wait()
    task.kill()
    gevent.sleep(0)
    assert finished == []
    assert backend.idle == 0  # the killed worker ended instead of waiting for more


def test_a_failing_task_is_reported_and_its_worker_goes_on(capsys: Any) -> None:
    backend = GeventBackend()

    def boom() -> None:
        raise RuntimeError("task failed")

    backend.spawn(boom)
    wait_until(lambda: backend.idle == 1, what="the worker to wait for more")
    after = gevent.event.Event()
    backend.spawn(after.set)
    assert after.wait(timeout=5)
    assert "task failed" in capsys.readouterr().err  # reported by the hub, as a plain greenlet's would be


@settings(max_examples=30, deadline=None)
@given(batches=st.lists(st.lists(st.booleans(), max_size=12), max_size=5))
def test_every_task_runs_exactly_once_across_reuse(batches: list[list[bool]]) -> None:
    """Tasks that yield (True) or not, in batches: each runs once, on some worker, whatever reuse did."""
    backend = GeventBackend(max_idle=4)
    ran: list[tuple[int, int]] = []
    for b, batch in enumerate(batches):
        events = []
        for t, yields in enumerate(batch):
            done = gevent.event.Event()

            def task(b: int = b, t: int = t, yields: bool = yields, done: Any = done) -> None:
                if yields:
                    gevent.sleep(0)
                ran.append((b, t))
                done.set()

            backend.spawn(task)
            events.append(done)
        for done in events:
            done.wait()
    assert sorted(ran) == [(b, t) for b, batch in enumerate(batches) for t in range(len(batch))]
    assert backend.idle <= 4
    backend.shutdown()


# -- the collector's first threshold (docs/performance/engine-call.md, "where CPU time goes beyond instructions") --


@pytest.fixture
def fresh_collector(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Python's default thresholds and a process that has not yet made a gevent backend; restored after."""
    import greenfetch._backends as backends

    saved = gc.get_threshold()
    monkeypatch.setattr(backends, "_young_set", False)
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_the_gevent_backend_raises_python_s_default_first_threshold(fresh_collector: Any) -> None:
    GeventBackend()
    assert gc.get_threshold() == (10_000, 10, 10)


def test_a_threshold_the_program_set_is_kept(fresh_collector: Any) -> None:
    gc.set_threshold(1_234, 5, 7)
    GeventBackend()
    assert gc.get_threshold() == (1_234, 5, 7)


def test_the_threshold_is_set_once_so_a_later_choice_wins(fresh_collector: Any) -> None:
    GeventBackend()
    gc.set_threshold(700, 10, 10)  # the program chose Python's values after the first engine
    GeventBackend()
    assert gc.get_threshold() == (700, 10, 10)


def test_the_thread_backend_leaves_the_collector_alone(fresh_collector: Any) -> None:
    from greenfetch._backends import ThreadBackend

    ThreadBackend(4).shutdown()
    assert gc.get_threshold() == (700, 10, 10)
