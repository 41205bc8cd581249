"""Per-attempt timing around botocore's own send, so later layers see real latency.

botocore retries inside one client call (standard mode), sleeping between attempts. The adaptive
controller and the metrics need each attempt's latency *without* those sleeps, and whether it was
throttled. An attempt is ``Endpoint._get_response``: the ``before-send`` event, the send, the parse
and ``response-received``; ``needs-retry`` comes right after it, and the backoff sleep after that.
Where botocore's request path is greenfetch's (``_botocore_fast`` installed), its ``_get_response``
times the attempts of the clients :func:`install_attempt_hooks` marked (:func:`timed`, :func:`record`):
no handler for either event, each of which cost the emitter a handler call (~6k instructions each).
Elsewhere two handlers do it, ``before-send`` (the start) and ``needs-retry`` (the end, registered
first). Either way the call being recorded is found on the current greenlet (an attribute of
``greenlet.getcurrent()``: each greenlet has its own, and so has each OS thread, whose main greenlet
it is): what a thread-local gives under gevent's patching, at a third of the cost of gevent's ``local``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from greenlet import getcurrent

__all__ = [
    "Attempt",
    "AttemptRecorder",
    "install_attempt_hooks",
    "record",
    "recording",
    "timed",
    "times_attempts",
]


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
    record(rec, seconds, response, caught_exception)


def record(rec: AttemptRecorder, seconds: float, response: Any, caught_exception: Any) -> None:
    """One attempt ended after ``seconds``: ``response`` is botocore's (http response, parsed dict) or
    None, ``caught_exception`` what the send raised or None (what ``needs-retry`` is given). Its status,
    and its code (the parsed error's, else the exception's class name), recorded and observed."""
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


# An endpoint whose attempts its ``_get_response`` times: marked by ``install_attempt_hooks`` (in its
# ``__dict__``), so that a call of any other client made inside a recorded call (the AssumeRole of a
# credential refresh, on the same greenlet) is not taken for one of the recorded call's attempts.
_TIMED = "_greenfetch_timed"
_timing: set[Any] = set()  # the ``Endpoint._get_response`` functions that call ``timed`` and ``record``


def times_attempts(get_response: Any) -> Any:
    """Declare an ``Endpoint._get_response`` replacement that times the attempts of marked endpoints
    (``timed`` before the send, ``record`` after): clients made while it is ``Endpoint``'s register
    neither event handler."""
    _timing.add(get_response)
    return get_response


def timed(endpoint: Any) -> AttemptRecorder | None:
    """The recorder of the call on this greenlet, if ``endpoint``'s attempts are timed in its
    ``_get_response`` (see ``install_attempt_hooks``); else None."""
    rec: AttemptRecorder | None = getattr(getcurrent(), _SLOT, None)
    if rec is None or _TIMED not in endpoint.__dict__:
        return None
    return rec


def install_attempt_hooks(client: Any) -> None:
    """Time each attempt of ``client``'s calls: in its endpoint's ``_get_response`` where that is one
    declared with ``times_attempts`` (the client's endpoint marked), else through two event handlers.
    A client marked while the replacement is in place keeps no handler: if botocore's own
    ``_get_response`` comes back (``_botocore_fast.uninstall()``), its attempts go unseen (the engine
    records one an execute, as for any caller below botocore's events)."""
    endpoint = client._endpoint
    if type(endpoint)._get_response in _timing:
        endpoint.__dict__[_TIMED] = True
        return
    events = client.meta.events
    events.register("before-send", _before_send, unique_id="greenfetch-before-send")
    events.register_first("needs-retry", _needs_retry, unique_id="greenfetch-needs-retry")
