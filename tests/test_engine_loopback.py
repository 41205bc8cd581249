"""The engine against the loopback server: cancellation, retries and batch invariants under faults.

Budget: ~10 s. Cancellation is observed from the server side (its in-flight count and its count of
clients that hung up), never by wall time; retries are counted against the server's request count.
"""

import greenfetch  # noqa: F401  (first: gevent patches before botocore)

import gc
import time

import gevent
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenfetch import BatchFailed, Config, Engine
from greenfetch.testing import LoopbackServer

LIST = {"service": "dynamodb", "operation": "ListTables"}
FAIL = {"service": "dynamodb", "operation": "DescribeTable", "params": {"TableName": "t"}}
BAD = {"service": "dynamodb", "operation": "NoSuchOperationHere"}


def engine_for(server, max_attempts=1):
    return Engine(Config.resolve({"region": "us-east-1", "endpoint_url": server.url,
                                  "max_attempts": max_attempts}))


def live_greenlets() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, gevent.Greenlet) and not obj.dead)


def wait_until(predicate, timeout=10.0):
    """Poll (yielding to the hub) until ``predicate()`` holds; the timeout only bounds a failing test."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.01)
    return True


def test_fail_fast_cancels_queued_and_inflight_work():
    # ListTables would take 60 s; DescribeTable fails at once. Reaching zero in flight within the
    # 10 s poll bound can only mean the engine hung up on the nine slow calls.
    server = LoopbackServer(latency=60.0, targets={"DynamoDB_20120810.DescribeTable": {"latency": 0,
                                                                                       "error_rate": 1.0}})
    with server:
        engine = engine_for(server)
        engine.execute(FAIL)  # warm the client, so the slow calls are all in flight before the failure
        server.reset_stats()
        before = live_greenlets()
        pulled = []

        def requests():
            for i in range(200):
                pulled.append(i)
                yield FAIL if i == 9 else LIST

        with pytest.raises(BatchFailed) as caught:
            engine.batch_requests(requests(), concurrency=10, fail_fast=True)
        assert caught.value.failure.error_code == "InternalServerError"
        assert [r.index for r in caught.value.results] == [9]
        assert len(pulled) <= 11  # the queue was not drained: at most one request beyond the slots
        assert wait_until(lambda: server.stats()["inflight"] == 0)
        stats = server.stats()
        assert stats["requests"] == 10
        assert stats["cancelled"] == 9
        assert wait_until(lambda: live_greenlets() <= before)


@pytest.fixture(scope="module")
def server():
    srv = LoopbackServer(latency=0.0)
    with srv:
        yield srv


def test_retries_are_counted_in_attempts_under_5xx(server):
    server.control(latency=0.0, error_rate=1.0, throttle_rate=0.0, seed=1)
    server.reset_stats()
    results = engine_for(server, max_attempts=3).batch_requests([LIST] * 5, concurrency=5)
    assert {(r.error_code, r.retryable, r.attempts) for r in results} == {("InternalServerError", True, 3)}
    assert server.stats()["requests"] == 15


def test_retries_under_throttling_match_the_server_count(server):
    server.control(latency=0.0, error_rate=0.0, throttle_rate=0.5, seed=2)
    server.reset_stats()
    results = engine_for(server, max_attempts=3).batch_requests([LIST] * 40, concurrency=20)
    stats = server.stats()
    assert sum(r.attempts for r in results) == stats["requests"]
    assert stats["throttled"] + stats["ok"] == stats["requests"]
    assert any(r.ok and r.attempts > 1 for r in results)  # a throttled call that succeeded on retry
    assert all(r.attempts == 3 for r in results if not r.ok)
    server.control(throttle_rate=0.0)


faults = st.fixed_dictionaries({
    "error_rate": st.sampled_from([0.0, 0.1, 0.3]), "throttle_rate": st.sampled_from([0.0, 0.1, 0.3]),
    "drop_rate": st.sampled_from([0.0, 0.1]), "http429_rate": st.sampled_from([0.0, 0.1]),
    "seed": st.integers(0, 1000),
})


def tagged(kinds):
    return [{**req, "id": f"r{i}"} for i, req in enumerate(kinds)]


@pytest.fixture(scope="module")
def resilient():
    server = LoopbackServer(latency=0.0)
    with server:
        yield server, engine_for(server)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from([LIST, LIST, LIST, BAD]), max_size=30),
       concurrency=st.integers(1, 16), knobs=faults)
def test_resilient_batches_give_one_result_per_request_in_order(resilient, kinds, concurrency, knobs):
    server, engine = resilient
    server.control(**knobs)
    server.reset_stats()
    requests = tagged(kinds)
    results = engine.batch_requests(iter(requests), concurrency=concurrency)
    assert [r.index for r in results] == list(range(len(requests)))
    assert [r.request.id for r in results] == [req["id"] for req in requests]
    stats = server.stats()
    sent = sum(req["operation"] == "ListTables" for req in requests)
    assert stats["requests"] == sent  # no duplicates, no retries (max_attempts=1)
    server_faults = stats["throttled"] + stats["errors"] + stats["http429"] + stats["dropped"]
    failed = [r for r in results if not r.ok]
    assert len(failed) == server_faults + (len(requests) - sent)
    assert all(r.attempts == 0 for r in failed if r.error_code == "UnknownOperation")


@pytest.fixture(scope="module")
def failfast():
    server = LoopbackServer(latency=0.0)
    with server:
        yield server, engine_for(server)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from([LIST, LIST, LIST, BAD]), max_size=30),
       concurrency=st.integers(1, 16), knobs=faults)
def test_fail_fast_never_returns_more_than_it_started(failfast, kinds, concurrency, knobs):
    server, engine = failfast
    server.control(**knobs)
    requests = tagged(kinds)
    pulled = []

    def lazy():
        for req in requests:
            pulled.append(req)
            yield req

    try:
        results = engine.batch_requests(lazy(), concurrency=concurrency, fail_fast=True)
    except BatchFailed as exc:
        indexes = [r.index for r in exc.results]
        assert indexes == sorted(set(indexes))
        assert len(exc.results) <= len(pulled) <= len(requests)
        assert [r for r in exc.results if not r.ok] == [exc.failure]
        assert all(r.request.id == requests[r.index]["id"] for r in exc.results)
    else:
        assert [r.index for r in results] == list(range(len(requests)))
        assert all(r.ok for r in results)
