"""adaptive_batch put to work: per-scope limiters, the classifier's signals, resets, real loopback runs, the CLI.

The controller itself is tested in simulated time in ``test_controller.py``. Budget: < 8 s (real
loopback runs of a few hundred calls).
"""

import itertools
import json
import os
import time

import gevent
import gevent.event
import pytest
from hypothesis import given
from hypothesis import strategies as st

import greenfetch  # (conftest.py has already patched gevent first)
import greenfetch._api
from greenfetch import Config, ConfigError, Engine
from greenfetch._adaptive import (
    AdaptiveResults,
    Controller,
    Limiter,
    Limits,
    Settings,
    open_gate,
    signal_of,
)
from greenfetch._attempts import Attempt
from greenfetch._clientload import ClientLoad, _Schedstat
from greenfetch._models import Request
from greenfetch.testing import LoopbackServer, wait_until
from greenfetch.testing._loopback_faults import Faults


def test_limits_are_per_scope_and_exported():
    engine = Engine(Config.resolve({"region": "us-east-1"}))
    limits = Limits(engine.metrics)
    a = Request("dynamodb", "ListTables", region="eu-west-1", account="111111111111")
    b = Request("dynamodb", "ListTables", region="eu-west-1", account="222222222222")
    assert Limits.scope_of(a) != Limits.scope_of(b)
    limiter = limits.limiter(Limits.scope_of(a))
    limiter.observe(Attempt(0.01, 429, None))  # a bare 429 is a throttle too: the scope's rate is capped
    assert limiter.controller.rate is not None and limiter.controller.limit < 5
    assert limits.limiter(Limits.scope_of(b)).controller.rate is None
    value = engine.metrics.registry.get_sample_value(
        "greenfetch_concurrency_limit", {"scope": "dynamodb/eu-west-1/111111111111"}
    )
    assert value == pytest.approx(limiter.controller.limit)
    engine.close()


@pytest.mark.parametrize(
    "code, status, expected",
    [
        (None, 200, (False, False)),
        ("ThrottlingException", 400, (True, False)),
        (None, 429, (True, False)),
        ("SlowDown", 503, (True, False)),
        ("RequestLimitExceeded", 503, (True, False)),
        ("ReadTimeoutError", None, (False, True)),
        ("RequestTimeout", 400, (False, True)),
        ("InternalServerError", 500, (False, False)),
        ("AccessDenied", 403, (False, False)),
        ("ServiceQuotaExceededException", 402, (False, False)),
    ],
)
def test_signals_come_from_the_classifier(code, status, expected):
    """Throttled (rate back-off) and dropped (concurrency back-off) are what ``classify`` says;
    a 500 or a denial says nothing about load."""
    assert signal_of(code, status) == expected


