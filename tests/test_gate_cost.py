"""Issue 24, the gate's cost per request, part 2 (docs/performance.md): what the cuts took out, and
that they took out no decision.

Counted with a profiler hook (Python calls are what the cuts removed; instructions are
``scripts/gatecost.py``'s, which also compares whole simulated runs before and after a change with
``--decisions``). The decision identity here: a ``Limiter`` (whose common paths are written out
inline) decides what its ``Controller`` driven through its own methods decides, on random runs.
"""

from __future__ import annotations

import sys
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greenfetch._adaptive as adaptive
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
    found: Counter[str] = Counter()

    def profile(frame, event, arg):
        if event == "call":
            found[frame.f_code.co_qualname] += 1
        elif c_calls and event == "c_call":
            found[f"C:{getattr(arg, '__qualname__', arg)}"] += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return found


def test_a_one_call_scope_fed_and_gated_makes_few_python_calls_controller_included():
    """An inventory's scope is mostly one call: fed once, its limiter and controller made, a slot,
    one sample. Counted whole (``tests/test_inventory_cpu.py`` leaves the controller out): 29 Python
    calls a scope before part 2 (the feed read its cap, making the limiter, and ``Limiter.limit``;
    the gate looked the scope up through ``_limiter`` twice; ``acquire`` and ``Controller.rate``
    behind ``__enter__``; the scopes' lock's Python ``acquire``; ``_open_window`` in
    ``Controller()``), 21 after (``scope_of`` three times among them), 22 since the slot's in-flight
    high-water mark is the controller's own ``note_inflight`` (the limiter wrote the field itself)."""
    limits = Limits(Metrics(), gevent=True)
    limits.load._running = True  # no watcher greenlet: the gate's own calls only
    requests = [Request("dynamodb", "ListTables", region=f"r{n}", account="111111111111") for n in range(40)]
    gate = open_gate(limits, 5, 5.0, 1, 64)
    answer = Attempt(0.05, 200, None)

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
    monkeypatch.setattr(adaptive.time, "sleep", lambda seconds: None)  # the pacer's wait: no real time
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
