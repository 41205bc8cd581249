"""dedupe_request: the pure table under a fake clock, then Singleflight under real gevent concurrency.

Budget: < 3 s (no sockets except the one batch test against the shared moto server).
"""

import gevent
import gevent.event
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import greenfetch  # noqa: F401  (conftest.py has already patched gevent first)
from greenfetch import ConfigError, Engine
from greenfetch._backends import GeventBackend
from greenfetch._dedupe import CACHED, COALESCED, EXECUTED, DedupeTable, Singleflight
from greenfetch._metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the pure table --------------------------------------------------------------------------


def test_table_in_flight_then_window_then_fresh():
    clock = Clock()
    table = DedupeTable(clock=clock)
    first, second = object(), object()
    assert table.claim("k", 5.0, first) == (EXECUTED, first)
    assert table.claim("k", 5.0, second) == (COALESCED, first)
    table.complete("k", first, "v", 5.0)
    clock.now += 4.999
    assert table.claim("k", 5.0, second) == (CACHED, "v")
    clock.now += 0.002
    assert table.claim("k", 5.0, second) == (EXECUTED, second)
    # the refresh is one flight: everyone after the first miss joins it
    assert table.claim("k", 5.0, object()) == (COALESCED, second)


def test_table_errors_are_never_cached_and_window_zero_never_reuses():
    clock = Clock()
    table = DedupeTable(clock=clock)
    flight = object()
    table.claim("k", 5.0, flight)
    table.fail("k", flight)
    assert table.claim("k", 5.0, "next")[0] == EXECUTED
    table.complete("k", "next", "v", 0.0)
    assert table.claim("k", 0.0, "again")[0] == EXECUTED


def test_table_a_caller_with_a_shorter_window_does_not_get_an_older_value():
    clock = Clock()
    table = DedupeTable(clock=clock)
    table.claim("k", 10.0, "f")
    table.complete("k", "f", "v", 10.0)
    clock.now += 3
    assert table.claim("k", 1.0, "g") == (EXECUTED, "g")


def test_table_stale_completion_does_not_remove_a_newer_flight():
    table = DedupeTable(clock=Clock())
    table.claim("k", 1.0, "old")
    table.fail("k", "old")
    table.claim("k", 1.0, "new")
    table.fail("k", "old")  # late news about the old flight
    assert table.inflight("k") == "new"


def test_table_memory_is_bounded():
    table = DedupeTable(maxsize=100, clock=Clock())
    for i in range(1000):
        table.claim(f"k{i}", 60.0, i)
        table.complete(f"k{i}", i, i, 60.0)
    assert len(table) <= 100


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("ab"), st.floats(0, 3), st.sampled_from(["ok", "fail"])), max_size=30),
    st.floats(0, 2),
)
def test_table_never_serves_a_value_older_than_the_window(ops, window):
    """Invariant: CACHED only within ``window`` of the completion it serves, and only after a success."""
    clock = Clock()
    table = DedupeTable(clock=clock)
    completed: dict[str, float] = {}
    for n, (key, advance, how) in enumerate(ops):
        clock.now += advance
        outcome, found = table.claim(key, window, n)
        if outcome == CACHED:
            assert key in completed and clock.now - completed[key] < window
        elif outcome == EXECUTED:
            if how == "ok":
                table.complete(key, n, n, window)
                completed[key] = clock.now
            else:
                table.fail(key, n)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("ab"),
            st.sampled_from([0.0, 0.5, 1.0, 1.5]),
            st.sampled_from([0.0, 1.0, 2.0]),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_table_serves_the_latest_success_exactly_while_both_windows_hold(ops):
    """Callers with different windows, on a clock that lands on the boundaries: a stored value is served
    exactly when it is the key's latest success, younger than the asking caller's window and than the
    window it was completed with (a success with window 0 leaves nothing to serve, not an older value)."""
    clock = Clock()
    table = DedupeTable(clock=clock)
    latest: dict[str, tuple[int, float, float]] = {}  # key: (value, completed at, its window)
    for n, (key, advance, window, ok) in enumerate(ops):
        clock.now += advance
        outcome, found = table.claim(key, window, n)
        value, at, kept = latest.get(key, (None, 0.0, 0.0))
        age = clock.now - at
        if key in latest and age < window and age < kept:
            assert (outcome, found) == (CACHED, value)
            continue
        assert (outcome, found) == (EXECUTED, n)
        if ok:
            table.complete(key, n, n, window)
            latest[key] = (n, clock.now, window)
        else:
            table.fail(key, n)


# -- Singleflight under gevent ----------------------------------------------------------------


def _flight(metrics=None, clock=None):
    return Singleflight(metrics=metrics, backend=GeventBackend(), **({"clock": clock} if clock else {}))


def _wait_for(predicate):
    """Yield to the hub until ``predicate()`` holds: ordering by the scheduler, not by a timer."""
    for _ in range(100_000):
        if predicate():
            return
        gevent.idle()
    raise AssertionError("condition never became true")


