"""The adaptive controller in simulated time (Vector ARC style), its rules, and one real run.

The simulated servers: a knee server (C slots FIFO, or latency * (n/C)^2 like the loopback server),
a token bucket returning throttles, and a fast server with no knee. Each run is 20 simulated
seconds; the asserted ranges are the issue's targets. Budget: < 6 s (two real loopback runs ~3 s).
"""

import dataclasses
import heapq
import json
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import greenfetch  # noqa: F401  (conftest.py has already patched gevent first)
from greenfetch import Config, ConfigError, Engine
from greenfetch._adaptive import AdaptiveResults, Controller, Limits, Settings, adaptive_batch
from greenfetch._attempts import Attempt
from greenfetch._models import Request
from greenfetch.testing._loopback import LoopbackServer


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- simulated servers ---------------------------------------------------------------------


class FifoKnee:
    """C workers, service time S +-10%, FIFO queue beyond C: flat latency to C, then rising."""

    def __init__(self, c=32, s=0.05, seed=1):
        self.free, self.s, self.rng = [0.0] * c, s, random.Random(seed)

    def call(self, now, inflight):
        start = max(now, heapq.heappop(self.free))
        done = start + self.s * (0.9 + 0.2 * self.rng.random())
        heapq.heappush(self.free, done)
        return done - now, False


class SquareKnee:
    """The loopback server's model: latency * (inflight / C)^2 beyond C."""

    def __init__(self, c=32, s=0.05, seed=1):
        self.c, self.s, self.rng = c, s, random.Random(seed)

    def call(self, now, inflight):
        return self.s * (0.9 + 0.2 * self.rng.random()) * max(1.0, inflight / self.c) ** 2, False


class Bucket:
    """A token bucket of R/s (burst b); over the rate, an immediate ThrottlingException."""

    def __init__(self, rate=200.0, burst=5, s=0.05, seed=1):
        self.rate, self.burst, self.tokens, self.t, self.s = rate, burst, burst, 0.0, s
        self.rng = random.Random(seed)

    def call(self, now, inflight):
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1:
            self.tokens -= 1
            return self.s * (0.9 + 0.2 * self.rng.random()), False
        return 0.002, True


@dataclasses.dataclass
class Run:
    controller: Controller
    done: list  # (finish time, latency, throttled)
    limits: list  # (time, limit) at each completion

    def steady(self, start, end):
        return sum(1 for t, _, thr in self.done if start <= t < end and not thr) / (end - start)

    def throttled(self, start):
        after = [thr for t, _, thr in self.done if t >= start]
        return sum(after) / len(after)

    def p99(self, start):
        lat = sorted(x for t, x, thr in self.done if t >= start and not thr)
        return lat[int(0.99 * (len(lat) - 1))]

    def limit_stats(self, start):
        xs = [limit for t, limit in self.limits if t >= start]
        return statistics.mean(xs), statistics.pstdev(xs) / statistics.mean(xs)

    def windows_to(self, rate):
        """Update windows until the next 0.5 s first reach ``rate`` successes/s."""
        for i, point in enumerate(self.controller.trace):
            n = sum(1 for t, _, thr in self.done if point.time <= t < point.time + 0.5 and not thr)
            if n / 0.5 >= rate:
                return i
        return None


def simulate(server, config=Settings(), duration=20.0, fixed=None, change=None):
    """Keep ``limit`` requests in flight against ``server`` in simulated time (infinite demand)."""
    clock = Clock()
    ctl = Controller(config, clock)
    heap, seq, inflight, run = [], 0, 0, Run(ctl, [], [])

    def limit():
        return fixed or max(1, int(ctl.limit))

    def dispatch():
        nonlocal inflight, seq
        while inflight < limit():
            inflight += 1
            seq += 1
            latency, throttled = server.call(clock.now, inflight)
            heapq.heappush(heap, (clock.now + latency, seq, latency, throttled))

    dispatch()
    while heap and clock.now < duration:
        t, _, latency, throttled = heapq.heappop(heap)
        if change and t >= change[0]:
            change[1](server)
            change = None
        clock.now = t
        ctl.sample(latency, dropped=throttled, inflight=inflight)
        inflight -= 1
        run.done.append((t, latency, throttled))
        run.limits.append((t, limit()))
        dispatch()
    return run


@pytest.mark.parametrize("server", [FifoKnee, SquareKnee])
def test_knee_server_finds_the_knee(server):
    best = 32 / 0.05  # the best fixed concurrency's throughput (C / S)
    run = simulate(server())
    assert run.steady(5, 20) >= 0.9 * best
    assert run.p99(5) <= 2 * 0.05 * 1.1  # within 2x the no-load latency (+ the server's own 10% jitter)
    mean, cv = run.limit_stats(5)
    assert 32 <= mean <= 64 and cv <= 0.2
    assert run.windows_to(0.9 * run.steady(5, 20)) <= 20


