"""A bounded quantile sketch for latencies (the DDSketch idea, in a few lines).

``perf_stats()`` must give p50/p90/p99 for runs of any length without keeping every duration. Values
go to logarithmic buckets whose width is a fixed *relative* error (1% by default): bucket ``i`` holds
values in (gamma^(i-1), gamma^i] with gamma = (1+a)/(1-a), and a quantile is answered by the bucket
midpoint, within ``a`` of the true sample quantile. Durations from 1 microsecond to a day need at
most ~1,400 buckets, and ``max_buckets`` caps that anyway by folding the smallest buckets together
(only the lowest quantiles lose accuracy then, the tail we care about never does).
"""

from __future__ import annotations

import math

__all__ = ["QuantileSketch"]

_FLOOR = 1e-6  # values at or below one microsecond share the first bucket
_ceil, _log = math.ceil, math.log


class QuantileSketch:
    """Count, sum, min, max, and quantiles within ``relative_accuracy`` in bounded memory."""

    __slots__ = ("accuracy", "_gamma_log", "_max_buckets", "_buckets", "count", "total", "min", "max")

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048):
        if not 0 < relative_accuracy < 1:
            raise ValueError(
                f"relative_accuracy: {relative_accuracy!r}; use a fraction between 0 and 1 (e.g. 0.01)"
            )
        self.accuracy = relative_accuracy
        self._gamma_log = math.log((1 + relative_accuracy) / (1 - relative_accuracy))
        self._max_buckets = max_buckets
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        value = float(value)
        if value != value:  # NaN carries no latency information
            return
        # min() and max() as comparisons: the same values, without three builtin calls per value
        key = _ceil(_log(value if value > _FLOOR else _FLOOR) / self._gamma_log)
        buckets = self._buckets
        buckets[key] = buckets.get(key, 0) + 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if len(buckets) > self._max_buckets:
            self._fold_lowest()

    def add_many(self, values: list[float]) -> None:
        """``add`` each value, in order (the same sketch, sum included, bit for bit), with the
        attribute lookups done once: the metrics apply their queued durations this way."""
        buckets, gamma_log, max_buckets = self._buckets, self._gamma_log, self._max_buckets
        count, total, low, high = self.count, self.total, self.min, self.max
        try:
            for value in values:
                value = float(value)
                if value != value:  # NaN carries no latency information
                    continue
                key = _ceil(_log(value if value > _FLOOR else _FLOOR) / gamma_log)
                buckets[key] = buckets.get(key, 0) + 1
                count += 1
                total += value
                if value < low:
                    low = value
                if value > high:
                    high = value
                if len(buckets) > max_buckets:
                    self._fold_lowest()
        finally:  # what was added before a value add() would refuse (an infinity) stays added
            self.count, self.total, self.min, self.max = count, total, low, high

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1, nearest-rank) of what was added; 0.0 for an empty sketch."""
        if not self.count:
            return 0.0
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        rank = max(1, math.ceil(q * self.count))  # nearest rank: p99 of 6 values is the largest
        seen = 0
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if seen >= rank:
                middle = 2 * math.exp(key * self._gamma_log) / (1 + math.exp(self._gamma_log))
                return min(max(middle, self.min), self.max)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def merge(self, other: QuantileSketch) -> None:
        if other._gamma_log != self._gamma_log:
            raise ValueError("cannot merge sketches of different accuracy")
        for key, n in other._buckets.items():
            self._buckets[key] = self._buckets.get(key, 0) + n
        self.count += other.count
        self.total += other.total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        while len(self._buckets) > self._max_buckets:
            self._fold_lowest()

    def __len__(self) -> int:
        """Buckets in use (the memory bound), not the number of values."""
        return len(self._buckets)

    def _fold_lowest(self) -> None:
        low, second = sorted(self._buckets)[:2]
        self._buckets[second] += self._buckets.pop(low)
