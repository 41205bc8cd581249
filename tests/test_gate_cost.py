"""Issue 24, the gate's cost per request, part 2 (docs/performance/adaptive.md): what the cuts took out, and
that they took out no decision.

Counted with a profiler hook (Python calls are what the cuts removed; instructions are
``scripts/gatecost.py``'s, which also compares whole simulated runs before and after a change with
``--decisions``). The decision identity here: a ``Limiter`` (whose common paths are written out
inline) decides what its ``Controller`` driven through its own methods decides, on random runs.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import pytest
from _by_python import qualnames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greenfetch._limiter as limiter_module
from greenfetch._adaptive import Limiter, Limits, open_gate, signal_of
from greenfetch._attempts import Attempt
from greenfetch._controller import Controller, Settings
from greenfetch._metrics import Metrics
from greenfetch._models import Request
from greenfetch._ratecap import RateCap
from greenfetch.inventory._pacing import FairFeed


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _calls(run, c_calls: bool = False) -> Counter[str]:
    """The Python functions ``run()`` calls (with ``c_calls``, the builtins too), by name."""
    found: Counter[Any] = Counter()  # a Python function by its code, a builtin by its name

    def profile(frame, event, arg):
        if event == "call":
            found[frame.f_code] += 1
        elif c_calls and event == "c_call":
            found[f"C:{getattr(arg, '__qualname__', arg)}"] += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    names = qualnames(key for key in found if not isinstance(key, str))
    return Counter({names.get(key, key): count for key, count in found.items()})


def _one_call_scopes():
    """An engine's limits (no watcher greenlet: the gate's own calls only), 40 requests each of a scope
    of its own, a gate opened the inventory's way, and a flat answer."""
    limits = Limits(Metrics(), gevent=True)
    limits.load._running = True
    requests = [Request("dynamodb", "ListTables", region=f"r{n}", account="111111111111") for n in range(40)]
    return limits, requests, open_gate(limits, 5, 5.0, 1, 64), Attempt(0.05, 200, None)


def test_a_one_call_scope_fed_and_gated_makes_few_python_calls_controller_included():
    """An inventory's scope is mostly one call: fed once, its limiter and controller made, a slot,
    one sample. Counted whole (``tests/test_inventory_cpu.py`` leaves the controller out): 29 Python
    calls a scope before part 2 (the feed read its cap, making the limiter, and ``Limiter.limit``;
    the gate looked the scope up through ``_limiter`` twice; ``acquire`` and ``Controller.rate``
    behind ``__enter__``; the scopes' lock's Python ``acquire``; ``_open_window`` in
    ``Controller()``), 21 after (``scope_of`` three times among them), 22 since the slot's in-flight
    high-water mark is the controller's own ``note_inflight`` (the limiter wrote the field itself)."""
    limits, requests, gate, answer = _one_call_scopes()

    def run():
        feed = FairFeed(requests, Limits.scope_of, lambda scope: limits.limiter(scope).limit)
        for request in feed:
            with gate(request):
                pass
            gate.attempt(request, answer)
            feed.done(request)

    calls = _calls(run)
    per_scope = {name: n for name, n in calls.items() if n >= len(requests)}  # not the feed's set-up
    assert sum(per_scope.values()) / len(requests) < 23, per_scope


def test_the_feed_reads_no_cap_for_a_scope_with_none_in_flight():
    """A scope with nothing in flight is under any cap (at least 1): the feed asks its cap (in the
    inventory, the scope's limiter, made by asking) only once one of its calls is out."""
    asked: list[str] = []

    def cap(scope: str) -> int:
        asked.append(scope)
        return 1

    items = [("a", 1), ("b", 1), ("b", 2), ("c", 1)]
    feed = FairFeed(items, lambda item: item[0], cap)
    out = []
    for item in feed:
        out.append(item)
        feed.done(item)
    assert sorted(out) == sorted(items)
    assert set(asked) <= {"b"}  # only b ever had a second call while one was out


def test_one_call_scopes_cost_the_feed_no_heap_pop():
    """The scopes' first turns are read in plan order from a sorted list, merged with the heap of
    scopes already sent to: a thousand one-call scopes pop nothing off a heap (before: a pop each
    off a heap of all of them, ~3k instructions at an inventory's 2,880 scopes)."""
    items = [(f"s{n}", 1) for n in range(1000)]
    feed = FairFeed(items, lambda item: item[0], lambda scope: 1)

    def run():
        for item in feed:
            feed.done(item)

    calls = _calls(run, c_calls=True)
    assert len(feed.sent) == len(items)
    assert calls["C:heappop"] == 0 and calls["C:heappush"] == 0, calls


