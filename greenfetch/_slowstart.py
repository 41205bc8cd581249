"""Slow start's exit on slow answers (``SlowStartExit``): the limit the ramp goes back to past a knee.

Pure: no clock, no I/O. ``_controller.Controller`` feeds it the slow answers of its ramp and holds what
it decides; the rest of the ramp is told here too, with where its code is.

*The ramp* (slow start): +1 per answer whose latency is flat (<= ``flat`` x baseline, and under the
target), i.e. x2 per round trip (``Controller.sample``, per answer: the gate's hot path, so written
out there with its two logs, the sends that came back flat and the limit's steps). It ends:

- at the third slow answer (past ``flat``) of this window and the last, less those that stalls of the
  hub held (``Controller.sample`` leaves those out, and at a busy client, CPU share ``busy`` or more,
  those under ``busy_rise`` x the baseline: they waited behind the ramp's own bursts, as the latency
  law reads a busy client's rises) and those sent before slow start last began (a faster period's
  restart): back to the limit in force when the first of them was *sent* (answers
  come back a round trip late: without this it overshot a cliff 3x), and no higher than the answers
  that came back flat from the round trip before the last flat send (Little's law; at least half the
  limit: the answers a stall held come at once and send a burst, so the limit at a send can be twice
  what the server had): ``SlowStartExit.slow_answer``;
- at a rise that lasts two windows (queue > alpha, ``_latencylaw.LatencyLaw.vegas``; one window's
  may be the client's own, as every answer sends two requests in bursts a round trip apart), at the
  target, a throttle or a timeout (``Controller``);
- a first window the client was saturated in still sets the baseline (without one nothing is slow:
  ``Controller._saturated_window``).

Faster than x2 would be: from 5 it spends ~3.5 round trips under a CPU-bound client's ~100 (0.94x
fixed 128 on 5,000 calls at 2,000 calls/s), but x3 per round trip overshoots a cliff ~1.5x further,
and a cliff at 8-16 in flight is not recovered within 6 s (docs/performance/adaptive.md).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

__all__ = ["SlowStartExit", "limit_at"]


class SlowStartExit:
    """The slow answers of the ramp's last two windows, and the limit they end slow start at.

    Made at the ramp's first slow answer (or a faster period's restart): a scope that sees a few
    calls never needs one."""

    __slots__ = ("_slow", "_before", "_began")

    def __init__(self, began: float = -math.inf) -> None:
        self._slow: list[float] = []  # send times of this window's and the last's answers past ``flat``
        self._before = 0  # how many of those came in the last window
        self._began = began  # when slow start last began again (a faster period)

    def __repr__(self) -> str:
        return f"SlowStartExit(slow={self._slow!r}, before={self._before!r}, began={self._began!r})"

    def slow_answer(
        self,
        sent: float,
        limit: float,
        baseline: float | None,
        flats: Iterable[float],
        steps: deque[tuple[float, float]] | None,
        floor: float,
    ) -> float | None:
        """A slow answer sent at ``sent``: the limit slow start ends at (None: it goes on). ``flats``
        are the send times of the answers that came back flat, ``steps`` the ramp's (when, limit),
        ``floor`` the lowest limit allowed.

        A third answer past ``flat`` in this window and the last ends slow start at the limit in
        force when the earliest of them was *sent*: answers come back a round trip late, and
        meanwhile the fast ones kept doubling the limit (to 2-3x a cliff's knee on the loopback
        server). The last window's count too: slow answers trickle in (the first ones sent past a
        knee are the least slow), and when a window closed between the first and the third, the
        count began again and the exit took the limit of a send a round trip later (2.4x the
        knee, not 1.25x: its queue lasted past the bench's warm-up). Nor higher than the requests
        that came back flat from the round trip before the last flat send (Little's law: what the
        server held without a queue), but at least half the limit (x2 a round trip): answers held
        by a stall of this process come at once and send a burst, so the limit at a send can be
        twice what the server then had in flight (a 63 ms stall: 40 -> 80 at once, exit at 72)."""
        if sent < self._began:  # sent in the slower period a faster one ended: no sign of this one
            return None
        self._slow.append(sent)
        if len(self._slow) < 3:
            return None
        first = min(self._slow)
        then = limit_at(steps, first, limit)
        last = max((stamp for stamp in flats if stamp <= first), default=None)
        if baseline is not None and last is not None:  # Little's law: what the server answered flat in
            flat = sum(1.0 for stamp in flats if last - baseline < stamp <= last)  # the round trip before
            then = min(then, max(flat, 0.5 * then, floor))  # (x2 a round trip)
        self._slow.clear()
        return min(limit, then)

    def next_window(self) -> None:
        """A window closed: the slow answers of the one before it no longer count."""
        del self._slow[: self._before]
        self._before = len(self._slow)

    def restart(self, now: float) -> None:
        """Slow start begins again (a faster period): the slower period's slow answers do not count."""
        self._slow.clear()
        self._began = now


def limit_at(steps: deque[tuple[float, float]] | None, when: float, default: float) -> float:
    """Slow start's limit in force at ``when`` (``default`` if it had not grown by then)."""
    found = reversed(steps) if steps is not None else ()
    return next((limit for stamp, limit in found if stamp <= when), default)
