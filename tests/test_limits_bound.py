"""The bound on the scopes an engine keeps (``Limits._sweep``, ``_adaptive._learned``): a long-lived
engine that makes new scopes run after run keeps at most ``scopes_kept`` of those that learned nothing,
and ``learned_kept`` in all; never one in use or one a live gate may hold; least recently used first;
at amortized O(1) a new scope; and no decision changes but that a forgotten scope starts as a new one."""

from __future__ import annotations

import gc
import tracemalloc
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import greenfetch._adaptive as adaptive_module
from greenfetch import Config, Engine
from greenfetch._adaptive import LEARNED_KEPT, SCOPES_KEPT, Gate, Limits, open_gate
from greenfetch._attempts import Attempt
from greenfetch._limiter import Limiter
from greenfetch._metrics import Metrics
from greenfetch._models import Request
from greenfetch.testing import MockCaller

_FLAT = Attempt(0.05, 200, None)
_THROTTLE = Attempt(0.05, 400, "ThrottlingException")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(name: str) -> Request:
    return Request("dynamodb", "ListTables", region=name, account="111111111111")


def _scope(name: str) -> str:
    return Limits.scope_of(_request(name))


def _run(limits: Limits, clock: _Clock, names: list[str], answer: Attempt = _FLAT) -> Gate:
    """A run (a gate of its own) in which each named scope sees one call, answered with ``answer``."""
    gate = open_gate(limits, 5, 5.0, 1, 64)
    for name in names:
        clock.now += 0.0005
        slot = gate(_request(name))
        with slot:
            slot.observe(answer)
    return gate


def _fill(limits: Limits, clock: _Clock, prefix: str, n: int) -> None:
    """``n`` new scopes, each one call, in runs of 100 (each gate gone when the next opens)."""
    names = [f"{prefix}{i}" for i in range(n)]
    for start in range(0, n, 100):
        clock.now += 1.0
        _run(limits, clock, names[start : start + 100])


def test_the_bounds_are_documented_constants():
    limits = Limits()
    assert (limits.scopes_kept, limits.learned_kept) == (SCOPES_KEPT, LEARNED_KEPT) == (10_000, 50_000)
    assert SCOPES_KEPT <= LEARNED_KEPT


def _held_after(run: Any, runs: int, marks: tuple[int, ...]) -> list[int]:
    """Memory traced after each run numbered in ``marks`` (a full collection first)."""
    held = []
    tracemalloc.start()
    try:
        for n in range(runs):
            run(n)
            if n in marks:
                gc.collect()
                held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    return held


def test_a_long_lived_engines_new_scopes_run_after_run_keep_bounded_memory():
    """60 runs of 1,000 new one-call scopes each (the inventory's way: a gate each, a slot, its
    answer) on one ``Limits`` with the default bounds: 60,000 scopes made, six times the bound,
    ``SCOPES_KEPT`` at most kept and in the series, and the last 20 runs (20,000 new scopes, eight
    sweeps, each mark in the same phase of them) hold no more than the 20th did (2% of it, ~120 KB:
    the allocator's noise, and 6 bytes a scope). Unbounded (the engine before the bound) those runs
    held ~0.5 KB a scope, 10 MB; a forgotten scope's name alone kept somewhere, over 1 MB. (200 runs
    until 2026-12-07 took 11 s of CPU, nearly all of it tracemalloc's, for the same verdicts.)"""
    clock, metrics = _Clock(), Metrics()
    limits = Limits(metrics, clock=clock)

    def run(n: int) -> None:
        clock.now += 1.0
        _run(limits, clock, [f"r{n}-{i}" for i in range(1000)])
        assert len(limits.scopes()) <= SCOPES_KEPT

    held = _held_after(run, 60, (19, 39, 59))
    assert SCOPES_KEPT * 3 // 4 <= len(limits.scopes()) <= SCOPES_KEPT
    assert len(metrics.limit_collector.current()) == len(limits.scopes())
    assert held[2] - held[1] < 0.02 * held[0], held