def test_a_rate_cap_never_throttled_keeps_no_throttle_log_and_no_dict():
    cap = RateCap(Settings(), _Clock())
    assert not hasattr(cap, "__dict__")
    cap.answered(1000.0, 999.9)
    assert cap._throttled is None
    cap.throttled(1000.1, 1000.0, 0.05)
    assert cap._throttled is not None and list(cap._throttled) == [1000.1]


def test_a_new_controllers_window_is_what_open_window_sets():
    """``Controller()`` writes ``_open_window``'s tallies out: they must stay the same set and values."""
    clock = _Clock()
    fresh = Controller(Settings(), clock)
    reopened = Controller(Settings(), clock)
    reopened._open_window(clock())
    for name in Controller.__slots__:
        if name in ("cap", "settings", "clock"):
            continue
        assert getattr(fresh, name) == getattr(reopened, name), name


def test_a_sample_that_closes_no_window_makes_few_builtin_calls():
    """The fast server's steady state (flat answers, the limit at its max: slow start never ends
    there): most answers close nothing. The window's end is tested on its counts first (its length's
    ``min``/``max`` only once enough answers came, and as comparisons), slow start's step to the
    max and the rate cap's bookkeeping are comparisons too. Before: 8 builtin calls a sample
    (``min`` three times, ``max``, ``len``, three appends), now the three appends."""
    clock = _Clock()
    ctl = Controller(Settings(initial=128, target_latency=5.0, max=128), clock)
    for _ in range(400):  # windows closed, the baseline known
        clock.now += 0.0005
        ctl.sample(0.05, inflight=100, load=0.3, cpu=0.2)
    closed = len(ctl.trace)

    def run():
        for _ in range(10):
            clock.now += 0.0005
            ctl.sample(0.05, inflight=100, load=0.3, cpu=0.2)

    calls = _calls(run, c_calls=True)
    assert len(ctl.trace) == closed  # none of the ten closed a window
    builtins = {name: n for name, n in calls.items() if name.startswith("C:") and name != "C:setprofile"}
    assert sum(builtins.values()) <= 3 * 10, calls


def _state(ctl: Controller) -> dict[str, str]:
    """Everything a controller holds (its rate cap's too), each value by its repr."""
    found = {name: repr(getattr(ctl, name)) for name in Controller.__slots__ if name not in ("cap", "clock")}
    found.update(
        {f"cap.{name}": repr(getattr(ctl.cap, name)) for name in RateCap.__slots__ if name != "clock"}
    )
    return found


_answers = st.tuples(
    st.floats(0.005, 0.3),  # latency
    st.sampled_from(
        [(200, None)] * 8 + [(400, "ThrottlingException"), (None, "ReadTimeoutError"), (500, None)]
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["send", "send", "answer"]), st.floats(0.0, 0.01), _answers),
        min_size=50,
        max_size=800,
    )
)
def test_a_limiter_decides_what_its_controller_decides(monkeypatch, steps):
    """The decision identity of the gate's inlined paths: a ``Limiter`` (``__enter__``'s slot,
    ``observe``'s classification and sample) and a ``Controller`` driven through ``reserve``,
    ``note_inflight`` and ``sample`` on the same clock hold the same state (every slot, the rate
    cap's too) after every step, throttles (the rate cap's pacer) and timeouts included."""
    monkeypatch.setattr(limiter_module.time, "sleep", lambda seconds: None)  # the pacer's wait: no real time
    clock = _Clock()
    config = Settings(initial=5, target_latency=0.5, max=64)
    limiter = Limiter("s/r/a", Controller(config, clock))
    reference = Controller(config, clock)
    held = 0
    for kind, advance, (latency, (status, code)) in steps:
        clock.now += advance
        if kind == "send" and held < limiter.limit:
            limiter.__enter__()
            if reference.rate is not None:
                reference.reserve()
            held += 1
            reference.note_inflight(held)
        elif kind == "answer" and held:
            limiter.__exit__(None, None, None)
            held -= 1
            limiter.observe(Attempt(latency, status, code))
            throttled, dropped = signal_of(code, status)
            usable = status is not None or throttled or dropped
            before = reference.limit
            reference.sample(
                latency if usable else None,
                throttled=throttled,
                dropped=dropped,
                inflight=held,
                load=0.0,
                cpu=0.0,
            )
            if int(reference.limit) > int(before):  # ``Limiter._grant``: the slots it frees, counted
                reference.note_inflight(held)
        assert _state(limiter.controller) == _state(reference)