def test_fixed_concurrency_beyond_the_knee_only_adds_latency():
    """The baseline the controller is judged against: the sweep's best is at the knee."""
    at_knee, beyond = simulate(FifoKnee(), fixed=32), simulate(FifoKnee(), fixed=128)
    assert beyond.steady(5, 20) <= at_knee.steady(5, 20) * 1.01
    assert beyond.p99(5) > 3 * at_knee.p99(5)


def test_token_bucket_server_sustains_the_rate_with_few_throttles():
    run = simulate(Bucket(rate=200))
    assert run.steady(5, 20) >= 0.85 * 200
    assert run.throttled(5) <= 0.05
    mean, cv = run.limit_stats(5)
    assert 7 <= mean <= 12 and cv <= 0.2
    assert run.windows_to(0.9 * run.steady(5, 20)) <= 20


def test_fast_server_is_not_throttled_by_the_controller():
    fixed_max = simulate(FifoKnee(c=10_000), fixed=256, duration=8)
    run = simulate(FifoKnee(c=10_000), duration=8)
    assert run.steady(4, 8) >= 0.95 * fixed_max.steady(4, 8)


def test_latency_doubling_does_not_pin_the_limit_at_the_floor():
    """A slower service (not our load) is re-measured: throughput comes back to the new C / S."""
    run = simulate(FifoKnee(), duration=30, change=(10.0, lambda server: setattr(server, "s", 0.1)))
    assert run.steady(20, 30) >= 0.9 * 32 / 0.1


def test_capacity_drop_then_recovery():
    def shrink(server):  # 32 workers -> 8
        server.free = sorted(server.free)[:8]

    run = simulate(FifoKnee(), duration=30, change=(10.0, shrink))
    assert run.steady(15, 30) >= 0.9 * 8 / 0.05
    assert run.p99(15) <= 2.2 * 0.05


# -- the rules -------------------------------------------------------------------------------


def test_throttle_cuts_multiplicatively_once_per_window_and_never_below_min():
    clock = Clock()
    ctl = Controller(Settings(initial=40, min=4, max=100), clock)
    clock.now = 1.0
    ctl.sample(0.01, dropped=True, inflight=40)
    assert ctl.limit == pytest.approx(40 * 0.85)
    ctl.sample(0.5, dropped=True, inflight=40)  # sent at 0.5, before the cut at 1.0: ignored
    assert ctl.limit == pytest.approx(40 * 0.85)
    for _ in range(50):
        clock.now += 1
        ctl.sample(0.01, dropped=True, inflight=40)
    assert ctl.limit == 4


def test_growth_stops_at_max_and_needs_the_limit_in_use():
    clock = Clock()
    ctl = Controller(Settings(initial=5, min=1, max=20), clock)
    for _ in range(200):
        clock.now += 0.01
        ctl.sample(0.01, inflight=1)  # app-limited: only 1 of 5 in use
    assert ctl.limit == 5
    for _ in range(200):
        clock.now += 0.01
        ctl.sample(0.01, inflight=int(ctl.limit))
    assert ctl.limit == 20


def test_target_latency_is_a_ceiling():
    clock = Clock()
    ctl = Controller(Settings(initial=50, target_latency=0.1, max=100), clock)
    for _ in range(60):
        clock.now += 0.05
        ctl.sample(0.4, inflight=50)
    assert ctl.trace[-1].limit < 50 and ctl.trace[-1].latency == pytest.approx(0.4)


def _feed(ctl, clock, latency, delay, n=200):
    for _ in range(n):
        clock.now += 0.01
        ctl.sample(latency, inflight=int(ctl.limit), client_delay=delay)


def test_a_rise_our_own_hub_delay_explains_does_not_cut():
    """The fast-server case: the client is CPU-bound, responses wait for the hub, the server is fine."""
    clock = Clock()
    ours = Controller(Settings(initial=20, max=100), clock)
    _feed(ours, clock, 0.05, 0.0, 50)  # learn the 50 ms baseline
    before = ours.limit
    _feed(ours, clock, 0.08, 0.03)  # +30 ms, all of it our own scheduling delay
    assert ours.limit > before
    clock = Clock()
    theirs = Controller(Settings(initial=20, max=100), clock)
    _feed(theirs, clock, 0.05, 0.0, 50)
    before = theirs.limit
    _feed(theirs, clock, 0.08, 0.002)  # +30 ms, hardly any of it ours: the server queues
    assert theirs.limit < before


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.5), st.floats(0, 2), st.booleans(), st.integers(0, 300)), max_size=200),
       st.integers(1, 50), st.integers(0, 50))
