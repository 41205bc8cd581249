"""Per-attempt timing from botocore's own events, so later layers see real latency.

botocore retries inside one client call (standard mode), sleeping between attempts. The adaptive
controller and the metrics need each attempt's latency *without* those sleeps, and whether it was
throttled. ``before-send`` fires just before the HTTP request goes out and ``needs-retry`` right
after its response is parsed; the backoff sleep comes after ``needs-retry``. The handlers find the
call being recorded on the current greenlet (an attribute of ``greenlet.getcurrent()``: each greenlet
has its own, and so has each OS thread, whose main greenlet it is): what a thread-local gives under
gevent's patching, at a third of the cost of gevent's ``local``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from greenlet import getcurrent

__all__ = ["Attempt", "AttemptRecorder", "install_attempt_hooks", "recording"]


class Attempt(NamedTuple):
    """One HTTP attempt: its latency without backoff sleeps, its status, its error code. A named
    tuple (immutable, compared and hashed by value, read by name): made once per attempt on the
    hot path, where a frozen dataclass's three ``object.__setattr__`` calls cost twice as much."""

    seconds: float
    http_status: int | None
    error_code: str | None


_make_attempt = tuple.__new__  # ``_make_attempt(Attempt, (seconds, status, code))``: no Python __new__
_NO_ERROR: dict[str, Any] = {}  # read only


@dataclass(slots=True)
class AttemptRecorder:
    """Collects the attempts of one logical call; ``on_attempt`` sees each as it ends (the metrics),
    then ``on_sample`` (the adaptive gate's sample, for a gated call)."""

    on_attempt: Callable[[Attempt], None] | None = None
    clock: Callable[[], float] = time.perf_counter
    attempts: list[Attempt] = field(default_factory=list)
    _started: float | None = None
    on_sample: Callable[[Attempt], None] | None = None


_SLOT = "_greenfetch_recorder"  # the attribute of the current greenlet that holds its recorder


def current() -> AttemptRecorder | None:
    return getattr(getcurrent(), _SLOT, None)


class recording:
    """``with recording(rec):`` makes ``rec`` the recorder of calls made in this greenlet/thread."""

    __slots__ = ("recorder", "_previous", "_greenlet")

    def __init__(self, recorder: AttemptRecorder):
        self.recorder = recorder

    def __enter__(self) -> AttemptRecorder:
        self._greenlet = greenlet = getcurrent()
        self._previous = getattr(greenlet, _SLOT, None)
        setattr(greenlet, _SLOT, self.recorder)
        return self.recorder

    def __exit__(self, *exc: Any) -> None:
        setattr(self._greenlet, _SLOT, self._previous)
        self._greenlet = None  # not kept alive by a recording that outlives its block


def _before_send(**_: Any) -> None:
    rec = getattr(getcurrent(), _SLOT, None)  # current(), without its call
    if rec is not None:
        rec._started = rec.clock()


def _needs_retry(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    rec = getattr(getcurrent(), _SLOT, None)  # current(), without its call
    if rec is None or rec._started is None:
        return
    seconds = rec.clock() - rec._started
    rec._started = None
    status, code = None, None
    if response is not None:
        http, parsed = response
        status = getattr(http, "status_code", None)
        code = (parsed or _NO_ERROR).get("Error", _NO_ERROR).get("Code") if isinstance(parsed, dict) else None
    elif caught_exception is not None:
        code = type(caught_exception).__name__
    attempt = _make_attempt(Attempt, (seconds, status, code))
    rec.attempts.append(attempt)
    if rec.on_attempt is not None:
        rec.on_attempt(attempt)
    if rec.on_sample is not None:
        rec.on_sample(attempt)


def install_attempt_hooks(client: Any) -> None:
    events = client.meta.events
    events.register("before-send", _before_send, unique_id="greenfetch-before-send")
    events.register_first("needs-retry", _needs_retry, unique_id="greenfetch-needs-retry")