def test_a_gated_request_finds_its_scope_once_and_each_attempt_reaches_its_scope(monkeypatch):
    """Part 7e: the engine observes a gated request's attempts through the limiter the gate gave it at
    the slot, so ``scope_of`` (1.9k instructions) runs once a request; it ran twice (at the slot and
    again in ``Gate.attempt``). Each attempt still reaches its own scope's limiter: successes and
    errors (an unseen attempt, recorded after the slot is given back), in three scopes."""
    from greenfetch import Config, Engine
    from greenfetch.testing import MockCaller, client_error

    def handler(request):
        if request.params["Limit"] % 11 == 5:  # (no throttle: the rate cap would pace the rest in real time)
            raise client_error("AccessDenied")
        return {"TableNames": []}

    scopes: Counter[str] = Counter()
    real_scope_of = Limits.scope_of

    def counted(request):
        scopes["scope_of"] += 1
        return real_scope_of(request)

    observed: Counter[str] = Counter()
    real_observe = Limiter.observe

    def observe(self, attempt):
        observed[self.scope] += 1
        real_observe(self, attempt)

    monkeypatch.setattr(Limits, "scope_of", staticmethod(counted))
    monkeypatch.setattr(Limiter, "observe", observe)
    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=MockCaller(handler))
    requests = [
        {"service": "dynamodb", "operation": "ListTables", "params": {"Limit": n}, "region": f"r{n % 3}"}
        for n in range(90)
    ]
    results = engine.adaptive_batch(requests, 5, 5.0, 1, 16)
    assert len(results) == 90 and sum(not r.ok for r in results) == 8
    assert scopes["scope_of"] == 90  # 180 before: once at the slot, once per attempt
    assert observed == {f"dynamodb/r{r}/default": 30 for r in range(3)}


# -- a scope's controller made when first needed (issue 24, the inventory's one-call scope) --------


def test_a_one_call_scope_makes_no_controller_and_fewer_python_calls():
    """An inventory's scope is mostly one call, whose answer moves nothing: its limiter logs what the
    controller would have been told and makes none (no ``Controller``, no ``RateCap``): 17 Python
    calls a scope fed and gated (22 when each limiter made its controller at once); its limit, rate
    and trace are the initial ones, read without making it; ``controller`` read from outside makes it."""
    limits, requests, gate, answer = _one_call_scopes()

    def run():
        feed = FairFeed(requests, Limits.scope_of, lambda scope: limits.limiter(scope).limit)
        for request in feed:
            slot = gate(request)
            with slot:
                slot.observe(answer)
            feed.done(request)

    calls = _calls(run)
    assert calls["Controller.__init__"] == 0 and calls["RateCap.__init__"] == 0, calls
    per_scope = {name: n for name, n in calls.items() if n >= len(requests)}
    assert sum(per_scope.values()) / len(requests) < 18, per_scope
    limiter = limits.limiter(Limits.scope_of(requests[0]))
    assert limiter.limit == 5 and limiter.trace() == [] and gate.trace()[limiter.scope] == []
    assert dict(limits.limit_values())[limiter.scope] == 5.0
    assert limiter._controller is None  # none of those reads made it
    assert limiter.controller.limit == 5.0 and limiter.controller.rate is None
    assert limiter._controller is not None


def test_a_lazy_scope_is_in_the_limit_series_without_a_controller():
    """``greenfetch_concurrency_limit{scope}`` shows a scope that made no controller (its initial
    limit), as it did when every limiter made one: the same series, and the scrape makes none."""
    from prometheus_client import generate_latest

    metrics = Metrics()
    limits = Limits(metrics)
    gate = open_gate(limits, 3, 5.0, 1, 64)
    slot = gate(Request("sqs", "ListQueues", region="eu-west-1", account="222222222222"))
    with slot:
        slot.observe(Attempt(0.05, 200, None))
    text = generate_latest(metrics.registry).decode()
    assert 'greenfetch_concurrency_limit{scope="sqs/eu-west-1/222222222222"} 3.0' in text
    assert slot._controller is None


class _Load:
    """Both limiters' ``ClientLoad``: the same (load, cpu, held) for an answer, set per step."""

    def __init__(self) -> None:
        self.now = (0.0, 0.0, 0.0)

    def read(self, seconds: float) -> tuple[float, float, float]:
        return self.now


