"""The adaptive controller: per-attempt samples in, a concurrency limit and a send rate out.

Pure: no I/O, no gevent; time comes only from the injected ``clock``, so the tests drive it with
simulated servers in simulated time (``tests/test_controller.py``). ``Controller`` sets the
concurrency limit; its ``RateCap`` (``_ratecap``) sets the send rate after a throttle. The limiter, the gate and
``adaptive_batch`` that put them to work live in ``_adaptive``.

How it decides. A window is about one round trip (at least the baseline latency and 20 answers sent
after it opened; at most 1 s). Per window, with *baseline* = the no-load latency:
- *ramp* (slow start): +1 per flat answer (x2 per round trip) until the answers slow down past a
  knee, a rise lasts two windows, or a throttle, a timeout or the target; its exit rules against a
  cliff's overshoot are ``_slowstart``'s (told in its module doc);
- *plateau vs more throughput* (Vegas, Little's law), *target* and *timeout*: a queue above beta
  two windows running cuts the limit back to the knee, between alpha and beta it holds, below alpha
  it grows; over the target it is cut; a timeout cuts 15%: ``_latencylaw``'s (told in its module doc);
- a window's latency is the median of its answers (those sent in it; if it closes at max_window on
  saturated answers before any of those came back, of the unsaturated ones that came);
- *throttle* (``RateCap``): the send rate is capped at 0.9x the rate the server accepted just before (a
  token bucket accepts exactly its rate once empty; read over a second when a round trip holds under
  10 answers) less the unpaced retries still to come (botocore retries a throttle after rand(0, 1) s:
  one of age a is still to come with chance 1 - a), never under half the accepted rate, at most
  once per round trip, never raised by a throttle unless it was set with nothing accepted (the first
  throttles come back before any answer: before, a 20/s bucket met at 64 in flight read "0 accepted,
  28 retries to come" and sat at 0.5/s for 12-14 s), and each answer accepted after such a cut
  raises it (0.9 x the answers since, over a second at least: with no retries no throttle follows);
  the accepted rate leaves out the time stalls of this process held the throttle (answers that came
  in a stall wait behind it); it holds 1 s,
  then grows 5%/s x (1 + seconds since)^2 while it binds, so a steady quota costs ~1 throttle per cycle
  and a raised one is found in seconds; concurrency is capped near what the rate needs (2x rate x
  baseline);
- *baseline*: the lowest window in slow start, then a smoothed latency, re-measured every 3 s at
  3/4 of the limit (``Controller`` lowers the limit for that window; the rules are ``_baseline``'s,
  told in its module doc);
- *a faster period* (a learned limit that came from a slower one): as soon as most answers sent in
  the open window, and at least ``min_samples``, came under 0.75x the baseline, saturated or not (our
  own run queue only adds latency), the window closes, their median replaces the baseline, any knee
  is forgotten and slow start resumes from the limit in force (x2 per round trip while flat): a round
  trip into the new period, not a baseline-long window later; each batch (``reconfigure``) opens a
  window of its own, so the last batch's answers do not hide the new ones;
- *the client's own load* (``load``, ``cpu``: ``_clientload.ClientLoad``): saturated, latency says
  nothing about the server and never cuts; busy, a small rise is ours (``_latencylaw``'s module doc).
Always clamped to [min_concurrency, max_concurrency]; the rate to >= 0.5/s.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from ._baseline import Baseline
from ._controlsettings import Settings, TracePoint, trace_point
from ._latencylaw import CUT, RISE, LatencyLaw
from ._ratecap import RateCap
from ._slowstart import SlowStartExit

__all__ = ["Controller", "Settings", "TracePoint"]


class Controller:
    """Per-attempt samples in, a concurrency limit (``limit``) and a send rate cap (``rate``) out.

    How to follow one decision: ``sample`` takes each answer (the gate's hot path, written out with
    no call in its common case): it tallies the open window, grows slow start by one on a flat
    answer, hands a slow one to ``_slow_answer`` (``_slowstart.SlowStartExit``) and a throttle to
    ``_on_throttle`` (``RateCap``), and closes the window when it is a round trip long. ``_close``
    reads the window and picks one rule: ``_faster_period``, ``_remeasured`` (``_baseline.Baseline``),
    ``_saturated_window`` or ``_latency_window`` (``_latencylaw.LatencyLaw``). The pieces decide from
    what they are handed and return the new limit; the controller alone writes the limit, the phase
    (``slow_start``) and when the last cut was, and holds what every answer writes (the window's
    tallies, slow start's two logs): a call more per answer costs ~500 instructions, 1.3% of a
    gated request at steady state.

    Slots: an inventory makes one per (service, region, account), thousands for a call each, and
    each lives as long as the engine (the garbage collector walks it at every full collection); its
    pieces are made when first needed (a scope that sees one call makes none).
    """

    __slots__ = (
        "settings",
        "clock",
        "limit",
        "cap",
        "_trace",
        "_history",
        "slow_start",
        "_baseline",
        "_rtt",
        "_restore",
        "_last_cut",
        "_law",
        "_grown",
        "_start",
        "_count",
        "_drops",
        "_throttles",
        "_max_inflight",
        "_samples",
        "_ours",
        "_flat",
        "_exit",
        "_inflight_sum",
        "_late",
        "_sent_in",
        "_quick",
        "_load",
        "_last_load",
        "_cpu",
        "_last_cpu",
        "_answers",
        "_saturated",
        "_held",
    )

    # The open window's tallies (``_open_window`` starts them afresh; its lists are made once and
    # emptied, nothing keeps them past a window's close).
    _start: float  # when it opened
    _count: int  # latency samples sent in it
    _drops: int
    _throttles: int
    _max_inflight: int
    _samples: list[float]
    _ours: list[float]  # latencies of answers that came while the client was saturated
    _inflight_sum: int
    _late: list[float]  # latencies of its answers sent before it opened (not saturated ones)
    _sent_in: int  # its answers sent in it, whatever the load (``_faster_now``)
    _quick: list[float]  # the latencies of those that came under ``faster`` x the baseline
    _load: float  # the sum of the client loads its samples came with (the window's load: their mean
    _last_load: float  # or the last one, if higher: the load ramps up with slow start)
    _cpu: float  # the same for the client's CPU share (``busy`` reads it; ``saturated`` the load)
    _last_cpu: float
    _answers: int
    _saturated: int  # answers that came while the client was saturated (not latency samples)
    _held: int  # answers stalls held for ``stall_share`` of their latency or more

    def __init__(
        self, settings: Settings, clock: Callable[[], float] = time.monotonic, history: int = 10_000
    ):
        self.settings = settings
        self.clock = clock
        self.limit = float(settings.initial)
        self.cap = RateCap(settings, clock)
        # the closed windows (``trace``) and slow start's steps, made when first needed: a scope
        # that sees one call (an inventory makes thousands) closes no window and takes no step
        self._trace: deque[TracePoint] | None = None
        self._history = history
        self.slow_start = True
        self._last_cut = -math.inf  # answers sent before it measured the old limit: not read
        self._restore = 0.0  # during a re-measure window: the limit to go back to
        # the pieces, made when first needed: the no-load latency and the latency law when the
        # first window closes, slow start's exit at its first slow answer
        self._rtt: Baseline | None = None
        self._law: LatencyLaw | None = None
        self._exit: SlowStartExit | None = None
        self._baseline: float | None = None  # ``Baseline``'s value in force, read per answer (no call)
        # slow start's logs, appended per answer (``_slow_answer`` hands them to ``SlowStartExit``)
        self._grown: deque[tuple[float, float]] | None = None  # (when, limit) of its steps
        self._flat: deque[float] | None = None  # when requests that came back flat were sent
        # the open window: ``_open_window``'s tallies written out (a new scope's, once: no call, no
        # lists emptied; tests/test_gate_cost.py holds them to what ``_open_window`` sets)
        self._start = clock()
        self._count = self._drops = self._throttles = self._max_inflight = self._inflight_sum = 0
        self._samples, self._ours, self._late, self._quick = [], [], [], []
        self._sent_in = self._answers = self._saturated = self._held = 0
        self._load = self._last_load = self._cpu = self._last_cpu = 0.0

    @property
    def trace(self) -> deque[TracePoint]:
        """The closed windows' ``TracePoint``s, the last ``history`` of them."""
        if self._trace is None:
            self._trace = deque((), self._history)
        return self._trace

    @property
    def rate(self) -> float | None:
        """The send rate cap in requests/s (``RateCap``); None: unpaced."""
        return self.cap.rate

    @property
    def baseline(self) -> float | None:
        """The no-load latency estimate (``Baseline``)."""
        return self._baseline

    def reconfigure(self, settings: Settings) -> None:
        """New bounds and target for a new batch; the learned limit and rate carry over (clamped).
        A re-measure due while idle waits: halving the limit first thing would make a short batch pay."""
        self.settings = self.cap.settings = settings
        self.limit = min(max(self.limit, settings.min), settings.max)
        rtt = self._rtt
        if rtt is not None and rtt.due != math.inf and not self._restore:
            rtt.remeasure_after(self.clock() + settings.remeasure_every)
        if self._law is not None:  # the last batch's last window says nothing about this one's first
            self._law.forget()
        now = self.clock()
        if self._restore and rtt is not None:  # nor does a re-measure it began: this batch starts at
            self.limit = min(max(self._restore, self.limit, settings.min), settings.max)  # the learned limit
            self._restore = 0.0
            rtt.remeasure_at(now + settings.remeasure_every)
        self._open_window(now)  # its answers (the last batch's, maybe another server's) are not this one's

    def note_inflight(self, inflight: int) -> None:
        """The in-flight count after a slot was taken (once per request): the window's high-water mark."""
        if inflight > self._max_inflight:
            self._max_inflight = inflight

    def reserve(self) -> float:
        """Seconds the next send must wait under the rate cap (0 without one); reserves its turn."""
        return self.cap.reserve()

    def sample(
        self,
        latency: float | None,
        *,
        throttled: bool = False,
        dropped: bool = False,
        inflight: int = 0,
        load: float = 0.0,
        cpu: float | None = None,
        held: float = 0.0,
    ) -> TracePoint | None:
        """One finished attempt: ``latency`` None = no usable latency; ``throttled`` = the server said
        "too fast" (cuts the rate); ``dropped`` = it timed out (cuts the concurrency); ``load`` = this
        client's own load now (0-1, ``_clientload.ClientLoad``): from ``saturated`` on, all of a latency
        rise is ours; ``cpu`` = its CPU share (0-1; None: the same as ``load``): from ``busy`` on, part
        of it; ``held`` = seconds stalls of this process held this answer (a slow answer that would
        be flat without them waited for us: it does not end slow start). Returns a TracePoint when a
        window closed."""
        # Per answer (the gate's hot path): the settings and the baseline read once, what were
        # helpers (the flat check, ``note_inflight``, the window's end) inline.
        now = self.clock()
        s = self.settings
        saturated = load >= s.saturated
        if cpu is None:
            cpu = load
        self._load += load
        self._last_load = load
        self._cpu += cpu
        self._last_cpu = cpu
        self._answers += 1
        self._saturated += saturated
        if inflight > self._max_inflight:
            self._max_inflight = inflight
        if latency is None:
            sent = now
        else:
            sent = now - latency
            if held > 0 and held >= s.stall_share * latency:
                self._held += 1  # stalls of this process held it: it waited for us, not for a neighbour
        if throttled:
            self._throttles += 1
            self._on_throttle(now, sent, held)
        elif latency is not None and not dropped:
            self.cap.answered(now, sent)
        if dropped:
            if sent < self._last_cut:
                return None  # sent before the last cut: it measured the old limit, not the new one
            self._drops += 1
            return self._close(now)
        baseline = self._baseline
        if not throttled and latency is not None:
            if sent >= self._start:  # any load (see ``_faster_now``)
                self._sent_in += 1
                if baseline is not None and latency < s.faster * baseline:
                    self._quick.append(latency)
            if latency > 1e-4 and sent >= self._last_cut:
                if self.slow_start:
                    # slow start grows only on flat answers (within ``flat`` x the baseline): past
                    # a knee, where answers slow down, it stops by itself within a round trip
                    if baseline is not None and latency > s.flat * baseline:
                        # else it waited for us: the hub saturated, its stalls, or (a busy client)
                        # its own bursts: the ramp's end sends two requests an answer, and answers
                        # queue behind that work up to ~1.6x the baseline on a 50 ms server
                        idle = cpu < s.busy
                        if not saturated and latency - held > (s.flat if idle else s.busy_rise) * baseline:
                            self._slow_answer(sent, idle)
                    else:
                        if baseline is not None and self.limit < s.max:  # a flat send (``_slow_answer``
                            if self._flat is None:  # counts them; at the max it grows no more)
                                self._flat = deque((), 4096)
                            self._flat.append(sent)
                        if inflight * 2 >= self.limit and latency <= s.target_latency:  # not past the target
                            grown = self.limit + 1.0  # +1 an answer: x2 a round trip (no ``min`` call)
                            self.limit = grown if grown <= s.max else float(s.max)
                            if self._grown is None:
                                self._grown = deque((), 4096)
                            self._grown.append((now, self.limit))
                if saturated:  # it waited for us: its latency is no server's (all of them: Little's law)
                    self._ours.append(latency)
                elif sent >= self._start:  # only attempts sent in this window measure its limit
                    self._samples.append(latency)
                    self._inflight_sum += inflight
                    self._count += 1
                else:  # sent before it: the window's latency if none sent in it came back (``_close``)
                    self._late.append(latency)
        # The window's end: a faster period at once (a round trip of a faster server is enough to say
        # so); else a round trip's answers (a saturated one is no latency sample, but it counts), or
        # ``max_window`` with any; a re-measure reads twice as many (the cheap tests first: most
        # answers close nothing)
        elapsed, answers = now - self._start, self._count + self._saturated
        if (
            not self.slow_start and len(self._quick) >= s.min_samples and 2 * len(self._quick) > self._sent_in
        ) or (elapsed >= s.max_window and answers):
            return self._close(now)
        if answers >= (2 * s.min_samples if self._restore else s.min_samples):
            due = baseline or 0.0  # the window's length: the baseline, within [min_window, max_window]
            if due < s.min_window:
                due = s.min_window
            if due > s.max_window:
                due = s.max_window
            if elapsed >= due:
                return self._close(now)
        return None

    def _slow_answer(self, sent: float, idle: bool) -> None:
        """An answer past ``flat`` in slow start: ``SlowStartExit`` says whether slow start ends, and
        at what limit (the limit in force when the first slow answer was sent, at most the flat
        answers of the round trip before); at an ``idle`` client that limit is the server's knee."""
        ending = self._exit
        if ending is None:
            ending = self._exit = SlowStartExit()
        then = ending.slow_answer(
            sent, self.limit, self._baseline, self._flat or (), self._grown, float(self.settings.min)
        )
        if then is None:
            return
        self.limit, self.slow_start, self._last_cut = then, False, self.clock()
        if idle and self._law is not None:  # the server's knee, not our own run queue
            self._law.found_knee(self.limit)

    def _on_throttle(self, now: float, sent: float, held: float = 0.0) -> None:
        """Throttled: the server says "too fast", whatever the concurrency. Slow start ends; when the
        rate cap is set (``RateCap.throttled``) the concurrency is capped near what that rate needs
        (2x rate x baseline), as a token bucket accepts exactly its rate once empty."""
        self.slow_start = False
        rtt = self._baseline or 0.05
        if self.cap.throttled(now, sent, rtt, held) and self.cap.rate is not None:
            self.limit = min(self.limit, max(float(self.settings.min), 2.0 * self.cap.rate * rtt + 1.0))

    def _close(self, now: float) -> TracePoint:
        """The open window closes: its latency (the median of the answers sent in it), the client's
        load and CPU share over it; then one rule sets the limit: a faster period first (then the
        window reads as any other), a re-measure window's (``_remeasured``), a saturated one's
        (``_saturated_window``), else the latency law's (``_latency_window``)."""
        s, rtt, law = self.settings, self._rtt, self._law
        if rtt is None or law is None:  # the first window's close (a scope that sees a few calls closes none)
            rtt, law = self._rtt, self._law = Baseline(s.remeasure_every), LatencyLaw()
        # A window closes on its samples, or at ``max_window`` on saturated answers: then, if no
        # answer sent in it came back (latency over max_window), the ones that came measure it;
        # before, such windows had no latency, and at 128 in flight past the knee server's cliff
        # (1.6 s) nothing but a timeout could cut again.
        late = not self._samples and bool(self._late) and self._saturated > 0
        latency = _percentile(self._samples or self._late) if self._samples or late else None
        load = max(self._load / self._answers, self._last_load) if self._answers else 0.0
        cpu = max(self._cpu / self._answers, self._last_cpu) if self._answers else 0.0
        saturated = 2 * self._saturated >= self._answers > 0
        if self._faster_now():  # a faster period: the learned limit is stale, probe upwards again
            self._faster_period(now, rtt, law)
        if self._restore:  # this window measured the no-load latency at a lower limit
            return self._remeasured(now, None if saturated else latency, load, cpu, rtt, law)
        if saturated:  # our own run queue: latency says nothing about the server (``_latencylaw``)
            return self._saturated_window(now, load, cpu, rtt, law)
        return self._latency_window(now, latency, load, cpu, rtt, law)

    def _latency_window(
        self, now: float, latency: float | None, load: float, cpu: float, rtt: Baseline, law: LatencyLaw
    ) -> TracePoint:
        """A window the client was not saturated in: its latency lowers the baseline; a timeout cuts
        (``_timed_out``), else the latency law (``_vegas``); then, after slow start, a re-measure
        when one is due (``_remeasure``)."""
        s = self.settings
        inflight = self._inflight_sum / self._count if self._count else float(self._max_inflight)
        self._baseline = rtt.lower(latency, self.slow_start)
        sustained = law.sustained(latency, self._baseline)
        busy = cpu >= s.busy  # our own run queue (a neighbour's CPU delays each wake-up, not more in flight)
        if self._drops:
            self._timed_out(now, law)
        elif latency is not None and self._baseline is not None:
            self._vegas(now, latency, sustained, inflight, busy, self._baseline, rtt, law)
        self.limit = min(max(self.limit, s.min), s.max)
        self._remeasure(now, busy, rtt)
        return self._record(now, latency, load, cpu)

    def _vegas(
        self,
        now: float,
        latency: float,
        sustained: float | None,
        inflight: float,
        busy: bool,
        baseline: float,
        rtt: Baseline,
        law: LatencyLaw,
    ) -> None:
        """The latency law's limit (``LatencyLaw.vegas``: back to the knee past beta, hold, or grow;
        then the target's ceiling): a cut or a lasting rise ends slow start, and a deep cut (over
        25%) brings the next re-measure within two round trips (is the queue ours, or a slower
        service?)."""
        before = self.limit
        self.limit, verdict = law.vegas(
            before,
            self.slow_start,
            latency,
            sustained,
            inflight,
            busy,
            self._max_inflight,
            baseline,
            self.settings,
        )
        if verdict == CUT:
            self.slow_start, self._last_cut = False, now
            if self.limit < 0.75 * before:
                rtt.remeasure_by(now + 2 * (baseline or latency))
        elif verdict == RISE:
            self.slow_start = False
        over = law.ceiling(self.limit, before, sustained, busy, self.settings)
        if over is not None:  # over the target, whatever the knee
            self.limit, self.slow_start, self._last_cut = over, False, now

    def _remeasure(self, now: float, busy: bool, rtt: Baseline) -> None:
        """After slow start, an idle client's window with no timeout starts the re-measure that is
        due (``Baseline``): the next window runs at ``remeasure_share`` of the limit, which
        ``_remeasured`` restores; the first window after slow start schedules the first."""
        s = self.settings
        if (
            not self.slow_start
            and not self._drops
            and not busy
            and now >= rtt.due
            and self.limit >= 2 * s.min
        ):
            self._restore, self.limit, self._last_cut = (
                self.limit,
                max(float(s.min), s.remeasure_share * self.limit),
                now,
            )
        elif not self.slow_start and rtt.due == math.inf:
            rtt.remeasure_at(now + s.remeasure_every)

    def _saturated_window(
        self, now: float, load: float, cpu: float, rtt: Baseline, law: LatencyLaw
    ) -> TracePoint:
        """A window the client was saturated in: no cut on latency (``LatencyLaw.saturated``); a
        timeout still cuts, and so does the target when the wait was not our own: our CPU share
        under ``busy`` and most answers not held by our stalls (the load is neighbours holding the
        CPU: each wake-up waits a few ms; no Vegas cut reads that, a CPU-bound client at its fair
        share of a CPU reads the same, but a server over the target two windows running is still
        cut to it)."""
        s, seen = self.settings, self._samples + self._ours
        if self._baseline is None and seen:  # the first one: slow start needs it to tell a slow answer
            self._baseline = rtt.lower(_percentile(seen), self.slow_start)  # (a later window lowers it)
        sustained = None
        if cpu < s.busy and 2 * self._held < self._answers and seen:
            sustained = law.sustained(_percentile(seen), self._baseline)
        else:
            law.forget()
        if self._drops:
            self._timed_out(now, law)
        else:
            median = _percentile(seen) if seen else None
            self.limit, cut = law.saturated(self.limit, sustained, median, self._max_inflight, s)
            if cut:
                self.slow_start, self._last_cut = False, now
        self.limit = min(max(self.limit, s.min), s.max)
        return self._record(now, _percentile(seen) if seen else None, load, cpu)

    def _timed_out(self, now: float, law: LatencyLaw) -> None:
        """A window with a timeout: the concurrency backs off (``backoff``) and slow start ends."""
        self.limit *= self.settings.backoff
        self.slow_start, self._last_cut = False, now
        law.timed_out()

    def _remeasured(
        self, now: float, latency: float | None, load: float, cpu: float, rtt: Baseline, law: LatencyLaw
    ) -> TracePoint:
        """Every ``remeasure_every`` s one window runs at ``remeasure_share`` of the limit (below
        any knee the limit sits near: an idle client's holds within 20% of it); its latency replaces
        the baseline (``Baseline.remeasured``) and the limit goes back to where it was. At half the
        limit, every 3 s, they cost the 100 ms cliff server 5% of its throughput (0.89x the best
        fixed in simulation); 0.94x now. A window the client was saturated in measured our run
        queue: it is not read (None)."""
        latency = rtt.remeasured(now, latency, self.settings)
        self._baseline = rtt.value
        self.limit, self._restore = max(self.limit, self._restore), 0.0
        law.forget()
        return self._record(now, latency, load, cpu)

    def _faster_now(self) -> bool:
        """Is this a faster period? After slow start, most answers sent in the open window (and at
        least ``min_samples``) came back under ``faster`` x the baseline, whatever the client's load
        (its own run queue only adds latency): the limit and baseline came from a slower period
        (another server behind the same scope, a quieter hour), and a limit learned there is no
        ceiling here. Checked per answer, so it is found a round trip into the new period, not a
        window later (a window is a baseline long: two round trips of a server twice as fast). A
        noisy server does not trip it: the baseline follows the smoothed latency down, so answers
        a quarter under it are no lucky draw."""
        return (
            not self.slow_start
            and len(self._quick) >= self.settings.min_samples
            and 2 * len(self._quick) > self._sent_in
        )

    def _faster_period(self, now: float, rtt: Baseline, law: LatencyLaw) -> None:
        """A faster period (``_faster_now``): the baseline becomes the open window's median (its
        answers sent in it), any re-measure ends, and slow start resumes from the limit in force
        (x2 per round trip while flat, even while saturated), with no knee to stop at."""
        ordered = sorted(self._quick)  # over half of them: the median of all is one of these
        self._baseline = rtt.faster(ordered[max(0, math.ceil(0.5 * self._sent_in) - 1)])
        if self._restore:
            self.limit, self._restore = max(self.limit, self._restore), 0.0
            rtt.remeasure_at(now + self.settings.remeasure_every)
        self.slow_start = True
        law.restart()
        if self._exit is None:
            self._exit = SlowStartExit(now)
        else:
            self._exit.restart(now)
        if self._flat is not None:
            self._flat.clear()
        if self._grown is not None:
            self._grown.clear()

    def _record(self, now: float, latency: float | None, load: float = 0.0, cpu: float = 0.0) -> TracePoint:
        point = trace_point(
            now, self.limit, latency, self._drops + self._throttles, self._count, self.cap.rate, load, cpu
        )
        trace = self._trace
        if trace is None:  # (``trace``, without the property's call)
            trace = self._trace = deque((), self._history)  # (positional: 1.7k less than ``maxlen=``)
        trace.append(point)
        self._open_window(now)
        return point

    def _open_window(self, now: float) -> None:
        self._start = now
        self._count = 0
        self._drops = 0
        self._throttles = 0
        self._max_inflight = 0
        self._samples.clear()
        self._ours.clear()
        if self._exit is not None:  # slow start counts this window's slow answers and the last's
            self._exit.next_window()
        self._inflight_sum = 0
        self._late.clear()
        self._sent_in = 0
        self._quick.clear()
        self._load = self._last_load = self._cpu = self._last_cpu = 0.0
        self._answers = 0
        self._saturated = 0
        self._held = 0


def _percentile(samples: list[float], q: float = 0.5) -> float:
    """The window's median latency: Little's law wants the typical answer (the 25th percentile,
    used before, read low when in-flight swings within a window, so a cliff's queue went unseen on
    the loopback knee server), while the median still ignores a few client-side hiccups."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
