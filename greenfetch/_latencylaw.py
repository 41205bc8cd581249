"""The latency law (``LatencyLaw``): a closed window's latency to a new limit.

Pure: no clock, no I/O. ``_controller.Controller`` closes a window, hands its latency, in-flight
count and the client's load to one of these rules and holds the limit it returns (and ends slow
start on a cut or a lasting rise); this keeps what the rules remember across windows (the last
window's latency, the knee a cut found, the flat windows running).

- *plateau vs more throughput* (Vegas, Little's law, ``vegas``): ``queue = inflight x (1 - baseline
  / latency)`` is the part of the in-flight work that only added latency, not throughput. Above beta
  (12% of the limit, >= 4) two windows running (or one window at over 2x baseline) the limit goes
  back to the knee, ``inflight x baseline / latency + alpha`` (by 20% at most, unless over 2x
  baseline), unless the window saw more in flight than the limit (a cut's queue still draining: its
  answers were sent into the queue the cut removed, and Little's law with the in-flight at their
  return read a knee of 12 for 32); between alpha (5%, >= 2) and beta it holds (and a rise that
  lasts two windows ends slow start); below alpha it grows +1 per window, or +10% while latency is
  flat (undoing a cut below a cliff);
- *target*: ``target_latency`` is a ceiling (``ceiling``: above it two windows running, cut);
- *timeout*: ``limit *= 0.85``, once per window (``Controller._timed_out``);
- *the client's own load* (``load``: the share of time this process was running or waiting for a
  CPU; ``cpu``: running only; both sampled by the I/O side, ``_clientload.ClientLoad``): latency also
  holds the time answers wait in our own run queue, so how much of a rise is the server's depends on
  it. Saturated (``load`` >= ``saturated``, its mean over a window; ``saturated``): answers always
  wait for us, and latency says nothing about the server and never cuts (no Vegas cut, no target
  ceiling, no slow-start exit, no re-measure; nor does a slow answer that stalls of the hub
  explain); throttles and timeouts still cut, and so does the target when the wait was not our own
  (``cpu`` under ``busy`` and most answers not held ``stall_share`` of their latency by stalls:
  neighbours hold the CPU; two windows running over the target cut to it, as an idle client's;
  before, at load 10-20 on 2 cores the client read load 0.99 at CPU 0.05 and a 200 ms server was
  never cut against a 100 ms target); the limit grows by ``regrow`` a window up to the knee a latency
  cut found while the client was idle (its CPU under ``busy``), if any (a saturated hub does more per
  loop with more in flight; past a knee more only hurts); slow start still grows on flat answers.
  Busy (``cpu`` >= ``busy``: our own CPU, not the load: a neighbour holding the CPU delays each
  wake-up by a few ms however many requests are in flight, so it is no queue of ours that more in
  flight would lengthen; judged by the load, an idle client on a loaded machine read busy and grew
  past a cliff): a rise within ``flat`` x the baseline is taken for the client's own and the limit
  grows as if latency were flat; only a rise past twice the baseline cuts; no re-measure.
"""

from __future__ import annotations

from ._controlsettings import Settings

__all__ = ["CUT", "RISE", "LatencyLaw"]

CUT = "cut"  # ``vegas``: the limit went back to the knee (slow start ends, a cut)
RISE = "rise"  # ``vegas``: latency rose and the limit holds (slow start ends)


