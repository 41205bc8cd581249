"""processes=N (docs/contract.md, section 9): real worker processes against the real loopback server.

Every test starts real children (``python -m greenfetch._process_child``). Process liveness is read
from /proc (children of this process whose command line names the child module), never assumed;
waits poll a condition with a deadline. Budget: ~40 s on a quiet 2-core machine (a pool starts in
~0.5 s; the hypothesis test runs a handful of examples).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import zlib
from dataclasses import dataclass, field

import botocore.credentials
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

import greenfetch
from greenfetch import BatchFailed, Config, Engine
from greenfetch import _processes as processes_module
from greenfetch._processes import ProcessPool, Router
from greenfetch._processes._wire import sealed
from greenfetch.testing import wait_until

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process liveness from /proc")

LIST = {"service": "dynamodb", "operation": "ListTables"}
FAIL = {"service": "dynamodb", "operation": "DescribeTable", "params": {"TableName": "t"}}
THROTTLED = {"service": "dynamodb", "operation": "DescribeLimits"}
BAD = {"service": "dynamodb", "operation": "NoSuchOperationHere"}
SLOW_WRITE = {"service": "dynamodb", "operation": "DeleteTable", "params": {"TableName": "t"}}
TARGETS = {
    "DynamoDB_20120810.DescribeTable": {"error_rate": 1.0},
    "DynamoDB_20120810.DescribeLimits": {"throttle_rate": 1.0},
    "DynamoDB_20120810.DeleteTable": {"latency": 3.0},
    "DynamoDB_20120810.DescribeEndpoints": {"latency": 2.0},
}
SLOW_READ = {"service": "dynamodb", "operation": "DescribeEndpoints"}


def worker_pids(parent: int | None = None) -> set[int]:
    """Live (not zombie) worker processes whose parent is ``parent`` (this process by default)."""
    parent = os.getpid() if parent is None else parent
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == parent and b"greenfetch._process_child" in cmdline:
            found.add(int(name))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def server(loopback):
    """The session's loopback server at 10 ms a call, with this module's per-target faults: its URL."""
    loopback.control(latency=0.01, targets=TARGETS)
    return loopback.url


_engines: list[Engine] = []


def engine_for(url: str, processes: int = 2) -> Engine:
    engine = Engine(
        Config.resolve(
            {"region": "us-east-1", "endpoint_url": url, "max_attempts": 1, "processes": processes}
        )
    )
    _engines.append(engine)
    return engine


@pytest.fixture(autouse=True)
def close_engines():
    """Each engine keeps an idle pool (two ~60 MB children) until closed: close them after each test."""
    yield
    while _engines:
        _engines.pop().close()


def tagged(kinds):
    return [{**{"ok": LIST, "fail": FAIL, "bad": BAD}[kind], "id": i} for i, kind in enumerate(kinds)]


# -- the contract's properties with processes=2 ----------------------------------------------------


@pytest.fixture
def engine(server):
    """One engine for all the examples of a Hypothesis test, as a caller keeps one: its pool (two
    children, ~1 s of CPU to start) is kept after a clean run and started afresh after a run stopped
    early, so the examples check both, and each pays for a pool only when the engine would."""
    return engine_for(server)  # closed by close_engines after the test


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(["ok", "ok", "ok", "fail", "bad"]), min_size=0, max_size=40),
    concurrency=st.integers(1, 8),
    fail_fast=st.booleans(),
)
def test_one_result_per_request_global_index_order_and_fail_fast(engine, kinds, concurrency, fail_fast):
    check_batch(engine, kinds, concurrency, fail_fast)


def check_batch(engine, kinds, concurrency, fail_fast):
    pulled = []

    def requests():
        for request in tagged(kinds):
            pulled.append(request["id"])
            yield request

    if not fail_fast or all(kind == "ok" for kind in kinds):
        results = engine.batch_requests(requests(), concurrency, fail_fast=fail_fast)
        assert [r.index for r in results] == list(range(len(kinds)))  # order kept, index global
        assert [r.request.id if hasattr(r.request, "id") else r.request["id"] for r in results] == list(
            range(len(kinds))
        )
        assert [r.ok for r in results] == [kind == "ok" for kind in kinds]
        return
    with pytest.raises(BatchFailed) as caught:
        engine.batch_requests(requests(), concurrency, fail_fast=True)
    done = caught.value.results
    assert caught.value.failure.error is not None
    assert len({r.index for r in done}) == len(done)  # one result each
    assert {r.index for r in done} <= set(pulled)  # never more than started
    assert len(done) <= len(pulled)
    assert [r.index for r in done] == sorted(r.index for r in done)


def test_processes_1_is_todays_path(server, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("processes=1 started a worker pool")

    monkeypatch.setattr(processes_module, "ProcessPool", refuse)
    before = worker_pids()  # other tests' engines may keep idle pools
    results = engine_for(server, processes=1).batch_requests(tagged(["ok"] * 5), 3)
    assert [r.ok for r in results] == [True] * 5
    assert worker_pids() == before


def test_iter_results_is_lazy_on_both_ends(server):
    engine = engine_for(server)
    before = worker_pids()
    pulled = []

    def endless():
        i = 0
        while True:
            pulled.append(i)
            yield {**LIST, "id": i}
            i += 1

    stream = engine.iter_results(endless(), 4)
    taken = []
    for result in stream:
        taken.append(result.index)
        assert len(pulled) <= len(taken) + 2 * 4  # concurrency + the children's queues (credits), no more
        if len(taken) == 60:
            break
    children = worker_pids() - before
    assert len(children) == 2
    stream.close()  # stopped early: every child of the run stops (a clean run would keep them idle)
    wait_until(lambda: not worker_pids() & children, 20)
    assert len(set(taken)) == 60


# -- a killed child, Ctrl-C ------------------------------------------------------------------


def test_killed_child_loses_no_request(server):
    # 10 slow writes first (3 s each: certainly in flight at the kill; five per child, routed to the
    # least loaded), then quick reads. Killing one child must leave: its reads run again on the other,
    # its five writes (which may have run) come back as WorkerLost, every request exactly one result.
    engine = engine_for(server)
    before = worker_pids()
    requests = [{**SLOW_WRITE, "id": i} for i in range(10)] + [{**LIST, "id": i} for i in range(10, 400)]
    stream = engine.iter_results(requests, 20)
    results, victim = [], None
    for result in stream:
        results.append(result)
        if victim is None and len(results) == 20:
            # a child still starting has not read its writes: they would go elsewhere, never having run
            wait_until(lambda: _calls(server, "DeleteTable") == 10, 20, "the ten writes at the server")
            victim = sorted(worker_pids() - before)[0]
            os.kill(victim, signal.SIGKILL)
    assert victim is not None
    assert sorted(r.index for r in results) == list(range(400))
    lost = [r for r in results if r.error_code == "WorkerLost"]
    assert len(lost) == 5
    assert all(r.request["operation"] == "DeleteTable" and r.retryable for r in lost)
    assert all(f"worker process {victim} was killed by signal 9" in r.error for r in lost)
    assert all(r.ok for r in results if r.index >= 10)  # the reads it held ran again elsewhere
    assert victim not in worker_pids()
    # the engine keeps its pool; the next run replaces the dead child and works as before
    assert all(r.ok for r in engine.batch_requests([LIST] * 20, 10))
    assert len(worker_pids() - before) == 2


def _calls(url: str, operation: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_stats", timeout=10) as response:
        return int(json.load(response)["per_target"].get(f"DynamoDB_20120810.{operation}", 0))


def test_ctrl_c_stops_every_process(tmp_path, loopback):
    loopback.control(latency=0.3)
    requests = [{"service": "dynamodb", "operation": "ListTables", "id": i} for i in range(400)]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "--endpoint-url",
            loopback.url,
            "--region",
            "us-east-1",
            "--processes",
            "2",
            "batch",
            "-c",
            "10",
            "-o",
            "jsonl",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    proc.stdin.write(json.dumps(requests))
    proc.stdin.close()
    first = proc.stdout.readline()  # a result is written: the run is under way
    wait_until(lambda: len(worker_pids(proc.pid)) == 2, 20)
    children = worker_pids(proc.pid)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = [first, *rest.splitlines()]
    assert 1 <= len(lines) < 400
    rows = [json.loads(line) for line in lines]
    assert all(row["error"] is None for row in rows)
    assert len({row["index"] for row in rows}) == len(rows)
    assert "Interrupted" in err and "Traceback" not in err
    wait_until(lambda: not any(alive(pid) for pid in children), 20)


# -- metrics, credentials, odd requests ------------------------------------------------------------


def test_metrics_of_every_process_are_merged(server):
    engine = engine_for(server)
    requests = [LIST] * 200 + [FAIL] * 60 + [THROTTLED] * 40
    pool = ProcessPool(engine, 2)
    try:
        results = list(pool.run(requests, 20))
    finally:
        pool.close()
    assert len(results) == 300
    assert len(pool.answered) == 2 and sum(pool.answered.values()) == 300  # both processes worked
    stats = {row["operation"]: row for row in engine.metrics.perf_stats()}
    assert stats["dynamodb:ListTables"]["count"] == 200
    assert stats["dynamodb:DescribeTable"]["errors"] == 60
    assert stats["dynamodb:DescribeLimits"]["throttles"] == 40
    text = generate_latest(engine.metrics.registry).decode()
    assert _sample(text, "greenfetch_request_duration_seconds_count", 'operation="ListTables"') == 200
    assert _sample(text, "greenfetch_request_errors_total", 'code="InternalServerError"') == 60
    assert _sample(text, "greenfetch_throttles_total", 'operation="DescribeLimits"') == 40
    assert _sample(text, "greenfetch_inflight_requests", "") == 0


def _sample(text: str, name: str, needle: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and needle in line
    )


def test_credentials_cross_without_their_secrets(server, capfd, caplog):
    secret = "wJalrXUtnFEMI-SECRET-never-logged"
    creds = botocore.credentials.Credentials("AKIDEXAMPLE", secret, "session-token-secret")
    request = greenfetch.Request("dynamodb", "ListTables", region="us-east-1", credentials=creds, id="c")
    results = engine_for(server).batch_requests([request, {**LIST, "credentials": 42}], 2)
    assert results[0].ok and results[0].request.credentials is creds
    assert results[1].error_code == "InvalidCredentials"
    frame = sealed(request)
    assert secret not in repr(frame) and "session-token-secret" not in repr(frame)
    out, err = capfd.readouterr()
    assert secret not in out + err + caplog.text


def test_a_request_that_cannot_cross_fails_alone(server):
    unpicklable = {**LIST, "params": {"ExclusiveStartTableName": lambda: None}}
    results = engine_for(server).batch_requests([LIST, unpicklable, LIST], 2)
    assert [r.ok for r in results] == [True, False, True]
    assert "cannot be sent to a worker process" in results[1].error and "processes=1" in results[1].error


def test_adaptive_batch_runs_in_processes(server):
    engine = engine_for(server)
    results = engine.adaptive_batch([{**LIST, "id": i} for i in range(300)], initial_concurrency=4)
    assert [r.index for r in results] == list(range(300))
    assert all(r.ok and r.concurrency is not None for r in results)
    assert list(results.trace) == ["dynamodb/us-east-1/default"]  # one scope, owned by one process
    assert max(r.concurrency for r in results) > 4
    again = engine.adaptive_batch([LIST] * 5, initial_concurrency=4)  # the child's limiter carried over
    assert again[0].concurrency > 4
    fresh = engine.adaptive_batch([LIST] * 5, initial_concurrency=4, reset=True)  # and reset reaches it
    assert fresh[0].concurrency == 4


def test_processes_is_an_argument_of_the_engine(server):
    """``processes=`` on a call (here the module-level function's, on the default engine) runs that call
    over worker processes; the engine's Config is untouched and the pool is the engine's, kept idle."""
    engine = greenfetch.default_engine()
    requests = [{**LIST, "region": "us-east-1", "endpoint_url": server} for _ in range(30)]
    with pytest.raises(greenfetch.ConfigError, match="'zero'"):
        greenfetch.batch_requests(requests, 5, processes="zero")
    with pytest.raises(greenfetch.ConfigError, match="custom gate"):
        list(engine.iter_results(requests, 5, processes=2, gate=lambda request: contextlib.nullcontext(None)))
    before = sum(row["count"] for row in greenfetch.perf_stats())
    assert all(r.ok for r in greenfetch.batch_requests(requests, 5, processes="2"))
    assert (
        sum(row["count"] for row in greenfetch.perf_stats()) == before + 30
    )  # the children's metrics merged
    assert engine.config.processes == 1 and engine.pools.idle(2) is not None


def test_fail_fast_stats_cover_what_ran(server):
    engine = engine_for(server)
    before = worker_pids()
    with pytest.raises(BatchFailed) as caught:
        engine.batch_requests(
            [{**LIST, "id": i} for i in range(60)] + [FAIL] + [LIST] * 200, 10, fail_fast=True
        )
    counted = sum(row["count"] for row in engine.metrics.perf_stats())
    assert counted >= len(caught.value.results)  # the children's last deltas were asked for before hanging up
    wait_until(lambda: worker_pids() == before, 20)  # fail-fast stopped every child of the run


def test_a_threads_parent_drives_gevent_children(server):
    # GREENFETCH_ENGINE=threads: the parent is never patched (its reader/sender are threads); closing a
    # stream early must still end every thread and child, or the interpreter would hang at exit.
    script = (
        "import greenfetch\n"
        "from greenfetch import Config, Engine\n"
        "assert not greenfetch._patch.is_patched()\n"
        f"e = Engine(Config.resolve({{'region': 'us-east-1', 'endpoint_url': '{server}', 'processes': 2}}))\n"
        "r = e.batch_requests([{'service': 'dynamodb', 'operation': 'ListTables'}] * 50, 5)\n"
        "it = e.iter_results(({'service': 'dynamodb', 'operation': 'ListTables'} for _ in iter(int, 1)), 4)\n"
        "taken = [next(it) for _ in range(10)]\n"
        "it.close()\n"
        "print(sum(x.ok for x in r), sum(x.ok for x in taken))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GREENFETCH_ENGINE": "threads"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["50", "10"]


def test_an_engine_keeps_its_pool_between_clean_runs(server):
    engine = Engine(engine_for(server).config)  # not kept in _engines: this test lets it be collected
    before = worker_pids()
    assert all(r.ok for r in engine.batch_requests([LIST] * 30, 6))
    first = worker_pids() - before
    assert len(first) == 2  # idle, kept for the next call
    assert all(r.ok for r in engine.batch_requests([LIST] * 30, 6))
    assert worker_pids() - before == first  # the same children: start-up paid once
    del engine
    import gc

    gc.collect()
    wait_until(lambda: not worker_pids() & first, 20)  # a collected engine's pool stops


# -- routing, without a process -------------------------------------------------------------------


@dataclass(eq=False)
class Seat:
    """A child as the router sees it."""

    slot: int
    outstanding: set = field(default_factory=set)


def _scope_slot(account: str, processes: int = 2) -> int:
    return zlib.crc32(f"dynamodb/us-east-1/{account}".encode()) % processes


@settings(max_examples=30, deadline=None)
@given(
    accounts=st.lists(
        st.sampled_from(["111111111111", "222222222222", "333333333333", "444444444444"]),
        min_size=1,
        max_size=40,
    )
)
def test_a_throttle_scope_is_owned_by_one_process(accounts):
    """botocore's adaptive retry mode (a rate limiter per client) and the adaptive gate pin by scope:
    every call of one (service, region, account) goes to the one child its scope hashes to."""
    config = Config.resolve({"region": "us-east-1", "retry_mode": "adaptive"}, environ={})
    router = Router.for_run(config, 2, 8, adaptive=False, dedupe=False)
    seats = [Seat(0), Seat(1)]
    owners: dict[str, set[int]] = {}
    for account in accounts:
        seat = router.pick({**LIST, "account": account}, seats)
        owners.setdefault(account, set()).add(seat.slot)
        seat.outstanding.add(len(seat.outstanding))  # load must not move a pinned request
    assert all(slots == {_scope_slot(account)} for account, slots in owners.items())
    assert router.pinned and router.window == 8 and router.credits(0) == router.credits(1) == 8
    # the owner's child is gone: the scope still goes to one child, the same for all its calls
    alone = [Seat(1 - _scope_slot(accounts[0]))]
    assert router.pick({**LIST, "account": accounts[0]}, alone) is alone[0]


def test_routing_by_signature_with_a_dedupe_window_and_the_run_region():
    router = Router.for_run(
        Config.resolve({"region": "us-east-1"}, environ={}), 3, 6, adaptive=False, dedupe=True
    )
    seats = [Seat(0), Seat(1), Seat(2)]
    request = {**LIST, "params": {"Limit": 7}}
    picked = set()
    for i in range(5):
        seat = router.pick(request, seats)
        picked.add(seat.slot)
        seat.outstanding.add(i)  # load must not move it
    assert len(picked) == 1  # identical requests meet in one process
    same = {**request, "region": "us-east-1"}  # the run's region is part of the signature
    assert router.key(same) == router.key(request) != router.key({**request, "region": "eu-west-1"})
    assert router.key({"service": "dynamodb"}) is None  # cannot be built: fails wherever it runs


@settings(max_examples=30, deadline=None)
@given(
    processes=st.integers(1, 6),
    concurrency=st.integers(1, 20),
    loads=st.lists(st.integers(0, 9), min_size=6, max_size=6),
)
def test_a_spread_run_splits_the_concurrency_and_picks_the_least_loaded(processes, concurrency, loads):
    router = Router.for_run(
        Config.resolve({}, environ={}), processes, concurrency, adaptive=False, dedupe=False
    )
    assert not router.pinned and router.window == 2 * concurrency
    assert sum(router.share(slot) for slot in range(processes)) == concurrency
    assert all(router.credits(slot) >= 1 for slot in range(processes))
    seats = [Seat(slot, set(range(loads[slot]))) for slot in range(processes)]
    picked = router.pick(LIST, seats)
    working = [seat for seat in seats if router.share(seat.slot)]  # a slot with no share gets no work
    assert router.share(picked.slot) and len(picked.outstanding) == min(
        len(seat.outstanding) for seat in working
    )


@pytest.mark.parametrize("concurrency", [1, 6])
def test_concurrency_is_the_total_in_flight(loopback, concurrency):
    loopback.control(latency=0.05)
    results = engine_for(loopback.url).batch_requests([LIST] * 60, concurrency)
    stats = loopback.stats()
    assert all(r.ok for r in results)
    assert stats["inflight_max"] <= concurrency  # across both processes, as the server saw it


def test_a_read_lost_twice_says_its_one_resend_was_used(server):
    """A read whose child dies is sent again once; when that child dies too, the read comes back
    WorkerLost saying so. It said "the request may have run, so it was not sent again", a write's reason."""
    import urllib.request

    import gevent

    def sent() -> int:
        with urllib.request.urlopen(f"{server}/_stats", timeout=10) as response:
            return int(json.load(response)["per_target"].get("DynamoDB_20120810.DescribeEndpoints", 0))

    engine = engine_for(server)
    before, start = worker_pids(), sent()
    run = gevent.spawn(engine.batch_requests, [{**SLOW_READ, "id": i} for i in range(4)], 4)  # two per child
    wait_until(
        lambda: sent() - start == 4 and len(worker_pids() - before) == 2, 20, "four reads in two children"
    )
    a, b = sorted(worker_pids() - before)
    os.kill(a, signal.SIGKILL)
    wait_until(lambda: sent() - start == 6, 20, "the first child's two reads sent again to the second")
    os.kill(b, signal.SIGKILL)
    results = run.get(timeout=30)
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    lost = [r for r in results if not r.ok]
    assert len(lost) == 2 and all(r.error_code == "WorkerLost" for r in lost), [r.error for r in results]
    assert all(
        f"worker process {b} was killed by signal 9 before answering; a read is sent again once, and this "
        "one was" in r.error
        for r in lost
    ), [r.error for r in lost]
    assert not any("may have run" in r.error for r in lost)


# -- requests and results as rows (what crosses the pipe) ------------------------------------------

import datetime  # noqa: E402
import pickle  # noqa: E402
from dataclasses import fields as dataclass_fields  # noqa: E402

from greenfetch import Request, Result  # noqa: E402
from greenfetch._models import UnreadableInput  # noqa: E402
from greenfetch._processes._wire import pack_request, pack_result, unpack_request, unpack_result  # noqa: E402

_text = st.text(max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | _text
    | st.binary(max_size=8)
    | st.datetimes(timezones=st.just(datetime.timezone.utc))
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_maybe = st.none() | _text
_requests = st.builds(
    Request,
    service=_text,
    operation=_text,
    params=st.dictionaries(_text, _values, max_size=3),
    region=_maybe,
    account=_maybe,
    role=_maybe,
    profile=_maybe,
    endpoint_url=_maybe,
    paginate=st.booleans() | st.fixed_dictionaries({"max_items": st.integers(1, 9)}),
    id=st.none() | st.integers() | _text,
)
_records = st.dictionaries(_text, _values, max_size=4) | st.builds(
    UnreadableInput, _text, st.integers(0, 99), _text
)


class _Odd(Request):
    """A Request subclass: it must cross as itself."""


def _fields_of(value):
    return [(f.name, type(getattr(value, f.name)), getattr(value, f.name)) for f in dataclass_fields(value)]


def _attributes(value):
    return getattr(value, "__dict__", None)


def _across(row):
    return pickle.loads(pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL))


@settings(max_examples=150, deadline=None)
@given(
    request=_requests | _records | st.builds(_Odd, _text, _text),
    index=st.integers(0, 2**40),
    with_credentials=st.booleans(),
)
def test_a_request_crosses_as_a_row_with_every_field_and_sealed_credentials(request, index, with_credentials):
    if with_credentials:
        creds = botocore.credentials.Credentials("AKIDEXAMPLE", "the-secret", "the-token")
        request = (
            request.__class__(**{**vars(request), "credentials": creds})
            if isinstance(request, Request)
            else {**request, "credentials": creds}
        )
    row = _across(pack_request(index, request))
    assert row[0] == index
    out = unpack_request(row)
    expected = sealed(request)
    assert type(out) is type(request)
    if isinstance(request, Request):
        assert _fields_of(out)[:-1] == _fields_of(expected)[:-1]  # every field, with its type
        assert out.credentials == expected.credentials and type(out.credentials) is type(expected.credentials)
        assert list(vars(out)) == [f.name for f in dataclass_fields(Request)]
    else:
        assert out == expected and _attributes(out) == _attributes(
            expected
        )  # UnreadableInput keeps its reason
    assert "the-secret" not in repr(row) and "the-token" not in repr(row)


@settings(max_examples=150, deadline=None)
@given(
    request=_requests | _records | st.builds(_Odd, _text, _text),
    index=st.integers(0, 2**40),
    result=_values,
    error=_maybe,
    error_code=_maybe,
    retryable=st.booleans(),
    guidance=_maybe,
    request_id=_maybe,
    duration_ms=st.floats(0, 1e6),
    attempts=st.integers(0, 10),
    concurrency=st.none() | st.integers(1, 1000),
    deduped=st.booleans(),
)
def test_a_result_crosses_as_a_row_with_every_field_its_types_and_order(
    request,
    index,
    result,
    error,
    error_code,
    retryable,
    guidance,
    request_id,
    duration_ms,
    attempts,
    concurrency,
    deduped,
):
    sent = Result(
        index,
        request,
        result,
        error,
        error_code,
        retryable,
        guidance,
        request_id,
        duration_ms,
        attempts,
        concurrency,
        deduped,
    )
    out = unpack_result(_across(pack_result(sent)))
    assert type(out) is Result and type(out.request) is type(request)
    assert _fields_of(out) == _fields_of(sent)
    assert list(vars(out)) == list(vars(sent))  # the fields in their order
    if isinstance(request, Request):
        assert _fields_of(out.request) == _fields_of(request)
        assert list(vars(out.request)) == list(vars(request))
    else:
        assert out.request == request and _attributes(out.request) == _attributes(request)


def test_a_results_credentials_stay_in_the_child():
    creds = botocore.credentials.Credentials("AKIDEXAMPLE", "the-secret", "the-token")
    for request in (
        Request("s3", "ListBuckets", credentials=creds),
        _Odd("s3", "ListBuckets", credentials=creds),
    ):
        row = pack_result(Result(3, request, {"Buckets": []}))
        assert "the-secret" not in repr(row) and b"the-secret" not in pickle.dumps(row)
        assert (
            unpack_result(_across(row)).request.credentials is None
        )  # the parent puts the caller's own back


# -- a child's results on their way back (in this process: the rule alone) -------------------------

from greenfetch import _process_child as child_module  # noqa: E402


class _Sent(list):
    def __call__(self, message):
        self.append([row[0] for row in message.rows])


def _outbox(monkeypatch, credits=100, waiting=50, hold=60.0):
    import gevent

    monkeypatch.setattr(child_module, "HOLD_MAX", hold)
    inbox = child_module._Inbox()
    inbox.waiting = waiting
    sent = _Sent()
    outbox = child_module._Outbox(sent, inbox, credits)
    return outbox, sent, inbox, gevent.spawn(outbox.ship)


def _result(index, *, error=None, duration_ms=50.0):
    return Result(index, LIST, {"TableNames": []}, error=error, duration_ms=duration_ms)


def _add(outbox, *results):
    import gevent

    for result in results:
        outbox.add(pack_result(result), result)
    for _ in range(3):
        gevent.sleep(0)  # the shipper runs as far as it can


def test_results_wait_for_company_only_while_the_child_has_requests_queued(monkeypatch):
    outbox, sent, inbox, shipper = _outbox(monkeypatch)
    _add(outbox, _result(0), _result(1))
    assert sent == []  # requests queued here: the child keeps calling, the results wait for others
    inbox.waiting = 0
    outbox.dry()  # the queue ran out: the parent must hear now, to refill it
    _add(outbox)
    assert sent == [[0, 1]]
    inbox.waiting = 50
    _add(outbox, _result(2), _result(3, error="dynamodb.ListTables: Boom: no"))
    assert sent == [[0, 1], [2, 3]]  # a failure goes at once (a fail-fast run stops on it)
    _add(outbox, _result(4))
    outbox.close()
    shipper.join(timeout=10)
    assert sent == [[0, 1], [2, 3], [4]] and shipper.dead  # the run's end sends what is left


def test_a_held_result_goes_after_its_hold_and_a_full_frame_at_once(monkeypatch):
    outbox, sent, _, shipper = _outbox(monkeypatch, credits=10, hold=60.0)
    _add(outbox, *(_result(i) for i in range(9)))
    assert sent == []
    _add(outbox, _result(9))
    assert sent == [list(range(10))]  # credits' worth waiting: a full frame
    outbox, sent, _, shipper = _outbox(monkeypatch, hold=0.02)
    _add(outbox, _result(5), _result(6))
    wait_until(lambda: sent == [[5, 6]], 10, "the hold ran out")


def test_at_a_low_concurrency_results_are_not_held(monkeypatch):
    # 4 calls at once at 50 ms each: under one more result is due in a 12.5 ms hold, so none is waited for
    outbox, sent, _, shipper = _outbox(monkeypatch, credits=4)
    _add(outbox, _result(0))
    assert sent == [[0]]


def test_every_message_crosses_the_channel_as_itself_a_big_frame_included():
    import socket

    import gevent

    from greenfetch._controller import Settings
    from greenfetch._processes import _wire as wire

    a, b = socket.socketpair()
    sender, receiver = wire.Channel(a), wire.Channel(b)
    big = [pack_result(Result(i, LIST, {"Blob": f"{i:01000}"})) for i in range(4000)]  # ~4 MB: sent in pieces
    messages = [
        wire.Start(Config.resolve({}, environ={})),
        wire.Begin(3, 0.5, Settings(4, 0.5, 1, 64), True),
        wire.Requests([pack_request(7, LIST)]),
        wire.End(),
        wire.Flush(),
        wire.Ready(0.25),
        wire.Results(big),
        wire.MetricsDelta({"counts": {}}),
        wire.Trace({}),
        wire.Done(),
        wire.Took(),
    ]
    got = []
    reader = gevent.spawn(lambda: [got.append(receiver.recv()) for _ in messages])
    for message in messages:
        sender.send(message)
    reader.join(timeout=30)
    assert [type(m) for m in got] == [type(m) for m in messages] and got == messages
    sender.close()
    with pytest.raises(EOFError):
        receiver.recv()
