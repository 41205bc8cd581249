"""Issue 24, part 13 (docs/performance/inventory-cost.md): a long-lived engine (a Celery worker, the
Nushell plugin) keeps its scopes' limiters for thousands of runs. A run's gate opening used to hand
its settings to every limiter (``configure``: O(scopes) a run), and each lazy limiter logged them, so
after 64 runs every one had made its controller. Now an opening is noted once (``Openings``) and each
limiter applies the openings it has not seen when it is next used or read, each at its own instant.
Here: an opening touches no limiter, costs the same for 10 scopes as for 1,000, makes no controller
however many runs pass; and a limiter that applies them late decides what one reconfigured (or reset)
at each opening decides, over random runs (Hypothesis, against the old eager ``Limits``)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gate_cost import _CONFIGS, _LATENCIES, _LOADS, _calls, _Load, _state_through_trace

import greenfetch._limiter as limiter_module
from greenfetch._adaptive import Gate, Limiter, Limits, open_gate
from greenfetch._attempts import Attempt
from greenfetch._controller import Controller, Settings
from greenfetch._models import Request


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _EagerLimits(Limits):
    """The reference: ``Limits`` as it was, every opening handed to every limiter at once, and each
    limiter made with its controller (so no lazy log's rule is on both sides)."""

    def limiter(self, scope: str) -> Limiter:
        found = self._by_scope.get(scope)
        if found is None:
            found = self._by_scope[scope] = Limiter(
                scope,
                Controller(self.settings, self._clock),
                self.load,
                self._limiter_lock,
                self._held,
                self.settings,
                self._clock,
            )
        return found

    def configure(self, settings: Settings) -> None:
        with self._lock:
            self.settings = settings
            for limiter in self._by_scope.values():
                limiter._reconfigure(settings)

    def reset(self, scope: str | None = None) -> None:
        with self._lock:
            for name in [scope] if scope is not None else list(self._by_scope):
                limiter = self._by_scope.get(name)
                if limiter is not None:
                    limiter._reset(self.settings)

    def open(self, settings: Settings, *, reset: bool = False) -> Gate:
        self.configure(settings)
        if reset:
            self.reset()
        return Gate(self, settings, reset)


def _limiter_calls(run) -> Counter[str]:
    """The calls ``run()`` makes to any ``Limiter`` method (Python frames), by name."""
    return Counter({name: n for name, n in _calls(run).items() if name.startswith("Limiter.")})


def _python_calls(run) -> int:
    return sum(_calls(run).values())


def _requests(n: int) -> list[Request]:
    return [Request("dynamodb", "ListTables", region=f"r{i}", account="111111111111") for i in range(n)]


def _used_once(limits: Limits, clock: _Clock, requests: list[Request]) -> Gate:
    """A run in which each request's scope sees one call, answered flat (an inventory's)."""
    gate = open_gate(limits, 5, 5.0, 1, 64)
    for request in requests:
        clock.now += 0.0005
        slot = gate(request)
        with slot:
            slot.observe(Attempt(0.05, 200, None))
    return gate


def test_a_long_lived_engines_runs_touch_no_limiter_and_make_no_controller():
    """50 scopes made and used in the first run, then 200 runs that reach none of them (the same
    settings, a new ``Settings`` each, as ``open_gate`` makes): no opening calls a limiter, none
    makes its controller (the old way: every scope's after 64 runs, its log full), and a run that
    reaches them all again decides what the old way decides."""
    clock, eager_clock = _Clock(), _Clock()
    limits, eager = Limits(clock=clock), _EagerLimits(clock=eager_clock)
    requests = _requests(50)
    for each, its_clock in ((limits, clock), (eager, eager_clock)):
        _used_once(each, its_clock, requests)
    touched: Counter[str] = Counter()
    for _ in range(200):
        clock.now += 1.0
        eager_clock.now += 1.0
        touched += _limiter_calls(lambda: open_gate(limits, 5, 5.0, 1, 64))
        open_gate(eager, 5, 5.0, 1, 64)
    assert touched == Counter()
    mine = [limits.limiter(limits.scope_of(r)) for r in requests]
    assert all(limiter._controller is None for limiter in mine)
    for each, its_clock in ((limits, clock), (eager, eager_clock)):
        gate = open_gate(each, 5, 5.0, 1, 64)
        for request in requests:
            its_clock.now += 0.0005
            slot = gate(request)
            with slot as limit:
                assert limit == 5
                slot.observe(Attempt(0.05, 200, None))
    assert all(limiter._controller is None for limiter in mine)
    assert [(s, repr(v)) for s, v in limits.limit_values()] == [(s, repr(v)) for s, v in eager.limit_values()]
    for request in requests:
        scope = limits.scope_of(request)
        assert _state_through_trace(limits.limiter(scope).controller) == _state_through_trace(
            eager.limiter(scope).controller
        )


def test_an_openings_cost_does_not_grow_with_the_scopes():
    """An opening's Python calls with 10 scopes and with 1,000 (each used once, 70 runs since): the same."""
    counts = []
    for scopes in (10, 1000):
        clock = _Clock()
        limits = Limits(clock=clock)
        _used_once(limits, clock, _requests(scopes))
        for _ in range(70):
            clock.now += 1.0
            open_gate(limits, 5, 5.0, 1, 64)
        counts.append(_python_calls(lambda limits=limits: open_gate(limits, 5, 5.0, 1, 64)))
        counts.append(_python_calls(lambda limits=limits: open_gate(limits, 5, 5.0, 1, 64, reset=True)))
    assert counts[:2] == counts[2:], counts


def test_the_limit_series_reads_what_the_runs_settings_made_of_a_limit():
    """``greenfetch_concurrency_limit{scope}`` read after runs that did not reach a scope: a learned
    limit shows clamped by a run's bounds, and stays clamped after a run with wider ones (as the old
    way, where each run clamped it at once); reading it after every run makes no controller of a
    lazy scope (the old way logged each run's settings: a controller after 64)."""
    clock, eager_clock = _Clock(), _Clock()
    limits, eager = Limits(clock=clock), _EagerLimits(clock=eager_clock)
    requests = _requests(3)
    for each, its_clock in ((limits, clock), (eager, eager_clock)):
        _used_once(each, its_clock, requests)
        each.limiter(each.scope_of(requests[0])).controller.limit = 40.0  # learned
    lazy = limits.limiter(limits.scope_of(requests[1]))
    for n in range(200):
        clock.now += 1.0
        eager_clock.now += 1.0
        numbers = (5, 5.0, 1, 10) if n == 100 else (5, 5.0, 1, 64)
        open_gate(limits, *numbers)
        open_gate(eager, *numbers)
        series = [(s, repr(v)) for s, v in limits.limit_values()]
        assert series == [(s, repr(v)) for s, v in eager.limit_values()]
        assert series[0][1] == ("40.0" if n < 100 else "10")  # (the clamp gives the bound, an int)
    assert lazy._controller is None
    assert len(lazy._log) <= 9  # type: ignore[arg-type]  # (its slot and sample, two runs of each stretch)
    for request in requests:
        scope = limits.scope_of(request)
        assert _state_through_trace(limits.limiter(scope).controller) == _state_through_trace(
            eager.limiter(scope).controller
        )


def test_a_reset_run_touches_no_limiter_and_each_starts_again_when_used():
    """``reset=True`` and ``Limits.reset()``: noted, not handed out; a learned limit is forgotten
    when the scope is next used or read (the same as the old way's reset at the opening)."""
    clock, eager_clock = _Clock(), _Clock()
    limits, eager = Limits(clock=clock), _EagerLimits(clock=eager_clock)
    requests = _requests(20)
    for each, its_clock in ((limits, clock), (eager, eager_clock)):
        _used_once(each, its_clock, requests)
        each.limiter(each.scope_of(requests[0])).controller.limit = 40.0
    clock.now += 1.0
    eager_clock.now += 1.0
    assert _limiter_calls(lambda: open_gate(limits, 5, 5.0, 1, 64, reset=True)) == Counter()
    open_gate(eager, 5, 5.0, 1, 64, reset=True)
    clock.now += 1.0
    eager_clock.now += 1.0
    assert _limiter_calls(limits.reset) == Counter()
    eager.reset()
    scope = limits.scope_of(requests[0])
    assert limits.limiter(scope).limit == eager.limiter(scope).limit == 5
    assert _state_through_trace(limits.limiter(scope).controller) == _state_through_trace(
        eager.limiter(scope).controller
    )


def test_runs_of_changed_settings_are_kept_bounded():
    """Settings changed at every run: past ``Openings.RUNS_MAX`` every limiter applies them and the
    record empties (bounded memory); each limiter still decides what the old way decides."""
    clock, eager_clock = _Clock(), _Clock()
    limits, eager = Limits(clock=clock), _EagerLimits(clock=eager_clock)
    requests = _requests(5)
    for each, its_clock in ((limits, clock), (eager, eager_clock)):
        _used_once(each, its_clock, requests)
    most = 0
    for n in range(3 * limiter_module.Openings.RUNS_MAX):
        clock.now += 1.0
        eager_clock.now += 1.0
        numbers = (5, 5.0, 1, 64 - n % 7)
        open_gate(limits, *numbers)
        open_gate(eager, *numbers)
        most = max(most, len(limits._openings.runs))
    assert most <= limiter_module.Openings.RUNS_MAX + 1
    for request in requests:
        scope = limits.scope_of(request)
        assert _state_through_trace(limits.limiter(scope).controller) == _state_through_trace(
            eager.limiter(scope).controller
        )


_SCOPES = 4
_STEP = st.tuples(
    st.sampled_from(
        ["open"] * 5
        + ["send"] * 5
        + ["answer held"] * 3
        + ["answer after"] * 2
        + ["reset one", "read", "reset"]
    ),
    st.integers(0, _SCOPES - 1),
    st.sampled_from([0.0, 2**-10, 2**-7, 0.25, 1.0, 1.5]),
    _LATENCIES,
    st.sampled_from(
        [(200, None)] * 6 + [(400, "ThrottlingException"), (None, "ReadTimeoutError"), (500, None)]
    ),
    _LOADS,
    st.sampled_from(_CONFIGS + [_CONFIGS[0]] * 4),  # often the same settings again
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEP, min_size=10, max_size=80), runs_max=st.sampled_from([2, 32]))
def test_openings_applied_when_used_decide_what_openings_applied_at_once_decide(monkeypatch, steps, runs_max):
    """Random runs on one engine's limits, and on the old eager ``Limits`` alike: gates opened with
    the same or other settings, ``reset=True`` among them, ``Limits.reset()`` and ``reset(scope)``,
    requests to a few scopes (slots up to the limit; answers seen while held or after: throttles,
    timeouts, 500s, past ``max_window``, the client's load), the limit series and traces read now and
    then. Every slot gives the same limit, every read the same series and traces, and at the end every
    scope's whole controller is the same; no opening called a limiter (but when the record was full)."""
    monkeypatch.setattr(limiter_module.time, "sleep", lambda seconds: None)  # the pacer's wait
    monkeypatch.setattr(limiter_module.Openings, "RUNS_MAX", runs_max)
    clock, load = _Clock(), _Load()
    limits, eager = Limits(clock=clock), _EagerLimits(clock=clock)
    load._running = True  # type: ignore[attr-defined]  # (a watcher running: the gate starts none)
    limits.load = eager.load = load  # type: ignore[assignment]
    gates = [open_gate(limits, 5, 5.0, 1, 64), open_gate(eager, 5, 5.0, 1, 64)]
    requests = _requests(_SCOPES)
    held: list[list[tuple[Limiter, Limiter]]] = [[] for _ in range(_SCOPES)]
    for kind, n, advance, latency, (status, code), client, config, reset in steps:
        clock.now += advance
        load.now = client
        if kind == "open":
            before = len(limits._openings.runs)
            calls = _limiter_calls(
                lambda config=config, reset=reset: gates.__setitem__(0, limits.open(config, reset=reset))
            )
            gates[1] = eager.open(config, reset=reset)
            if before < runs_max or len(limits._openings.runs) > before:
                assert calls == Counter()
        elif kind == "reset":
            assert _limiter_calls(limits.reset) == Counter() or len(limits._openings.runs) == 0
            eager.reset()
        elif kind == "reset one":
            limits.reset(limits.scope_of(requests[n]))
            eager.reset(eager.scope_of(requests[n]))
        elif kind == "send":
            mine, theirs = gates[0](requests[n]), gates[1](requests[n])
            if len(held[n]) < theirs.limit:  # type: ignore[attr-defined]
                assert mine.__enter__() == theirs.__enter__()
                held[n].append((mine, theirs))  # type: ignore[arg-type]
        elif kind.startswith("answer") and held[n]:
            pair = held[n].pop(0)
            attempt = Attempt(latency, status, code)
            for limiter in pair:
                if kind == "answer after":
                    limiter.__exit__(None, None, None)
                limiter.observe(attempt)
                if kind == "answer held":
                    limiter.__exit__(None, None, None)
        elif kind == "read":
            assert [(s, repr(v)) for s, v in limits.limit_values()] == [
                (s, repr(v)) for s, v in eager.limit_values()
            ]
            scope = limits.scope_of(requests[n])
            assert [p.to_dict() for p in limits.trace(scope)] == [p.to_dict() for p in eager.trace(scope)]
    assert limits.scopes() == eager.scopes()
    for scope in limits.scopes():
        assert _state_through_trace(limits.limiter(scope).controller) == _state_through_trace(
            eager.limiter(scope).controller
        )


