"""Issue 24, the gate and feed of an inventory's one-call scope, part 14 (helper ``gatefeed``): a gated
request's attempt goes to the metrics, then to its limiter, each called by the recorder's hook itself
(``AttemptRecorder.on_attempt``, then ``on_sample``): the engine makes no closure a request, and no
Python frame of its own runs between the hook and the limiter."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from _by_python import qualnames
from test_pacing_done import _CountingLock

from greenfetch import Config, Engine
from greenfetch._adaptive import open_gate
from greenfetch._limiter import Limiter
from greenfetch._metrics import Metrics
from greenfetch.testing import MockCaller, client_error

LIST = {"service": "dynamodb", "operation": "ListTables", "region": "us-east-1"}


def _seen(run) -> list[tuple[str, str]]:
    """(function, its caller) for each call of ``Metrics.attempt`` and ``Limiter.observe`` in ``run()``."""
    watched = {Metrics.attempt.__code__, Limiter.observe.__code__}
    seen: list[tuple[Any, str]] = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in watched:
            seen.append((frame.f_code, frame.f_back.f_code.co_name))

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    names = qualnames(watched)
    return [(names[code], caller) for code, caller in seen]


def _handler(request):
    if request.params.get("Limit") == 1:
        raise client_error("AccessDenied")
    return {"TableNames": []}


@pytest.mark.parametrize("limit", [None, 1])
def test_a_gated_attempt_reaches_the_metrics_then_its_limiter_from_the_recorders_hook(limit):
    """A caller below botocore's events (one unseen attempt, recorded by the engine), answered or
    failed: the metrics see it first, then the limiter the gate gave the request (on main: both
    through the engine's ``observe_slot`` closure, made per request by ``_attempt_observer``)."""
    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=MockCaller(_handler))
    gate = open_gate(engine.limits, 5, 5.0, 1, 16)
    request = {**LIST, "params": {} if limit is None else {"Limit": limit}}
    seen = _seen(lambda: engine.execute(request, gate=gate))
    assert seen == [
        ("Metrics.attempt", "_record_unseen_attempt"),
        ("Limiter.observe", "_record_unseen_attempt"),
    ]
    assert engine.limits.limiter("dynamodb/us-east-1/default").inflight == 0


def test_botocores_attempts_reach_the_metrics_then_the_limiter_each(loopback: Any):
    """Two attempts botocore makes (a throttle, retried once): each to the metrics, then to the
    limiter, both from the attempt's record (``_attempts.record``, which botocore's ``_get_response``
    calls where greenfetch's request path is installed, and the ``needs-retry`` hook elsewhere)."""
    loopback.control(throttle_rate=1.0)
    engine = Engine(Config.resolve({"region": "us-east-1", "endpoint_url": loopback.url, "max_attempts": 2}))
    try:
        gate = open_gate(engine.limits, 5, 5.0, 1, 16)
        seen = _seen(lambda: engine.execute(LIST, gate=gate))
    finally:
        engine.close()
    assert seen == [("Metrics.attempt", "record"), ("Limiter.observe", "record")] * 2


def test_a_gate_without_a_slot_observer_is_sampled_by_request():
    """A gate whose slot has no ``observe`` (a program's own gate): each attempt goes to
    ``gate.attempt(request, attempt)``, after the metrics; one whose gate call fails too."""
    calls: list[tuple[str, Any]] = []

    class Slot:
        def __enter__(self):
            return 3

        def __exit__(self, *exc):
            return None

    class OwnGate:
        fail = False

        def __call__(self, request):
            if self.fail:
                raise RuntimeError("no slot")
            return Slot()

        def attempt(self, request, attempt):
            calls.append(("sample", request.operation))

    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=MockCaller(_handler))
    engine.metrics.attempt = lambda request, attempt: calls.append(("metrics", request.operation))
    gate = OwnGate()
    result = engine.execute(LIST, gate=gate)
    assert result.ok and result.concurrency == 3
    gate.fail = True
    failed = engine.execute(LIST, gate=gate)
    assert not failed.ok
    assert calls == [("metrics", "ListTables"), ("sample", "ListTables")] * 2


def test_a_requests_path_takes_the_limiters_locks_without_a_with(monkeypatch):
    """A one-call scope the inventory's way (its limiter made, a slot, a sample, the slot given back),
    a second request through the same scope (the limiter found), and one through its controller (the
    steady path): the locks taken by ``acquire`` and ``release``, not by ``with`` (``quick_lock``:
    its lookups cost 0.6k a time; main: 4, 3 and 3)."""
    import greenfetch._adaptive as adaptive
    from greenfetch._attempts import Attempt
    from greenfetch._models import Request

    locks: list[_CountingLock] = []
    real = adaptive.quick_lock

    def counted():
        locks.append(_CountingLock(real()))
        return locks[-1]

    monkeypatch.setattr(adaptive, "quick_lock", counted)
    limits = adaptive.Limits(Metrics(), gevent=True)
    limits.load._running = True
    gate = open_gate(limits, 5, 5.0, 1, 64)
    for lock in locks:  # (the gate's opening: once a run)
        lock.entered = lock.taken = 0
    request = Request("dynamodb", "ListTables", region="r1", account="111111111111")
    for _ in range(2):
        slot = gate(request)
        with slot:
            slot.observe(Attempt(0.05, 200, None))
    assert [lock.entered for lock in locks] == [0, 0]
    assert sum(lock.taken for lock in locks) == 1 + 3 * 2  # the new scope's, then each request's 3
    assert gate(request).controller is not None  # (made now: the steady path's slot from here on)
    for lock in locks:
        lock.entered = lock.taken = 0
    slot = gate(request)
    with slot:
        slot.observe(Attempt(0.05, 200, None))
    assert [lock.entered for lock in locks] == [0, 0] and sum(lock.taken for lock in locks) == 3