_CONFIGS = [
    Settings(initial=5, target_latency=5.0, max=64),
    Settings(initial=2, target_latency=0.5, max=16),
    Settings(initial=8, target_latency=0.5, min=8, max=64),  # a limit of 5 clamped up (to an int)
    Settings(initial=1, target_latency=5.0, max=4),
    Settings(initial=12, target_latency=0.2, min=12, max=12),
]
_LATENCIES = st.sampled_from([0.00005, 0.0001, 0.0005, 0.001, 0.02, 0.05, 0.2, 0.3, 0.5, 0.8, 5.0, 6.0])
_CODES = st.sampled_from(
    [(200, None)] * 6
    + [(400, "ThrottlingException"), (None, "ReadTimeoutError"), (None, "ConnectionError"), (500, None)]
)
_LOADS = st.sampled_from([(0.0, 0.0, 0.0), (0.3, 0.2, 0.0), (0.95, 0.9, 0.0), (0.5, 0.3, 0.02)])
_STEPS = st.tuples(
    st.sampled_from(["send"] * 4 + ["answer held"] * 3 + ["answer after", "configure", "reset", "make"]),
    st.sampled_from([0.0, 2**-10, 2**-7, 2**-4, 0.25, 1.0]),  # exact: an answer at ``max_window`` exactly
    _LATENCIES,
    _CODES,
    _LOADS,
    st.sampled_from(_CONFIGS),
)


def _both_agree(lazy: Limiter, eager: Limiter) -> None:
    assert lazy.limit == eager.limit and repr(lazy.limit_value()) == repr(eager.limit_value())
    assert [p.to_dict() for p in lazy.trace()] == [p.to_dict() for p in eager.trace()]
    if lazy._controller is None:  # what lazy means: nothing learned that shows
        assert eager.controller.rate is None and eager.controller.slow_start and not eager.trace()
    else:
        assert _state_through_trace(lazy._controller) == _state_through_trace(eager._controller)


def _state_through_trace(ctl: Controller) -> dict[str, str]:
    """``_state``, the trace read through its property (a controller made later makes it later)."""
    found = {k: v for k, v in _state(ctl).items() if k != "_trace"}
    found["trace"] = repr([p.to_dict() for p in ctl.trace])
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(_CONFIGS), steps=st.lists(_STEPS, min_size=4, max_size=120))
def test_a_lazy_limiter_decides_what_a_limiter_with_its_controller_decides(monkeypatch, first, steps):
    """A limiter ``Limits`` makes (no controller until needed) and one made with its controller at
    the same instant, driven alike: slots taken (up to the limit), answers seen while the slot is
    held or after it was given back (throttles, timeouts, connection errors, 500s, answers under
    0.1 ms or past the target, exactly at ``max_window``, with the client's load), a new run's
    settings, ``reset``, and the controller made from outside; after every step the same limit,
    limit value and trace, nothing learned while lazy, and once made the same whole controller."""
    monkeypatch.setattr(
        limiter_module.time, "sleep", lambda seconds: None
    )  # the pacer's wait (both share a clock)
    lazy, eager = drive_alike(first, steps, _both_agree)
    lazy.controller  # noqa: B018
    _both_agree(lazy, eager)


def drive_alike(first: Settings, steps, agree) -> tuple[Limiter, Limiter]:
    """A limiter ``Limits`` makes (lazy) and one made with its controller at the same instant,
    driven alike by ``steps`` (``_STEPS``' kinds, and ``trace``: both traces read and compared);
    ``agree(lazy, eager)`` after every step."""
    clock = _Clock()
    load = _Load()
    limits = Limits(clock=clock)
    limits.configure(first)
    lazy = limits.limiter("s/r/a")
    lazy.load = load
    eager = Limiter("s/r/a", Controller(first, clock), load, clock=clock)
    held = 0
    for kind, advance, latency, (status, code), client, config in steps:
        clock.now += advance
        load.now = client
        if kind == "send" and held < eager.limit:
            assert lazy.__enter__() == eager.__enter__()
            held += 1
        elif kind in ("answer held", "answer after") and held:
            attempt = Attempt(latency, status, code)
            if kind == "answer after":
                lazy.__exit__(None, None, None)
                eager.__exit__(None, None, None)
            lazy.observe(attempt)
            eager.observe(attempt)
            if kind == "answer held":
                lazy.__exit__(None, None, None)
                eager.__exit__(None, None, None)
            held -= 1
        elif kind == "configure":
            lazy._reconfigure(config)
            eager._reconfigure(config)
        elif kind == "reset":
            lazy._reset(config)
            eager._reset(config)
        elif kind == "trace":
            assert [p.to_dict() for p in lazy.trace()] == [p.to_dict() for p in eager.trace()]
        elif kind == "make":
            lazy.controller  # noqa: B018  (made from its log now)
        assert lazy.inflight == eager.inflight == held
        agree(lazy, eager)
    return lazy, eager