@pytest.mark.parametrize("stretch", [1, 2, 3, 7])
@pytest.mark.parametrize("learned", ["lazy", "a slow answer", "re-measure"])
@pytest.mark.parametrize("first", [(5, 5.0, 1, 64), (4, 5.0, 1, 30)])  # the stretch's own, or before it
def test_a_stretch_of_equal_settings_is_what_each_of_them_does(stretch, learned, first):
    """A stretch of runs with equal settings, applied late, against each applied at its opening:
    the same controller, for a lazy scope, one whose slow start holds a slow answer of its open
    window (each opening starts a window: two forget it, one keeps it for the next), and one in a
    re-measure window (the first opening ends it and dates the next, the others only push that);
    the scope used before the stretch, or within it (the openings it applied are not counted)."""
    clock = _Clock()
    limits, eager = Limits(clock=clock), _EagerLimits(clock=clock)
    pair = [open_gate(each, *first)(_requests(1)[0]) for each in (limits, eager)]
    if learned != "lazy":
        pair[0].controller  # noqa: B018  (made now, as the eager one was)

    def answer(latency: float, code: str | None = None) -> None:
        clock.now += 0.005
        for slot in pair:
            with slot:  # (one in flight: no slow start step; a window about every 20 answers)
                slot.observe(Attempt(latency, 200 if code is None else None, code))

    while learned != "lazy" and pair[1].controller.baseline is None:
        answer(0.05)
    if learned == "a slow answer":
        answer(0.2)
    elif learned == "re-measure":
        answer(0.05, "ReadTimeoutError")  # (slow start ends: the re-measures begin 3 s on)
        for _ in range(2000):  # (3 s of answers at most)
            if pair[1].controller._restore:
                break
            answer(0.05)
    ctl = pair[1].controller
    if learned == "a slow answer":
        assert ctl.slow_start and ctl._exit is not None and ctl._exit._slow
    elif learned == "re-measure":
        assert ctl._restore
    for _ in range(stretch):
        clock.now += 0.7
        assert _limiter_calls(lambda: open_gate(limits, 4, 5.0, 1, 30)) == Counter()  # (applied late)
        open_gate(eager, 4, 5.0, 1, 30)
    assert _state_through_trace(pair[0].controller) == _state_through_trace(pair[1].controller)
