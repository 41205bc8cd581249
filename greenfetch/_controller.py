"""The adaptive concurrency controller: per-attempt samples in, a concurrency limit out.

Pure: no I/O, no gevent; time comes only from the injected ``clock``, so the tests drive it with
simulated servers in simulated time. How it decides is described in ``_adaptive``'s docstring; the
limiter, the gate and ``adaptive_batch`` that put it to work live there.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._config import ConfigError, parse_duration

__all__ = ["Controller", "Settings", "TracePoint"]


@dataclass(frozen=True)
class Settings:
    """The knobs; ``Settings.checked`` turns user input into these or a ConfigError naming the value."""

    initial: int = 5
    target_latency: float = 0.5
    min: int = 1
    max: int = 256
    tolerance: float = 1.2
    backoff: float = 0.85
    growth: float = 1.5
    min_window: float = 0.02
    max_window: float = 1.0
    min_samples: int = 10
    quota_probe: float = 0.1  # growth per window near the last throttle point (see Controller._grown)

    @classmethod
    def checked(cls, initial_concurrency: Any = 5, target_latency: Any = 0.5, min_concurrency: Any = 1,
                max_concurrency: Any = 256) -> Settings:
        lo = _whole(min_concurrency, "min_concurrency")
        hi = _whole(max_concurrency, "max_concurrency")
        start = _whole(initial_concurrency, "initial_concurrency")
        if lo > hi:
            raise ConfigError(f"min_concurrency: {lo} is above max_concurrency {hi}; use min <= max")
        if not lo <= start <= hi:
            raise ConfigError(f"initial_concurrency: {start} is outside [{lo}, {hi}]; use a value between "
                              "min_concurrency and max_concurrency")
        target = parse_duration(target_latency, "target_latency")
        if not target > 0 or math.isinf(target):
            raise ConfigError(f"target_latency: {target_latency!r} must be a positive duration (e.g. 500ms or 0.5)")
        return cls(initial=start, target_latency=target, min=lo, max=hi)


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: {value!r} is not allowed; use a whole number of 1 or more")
    return value


@dataclass(frozen=True)
class TracePoint:
    """One closed update window: when, the limit it set, its latency (25th percentile of the
    attempts, seconds), throttled attempts, latency samples."""

    time: float
    limit: float
    latency: float | None
    throttles: int
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "limit": self.limit, "latency": self.latency, "throttles": self.throttles,
                "samples": self.samples}


class Controller:
    """Per-attempt samples in, a concurrency limit out. Pure: no I/O, time only from ``clock``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic, history: int = 10_000):
        self.settings = settings
        self.clock = clock
        self.limit = float(settings.initial)
        self.trace: deque[TracePoint] = deque(maxlen=history)
        self._baseline: float | None = None
        self._at_floor = 0
        self._growth = "slow-start"
        self._quota = 0.0
        self._last_cut = -math.inf
        self._previous: float | None = None
        self._start, self._count, self._drops, self._max_inflight = 0.0, 0, 0, 0
        self._samples: list[float] = []
        self._delay, self._delays = 0.0, 0
        self._open_window(clock())

    @property
    def baseline(self) -> float | None:
        """The no-load latency estimate: the lowest window latency seen (re-measured, see ``_remeasure``)."""
        return self._baseline

    def reconfigure(self, settings: Settings) -> None:
        """New bounds and target for a new batch; the learned limit carries over (clamped)."""
        self.settings = settings
        self.limit = min(max(self.limit, settings.min), settings.max)

    def note_inflight(self, inflight: int) -> None:
        self._max_inflight = max(self._max_inflight, inflight)

    def sample(self, latency: float | None, *, dropped: bool = False, inflight: int = 0,
               client_delay: float = 0.0) -> TracePoint | None:
        """One finished attempt (``latency`` None = no usable latency; ``client_delay`` = this
        process's current scheduling delay, see HubLag); returns a TracePoint when a window closed."""
        now = self.clock()
        self._delay += client_delay
        self._delays += 1
        self.note_inflight(inflight)
        if latency is not None and now - latency < self._last_cut:
            return None  # sent before the last cut: it measured the old limit, not the new one
        if dropped:
            self._drops += 1
            return self._close(now)
        if latency is not None and latency > 1e-4 and now - latency >= self._start:
            self._samples.append(latency)  # only attempts sent in this window measure its limit
            self._count += 1
        if self._window_due(now):
            return self._close(now)
        return None

    def _window_due(self, now: float) -> bool:
        s, elapsed = self.settings, now - self._start
        length = max(s.min_window, 2 * (self.baseline or 0.0))
        if elapsed >= s.max_window and self._count:
            return True
        return elapsed >= min(length, s.max_window) and self._count >= s.min_samples

    def _close(self, now: float) -> TracePoint:
        s = self.settings
        latency = _low_percentile(self._samples) if self._samples else None
        if latency is not None and (self._baseline is None or latency < self._baseline):
            self._baseline = latency  # from raw latency: a discounted one could undercut the true floor
        server = None if self._own_delay(latency) else latency  # what the server's answer times say
        threshold, sustained = self._threshold(), self._sustained(server)
        if self._drops:
            self._quota = self.limit  # where the quota was hit (the cut comes next)
            self._growth, self._last_cut = "throttled", now
            self.limit *= s.backoff
        elif sustained is not None and sustained > threshold:
            self.limit *= max(0.5, threshold / sustained)
            self._growth, self._last_cut = "queueing", now
        elif server is not None and server > threshold:
            pass  # one slow window: hold, and let the next one confirm or clear it
        elif self._max_inflight * 2 >= self.limit:
            self.limit = self._grown(self.limit)
        self.limit = min(max(self.limit, s.min), s.max)
        self._remeasure(latency)
        point = TracePoint(now, self.limit, latency, self._drops, self._count)
        self.trace.append(point)
        self._open_window(now)
        return point

    def _own_delay(self, latency: float | None) -> bool:
        """Does this process's own hub delay (HubLag) account for at least half of the rise over
        the baseline? Then the rise is mostly ours (CPU-bound, or starved by neighbours): cutting
        would only throttle ourselves (the common case of a busy gevent client; AWS says "too much"
        with throttles), so the window counts as one without a signal."""
        if latency is None or self._baseline is None or not self._delays:
            return False
        rise = latency - self._baseline
        return rise > 0 and self._delay / self._delays >= 0.5 * rise

    def _sustained(self, latency: float | None) -> float | None:
        """The lower of this window's and the previous window's latency: queueing at the server
        lasts, while a pause of this process (CPU starvation, a GC) delays one window and is gone,
        so one slow window alone never cuts the limit."""
        previous, self._previous = self._previous, latency
        if latency is None or previous is None:
            return None
        return min(latency, previous)

    def _grown(self, limit: float) -> float:
        """Slow start until the first signal, then +1 per window: past a knee throughput *falls*
        (latency * (n/C)^2 servers), so probe gently. After a throttle, every probe past the quota
        costs throttled attempts: return quickly to 30% of the gap per window, then probe by 0.1
        plus 10% of the distance past it (a quota that was raised is found again in ~30 windows)."""
        if self._growth == "slow-start":
            return limit * self.settings.growth
        if self._growth == "throttled":  # CUBIC-like: quickly back to where the quota bit, then
            gap = self._quota - limit  # probe past it slowly, faster the longer it holds
            return limit + (max(self.settings.quota_probe, 0.3 * gap) if gap > 0
                            else self.settings.quota_probe * (1.0 - gap))
        return limit + 1.0

    def _remeasure(self, latency: float | None) -> None:
        """Five windows at the floor and still "queueing": the service got slower for good (not
        our load), so the current latency becomes the new baseline (Envoy re-measures alike) and the
        limit slow-starts again from the floor.
        Without this a baseline that only ever falls would pin the limit at the floor."""
        queueing = latency is not None and latency > self._threshold()
        self._at_floor = self._at_floor + 1 if queueing and self.limit <= self.settings.min else 0
        if self._at_floor >= 5:
            self._baseline, self._at_floor, self._growth = latency, 0, "slow-start"

    def _threshold(self) -> float:
        base = self.baseline
        ceiling = self.settings.target_latency
        return min(ceiling, self.settings.tolerance * base) if base is not None else ceiling

    def _open_window(self, now: float) -> None:
        self._start, self._count, self._drops, self._max_inflight = now, 0, 0, 0
        self._samples = []
        self._delay, self._delays = 0.0, 0  # sum and count of this process's hub delay (HubLag)


def _low_percentile(samples: list[float], q: float = 0.25) -> float:
    """The window's 25th-percentile latency: server-side queueing delays every request, so it moves
    this; scattered client-side hiccups (a GC, a busy moment of the hub) mostly do not. The 10th
    percentile under-read queueing at a knee (in-flight swings between waves, and the low tail comes
    from requests sent at the trough): on the loopback knee server it let the limit sit near 41 for a
    knee at 32; the 25th read 35 and kept every simulated-server test in range (the median did not)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
