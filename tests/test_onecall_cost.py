"""Issue 24, the one-call scope's gate and feed (docs/performance/inventory-cost.md, part 15, helper
``onecall``): a slot's limit without ``max(1, int(...))`` (the two builtins' calls cost 1.8k
instructions a slot), a sample's ``int`` only for a limit that grew, the feed's cap test without
``max``, an item's scope found again by the feed's key when it is done (no map of every item to its
scope), and the iteration's own counts kept as its locals. Each rewritten rule is held against the
old one (Hypothesis); each cut is held by a count that the code before it fails."""

from __future__ import annotations

import builtins
import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import greenfetch._limiter as limiter_module
import greenfetch.inventory._pacing as pacing
from greenfetch._adaptive import Limits, open_gate
from greenfetch._attempts import Attempt
from greenfetch._controller import Controller, Settings
from greenfetch._limiter import Limiter
from greenfetch._models import Request
from greenfetch.inventory._pacing import FairFeed


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Counted:
    """A builtin (``max``, ``int``) put in a module's globals, so that module's calls of it are counted."""

    def __init__(self, name: str) -> None:
        self.real, self.calls = getattr(builtins, name), 0

    def __call__(self, *args):
        self.calls += 1
        return self.real(*args)


def _counting(monkeypatch, module, name: str) -> _Counted:
    counted = _Counted(name)
    monkeypatch.setattr(module, name, counted, raising=False)
    return counted


def _requests(n: int, account: str = "111111111111") -> list[Request]:
    return [Request("dynamodb", "ListTables", region=f"r{i}", account=account) for i in range(n)]


# -- a slot's limit ---------------------------------------------------------------------------------


def test_a_slot_and_its_limit_call_no_max(monkeypatch):
    """A lazy scope's slot, a slot through its controller, the ``limit`` the feed's cap reads and a
    request that waits its turn: none calls ``max`` (the code before: once each)."""
    counted = _counting(monkeypatch, limiter_module, "max")
    clock = _Clock()
    limits = Limits(clock=clock)
    gate = open_gate(limits, 2, 5.0, 1, 64)
    lazy, eager = (gate(request) for request in _requests(2))
    eager.controller  # made: its slots go through the controller's path  # noqa: B018
    for slot in (lazy, eager):
        with slot as limit:
            assert limit == 2
        assert slot.limit == 2
    assert counted.calls == 0
    # the slot path that may wait (``acquire``: a rate cap, a queue, a run's settings to apply)
    held = [eager.__enter__(), eager.acquire()]
    assert held == [2, 2]
    for _ in held:
        eager.__exit__(None, None, None)
    assert counted.calls == 0


class _Quick(Limiter):
    """A limiter whose slot must be had on ``__enter__``'s own path (a free slot, no rate cap, nothing
    to apply): ``acquire``, the path that may wait, is not taken."""

    __slots__ = ()

    def acquire(self) -> int:
        raise AssertionError("a free slot went the way that waits")


@settings(max_examples=300, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
    | st.sampled_from([0.0, -0.0, 0.5, 0.999999, 1.0, 1.0000001, -0.5, -1.0, 2.0, 63.99999])
)
def test_a_slots_limit_is_max_1_int_of_the_controllers(limit):
    """For any limit the controller holds (negative and fractional ones too), the slot's limit, the
    ``limit`` read and the limit ``__enter__`` hands the request are the old ``max(1, int(limit))``;
    and a lazy limiter's the same for its own."""
    expected = max(1, int(limit))
    controller = Controller(Settings(initial=1, max=1_000_000), _Clock())
    controller.limit = limit
    eager = _Quick("s/r/a", controller, None, clock=_Clock())
    lazy = _Quick("s/r/a", None, None, settings=Settings(), clock=_Clock())
    lazy._limit = limit
    for limiter in (eager, lazy):
        assert limiter.limit == expected
        assert limiter.__enter__() == expected
        limiter.__exit__(None, None, None)


def test_a_sample_that_grows_no_limit_calls_no_int(monkeypatch):
    """Through a scope's controller, an answer that grows nothing (a steady scope at its max) makes no
    ``int`` call (the code before: two an answer); one that grows the limit still hands out the
    slot it frees."""
    counted = _counting(monkeypatch, limiter_module, "int")
    clock = _Clock()
    limits = Limits(clock=clock)
    gate = open_gate(limits, 4, 5.0, 1, 4)
    request = _requests(1)[0]
    slot = gate(request)
    slot.controller  # noqa: B018
    answer = Attempt(0.05, 200, None)
    for _ in range(50):
        clock.now += 0.01
        with slot:
            slot.observe(answer)
    assert slot.limit == 4
    assert counted.calls == 0


class _Grows(Controller):
    """A controller whose every sample grows its limit by ``step``."""

    __slots__ = ("step",)

    def sample(self, *args, **kwargs) -> None:
        self.limit += self.step


class _Grants(Limiter):
    __slots__ = ()
    grants = 0

    def _grant(self, controller: Controller) -> None:
        type(self).grants += 1
        super()._grant(controller)


