"""What an account's AssumeRole costs around the STS call: the singleflight's bookkeeping.

The inventory's AssumeRoles share a flight only while it runs (window 0) and never store a value: the
table leaves its TLRU cache alone until a value is stored, and the metric finds each outcome's child once.
Budget: < 3 s (no sockets).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import greenfetch  # noqa: F401  (conftest.py has already patched gevent first)
from greenfetch._backends import GeventBackend
from greenfetch._dedupe import CACHED, COALESCED, EXECUTED, DedupeTable, Singleflight
from greenfetch._metrics import Metrics
from greenfetch._models import Request, Result
from greenfetch.inventory._credentials import assume_role_status


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _OldTable(DedupeTable):
    """The table as it was: its TLRU cache asked on every claim and every completion (as a table that
    has stored a value asks it)."""

    def __init__(self, maxsize, clock):
        super().__init__(maxsize, clock)
        self._stored = True


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["claim", "complete", "fail", "clear", "len"]),
        st.sampled_from("abc"),
        st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0]),  # window 0 (the inventory's) most often
        st.sampled_from([0.0, 0.25, 0.5, 1.0, -0.5]),  # the clock's step, backwards too
        st.integers(0, 5),  # which flight (a stale completion names an older one)
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_OPS, st.integers(1, 3))
def test_the_table_answers_as_it_did(ops, maxsize):
    """Any sequence of claims, completions, failures, clears and sizes, any windows (0 most often), a
    clock that may step back, a cache of 1-3 values: the same answers as the table that asked its TLRU
    cache every time."""
    clocks = _Clock(), _Clock()
    new, old = DedupeTable(maxsize, clocks[0]), _OldTable(maxsize, clocks[1])
    flights = [f"flight{n}" for n in range(6)]
    for op, key, window, step, which in ops:
        for clock in clocks:
            clock.now += step
        flight = flights[which]
        if op == "claim":
            assert new.claim(key, window, flight) == old.claim(key, window, flight)
        elif op == "complete":
            new.complete(key, flight, which, window)
            old.complete(key, flight, which, window)
        elif op == "fail":
            new.fail(key, flight)
            old.fail(key, flight)
        elif op == "clear":
            new.clear()
            old.clear()
        else:
            assert len(new) == len(old)
        assert new._inflight == old._inflight
        assert dict(new._done.items()) == dict(old._done.items())


class _Counted(dict):
    """A stand-in for the table's TLRU cache that counts what is asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def get(self, *args):
        self.asked += 1
        return super().get(*args)

    def pop(self, *args):
        self.asked += 1
        return super().pop(*args)


def test_flights_of_window_zero_leave_the_cache_alone():
    """Window-0 flights (the inventory's AssumeRoles) never ask the TLRU cache until a value is
    stored; after one is, claims ask it again."""
    table = DedupeTable(clock=_Clock())
    table._done = counted = _Counted()  # type: ignore[assignment]
    for n in range(5):
        assert table.claim(f"k{n}", 0.0, n) == (EXECUTED, n)
        table.complete(f"k{n}", n, "v", 0.0)
    assert counted.asked == 0
    table.claim("kept", 5.0, "f")
    table._done = counted = _Counted()  # type: ignore[assignment]
    table.complete("kept", "f", "v", 5.0)
    table.claim("other", 0.0, "g")
    table.complete("other", "g", "w", 0.0)
    assert counted.asked == 2  # once stored, a claim and a window-0 completion ask it


def test_the_metric_finds_each_outcome_once(monkeypatch):
    """``dedupe_total.labels`` once per outcome, whatever the number of calls; the counts the same."""
    metrics = Metrics()
    found = []
    labels = metrics.dedupe_total.labels

    def counting(*values):
        found.append(values)
        return labels(*values)

    monkeypatch.setattr(metrics.dedupe_total, "labels", counting)
    flight = Singleflight(metrics=metrics, backend=GeventBackend())
    for n in range(4):
        assert flight.do(f"k{n}", lambda n=n: n, window=0) == n
    flight.do("kept", lambda: "v", window=60)
    assert flight.do("kept", lambda: "not run", window=60) == "v"
    assert sorted(found) == [(CACHED,), (EXECUTED,)]
    monkeypatch.undo()
    assert metrics.dedupe_total.labels(EXECUTED)._value.get() == 5
    assert metrics.dedupe_total.labels(CACHED)._value.get() == 1
    assert metrics.dedupe_total.labels(COALESCED)._value.get() == 0


@pytest.mark.parametrize("window", [0, 0.0, 5])
def test_a_failed_flight_stores_nothing(window):
    """A failure is never kept, window 0 or not: the next caller runs again."""
    flight = Singleflight(backend=GeventBackend())

    def boom():
        raise ValueError("no")

    with pytest.raises(ValueError):
        flight.do("k", boom, window=window)
    assert flight.do("k", lambda: "ran", window=window) == "ran"
    assert flight.table._stored is (window != 0)


class _Answers:
    """An engine stand-in: records each request and answers it as STS would."""

    class config:
        home_region = "us-east-1"

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def execute(self, request):
        self.requests.append(request)
        credentials = {"AccessKeyId": "ASIA", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": None}
        return Result(0, request, {"Credentials": credentials})


@pytest.mark.parametrize("external_id", [None, "ext-1"])
def test_assume_roles_request_is_the_dataclasss_without_its_init(monkeypatch, external_id):
    """The AssumeRole request equals ``Request(...)``'s, field by field and in order, made without the
    frozen dataclass's ``__init__`` (~10k instructions an account)."""
    engine = _Answers()
    made = []
    init = Request.__init__

    def counting(self, *args, **kwargs):
        made.append(args)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Request, "__init__", counting)
    creds, status = assume_role_status(engine, "123456789012", "Reader", external_id=external_id)  # type: ignore[arg-type]
    assert made == [] and status.ok and creds is not None
    monkeypatch.undo()
    params = {"RoleArn": "arn:aws:iam::123456789012:role/Reader", "RoleSessionName": "greenfetch"}
    params["DurationSeconds"] = 3600  # type: ignore[assignment]
    if external_id:
        params["ExternalId"] = external_id
    expected = Request("sts", "AssumeRole", params, region="us-east-1")
    (request,) = engine.requests
    assert request == expected and list(request.__dict__.items()) == list(expected.__dict__.items())
