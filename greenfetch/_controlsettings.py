"""The adaptive controller's knobs (``Settings``) and what it records per closed window (``TracePoint``).

The floor under the controller (``_controller``) and its pieces (``_slowstart``, ``_latencylaw``,
``_baseline``), so each can read the knobs; ``_controller`` re-exports both names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._config import ConfigError, check_whole, parse_duration

__all__ = ["Settings", "TracePoint", "trace_point"]


@dataclass(frozen=True)
class Settings:
    """The knobs; ``Settings.checked`` turns user input into these or a ConfigError naming the value."""

    initial: int = 5
    target_latency: float = 0.5
    min: int = 1
    max: int = 256
    alpha: float = 0.05  # queue (share of the limit, at least 2 requests) below which the limit grows
    beta: float = 0.12  # queue (share of the limit, at least 4) above which it is cut back to the knee
    regrow: float = 0.1  # growth per window while the queue is under alpha / 2 (after slow start)
    backoff: float = 0.85  # concurrency cut on a timeout
    rate_backoff: float = 0.9  # send rate after a throttle: this share of the rate the server accepted
    rate_hold: float = 1.0  # seconds the rate holds after a throttle before probing upwards
    rate_probe: float = 0.05  # then grows by this share per second, times (1 + seconds probing)^2
    remeasure_every: float = 3.0  # seconds between no-load latency re-measures (one window at a lower limit)
    remeasure_most: float = 8.0  # re-measures that agree double the interval, up to this many times it
    remeasure_share: float = 0.75  # a re-measure window's share of the limit (under a knee it sits near)
    min_rate: float = 0.5  # requests per second (botocore's adaptive mode has the same floor)
    rate_floor: float = 0.5  # a throttle's cap never falls below this share of the accepted rate
    rate_burst: float = 0.05  # seconds of sends a late pacer may catch up on (the hub wakes sleepers late)
    min_window: float = 0.02
    max_window: float = 1.0
    min_samples: int = 20
    flat: float = 1.5  # slow start grows only on answers within this factor of the baseline
    faster: float = 0.75  # a window under this factor of the baseline: a faster period, probe upwards again
    busy: float = (
        0.5  # client CPU share (time running, not waiting for a CPU) from which small rises are ours
    )
    saturated: float = 0.85  # client load from which latency never cuts (the client is its own bottleneck)
    busy_rise: float = 2.0  # a busy client's latency cuts, and ends slow start, only past this x the baseline
    stall_share: float = 0.25  # stalls that held an answer this share of its latency: it waited for us

    @classmethod
    def checked(
        cls,
        initial_concurrency: Any = 5,
        target_latency: Any = 0.5,
        min_concurrency: Any = 1,
        max_concurrency: Any = 256,
    ) -> Settings:
        lo = check_whole("min_concurrency", min_concurrency)
        hi = check_whole("max_concurrency", max_concurrency)
        start = check_whole("initial_concurrency", initial_concurrency)
        if lo > hi:
            raise ConfigError(f"min_concurrency: {lo} is above max_concurrency {hi}; use min <= max")
        if not lo <= start <= hi:
            raise ConfigError(
                f"initial_concurrency: {start} is outside [{lo}, {hi}]; use a value between "
                "min_concurrency and max_concurrency"
            )
        target = parse_duration(target_latency, "target_latency")
        if not target > 0 or math.isinf(target):
            raise ConfigError(
                f"target_latency: {target_latency!r} must be a positive duration (e.g. 500ms or 0.5)"
            )
        return cls(initial=start, target_latency=target, min=lo, max=hi)


@dataclass(frozen=True)
class TracePoint:
    """One closed update window: when, the limit it set, its latency (median of the attempts sent
    in it, seconds), throttled attempts, latency samples, the send rate cap (None: unpaced), and the
    client's own load and CPU share (0-1, the mean of its samples': ``Settings.saturated``, ``busy``)."""

    time: float
    limit: float
    latency: float | None
    throttles: int
    samples: int
    rate: float | None = None
    load: float = 0.0
    cpu: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "limit": self.limit,
            "latency": self.latency,
            "throttles": self.throttles,
            "samples": self.samples,
            "rate": self.rate,
            "load": self.load,
            "cpu": self.cpu,
        }


_new, _set = object.__new__, object.__setattr__


def trace_point(
    time: float,
    limit: float,
    latency: float | None,
    throttles: int,
    samples: int,
    rate: float | None,
    load: float,
    cpu: float,
) -> TracePoint:
    """``TracePoint(...)`` without the frozen dataclass's ``__init__``, which sets each field through
    ``object.__setattr__`` (13.6k instructions, once per closed window): its fields' dict set at once
    (~3k with this call). The same object (``tests/test_gate_late.py`` holds it to the constructor's)."""
    point = _new(TracePoint)
    _set(
        point,
        "__dict__",
        {
            "time": time,
            "limit": limit,
            "latency": latency,
            "throttles": throttles,
            "samples": samples,
            "rate": rate,
            "load": load,
            "cpu": cpu,
        },
    )
    return point
