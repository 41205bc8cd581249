"""The engine against the loopback server: cancellation, retries and batch invariants under faults.

Budget: ~8 s, plus the ``scripts/bench.py --quick`` smoke test (~12 s on a quiet 2-core machine,
~30 s at load average 10; marked slow). Cancellation is observed from the server side (its in-flight
count and its count of clients that hung up), never by wall time; retries are counted against the
server's request count.
"""

import gc
import importlib.util
import subprocess
import sys
from pathlib import Path

import gevent
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenfetch import BatchFailed, Config, Engine
from greenfetch.testing import wait_until

LIST = {"service": "dynamodb", "operation": "ListTables"}
FAIL = {"service": "dynamodb", "operation": "DescribeTable", "params": {"TableName": "t"}}
BAD = {"service": "dynamodb", "operation": "NoSuchOperationHere"}


def engine_for(server, max_attempts=1):
    return Engine(
        Config.resolve({"region": "us-east-1", "endpoint_url": server.url, "max_attempts": max_attempts})
    )


def live_greenlets() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, gevent.Greenlet) and not obj.dead)


def test_fail_fast_cancels_queued_and_inflight_work(loopback):
    # ListTables would take 60 s; DescribeTable fails at once. Reaching zero in flight within the
    # 10 s poll bound can only mean the engine hung up on the nine slow calls.
    server = loopback
    server.control(
        latency=60.0, targets={"DynamoDB_20120810.DescribeTable": {"latency": 0, "error_rate": 1.0}}
    )
    engine = engine_for(server)
    engine.execute(FAIL)  # warm the client, so the slow calls are all in flight before the failure
    server.reset_stats()
    before = live_greenlets()
    pulled = []

    def requests():
        for i in range(200):
            pulled.append(i)
            if i == 9:  # the failure only once the nine slow calls are at the server (on a busy machine
                # the failure could otherwise come back before the last of them was sent, and that one
                # be cancelled unsent: correct, but not the case this test is about)
                wait_until(lambda: server.stats()["inflight"] == 9, what="the nine slow calls at the server")
            yield FAIL if i == 9 else LIST

    with pytest.raises(BatchFailed) as caught:
        engine.batch_requests(requests(), concurrency=10, fail_fast=True)
    assert caught.value.failure.error_code == "InternalServerError"
    assert [r.index for r in caught.value.results] == [9]
    assert len(pulled) <= 11  # the queue was not drained: at most one request beyond the slots
    wait_until(lambda: server.stats()["inflight"] == 0, what="nothing in flight")
    stats = server.stats()
    assert stats["requests"] == 10
    assert stats["cancelled"] == 9
    # killed workers end; the others wait for the next batch (the backend reuses them)
    wait_until(lambda: live_greenlets() <= before + engine.backend.idle, what="the batch's greenlets to end")
    assert engine.backend.idle <= 2  # the feeder and the failed call's worker: the nine killed ones ended


def test_retries_are_counted_in_attempts_under_5xx(loopback):
    loopback.control(error_rate=1.0, seed=1)
    results = engine_for(loopback, max_attempts=3).batch_requests([LIST] * 5, concurrency=5)
    assert {(r.error_code, r.retryable, r.attempts) for r in results} == {("InternalServerError", True, 3)}
    assert loopback.stats()["requests"] == 15


def test_retries_under_throttling_match_the_server_count(loopback):
    loopback.control(throttle_rate=0.5, seed=2)
    results = engine_for(loopback, max_attempts=3).batch_requests([LIST] * 40, concurrency=20)
    stats = loopback.stats()
    assert sum(r.attempts for r in results) == stats["requests"]
    assert stats["throttled"] + stats["ok"] == stats["requests"]
    assert any(r.ok and r.attempts > 1 for r in results)  # a throttled call that succeeded on retry
    assert all(r.attempts == 3 for r in results if not r.ok)


_THREADS_ATTEMPTS = r"""
import json, sys
import greenfetch
from greenfetch import Config, Engine
engine = Engine(Config.resolve({"region": "us-east-1", "endpoint_url": sys.argv[1], "max_attempts": 3}))
results = engine.batch_requests([{"service": "dynamodb", "operation": "ListTables"}] * 24, concurrency=12)
print(json.dumps({"backend": engine.config.backend, "attempts": [r.attempts for r in results],
                  "ok": [r.ok for r in results]}))
engine.close()
"""