def test_limit_always_within_bounds(samples, lo, spread):
    clock = Clock()
    config = Settings.checked(lo, 0.5, lo, lo + spread)
    ctl = Controller(config, clock)
    for advance, latency, dropped, inflight in samples:
        clock.now += advance
        ctl.sample(latency, dropped=dropped, inflight=inflight)
        assert config.min <= ctl.limit <= config.max


def test_limits_are_per_scope_and_exported():
    engine = Engine(Config.resolve({"region": "us-east-1"}))
    limits = Limits(engine.metrics)
    a = Request("dynamodb", "ListTables", region="eu-west-1", account="111111111111")
    b = Request("dynamodb", "ListTables", region="eu-west-1", account="222222222222")
    assert Limits.scope_of(a) != Limits.scope_of(b)
    limiter = limits.limiter(Limits.scope_of(a))
    limiter.observe(Attempt(0.01, 429, None))  # a bare 429 is a throttle too
    assert limiter.controller.limit < 5
    value = engine.metrics.registry.get_sample_value("greenfetch_concurrency_limit",
                                                     {"scope": "dynamodb/eu-west-1/111111111111"})
    assert value == pytest.approx(limiter.controller.limit)
    engine.close()


@pytest.mark.parametrize("kwargs, name", [
    ({"initial_concurrency": 0}, "initial_concurrency"), ({"max_concurrency": -3}, "max_concurrency"),
    ({"min_concurrency": 10, "max_concurrency": 5}, "min_concurrency"), ({"target_latency": 0}, "target_latency"),
    ({"target_latency": "fast"}, "target_latency"), ({"initial_concurrency": 2.5}, "initial_concurrency"),
    ({"initial_concurrency": 500}, "initial_concurrency"),
])
def test_bad_numbers_are_named(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        adaptive_batch(None, [], **kwargs)


# -- for real, through the engine --------------------------------------------------------------


def _tables(n):
    return [{"service": "dynamodb", "operation": "ListTables", "params": {"Limit": i % 50 + 1}} for i in range(n)]


def test_real_run_rises_on_a_fast_server_and_falls_on_a_throttling_one():
    with LoopbackServer(latency=0.02) as url:
        engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1"}))
        results = engine.adaptive_batch(_tables(200), initial_concurrency=2, max_concurrency=64)
        assert isinstance(results, AdaptiveResults) and all(r.ok for r in results)
        (trace,) = results.trace.values()
        assert max(p.limit for p in trace) >= 8
        assert max(r.concurrency for r in results) >= 8
        engine.close()
    with LoopbackServer(latency=0.02, throttle_rate=0.3, seed=3) as url:  # 30% ThrottlingException
        engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1", "max_attempts": 2}))
        results = engine.adaptive_batch(_tables(90), initial_concurrency=30, max_concurrency=30)
        (trace,) = results.trace.values()
        assert any(p.throttles for p in trace)
        peak = max(range(len(trace)), key=lambda i: trace[i].limit)
        assert min(p.limit for p in trace[peak:]) <= 0.75 * trace[peak].limit
        assert engine.metrics.registry.get_sample_value(
            "greenfetch_throttles_total", {"service": "dynamodb", "operation": "ListTables"}) > 0
        engine.close()


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_adaptive_runs_and_writes_the_trace(tmp_path):
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(r) + "\n" for r in _tables(60)))
    trace = tmp_path / "trace.json"
    with LoopbackServer(latency=0.01) as url:
        result = CliRunner().invoke(load_commands(), [
            "--endpoint-url", url, "--region", "us-east-1", "adaptive", str(requests), "--initial-concurrency", "2",
            "--target-latency", "500ms", "--max-concurrency", "32", "--trace", str(trace),
            "--query", "[].concurrency", "--output", "json"])
    assert result.exit_code == 0, result.output
    limits = json.loads(result.stdout)
    assert len(limits) == 60 and limits[0] == 2 and max(limits) > 2
    (points,) = json.loads(trace.read_text()).values()
    assert points and {"time", "limit", "latency", "throttles", "samples"} <= set(points[0])


@pytest.mark.parametrize("args, named", [
    (["--initial-concurrency", "0"], "initial_concurrency"), (["--target-latency", "soon"], "target_latency"),
    (["--min-concurrency", "8", "--max-concurrency", "4"], "min_concurrency"),
])
def test_cli_adaptive_bad_numbers_exit_2(tmp_path, args, named):
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps(_tables(1)[0]) + "\n")
    result = CliRunner().invoke(load_commands(), ["adaptive", str(requests), *args])
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output
