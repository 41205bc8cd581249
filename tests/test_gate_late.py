"""Issue 24, part 12 (docs/performance.md): a one-call scope answered after ``max_window`` closes its
window, so its lazy limiter makes its controller from the log (under callgrind, ~50x slower than
native, most of an inventory's scopes do). What that close made per window that cost the most: the
``TracePoint``, a frozen dataclass whose ``__init__`` sets each field through ``object.__setattr__``
(13.6k instructions), now made with its fields' dict at once; the trace's deque made positionally.
Here: the point made is the dataclass's own, in every way a caller can see."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._controller import Controller, Settings, TracePoint


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