def test_thousand_concurrent_identical_calls_execute_once():
    metrics = Metrics()
    flight = _flight(metrics)
    release, calls = gevent.event.Event(), []

    def fn():
        calls.append(1)
        release.wait()
        return {"answer": 42}

    callers = [gevent.spawn(flight.do, "sig", fn) for _ in range(1000)]
    _wait_for(lambda: metrics.dedupe_total.labels(COALESCED)._value.get() == 999)
    release.set()
    gevent.joinall(callers, raise_error=True)
    assert len(calls) == 1
    assert all(c.value == {"answer": 42} for c in callers)
    assert metrics.dedupe_total.labels(EXECUTED)._value.get() == 1


def test_exception_reaches_every_waiter_and_is_not_cached():
    flight = _flight()
    release, calls = gevent.event.Event(), []

    def boom():
        calls.append(1)
        release.wait()
        raise KeyError("nope")

    callers = [gevent.spawn(flight.do, "sig", boom) for _ in range(10)]
    _wait_for(lambda: flight.table.inflight("sig") is not None and len(calls) == 1)
    gevent.idle()
    release.set()
    gevent.joinall(callers)
    assert all(isinstance(c.exception, KeyError) for c in callers)
    assert flight.do("sig", lambda: "fresh") == "fresh"  # not cached: runs afresh
    assert len(calls) == 1


def test_killed_or_timed_out_waiter_cancels_nothing():
    flight = _flight()
    release, calls = gevent.event.Event(), []

    def fn():
        calls.append(1)
        release.wait()
        return "value"

    starter = gevent.spawn(flight.do, "sig", fn)  # the caller that started the execution
    _wait_for(lambda: calls)
    others = [gevent.spawn(flight.do, "sig", fn) for _ in range(5)]
    with pytest.raises(TimeoutError, match="sig"):
        flight.do("sig", fn, timeout=0.001)
    starter.kill()
    release.set()
    gevent.joinall(others, raise_error=True)
    assert [o.value for o in others] == ["value"] * 5
    assert len(calls) == 1
    assert flight.do("sig", fn) == "value"  # and it was stored for the window


def test_window_expiry_with_a_fake_clock_and_one_refresh_under_load():
    clock = Clock()
    metrics = Metrics()
    flight = _flight(metrics, clock)
    calls = []

    def fn():
        calls.append(1)
        return len(calls)

    assert flight.do("sig", fn, window="5s") == 1
    clock.now += 4.9
    assert flight.do("sig", fn, window=5) == 1
    clock.now += 0.2
    release = gevent.event.Event()

    def slow():
        calls.append(1)
        release.wait()
        return len(calls)

    callers = [gevent.spawn(flight.do, "sig", slow, 5) for _ in range(50)]
    _wait_for(lambda: metrics.dedupe_total.labels(COALESCED)._value.get() == 49)
    release.set()
    gevent.joinall(callers, raise_error=True)
    assert {c.value for c in callers} == {2}
    assert len(calls) == 2
    assert metrics.dedupe_total.labels(CACHED)._value.get() == 1


def test_thread_primitives_without_a_backend():
    flight = Singleflight()
    assert flight.do("k", lambda: 1, window=0) == 1
    assert flight.do("k", lambda: 2, window=0) == 2  # window 0: nothing reused


@pytest.mark.parametrize("signature", [123, None, b"bytes", ("s3", "ListBuckets")])
def test_signature_must_be_a_string(signature):
    with pytest.raises(ConfigError, match="signature") as info:
        _flight().do(signature, lambda: 1)
    assert repr(signature) in str(info.value)


@pytest.mark.parametrize("fn", [None, 5, "s3:ListBuckets"])
def test_fn_must_be_callable(fn):
    """A ConfigError that names the value, before anything runs (not a TypeError from the flight)."""
    with pytest.raises(ConfigError, match="not callable") as info:
        _flight().do("k", fn)
    assert repr(fn) in str(info.value)


@pytest.mark.parametrize("window", [-1, "-2s", "soon", float("nan"), True])
def test_bad_window_is_named(window):
    with pytest.raises(ConfigError, match="window"):
        _flight().do("k", lambda: 1, window=window)


def test_window_accepts_durations():
    clock = Clock()
    flight = _flight(clock=clock)
    flight.do("k", lambda: "a", window="500ms")
    clock.now += 0.4
    assert flight.do("k", lambda: "b", window="500ms") == "a"
    clock.now += 0.2
    assert flight.do("k", lambda: "c", window="500ms") == "c"


# -- inside batches ---------------------------------------------------------------------------


def test_identical_requests_in_a_batch_run_once(moto_server):
    engine = Engine(greenfetch.Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}))
    same = {"service": "s3", "operation": "ListBuckets"}
    other = {"service": "sts", "operation": "GetCallerIdentity"}
    results = engine.batch_requests([same, same, other, same, same], concurrency=5, dedupe_window=5)
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert all(r.ok for r in results), [r.error for r in results]
    executed = engine.metrics.dedupe_total.labels(EXECUTED)._value.get()
    assert executed == 2
    assert sum(r.deduped for r in results) == 3
    assert results[0].result is not results[1].result
    # a second batch within the window reuses the values
    again = engine.batch_requests([same], dedupe_window=5)
    assert again[0].deduped and engine.metrics.dedupe_total.labels(CACHED)._value.get() >= 1
    with pytest.raises(ConfigError, match="window"):
        engine.batch_requests([same], dedupe_window=-1)
    engine.close()