def test_retries_on_os_threads_are_each_counted_on_their_own_request(loopback):
    """The threads backend (its own process: this one is gevent-patched): each thread's botocore hooks
    find that thread's recorder, so the attempts add up to what the server saw, none lost or doubled."""
    import json
    import os

    loopback.control(throttle_rate=0.5, seed=2)
    loopback.reset_stats()
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_ATTEMPTS, loopback.url],
        capture_output=True,
        text=True,
        env=dict(os.environ, GREENFETCH_ENGINE="threads"),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["backend"] == "threads"
    assert sum(got["attempts"]) == loopback.stats()["requests"]
    assert any(ok and n > 1 for ok, n in zip(got["ok"], got["attempts"], strict=True))
    assert all(n == 3 for ok, n in zip(got["ok"], got["attempts"], strict=True) if not ok)


faults = st.fixed_dictionaries(
    {
        "error_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "throttle_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "drop_rate": st.sampled_from([0.0, 0.1]),
        "http429_rate": st.sampled_from([0.0, 0.1]),
        "seed": st.integers(0, 1000),
    }
)


def tag_of(result):
    """The ``id`` tag of a result's request (a Request, or the raw mapping when it could not be built)."""
    request = result.request
    return request.get("id") if isinstance(request, dict) else request.id


def tagged(kinds):
    return [{**req, "id": f"r{i}"} for i, req in enumerate(kinds)]


@pytest.fixture(scope="module")
def resilient(loopback_server):
    engine = engine_for(loopback_server)
    yield loopback_server, engine
    engine.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from([LIST, LIST, LIST, BAD]), max_size=30),
    concurrency=st.integers(1, 16),
    knobs=faults,
)
def test_resilient_batches_give_one_result_per_request_in_order(
    loopback, resilient, kinds, concurrency, knobs
):
    server, engine = resilient
    server.control(**knobs)
    server.reset_stats()
    requests = tagged(kinds)
    results = engine.batch_requests(iter(requests), concurrency=concurrency)
    assert [r.index for r in results] == list(range(len(requests)))
    assert [tag_of(r) for r in results] == [req["id"] for req in requests]
    stats = server.stats()
    sent = sum(req["operation"] == "ListTables" for req in requests)
    assert stats["requests"] == sent  # no duplicates, no retries (max_attempts=1)
    server_faults = stats["throttled"] + stats["errors"] + stats["http429"] + stats["dropped"]
    failed = [r for r in results if not r.ok]
    assert len(failed) == server_faults + (len(requests) - sent)
    assert all(r.attempts == 0 for r in failed if r.error_code == "UnknownOperation")


@pytest.fixture(scope="module")
def failfast(loopback_server):
    engine = engine_for(loopback_server)
    yield loopback_server, engine
    engine.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from([LIST, LIST, LIST, BAD]), max_size=30),
    concurrency=st.integers(1, 16),
    knobs=faults,
)
def test_fail_fast_never_returns_more_than_it_started(loopback, failfast, kinds, concurrency, knobs):
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
        assert all(tag_of(r) == requests[r.index]["id"] for r in exc.results)
    else:
        assert [r.index for r in results] == list(range(len(requests)))
        assert all(r.ok for r in results)


# -- the benchmark script ------------------------------------------------------------------------

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("greenfetch_bench_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_write_section_replaces_only_its_own_markers_and_appends_new_ones(tmp_path):
    bench = load_bench()
    doc = tmp_path / "performance.md"
    doc.write_text("# Perf\n\nprose\n\n<!-- bench:other:start -->\nkeep me\n<!-- bench:other:end -->\n")
    bench.write_section("engine", "| a |\n|---|", doc)
    bench.write_section("engine", "| b |\n|---|", doc)
    text = doc.read_text()
    assert text.count("<!-- bench:engine:start -->") == 1 and "| b |" in text and "| a |" not in text
    assert "prose" in text and "keep me" in text


@pytest.mark.slow
def test_bench_quick_writes_every_engine_table(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nHand-written analysis stays.\n")
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--only", "engine", "--write", "--doc", str(doc)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = doc.read_text()
    assert "Hand-written analysis stays." in text
    for part in ("throughput", "latency", "streaming", "isolation", "profile"):
        section = text.split(f"<!-- bench:engine.{part}:start -->")[1].split(
            f"<!-- bench:engine.{part}:end -->"
        )[0]
        header, rule, first_row = [line for line in section.splitlines() if line.startswith("|")][:3]
        assert header.count("|") == rule.count("|") == first_row.count("|") >= 3


def test_bench_rejects_an_unknown_section_by_name():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--only", "nonsense"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "nonsense" in proc.stderr and "throughput" in proc.stderr
