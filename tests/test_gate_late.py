"""Issue 24, part 12 (docs/performance/inventory-cost.md): a one-call scope answered after ``max_window`` closes its
window (under callgrind, ~50x slower than native, most of an inventory's scopes are). Its lazy
limiter now logs that close when it provably keeps the limit (the first window's, on its first
answer, unsaturated) and makes its controller only when something needs it; and a close makes its
``TracePoint`` (a frozen dataclass whose ``__init__`` sets each field through
``object.__setattr__``, 13.6k instructions) with its fields' dict at once. Here: a limiter that keeps
a logged close decides what one made with its controller decides, whatever comes after the close
(slots, answers, new settings, ``reset``, the trace read), and the point made is the dataclass's
own, in every way a caller can see."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gate_cost import _CODES, _CONFIGS, _LATENCIES, _LOADS, _Load, _state_through_trace, drive_alike

import greenfetch._limiter as limiter_module
from greenfetch._adaptive import Limiter, Limits
from greenfetch._attempts import Attempt
from greenfetch._controller import Controller, Settings, TracePoint


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_STEPS = st.tuples(
    st.sampled_from(
        ["send"] * 4 + ["answer held"] * 3 + ["answer after", "configure", "reset", "trace", "make"]
    ),
    st.sampled_from([0.0, 2**-7, 0.25, 1.0, 1.5]),  # past ``max_window`` (1 s) in one step, or exactly at it
    _LATENCIES,
    _CODES,
    _LOADS,
    st.sampled_from(_CONFIGS),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(_CONFIGS), steps=st.lists(_STEPS, min_size=2, max_size=60))
def test_a_limiter_that_logged_a_close_decides_what_an_eager_one_decides(monkeypatch, first, steps):
    """``test_gate_cost``'s lazy-against-eager run, its answers often past ``max_window``, with
    only what a run reads between steps compared (the limit, its value, the slots: reading the trace
    makes a controller, so it is a step of its own here): a logged close stays logged until
    something needs it, and at the end the whole controller is the same."""
    monkeypatch.setattr(limiter_module.time, "sleep", lambda seconds: None)  # the pacer's wait
    lazy, eager = drive_alike(first, steps, _limits_agree)
    assert _state_through_trace(lazy.controller) == _state_through_trace(eager.controller)


def _limits_agree(lazy: Limiter, eager: Limiter) -> None:
    assert lazy.limit == eager.limit and repr(lazy.limit_value()) == repr(eager.limit_value())


def _pair(config: Settings) -> tuple[Limiter, Limiter, _Clock, _Load]:
    clock, load = _Clock(), _Load()
    limits = Limits(clock=clock)
    limits.configure(config)
    lazy = limits.limiter("s/r/a")
    lazy.load = load
    return lazy, Limiter("s/r/a", Controller(config, clock), load, clock=clock), clock, load


# Each close below would move the limit (or is out of the rule's bounds): the limiter must make its
# controller for it, not log it. (Each failed with its own condition taken out of ``observe``.)
@pytest.mark.parametrize(
    "case",
    [
        "limit out of the settings' bounds",  # the close's clamp moves it
        "a saturated close",  # ``LatencyLaw.saturated`` grows it (3 in flight at most, limit 5)
        "a saturated answer before",  # the close's window is saturated by an answer logged earlier
    ],
)
def test_a_close_that_moves_the_limit_is_not_logged(case):
    config = (
        Settings(initial=10, max=4) if case.startswith("limit") else Settings(initial=5, target_latency=5.0)
    )
    lazy, eager, clock, load = _pair(config)
    for limiter in (lazy, eager):
        for _ in range(3):
            limiter.__enter__()
    if case == "a saturated answer before":
        clock.now += 0.5
        load.now = (0.95, 0.9, 0.0)
        for limiter in (lazy, eager):
            limiter.__exit__(None, None, None)
            limiter.observe(Attempt(0.05, 200, None))
    clock.now = 1001.5
    load.now = (0.95, 0.9, 0.0) if case == "a saturated close" else (0.3, 0.2, 0.0)
    for limiter in (lazy, eager):
        limiter.__exit__(None, None, None)
        limiter.observe(Attempt(0.05, 200, None))
    assert eager.trace()  # the window closed
    assert lazy.limit == eager.limit and repr(lazy.limit_value()) == repr(eager.limit_value())
    assert eager.limit_value() != (10.0 if case.startswith("limit") else 5.0)  # it moved
    assert _state_through_trace(lazy.controller) == _state_through_trace(eager.controller)


@pytest.mark.parametrize("client", [(0.3, 0.2, 0.0), (0.95, 0.9, 0.0)])  # idle; saturated (callgrind's)
def test_a_one_call_scope_answered_late_makes_no_controller(client):
    """An inventory's one-call scope whose answer comes after ``max_window`` (a client slowed down):
    its close is logged, no controller made; its limit is the initial one and its trace the close's
    point, made when read, as a limiter made with its controller has it."""
    made = []
    clock = _Clock()
    limits = Limits(clock=clock)
    limits.load = load = _Load()  # type: ignore[assignment]
    load.now = client
    scopes = [limits.limiter(f"s/r{n}/a") for n in range(20)]
    original = limiter_module.Limiter._materialize

    def counted(self):
        made.append(self.scope)
        return original(self)

    limiter_module.Limiter._materialize = counted  # type: ignore[method-assign]
    try:
        for limiter in scopes:
            with limiter:
                clock.now += 1.5
                limiter.observe(Attempt(1.4, 200, None))
        assert made == [] and all(limiter._controller is None for limiter in scopes)
        assert [value for _, value in limits.limit_values()] == [5.0] * 20
        eager = Controller(limits.settings, _Clock())
        eager.note_inflight(1)
        eager.clock = lambda: 1001.5
        eager.sample(1.4, inflight=1, load=client[0], cpu=client[1], held=client[2])
        assert [p.to_dict() for p in scopes[0].trace()] == [p.to_dict() for p in eager.trace]
        assert made == ["s/r0/a"]
    finally:
        limiter_module.Limiter._materialize = original  # type: ignore[method-assign]


def _drive(steps) -> Controller:
    clock = _Clock()
    ctl = Controller(Settings(initial=5, target_latency=0.5, max=64), clock, history=50)
    for gap, latency, kind, inflight, load in steps:
        clock.now += gap
        ctl.sample(
            None if kind == "error" else latency,
            throttled=kind == "throttle",
            dropped=kind == "timeout",
            inflight=inflight,
            load=load,
            cpu=load / 2,
        )
    return ctl


_steps = st.lists(
    st.tuples(
        st.floats(0.0, 0.6),  # seconds since the last answer (windows close at max_window, 1 s)
        st.floats(0.001, 2.0),
        st.sampled_from(["answer"] * 6 + ["throttle", "timeout", "error"]),
        st.integers(0, 80),
        st.floats(0.0, 1.0),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(steps=_steps)
def test_a_closed_windows_point_is_the_dataclasses_own(steps):
    ctl = _drive(steps)
    fields = [f.name for f in dataclasses.fields(TracePoint)]
    for point in ctl.trace:
        made = TracePoint(**{name: getattr(point, name) for name in fields})
        assert type(point) is TracePoint
        assert point == made and hash(point) == hash(made) and repr(point) == repr(made)
        assert list(vars(point)) == fields  # (the same attribute order: ``vars``, ``asdict``)
        assert dataclasses.asdict(point) == dataclasses.asdict(made) and point.to_dict() == made.to_dict()
        assert pickle.loads(pickle.dumps(point)) == point and copy.deepcopy(point) == point
        with pytest.raises(dataclasses.FrozenInstanceError):
            point.limit = 1.0  # type: ignore[misc]
    assert ctl.trace.maxlen == 50


def test_a_window_close_calls_no_dataclass_init():
    """Before: one ``TracePoint.__init__`` per closed window (a Python frame and eight
    ``object.__setattr__`` calls)."""
    init = TracePoint.__init__.__code__
    seen = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is init:
            seen.append(frame)

    steps = [(0.3, 0.05, "answer", 3, 0.2)] * 40  # a window closed every 1 s or so
    sys.setprofile(profile)
    try:
        ctl = _drive(steps)
    finally:
        sys.setprofile(None)
    assert len(ctl.trace) >= 5
    assert seen == []


def test_a_saturated_late_close_reads_the_in_flight_of_its_own_window_only():
    """The most in flight a saturated close reads is its window's: slots taken before a new run's
    settings opened it do not count (three then, one now: no controller), as ``Controller`` counts."""
    lazy, eager, clock, load = _pair(Settings(initial=5, target_latency=5.0))
    for limiter in (lazy, eager):
        for _ in range(3):
            limiter.__enter__()
        for _ in range(3):
            limiter.__exit__(None, None, None)
        limiter._reconfigure(Settings(initial=5, target_latency=5.0))
        limiter.__enter__()
    clock.now += 1.5
    load.now = (0.95, 0.9, 0.0)
    for limiter in (lazy, eager):
        limiter.observe(Attempt(0.05, 200, None))
    assert lazy._controller is None and eager.trace()
    assert lazy.limit == eager.limit and repr(lazy.limit_value()) == repr(eager.limit_value())
    assert _state_through_trace(lazy.controller) == _state_through_trace(eager.controller)