class LatencyLaw:
    """What the latency rules remember across windows, and the rules.

    Made when the controller's first window closes: a scope that sees a few calls never needs one."""

    __slots__ = ("knee", "_previous", "_flat_run")

    def __init__(self) -> None:
        self.knee: float | None = None  # the limit a latency cut set while the client was idle
        self._previous: float | None = None  # the last window's latency (``sustained``)
        self._flat_run = 0  # flat windows running (after slow start): each doubles the regrowth

    def __repr__(self) -> str:
        return f"LatencyLaw(knee={self.knee!r}, previous={self._previous!r}, flat_run={self._flat_run!r})"

    def sustained(self, latency: float | None, baseline: float | None) -> float | None:
        """The lower of this window's and the previous window's latency: queueing at the server
        lasts, while a pause of this process (CPU starvation, a GC) delays one window and is gone,
        so one slow window alone does not cut the limit, unless it is over twice the baseline (a
        slow start that overshot a cliff: waiting one more window there costs a whole slow round trip)."""
        previous, self._previous = self._previous, latency
        if latency is None:
            return None
        if baseline is not None and latency > 2 * baseline:
            return latency
        return None if previous is None else min(latency, previous)

    def forget(self) -> None:
        """The last window says nothing about the next (a new batch, a re-measure, our own wait)."""
        self._previous = None

    def vegas(
        self,
        limit: float,
        slow_start: bool,
        latency: float,
        sustained: float | None,
        inflight: float,
        busy: bool,
        max_inflight: int,
        baseline: float | None,
        s: Settings,
    ) -> tuple[float, str]:
        """The new limit, and ``CUT``, ``RISE`` or "" (grown or held).

        Little's law: ``inflight x baseline / latency`` requests would give this window's throughput
        with no queue (the knee); the rest, ``queue``, only added latency. A queue above beta (in two
        windows running) cuts the limit back to the knee plus alpha; between alpha and beta holds (and
        ends slow start); below alpha the limit grows by one per window (a round trip), if in use, and
        by ``regrow`` of itself while the latency is flat (a cut below a cliff's knee, where Little's
        law reads low because throughput *fell* past it, is undone in a few round trips). A ``busy``
        client takes a rise within ``flat`` for its own (flat), cuts only past twice the baseline, and
        its regrowth doubles with every flat window running: its slow start may have ended on its own
        hiccup (a neighbour holding the CPU), +10% a window took 12 windows back to where it was."""
        base = baseline or latency
        alpha, beta = max(2.0, s.alpha * limit), max(4.0, s.beta * limit)
        queue = 0.0 if busy and latency <= s.flat * base else inflight * (1.0 - base / latency)
        if (
            sustained is not None
            and inflight * (1.0 - base / sustained) > beta
            and (not busy or sustained > s.busy_rise * base)
            and max_inflight <= 1.1 * limit + 1.0  # else a cut's queue is still draining: hold
        ):
            deep = 0.25 if sustained > 2 * base else 0.8  # a moderate rise may be noise: cut 20% at most
            limit = max(deep * limit, min(limit, inflight * base / sustained + alpha))
            self.knee = limit  # the server's knee (a busy client's cuts only past 2x: not its own)
            self._flat_run = 0
            return limit, CUT
        if queue > alpha:
            self._flat_run = 0
            if not slow_start or (
                sustained is not None and inflight * (1.0 - base / sustained) > alpha
            ):  # slow start: two windows running (one may be our own burst: see the module doc)
                return limit, RISE  # latency rose: leave slow start, hold
            return limit, ""
        if not slow_start and max_inflight * 2 >= limit:
            if queue > alpha / 2:
                limit += 1.0
            else:  # flat: +regrow; a busy client's doubles with every flat window running (x2 at most)
                self._flat_run = self._flat_run + 1 if busy else 1
                return limit + max(1.0, min(1.0, s.regrow * 2 ** (self._flat_run - 1)) * limit), ""
        self._flat_run = 0
        return limit, ""

    def ceiling(
        self, limit: float, before: float, sustained: float | None, busy: bool, s: Settings
    ) -> float | None:
        """The target is a ceiling, whatever the knee: a window over it (two running) cuts the limit
        it began with in proportion (by half at most); None: under it. An idle client's cut is the
        server's knee."""
        if sustained is None or not sustained > s.target_latency:
            return None
        limit = min(limit, before * max(0.5, s.target_latency / sustained))
        if not busy:
            self.knee = limit
        return limit

    def saturated(
        self, limit: float, sustained: float | None, median: float | None, max_inflight: int, s: Settings
    ) -> tuple[float, bool]:
        """A window the client was saturated in (no timeout): the new limit, and whether it is a cut.

        No cut on latency. The limit grows by ``regrow`` if in use and under the target, up to the
        knee a latency cut found, if any (the cuts of a busy client only past twice the baseline): a
        saturated hub still does more per loop with more in flight (on the fast server fixed 128
        costs ~15% less CPU per call than fixed 72), and past a server's knee more only hurts. The
        target still cuts a window whose wait was not our own (``sustained``: the controller reads
        it only then: CPU under ``busy``, most answers not held by our stalls)."""
        self._flat_run = 0
        if sustained is not None and sustained > s.target_latency:
            limit = min(limit, limit * max(0.5, s.target_latency / sustained))
            self.knee = limit
            return limit, True
        if (
            max_inflight * 2 >= limit
            and (self.knee is None or limit < self.knee)
            and median is not None
            and median <= s.target_latency
        ):  # never grow past the target
            grown = limit + max(1.0, s.regrow * limit)
            limit = grown if self.knee is None else min(grown, self.knee)
        return limit, False

    def timed_out(self) -> None:
        """A timeout cut the limit: no flat windows running."""
        self._flat_run = 0

    def found_knee(self, limit: float) -> None:
        """Slow start ended on slow answers at an idle client: ``limit`` is the server's knee."""
        self.knee = limit

    def restart(self) -> None:
        """A faster period: slow start again, with no knee to stop at and no last window."""
        self._previous, self.knee, self._flat_run = None, None, 0