def test_reset_forgets_what_a_scope_learned_and_keeps_its_history():
    now = [0.0]
    limits = Limits(clock=lambda: now[0])  # simulated time: windows close when the test says
    scope = "dynamodb/us-east-1/default"
    limiter = limits.limiter(scope)
    for _ in range(100):  # 50 ms answers, one every 10 ms: a few windows close
        now[0] += 0.01
        limiter.observe(Attempt(0.05, 200, None))
    limiter.observe(Attempt(0.01, 400, "ThrottlingException"))
    history = limits.trace(scope)
    assert (
        len(history) >= 2 and limiter.controller.rate is not None and limiter.controller.baseline is not None
    )
    limits.reset(scope)
    assert (
        limiter.controller.rate is None
        and limiter.controller.limit == 5
        and limiter.controller.baseline is None
    )
    assert limits.trace(scope) == history  # what it learned is gone; the history of its windows is kept
    limits.reset("no/such/scope")  # nothing learned: nothing to forget


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"initial_concurrency": 0}, "initial_concurrency"),
        ({"max_concurrency": -3}, "max_concurrency"),
        ({"min_concurrency": 10, "max_concurrency": 5}, "min_concurrency"),
        ({"target_latency": 0}, "target_latency"),
        ({"target_latency": "fast"}, "target_latency"),
        ({"initial_concurrency": 2.5}, "initial_concurrency"),
        ({"initial_concurrency": 500}, "initial_concurrency"),
    ],
)
def test_bad_numbers_are_named(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        open_gate(Limits(), **kwargs)


def test_slots_follow_the_limit_first_come_first_served_and_survive_a_kill():
    """Real greenlets on one limiter: never more in flight than the limit, a freed slot goes to the
    first request waiting, slow start's growth lets waiters in at once, and a request killed while
    queued (or just handed a slot) loses no slot."""
    limiter = Limiter("s", Controller(Settings(initial=2, max=64)))
    entered, peak, release = [], [0], gevent.event.Event()

    def request(i):
        with limiter.slot():
            entered.append(i)
            peak[0] = max(peak[0], limiter.inflight)
            release.wait()

    first = [gevent.spawn(request, i) for i in range(6)]
    gevent.sleep(0.01)
    assert entered == [0, 1] and limiter.inflight == 2
    victim = first[2]  # queued first: killed, its place goes to the next
    victim.kill()
    limiter.observe(Attempt(0.01, 200, None))  # slow start: +1 per flat answer in use
    gevent.sleep(0.01)
    assert entered == [0, 1, 3] and limiter.inflight == 3 and peak[0] == 3
    release.set()
    assert len(gevent.joinall(first, timeout=5)) == len(first)
    assert entered == [0, 1, 3, 4, 5] and limiter.inflight == 0 and not limiter._waiters
    assert peak[0] <= 3
    # Killed just as it was handed a slot (the kill lands before the hand-off wakes it): it passes it on.
    limiter = Limiter("s", Controller(Settings(initial=1, max=64)))
    entered.clear()
    release.clear()
    limiter.acquire()
    queued = [gevent.spawn(request, i) for i in range(2)]
    gevent.sleep(0.01)
    queued[0].kill(block=False)
    limiter.release()
    gevent.sleep(0.01)
    assert entered == [1] and limiter.inflight == 1
    release.set()
    assert len(gevent.joinall(queued, timeout=5)) == 2 and limiter.inflight == 0


def _burn(seconds, chunk=0.001, rest=0.0, until=None):
    """Keep this process busy (CPU, yielding to the hub for ``rest`` s every ``chunk`` s) for ``seconds``,
    or until ``until()`` is true (then AssertionError past ``seconds``)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if until is not None and until():
            return
        stop = time.perf_counter() + chunk
        while time.perf_counter() < stop:
            pass
        gevent.sleep(rest)
    assert until is None, f"not done after {seconds} s of burning"


class _Samples:
    """The watcher's samples of a ``ClientLoad`` as it takes them (its own ``update`` still runs), each
    with this thread's schedstat then (seconds running and waiting for a CPU; None without it) and the
    time: what the thread really did in each of the watcher's intervals."""

    def __init__(self, load, schedstat):
        self.taken, self.schedstat, update = [], schedstat, load.update

        def counted(share, cpu=None):
            update(share, cpu)
            self.taken.append((self.schedstat.split() if self.schedstat else None, time.perf_counter()))

        load.update = counted

    def __len__(self):
        return len(self.taken)

    def share(self, last):
        """The thread's true share of wall time running or waiting for a CPU over the last ``last`` intervals."""
        (cpu0, wait0), wall0 = self.taken[-last - 1]
        (cpu1, wait1), wall1 = self.taken[-1]
        return (cpu1 + wait1 - cpu0 - wait0) / (wall1 - wall0)


@pytest.mark.parametrize("schedstat", [True, False])
def test_client_load_tells_a_busy_process_from_an_idle_one(monkeypatch, schedstat):
    """The saturation signal, measured for real: busy (a greenlet burning CPU) reads near 1, idle
    (only sleeping) near what the thread really spent running or waiting for a CPU (near 0 on a quiet
    machine; on a loaded one each wake-up waits for a CPU) with its own CPU near 0; with and without
    Linux's schedstat (CPU time and the hub's lateness). Each phase lasts a number of the watcher's
    samples, not a wall time: a greenlet that only yields with sleep(0) delays the hub's timers, to one
    sample in 0.6 s at load 10 (and idle, a loaded machine stretches its intervals)."""
    truth = _Schedstat.open()
    if truth is None:
        pytest.skip("no /proc/thread-self/schedstat here")
    if not schedstat:
        monkeypatch.setattr(_Schedstat, "open", classmethod(lambda cls: None))
    load, running = ClientLoad(interval=0.02), [True]
    samples = _Samples(load, truth)
    load.ensure(lambda: running[0])
    _burn(60, until=lambda: len(samples) >= 4)
    busy, busy_cpu = load.value, load.cpu
    idle_from = len(samples)
    wait_until(lambda: len(samples) >= idle_from + 8, 60, "eight samples of an idle process")
    idle, idle_cpu, really = load.value, load.cpu, samples.share(3)
    running[0] = False
    gevent.sleep(0.05)
    truth.close()
    assert busy >= 0.85, (busy, idle)
    assert idle <= really + 0.2, (busy, idle, really)  # quiet, really is 0.01-0.1: as strict as <= 0.3
    assert 0 < busy_cpu <= busy and idle_cpu <= min(idle, 0.1)  # running is a part of running or waiting
    assert load.value == 0.0  # it stopped with the requests and forgot


def test_client_load_is_full_right_after_a_stall():
    """Answers that waited out a stall of the hub (here a greenlet holding the CPU 0.1 s without
    yielding; a starving neighbour looks the same) are handled before the watcher measures it: its
    lateness says the load is full then, whatever the load it measured before (a loaded machine's
    may be high too). After it, answers are read at instants set from the stall the watcher recorded
    (``clock``), so a neighbour stalling this process again cannot move them: before, ``value <
    0.5`` assumed a quiet machine and ``now(0.01) == value`` read the wall clock."""
    at: list[float | None] = [None]
    load, running = ClientLoad(interval=0.02, clock=lambda: at[0] or time.perf_counter()), [True]
    load.ensure(lambda: running[0])
    assert load.now() < 0.5
    gevent.sleep(0.1)
    end = time.perf_counter() + 0.1
    while time.perf_counter() < end:
        pass
    assert load.now() == 1.0 and load.held(time.perf_counter(), 0.0) >= 0.05  # overdue: a stall going on
    gevent.sleep(0.05)
    stall_end, length = max(load._stalls, key=lambda stall: stall[1])  # the watcher recorded it
    assert length >= 0.05
    at[0] = stall_end + 0.001
    assert load.now(0.15) == 1.0  # in flight across the stall (0.15 s): it waited for us
    assert (
        load.read(0.15)[0] == 1.0 and load.read(0.15)[2] >= 0.05
    )  # the stall held it (however idle our CPU)
    at[0] = stall_end + 0.011  # the next stall the watcher can record ends an interval later or more
    assert load.now(0.01) == load.value  # sent after it
    assert load.read(0.01) == (load.value, load.cpu, 0.0)
    at[0] = None
    running[0] = False
    gevent.sleep(0.05)
    assert load.now() == 0.0


def test_a_stall_is_ours_only_where_it_is_a_fair_part_of_an_answers_time():
    """``ClientLoad.stalled`` in its own time (no watcher): stalls held a 100 ms answer (it waited
    for us: load 1) but not a 470 ms one past a cliff, which spans some stall on a loaded
    machine however idle the client is (before, any overlap read full: the longer the server
    queued, the surer it was ours, and slow start overshot a cliff to 3x its knee)."""
    load = ClientLoad(interval=0.025)
    load._due = 10.0 + load.interval  # the watcher last woke at 10.0, on time
    load.cpu = 0.8  # a busy client: a stall's backlog takes 4x its length to drain (``_drain``)
    load._stalls.extend([(9.7, 0.07), (9.95, 0.03)])  # stalls of 70 and 30 ms, ended at 9.7 and 9.95
    assert load.stalled(10.0, 0.1)  # 30 of 100 ms
    assert not load.stalled(10.0, 0.2)  # 30 of 200 ms (the one at 9.7 ended before it was sent)
    assert load.stalled(10.0, 0.38)  # 100 of 380 ms: both
    assert not load.stalled(10.0, 0.47)  # 100 of 470 ms (past a cliff)
    assert not load.stalled(10.0, 0.04)  # sent after the last one ended
    assert load.stalled(10.0 + 2 * load.interval, 0.0)  # overdue now: a stall going on
    assert not load.stalled(10.0, 0.0)
    assert load.held(10.0, 0.38) == pytest.approx(0.1) and load.held(10.0, 0.32) == pytest.approx(0.05)


def test_a_stall_whose_backlog_had_drained_held_no_answer():
    """An answer read well after a stall ended came while the answers flowed again: the stall did
    not hold it, however much of its flight it overlapped. An idle client (CPU 0.1) drains what
    piled up in a 48 ms stall in ~5 ms; its answer read 49 ms after the stall (the simulated
    loaded cliff, seed 1) was a slow server's, not ours (before: held 48 ms, load 1, and slow start
    ran on to 4x the knee). A busy one (CPU 0.8) drains it in 4x the stall: still ours."""
    load = ClientLoad(interval=0.025)
    load._due = 10.0 + load.interval
    load._stalls.append((9.951, 0.048))
    load.cpu = 0.1
    assert load.held(10.0, 0.155) == 0.0 and not load.stalled(10.0, 0.155)
    assert load.held(9.97, 0.155) == pytest.approx(0.048) and load.stalled(9.97, 0.155)  # 19 ms after
    load.cpu = 0.8
    assert load.held(10.0, 0.155) == pytest.approx(0.048) and load.stalled(10.0, 0.155)


_stalls = st.lists(
    st.tuples(st.floats(9.8, 10.1), st.floats(0.0, 0.04)).map(lambda t: (round(t[0], 3), round(t[1], 3))),
    max_size=8,
).map(sorted)


@given(_stalls, st.floats(9.9, 10.1), st.floats(0.0, 0.2), st.floats(9.9, 10.1))
def test_read_is_stalled_and_held_in_one_pass(stalls, now, seconds, due):
    """``read`` (per answer: the gate's hot path) folds ``stalled`` and ``held`` into one pass over
    the stalls: the same load, CPU share and held seconds as the two methods give."""
    load = ClientLoad(interval=0.025, clock=lambda: now)
    load._running, load._due, load.value, load.cpu = True, due, 0.4, 0.3
    load._stalls.extend(stalls)
    expected = (1.0 if load.stalled(now, seconds) else 0.4), 0.3, load.held(now, seconds)
    assert load.read(seconds) == expected


@given(
    st.sampled_from(["", None, "111122223333"]),
    st.sampled_from(["", None, "arn:aws:iam::444455556666:role/R", "not-an-arn", 7]),
    st.sampled_from(["", None, "dev"]),
    st.sampled_from(["", None, "eu-west-1"]),
)
def test_a_scope_is_service_region_and_the_account_or_profile(account, role, profile, region):
    """``scope_of`` (twice per request) reads the fields itself; the same scope as the request's
    ``account_id`` gives."""
    request = Request("sqs", "ListQueues", region=region, account=account, role=role, profile=profile)
    who = request.account_id or request.profile or "default"
    assert Limits.scope_of(request) == f"sqs/{region or 'default'}/{who}"


def test_a_saturated_client_does_not_cut_on_a_real_server():
    """A greenlet burns this process's CPU while adaptive_batch runs on a 20 ms loopback server:
    answers wait for us, latency rises (+25% or more), and windows read saturated never lower the
    limit (with the saturation ignored, they cut)."""
    with LoopbackServer(latency=0.02) as url:
        engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1"}))
        engine.execute(_tables(1)[0])
        burner = gevent.spawn(_burn, 30, 0.02, 0.002)  # answers wait up to 20 ms for it (2x)
        try:
            results = engine.adaptive_batch(_tables(400), initial_concurrency=16, max_concurrency=64)
        finally:
            burner.kill()
        engine.close()
    (trace,) = results.trace.values()
    saturated = [(a, b) for a, b in itertools.pairwise(trace) if b.load >= 0.85 and not b.throttles]
    assert saturated, [round(p.load, 2) for p in trace]
    assert all(b.limit >= a.limit for a, b in saturated), [(a.limit, b.limit, b.load) for a, b in saturated]


# -- for real, through the engine --------------------------------------------------------------


def _tables(n):
    return [
        {"service": "dynamodb", "operation": "ListTables", "params": {"Limit": i % 50 + 1}} for i in range(n)
    ]


def test_real_run_rises_on_a_fast_server_carries_over_and_resets(loopback):
    loopback.control(latency=0.02)
    engine = Engine(Config.resolve({"endpoint_url": loopback.url, "region": "us-east-1"}))
    results = engine.adaptive_batch(_tables(200), initial_concurrency=2, max_concurrency=64)
    assert isinstance(results, AdaptiveResults) and all(r.ok for r in results)
    (trace,) = results.trace.values()
    assert max(p.limit for p in trace) >= 8
    assert max(r.concurrency for r in results) >= 8
    again = engine.adaptive_batch(_tables(20), initial_concurrency=2, max_concurrency=64)
    assert again[0].concurrency >= 8  # the learned limit carried over to the next batch
    fresh = engine.adaptive_batch(_tables(20), initial_concurrency=2, max_concurrency=64, reset=True)
    assert fresh[0].concurrency == 2
    with pytest.raises(ConfigError, match="reset"):
        engine.adaptive_batch(_tables(1), reset="yes")
    engine.close()


def test_what_a_batch_learned_carries_over_when_processes_is_given_per_call(monkeypatch, loopback):
    """GREENFETCH_PROCESSES=2, then ``adaptive_batch(..., processes=1)`` twice on a server with a knee at 16:
    the second batch starts from the limit the first learned, not from ``initial_concurrency`` (2).
    ``processes`` is an argument of the engine's own run, so both batches share the engine's limiters."""
    monkeypatch.setenv("GREENFETCH_PROCESSES", "2")
    monkeypatch.setattr(greenfetch._api, "_default", None)  # a default engine made under this environment
    loopback.control(latency=0.02, knee=16)
    tables = [{**table, "region": "us-east-1", "endpoint_url": loopback.url} for table in _tables(300)]
    try:
        first = greenfetch.adaptive_batch(tables, initial_concurrency=2, max_concurrency=64, processes=1)
        again = greenfetch.adaptive_batch(tables[:20], initial_concurrency=2, max_concurrency=64, processes=1)
    finally:
        greenfetch.default_engine().close()
    assert greenfetch.default_engine().config.processes == 2
    (trace,) = first.trace.values()
    learned = trace[-1].limit
    assert learned >= 8 and max(r.concurrency for r in first) >= 8  # it climbed to the knee
    assert again[0].concurrency >= min(8, learned)  # and the next batch began there


def test_real_token_bucket_is_paced_under_it(loopback):
    """A token bucket of R/s with a burst of R: adaptive finds the rate and stays under it. R is 50/s,
    or an eighth of the rate this client reaches unthrottled right now if that is lower: only a client
    that outruns the bucket is throttled at all, and on a loaded machine (load 10 on 2 cores) this one
    reached 60-80/s, so a bucket of 100/s never throttled it. An eighth, not a quarter: the rate is read
    at the start, and a client starved of CPU later (CI's lanes beside it) sends under its cap, is
    throttled less and keeps a cap above the bucket (159/s for 100/s, once): at an eighth it must slow
    down twice as much before its cap stops binding. What it asserts of the cap is the last cut's value,
    not the cap at the end (see below)."""
    loopback.control(latency=0.02)
    engine = Engine(Config.resolve({"endpoint_url": loopback.url, "region": "us-east-1"}))
    engine.execute(_tables(1)[0])  # the client made: what follows measures calls only
    began = time.perf_counter()
    assert all(r.ok for r in engine.batch_requests(_tables(90), concurrency=30))
    rate = min(50, int(90 / (time.perf_counter() - began) / 8))
    calls = rate + 150  # the burst, then 3 s at 50/s: the pacer cuts at most once a round trip
    loopback.control(token_bucket=rate, seed=3)
    results = engine.adaptive_batch(_tables(calls), initial_concurrency=30, max_concurrency=30)
    assert sum(r.ok for r in results) >= 0.96 * calls, rate  # throttled attempts were retried (3 attempts)
    (trace,) = results.trace.values()
    assert any(p.throttles for p in trace), (rate, trace)
    paced = [p.rate for p in trace if p.rate is not None]
    # The cap after the last cut: only a throttle lowers it (answers and the probe only raise it), so a
    # drop is a cut, set from the rate the server accepted. Not the first cuts (the bucket's burst is
    # accepted at several times R, so a cut in it lands high: 227/s for 50 once), nor the cap at the
    # batch's end (between cuts the probe grows it ~3x in 3 s unthrottled, faster than a client starved
    # of CPU meets the bucket again: a sawtooth's phase, 46/s for 23 once).
    cuts = [after for before, after in itertools.pairwise(paced) if after < before]
    assert cuts and 0.3 * rate <= cuts[-1] <= 1.5 * rate, (rate, paced)
    assert (
        engine.metrics.registry.get_sample_value(
            "greenfetch_throttles_total", {"service": "dynamodb", "operation": "ListTables"}
        )
        > 0
    )
    engine.close()


def test_plateau_knob_keeps_throughput_flat_past_c():
    faults = Faults({"latency": 0.1, "plateau": 4})
    assert faults.decide("t", 4)[0] == pytest.approx(0.1)
    assert faults.decide("t", 8)[0] == pytest.approx(0.2)  # twice in flight, twice the latency
    with pytest.raises(ValueError, match="plateau"):
        Faults({"plateau": 0})


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_adaptive_runs_and_writes_the_trace(tmp_path, loopback):
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(r) + "\n" for r in _tables(60)))
    trace = tmp_path / "trace.json"
    loopback.control(latency=0.01)
    result = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            loopback.url,
            "--region",
            "us-east-1",
            "adaptive",
            str(requests),
            "--initial-concurrency",
            "2",
            "--target-latency",
            "500ms",
            "--max-concurrency",
            "32",
            "--trace",
            str(trace),
            "--query",
            "[].concurrency",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    limits = json.loads(result.stdout)
    assert len(limits) == 60 and limits[0] == 2 and max(limits) > 2
    (points,) = json.loads(trace.read_text()).values()
    assert points and {"time", "limit", "latency", "throttles", "samples", "load"} <= set(points[0])


