"""The no-load latency (``Baseline``): the reference every latency rule of the controller reads.

Pure: no clock, no I/O. ``_controller.Controller`` hands it each closed window's latency and keeps
the value it returns (its answers read it per answer, without a call); the re-measure window itself
(the limit lowered for a window, then restored) is the controller's, the schedule is this one's.

*baseline*: the lowest window in slow start, then lowered only by a smoothed latency; every 3 s
(``remeasure_every``) one window runs at 3/4 of the limit (under a knee the limit sits near) and its
latency replaces it (up by 25% at most unless the previous re-measure read high too), and a cut of
over 25% re-measures within 2 round trips: a service that got slower is followed, one lucky or
unlucky window is not the reference; a re-measure that agrees (within 5%) doubles the interval to
the next (up to 24 s). *A faster period* (``Controller._faster_period``: most answers of a window
under 0.75x the baseline) replaces it with that window's median at once.
"""

from __future__ import annotations

import math

from ._controlsettings import Settings

__all__ = ["Baseline"]


class Baseline:
    """The no-load latency estimate and when to re-measure it.

    Made when the controller's first window closes: a scope that sees a few calls never needs one."""

    __slots__ = ("value", "due", "_smoothed", "_higher", "_every")

    def __init__(self, every: float) -> None:
        self.value: float | None = None  # the estimate (None: no window measured yet)
        self.due = math.inf  # when the next re-measure starts (inf: none scheduled, slow start runs)
        self._smoothed: float | None = None  # window latency, smoothed (lowers it between re-measures)
        self._higher = False  # did the last re-measure read over 1.1x the baseline?
        self._every = every  # seconds to the next re-measure (doubles while they agree)

    def __repr__(self) -> str:
        return (
            f"Baseline(value={self.value!r}, due={self.due!r}, smoothed={self._smoothed!r}, "
            f"higher={self._higher!r}, every={self._every!r})"
        )

    def lower(self, latency: float | None, slow_start: bool) -> float | None:
        """A window's latency: slow start takes the lowest window; later windows only lower it
        through a smoothed latency, so one lucky window of a noisy server does not set a baseline
        nothing can reach. Returns the baseline."""
        if latency is None:
            return self.value
        self._smoothed = (
            latency if self._smoothed is None else self._smoothed + 0.3 * (latency - self._smoothed)
        )
        low = latency if slow_start else self._smoothed
        if self.value is None or low < self.value:
            self.value = low
        return self.value

    def remeasured(self, now: float, latency: float | None, s: Settings) -> float | None:
        """A re-measure window's latency (None: the client was saturated in it, it measured our run
        queue) *replaces* the baseline (Envoy's minRTT re-measure): a service that got slower (or
        faster) is followed, and a low outlier does not stay the reference. Up by 25% at most
        unless the last re-measure read high too (one noisy window is not a slower service). One
        that agrees (within 5%) doubles the interval to the next, up to ``remeasure_most`` x; one
        that moves the baseline brings it back to ``remeasure_every``. Returns the reading taken."""
        agreed = False
        if latency is not None and self.value is None:
            self.value = latency
        elif latency is not None and self.value is not None:
            higher = latency > 1.1 * self.value
            agreed = abs(latency - self.value) <= 0.05 * self.value
            if higher and not self._higher:  # up by 25% at most, unless the last re-measure read high too:
                latency = min(latency, 1.25 * self.value)  # one noisy window is not a slower service
            self.value = self._smoothed = latency
            self._higher = higher
        self._every = (
            min(2 * self._every, s.remeasure_most * s.remeasure_every) if agreed else s.remeasure_every
        )
        self.due = now + self._every
        return latency

    def faster(self, latency: float) -> float:
        """A faster period's window median replaces it (``Controller._faster_period``)."""
        self.value = self._smoothed = latency
        return latency

    def remeasure_at(self, when: float) -> None:
        """The next re-measure starts at ``when``."""
        self.due = when

    def remeasure_by(self, when: float) -> None:
        """A deep cut: is the queue ours, or a slower service? Re-measure by ``when`` at the latest."""
        self.due = min(self.due, when)

    def remeasure_after(self, when: float) -> None:
        """A new batch: no re-measure before ``when`` (halving the limit first thing would make a
        short batch pay)."""
        self.due = max(self.due, when)