@pytest.mark.parametrize("config", _CONFIGS)
@pytest.mark.parametrize(
    "answers",
    [
        [(0.05, 400, "ThrottlingException")],
        [(0.05, None, "ReadTimeoutError")],
        [(0.05, None, "ConnectionError"), (0.05, 200, None)],
        [(0.05, 500, None), (0.02, 200, None)],
        [(0.00005, 200, None)] * 3,
        [(0.0001, 200, None), (0.0005, 200, None)],  # slow start's step: above 0.1 ms only
        [(6.0, 200, None), (0.3, 200, None)],
        [(5.0, 200, None), (0.5, 200, None), (0.2, 200, None)],  # at the targets: a step
        [(0.05, 200, None), (0.05, 400, "ThrottlingException"), (0.05, 200, None)],
    ],
)
@pytest.mark.parametrize("after", [0.0, 2**-6, 1.0 - 2**-20, 1.0])
def test_a_new_scopes_first_answers_decide_alike(monkeypatch, config, answers, after):
    """A new scope's first request, its attempts ``after`` seconds after the scope was made (exactly
    ``max_window`` among them): throttled, timed out, a connection error or a 500 then an answer,
    answers under 0.1 ms or past the target; with a second request sent while the first is out, and
    a new run's settings after. A limiter made lazily and one made with its controller agree."""
    monkeypatch.setattr(limiter_module.time, "sleep", lambda seconds: None)
    clock = _Clock()
    limits = Limits(clock=clock)
    limits.configure(config)
    lazy = limits.limiter("s/r/a")
    eager = Limiter("s/r/a", Controller(config, clock), None, clock=clock)
    assert lazy.__enter__() == eager.__enter__()
    clock.now += after
    for latency, status, code in answers:
        lazy.observe(Attempt(latency, status, code))
        eager.observe(Attempt(latency, status, code))
        _both_agree(lazy, eager)
    if eager.limit > 1:  # a second one while the first is out
        assert lazy.__enter__() == eager.__enter__()
        _both_agree(lazy, eager)
        for limiter in (lazy, eager):
            limiter.__exit__(None, None, None)
    for limiter in (lazy, eager):
        limiter.__exit__(None, None, None)
        limiter._reconfigure(_CONFIGS[0])
    _both_agree(lazy, eager)
    lazy.controller  # noqa: B018
    _both_agree(lazy, eager)


@pytest.mark.parametrize("config", _CONFIGS)
def test_a_lazy_scope_makes_its_controller_before_its_window_could_close(config):
    """Answers one at a time, each its own request (a scope that stays under its limit): the window
    closes at ``min_samples`` answers once ``min_window`` has passed; the lazy limiter makes its
    controller for that answer, not after it (the same trace as one made at once)."""
    clock = _Clock()
    limits = Limits(clock=clock)
    limits.configure(config)
    lazy = limits.limiter("s/r/a")
    eager = Limiter("s/r/a", Controller(config, clock), None, clock=clock)
    for _ in range(2 * config.min_samples):
        clock.now += 2**-8
        for limiter in (lazy, eager):
            with limiter:
                limiter.observe(Attempt(0.001, 200, None))
        _both_agree(lazy, eager)
    assert eager.trace() and lazy._controller is not None


def test_a_lazy_limiters_log_is_bounded():
    """A scope that stays lazy through many runs (a ``reconfigure`` each) makes its controller once
    its log is long (``_LOG_MAX``): memory bounded, and the same controller as one made at once."""
    clock = _Clock()
    limits = Limits(clock=clock)
    lazy = limits.limiter("s/r/a")
    eager = Limiter("s/r/a", Controller(limits.settings, clock), clock=clock)
    for n in range(3 * limiter_module._LOG_MAX):
        clock.now += 0.5
        config = _CONFIGS[n % 2]
        lazy._reconfigure(config)
        eager._reconfigure(config)
        assert lazy._log is None or len(lazy._log) <= limiter_module._LOG_MAX
    assert lazy._controller is not None
    _both_agree(lazy, eager)