@pytest.mark.parametrize(
    "args, named",
    [
        (["--initial-concurrency", "0"], "initial_concurrency"),
        (["--target-latency", "soon"], "target_latency"),
        (["--min-concurrency", "8", "--max-concurrency", "4"], "min_concurrency"),
    ],
)
def test_cli_adaptive_bad_numbers_exit_2(tmp_path, args, named):
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps(_tables(1)[0]) + "\n")
    result = CliRunner().invoke(load_commands(), ["adaptive", str(requests), *args])
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output


def test_the_limiters_lock_is_gevents_semaphore_once_patched_else_a_real_lock():
    """``quick_lock``: gevent's ``Semaphore`` where ``threading`` is patched (a patched ``Lock``
    without its Python ``acquire``); with ``GREENFETCH_ENGINE=threads`` nothing patches, gevent's
    monkey module is never imported, and the lock is a real one (real threads share the limiters)."""
    import subprocess
    import sys

    import gevent.lock

    assert type(Limits()._limiter_lock) is gevent.lock.Semaphore
    code = (
        "import sys, _thread, greenfetch; from greenfetch._adaptive import Limits; "
        "print(type(Limits()._limiter_lock) is _thread.LockType, 'gevent.monkey' in sys.modules)"
    )
    env = {**os.environ, "GREENFETCH_ENGINE": "threads"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False"], out.stderr