def test_a_mockcaller_engine_keeps_its_scopes_bounded():
    """The engine's own ``adaptive_batch`` on a MockCaller, 40 runs of 250 new scopes, the bound set
    to 1,000: memory stops growing once it is reached (the caller's record of calls emptied)."""
    caller = MockCaller(lambda request: {})
    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=caller)
    engine.limits = Limits(engine.metrics, gevent=True, scopes_kept=1000)

    def run(n: int) -> None:
        requests = [
            {"service": "dynamodb", "operation": "ListTables", "region": f"r{n}-{i}"} for i in range(250)
        ]
        engine.adaptive_batch(requests, 5, 5.0, 1, 64)
        caller.calls.clear()
        assert len(engine.limits.scopes()) <= 1000

    try:
        held = _held_after(run, 40, (9, 19, 39))
    finally:
        engine.close()
    # unbounded, runs 20-40 would add ~3 MB (5,000 scopes); bounded they add what the process's other
    # caches and, under coverage, its record of the lines run take (47 KB seen, 5% of the 10th run's)
    assert held[2] - held[1] < 0.25 * held[0], held


def test_a_forgotten_scope_is_made_again_as_a_new_one_and_leaves_the_series():
    clock = _Clock()
    metrics = Metrics()
    limits = Limits(metrics, clock=clock, scopes_kept=100)
    _fill(limits, clock, "a", 100)
    first = limits._by_scope[_scope("a0")]
    _fill(limits, clock, "b", 100)
    assert _scope("a0") not in limits.scopes()
    series = metrics.limit_collector.current()
    assert _scope("a0") not in series and len(series) == len(limits.scopes()) <= 100
    again = limits.limiter(_scope("a0"))
    assert again is not first and again._controller is None and again.limit == 5
    assert limits.trace(_scope("a0")) == []
    made = [scope for scope, _ in limits.limit_values()]
    assert made[-1] == _scope("a0")  # (the series in the order made: the new one last)


def test_a_slot_held_is_never_forgotten():
    """A limiter handed out outside any gate, a slot held: not forgotten (``inflight``)."""
    clock = _Clock()
    limits = Limits(clock=clock, scopes_kept=100)
    busy = limits.limiter(_scope("busy"))
    busy.__enter__()
    clock.now += 1.0
    open_gate(limits, 5, 5.0, 1, 64)  # (a later run's settings: its window would be empty)
    _fill(limits, clock, "b", 300)
    assert limits.limiter(_scope("busy")) is busy
    busy.__exit__(None, None, None)
    _fill(limits, clock, "c", 300)
    assert _scope("busy") not in limits.scopes()


def test_a_scope_handed_out_since_the_oldest_live_gate_opened_is_never_forgotten():
    """A gate alive may hold any limiter handed out since it opened (its own, or the feed's reads):
    kept, however many scopes later runs make, and forgotten once that gate is gone."""
    clock = _Clock()
    limits = Limits(clock=clock, scopes_kept=100)
    gate = _run(limits, clock, ["held"])
    mine = gate._limiters[_scope("held")]
    _fill(limits, clock, "b", 300)
    assert limits.limiter(_scope("held")) is mine and gate(_request("held")) is mine
    del gate
    _fill(limits, clock, "c", 300)
    assert _scope("held") not in limits.scopes()


def test_answers_in_an_open_window_with_no_run_since_are_kept():
    """Its last run's window holds an answer (it could close on later ones) until a run opens."""
    clock = _Clock()
    limits = Limits(clock=clock, scopes_kept=100)
    _run(limits, clock, ["last"])
    for i in range(300):  # new scopes outside any gate: no opening
        limits.limiter(_scope(f"b{i}"))
    assert _scope("last") in limits.scopes()
    clock.now += 1.0
    _fill(limits, clock, "c", 300)
    assert _scope("last") not in limits.scopes()