@pytest.mark.parametrize(
    ("start", "step", "grants"), [(2.0, 0.4, 0), (2.0, 0.5, 0), (2.6, 0.4, 1), (2.0, 1.0, 1)]
)
def test_a_limit_grown_by_less_than_a_slot_grants_nothing(start, step, grants):
    """``_grant`` only when the limit crossed a whole slot (as the old ``int(after) > int(before)``):
    a limit grown within its slot is not a grant, however much it grew."""
    controller = _Grows(Settings(initial=2, max=64), _Clock())
    controller.limit, controller.step = start, step
    limiter = _Grants("s/r/a", controller, None, clock=_Clock())
    _Grants.grants = 0
    with limiter:
        limiter.observe(Attempt(0.05, 200, None))
    assert _Grants.grants == grants


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False))
def test_the_grow_test_is_the_old_one(before, after):
    """``after > before and int(after) > int(before)`` is ``int(after) > int(before)`` (``int`` keeps
    the order), for every pair of finite floats."""
    assert (after > before and int(after) > int(before)) == (int(after) > int(before))


# -- the feed ---------------------------------------------------------------------------------------


class _Unit:
    __slots__ = ("request", "scope")

    def __init__(self, request: Request) -> None:
        self.request, self.scope = request, Limits.scope_of(request)


def test_the_feed_keeps_no_map_of_its_items():
    """The feed keeps one entry a scope (its queue, in ``_scopes``) and no dict of its items: an item's
    scope is found again by its key when it is done (the code before kept ``id(item)`` -> scope
    for every item of the run)."""
    requests = _requests(300)
    firsts, seconds = [_Unit(request) for request in requests], [_Unit(request) for request in requests]
    feed = FairFeed(firsts + seconds, operator.attrgetter("scope"), lambda scope: 5)
    kept = sum(len(value) for value in vars(feed).values() if isinstance(value, dict))
    assert kept == 300
    handed = []
    for unit in feed:
        handed.append(unit)
        feed.done(unit)
    assert handed == [
        unit for pair in zip(firsts, seconds, strict=True) for unit in pair
    ]  # each scope's two in turn


def test_an_item_done_again_goes_back_to_its_scope():
    """``done(item, again=True)`` puts it back at the head of the scope its key names, ahead of that
    scope's others; items done in any order end the iteration."""
    first, second = _requests(2)
    items = [("a", first), ("a", second), ("b", first)]
    feed = FairFeed(items, operator.itemgetter(0), lambda scope: 1)
    order = []
    again = True
    for item in feed:
        order.append(item)
        if item == items[0] and again:
            again = False
            feed.done(item, again=True)
        else:
            feed.done(item)
    assert order == [
        items[0],
        items[0],
        items[1],
        items[2],
    ]  # ("a" first, its first item again: the lower rank)


def test_the_feeds_cap_test_calls_no_max(monkeypatch):
    """A scope with one in flight and more to send reads its cap, with no ``max`` (the code before: one
    a read); a cap under 1 still lets one through at a time."""
    counted = _counting(monkeypatch, pacing, "max")
    for cap in (0, -3, 1, 2):
        feed = FairFeed(list(range(6)), lambda item: "one", lambda scope, cap=cap: cap)
        iterator = iter(feed)
        peak = 0
        out: list[int] = []
        for item in iterator:
            out.append(item)
            peak = max(peak, len(out))
            if len(out) >= max(1, cap) or len(feed.sent) == 6:
                for done in out:
                    feed.done(done)
                out.clear()
        assert len(feed.sent) == 6 and peak == max(1, cap)
    assert counted.calls == 0


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10**6), st.integers(-5, 10**6) | st.floats(-5, 1e6))
def test_the_cap_test_is_the_old_one(count, cap):
    """With one or more in flight, ``count >= max(1, cap)`` is ``count >= cap``, for any cap."""
    assert (count >= max(1, cap)) == (count >= cap)


class _Writes(FairFeed):
    """A feed that counts the writes of its own attributes while it is iterated."""

    counting = False
    writes = 0

    def __setattr__(self, name, value):
        if type(self).counting:
            type(self).writes += 1
        super().__setattr__(name, value)


def test_a_take_writes_one_attribute_of_the_feed():
    """Handing out a fresh scope's item writes one attribute of the feed (the items left, which
    ``add`` and ``again`` change too); the iteration's next fresh scope and its count in flight are
    its own locals (the code before wrote three a take, and one more a done)."""
    units = [_Unit(request) for request in _requests(100)]
    feed = _Writes(units, operator.attrgetter("scope"), lambda scope: 5)
    _Writes.counting, _Writes.writes = True, 0
    try:
        for unit in feed:
            feed.done(unit)
    finally:
        _Writes.counting = False
    assert _Writes.writes <= 100


@pytest.mark.parametrize("n", [1, 50])
def test_the_inventorys_one_call_scopes_still_in_plan_order(n):
    """One-call scopes come out in plan order, each once, and end the iteration once done (the
    counts as locals)."""
    units = [_Unit(request) for request in _requests(n)]
    feed = FairFeed(units, operator.attrgetter("scope"), lambda scope: 5)
    assert [unit for unit in feed if feed.done(unit) is None] == units
    assert len(feed.sent) == n
