"""The send rate after a throttle (``RateCap``): the adaptive controller's (``_controller``) rate cap.

Pure: no I/O, no gevent; time comes only from the injected ``clock``. Its knobs are the controller's
``Settings`` (the ``rate_*`` ones and ``min_rate``); the rule is told in ``_controller``'s module doc
(*throttle*) and in the class doc below.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = ["RateCap"]

_KEPT = 1.0  # seconds of accepted answers the rate cap keeps (a throttle looks back a second at most)


class RateSettings(Protocol):
    """The knobs the rate cap reads: ``_controller.Settings`` has them (this floor cannot import it)."""

    @property
    def rate_backoff(self) -> float: ...
    @property
    def rate_hold(self) -> float: ...
    @property
    def rate_probe(self) -> float: ...
    @property
    def min_rate(self) -> float: ...
    @property
    def rate_floor(self) -> float: ...
    @property
    def rate_burst(self) -> float: ...


class RateCap:
    """The send rate after a throttle: a pacer's turns, set from the rate the server accepted.

    ``rate`` is None (unpaced) until the first throttle. Then, at most once per round trip and only for
    attempts sent after the last cut, it becomes ``rate_backoff`` x the rate of answers the server
    accepted just before, less the retries still to come (botocore retries a throttle after rand(0, 1)
    s, unpaced: the throttles of the last second, each weighted by the chance it is not yet retried),
    never under ``rate_floor`` of the accepted rate; a throttle never raises it, unless it was set
    with no answer accepted (the next cut, a round trip later, knows the rate; and each answer
    accepted after it raises it, as no throttle may follow). The accepted rate is the answers read
    over the horizon less the time stalls of this process held the throttle (the answers that came
    during a stall wait behind it in the run queue). It holds ``rate_hold`` s, then, while it binds, grows by
    ``rate_probe`` per second x (1 + seconds probing)^2, so a raised quota is found again in seconds
    and a steady one costs few throttles."""

    # Slots, and the throttles' deque made at the first throttle: an inventory makes one per scope
    # (thousands, most of them for one call and never throttled), each kept as long as the engine.
    __slots__ = (
        "settings",
        "clock",
        "rate",
        "_answers",
        "_throttled",
        "_born",
        "_blind",
        "_cut",
        "_stamp",
        "_next_send",
        "_since",
    )

    def __init__(self, settings: RateSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.rate: float | None = None  # requests/s; None until the first throttle
        self._answers: deque[float] = deque()  # when recent accepted answers arrived
        # when recent throttles came (their retries follow), the last 4,096; None before the first
        self._throttled: deque[float] | None = None
        self._born = math.inf  # when the earliest answer counted was sent
        self._blind = False  # was the rate set with no answer accepted (nothing known of the rate)?
        self._cut = -math.inf  # when the rate was last set by a throttle
        self._stamp = clock()  # when the probe last grew the rate
        self._next_send = -math.inf  # the next send's turn
        self._since = 0  # answers accepted since a cut made blind

    def answered(self, now: float, sent: float) -> None:
        """An answer that was not a throttle: it counts towards the accepted rate (``_KEPT`` s of them
        are kept). After a cut made blind, it raises the rate to ``rate_backoff`` x the answers
        accepted since, over a second at least: no throttle may follow to set it again (no retries)."""
        answers = self._answers  # per answer (the gate's hot path): no ``min`` call, the bound once
        answers.append(now)
        if sent < self._born:
            self._born = sent
        kept = now - _KEPT
        while answers[0] < kept:
            answers.popleft()
        if self._blind and self.rate is not None:
            self._since += 1
            self.rate = max(self.rate, self.settings.rate_backoff * self._since / max(1.0, now - self._cut))
            self._next_send = min(self._next_send, now + 1.0 / self.rate)

    def throttled(self, now: float, sent: float, rtt: float, held: float = 0.0) -> bool:
        """A throttle of an attempt sent at ``sent``, held ``held`` s by stalls of this process before
        it was read; True if it set the rate (see the class doc)."""
        if self._throttled is None:
            self._throttled = deque(maxlen=4096)
        self._throttled.append(now)
        s = self.settings
        if sent < self._cut or now - self._cut < rtt:
            return False
        horizon = max(2 * rtt, min(0.5, now - max(self._cut, self._born)))
        if sum(1 for stamp in self._answers if stamp >= now - horizon) < 10:  # a low rate: read a second
            horizon = max(horizon, min(1.0, now - self._born))
        accepted = sum(1 for stamp in self._answers if stamp >= now - horizon) / max(rtt, horizon - held)
        while self._throttled and self._throttled[0] < now - 1.0:
            self._throttled.popleft()
        # Each throttle comes back as an unpaced retry after rand(0, 1) s (botocore's first backoff):
        # one of age a is still to come with chance 1 - a, all of them within the next second.
        retries = sum(1.0 - (now - stamp) for stamp in self._throttled)
        paced = max(s.rate_backoff * accepted - retries, s.rate_floor * accepted)
        if self.rate is not None and not self._blind:  # already under it: the throttle came from unpaced
            paced = min(paced, self.rate)  # retries or a burst, so hold; cutting again would ratchet it down
        self._blind = (
            accepted == 0
        )  # the first throttles come back before any answer: the next cut may raise it
        self.rate = max(s.min_rate, paced)
        self._cut = self._stamp = now
        self._since = 0
        self._next_send = min(self._next_send, now + 1.0 / self.rate)
        return True

    def reserve(self) -> float:
        """Seconds the next send must wait (0 while unpaced); reserves its turn."""
        if self.rate is None:
            return 0.0
        now = self.clock()
        self._probe(now)
        start = max(now - self.settings.rate_burst, self._next_send)  # a sender that woke late catches up
        self._next_send = start + 1.0 / self.rate
        return max(0.0, start - now)

    def _probe(self, now: float) -> None:
        """Past the hold, a rate cap that binds grows by ``rate_probe`` per second, faster the longer
        no throttle comes (a raised quota is found again in seconds, a steady one costs few throttles)."""
        s, gap = self.settings, min(now - self._stamp, 0.1)
        self._stamp = now
        probing = now - self._cut - s.rate_hold
        if self.rate is not None and probing > 0 and self._next_send > now:  # binding: this send waits
            self.rate *= 1.0 + s.rate_probe * (1.0 + probing) ** 2 * gap