def test_what_was_learned_is_kept_to_the_larger_bound():
    """A controller (a throttle's rate cap), a logged close (an answer past ``max_window``: its trace
    point and baseline), a limit that is not the settings' initial (an earlier run's, clamped): kept
    past ``scopes_kept``, forgotten past ``learned_kept``, least recently used first."""
    clock = _Clock()
    limits = Limits(clock=clock, scopes_kept=100, learned_kept=400)
    _run(limits, clock, ["throttled"], _THROTTLE)
    gate = open_gate(limits, 5, 5.0, 1, 64)
    slot = gate(_request("late"))
    with slot:
        clock.now += 1.5
        slot.observe(Attempt(1.5, 200, None))
    assert slot._controller is None and slot._closed
    del gate, slot
    clock.now += 1.0
    _fill(limits, clock, "a", 300)
    assert {_scope("throttled"), _scope("late")} <= set(limits.scopes())
    clock.now += 1.0
    _run(limits, clock, ["clamped"])
    clock.now += 1.0
    open_gate(limits, 4, 5.0, 1, 4)  # ``-c 4``: initial 4, "clamped" to 4 when it applies it
    limits.limiter(_scope("four"))
    clock.now += 1.0
    _fill(limits, clock, "b", 300)  # initial 5 again: "four" and "clamped" stay at 4
    assert limits.limiter(_scope("four")).limit == limits.limiter(_scope("clamped")).limit == 4
    learned = [_scope("throttled"), _scope("late"), _scope("four"), _scope("clamped")]
    assert set(learned) <= set(limits.scopes())
    names = [f"t{i}" for i in range(600)]
    for start in range(0, 600, 100):
        clock.now += 1.0
        _run(limits, clock, names[start : start + 100], _THROTTLE)
    assert not set(learned) & set(limits.scopes())
    assert len(limits.scopes()) <= 400 * 5 // 4


def test_least_recently_used_first():
    """A scope used again in a later run is kept over one not used since, made after it."""
    clock = _Clock()
    limits = Limits(clock=clock, scopes_kept=100)
    _fill(limits, clock, "a", 50)  # a0..a49, then b0..b49
    _fill(limits, clock, "b", 50)
    clock.now += 1.0
    _run(limits, clock, ["a0"])
    clock.now += 1.0
    _fill(limits, clock, "c", 30)  # 130 > 100: down to 75, the 55 least recently used
    kept = set(limits.scopes())
    assert _scope("a0") in kept and not {_scope(f"a{i}") for i in range(1, 50)} & kept
    bs = [_scope(f"b{i}") in kept for i in range(50)]
    assert bs == sorted(bs) and any(bs)  # (the b's forgotten, if any, the first made)
    assert {_scope(f"c{i}") for i in range(30)} <= kept


def test_the_sweeps_walk_amortized_o1_limiters_a_new_scope(monkeypatch):
    """2,000 learned scopes first in line (kept: under ``learned_kept``), then 20,000 new ones past
    ``scopes_kept`` = 1,000: each sweep walks the learned ones again, but sweeps come a quarter of
    what is kept apart, so the limiters asked are a few per new scope, not thousands."""
    clock = _Clock()
    limits = Limits(clock=clock, scopes_kept=1000, learned_kept=100_000)
    names = [f"t{i}" for i in range(2000)]
    for start in range(0, 2000, 100):
        clock.now += 1.0
        _run(limits, clock, names[start : start + 100], _THROTTLE)
    asked: Counter[str] = Counter()
    learned = adaptive_module._learned

    def counted(limiter: Limiter) -> Any:
        asked["learned"] += 1
        return learned(limiter)

    monkeypatch.setattr(adaptive_module, "_learned", counted)
    _fill(limits, clock, "b", 20_000)
    assert len(limits.scopes()) <= (2000 + 750) * 5 // 4
    assert asked["learned"] <= 10 * 20_000, asked


# -- Hypothesis: a bounded Limits against an unbounded one ------------------------------------------

_NAMES = [f"s{i}" for i in range(6)]
_STEP = st.tuples(
    st.sampled_from(["open"] * 3 + ["drop"] * 2 + ["send"] * 5 + ["answer"] * 4 + ["new"] * 4 + ["read"]),
    st.integers(0, len(_NAMES) - 1),
    st.sampled_from([0.0, 2**-10, 0.25, 1.0, 1.5]),
    st.sampled_from([_FLAT] * 6 + [_THROTTLE, Attempt(0.05, 500, None), Attempt(1.5, 200, None)]),
    st.sampled_from([(5, 5.0, 1, 64), (4, 5.0, 1, 4), (5, 0.01, 1, 64)]),
)


def _state(limiter: Limiter) -> Any:
    controller = limiter.controller
    return (
        repr(controller.limit),
        repr(controller.rate),
        repr(controller.baseline),
        controller.slow_start,
        [p.to_dict() for p in controller.trace],
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEP, min_size=10, max_size=120), learned_kept=st.sampled_from([8, 10**9]))
def test_a_bounded_engine_decides_as_an_unbounded_one_but_that_a_forgotten_scope_starts_anew(
    monkeypatch, steps, learned_kept
):
    """Random runs on three ``Limits``: bounded (``scopes_kept`` 2: most new scopes sweep), unbounded
    (``plain``), and unbounded with each scope the bounded one forgot deleted at the same step
    (``anew``: "a forgotten scope behaves exactly as a new one"). Gates opened (up to two alive) and
    dropped, requests sent (slots up to the limit) and answered (flat, throttled, a 500, past
    ``max_window``), new scopes made outside any gate, the series read. Every slot's limit and every
    read is the same on ``bounded`` and ``anew``, and at the end every scope's controller; on
    ``plain`` too for every scope never forgotten. Each scope forgotten was idle, lazy, with no
    logged close, nothing in its open window and the settings' initial limit, unless the scopes
    passed ``learned_kept`` (8, or unbounded: the rule for what learned nothing alone)."""
    monkeypatch.setattr("greenfetch._limiter.time.sleep", lambda seconds: None)  # the pacer's wait
    clocks = [_Clock(), _Clock(), _Clock()]
    engines = [
        Limits(clock=clocks[0], scopes_kept=2, learned_kept=learned_kept),
        Limits(clock=clocks[1], scopes_kept=10**9),
        Limits(clock=clocks[2], scopes_kept=10**9),
    ]
    bounded, plain, anew = engines
    gates: list[list[Gate]] = [[], [], []]
    held: dict[str, list[list[Any]]] = {name: [] for name in _NAMES}
    forgotten: set[str] = set()
    extra = 0
    for kind, n, advance, attempt, numbers in steps:
        for clock in clocks:
            clock.now += advance
        name = _NAMES[n]
        before = {scope: bounded._by_scope[scope] for scope in bounded.scopes()}
        if kind == "open":
            for each, alive in zip(engines, gates, strict=True):
                alive.append(open_gate(each, *numbers))
                del alive[:-2]
        elif kind == "drop":
            for alive in gates:
                del alive[:1]
        elif kind == "send" and gates[0]:
            slots: list[Any] = [alive[-1 if advance > 0.1 else 0](_request(name)) for alive in gates]
            if name in forgotten:  # (``plain`` no longer decides as ``bounded``: not driven)
                slots[1] = None
            if len(held[name]) < slots[2].limit:
                limits = [slot.__enter__() for slot in slots if slot is not None]
                assert limits[0] == limits[-1] and limits[0] == limits[1]
                held[name].append(slots)
        elif kind == "answer" and held[name]:
            for limiter in held[name].pop(0):
                if limiter is not None:
                    limiter.observe(attempt)
                    limiter.__exit__(None, None, None)
        elif kind == "new":
            extra += 1
            for each in engines:
                each.limiter(_scope(f"x{extra}"))
        elif kind == "read":
            series = [(s, repr(v)) for s, v in bounded.limit_values()]
            assert series == [(s, repr(v)) for s, v in anew.limit_values()]
            theirs = dict(plain.limit_values())
            for scope, value in series:
                if scope.split("/")[1] not in forgotten:
                    assert value == repr(theirs[scope])
        gone = set(before) - set(bounded.scopes())
        for scope in gone:
            limiter = before[scope]
            assert limiter.inflight == 0 and all(limiter not in gate._limiters.values() for gate in gates[0])
            if len(before) <= learned_kept:
                assert limiter._controller is None and not limiter._closed
                opened = limiter._seen != limiter._openings.count  # (a run since: its window closed)
                assert (limiter._samples == 0 or opened) and limiter._limit == bounded.settings.initial
            del anew._by_scope[scope]
            forgotten.add(scope.split("/")[1])
    event(f"scopes forgotten: {min(len(forgotten), 5)}{'+' if len(forgotten) > 4 else ''}")
    assert bounded.scopes() == anew.scopes()
    for scope in bounded.scopes():
        assert _state(bounded.limiter(scope)) == _state(anew.limiter(scope))
        if scope.split("/")[1] not in forgotten:
            assert _state(bounded.limiter(scope)) == _state(plain.limiter(scope))
