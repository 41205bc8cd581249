"""Per-attempt timing from botocore's own events, so later layers see real latency.

botocore retries inside one client call (standard mode), sleeping between attempts. The adaptive
controller and the metrics need each attempt's latency *without* those sleeps, and whether it was
throttled. ``before-send`` fires just before the HTTP request goes out and ``needs-retry`` right
after its response is parsed; the backoff sleep comes after ``needs-retry``. The handlers find the
call being recorded through a thread-local, which gevent's patching makes greenlet-local.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Attempt", "AttemptRecorder", "install_attempt_hooks"]


@dataclass(frozen=True)
class Attempt:
    seconds: float
    http_status: int | None
    error_code: str | None


@dataclass
class AttemptRecorder:
    """Collects the attempts of one logical call; ``on_attempt`` sees each as it ends."""

    on_attempt: Callable[[Attempt], None] | None = None
    clock: Callable[[], float] = time.perf_counter
    attempts: list[Attempt] = field(default_factory=list)
    _started: float | None = None


_local = threading.local()


def current() -> AttemptRecorder | None:
    return getattr(_local, "recorder", None)


class recording:
    """``with recording(rec):`` makes ``rec`` the recorder of calls made in this greenlet/thread."""

    def __init__(self, recorder: AttemptRecorder):
        self.recorder = recorder

    def __enter__(self) -> AttemptRecorder:
        self._previous = current()
        _local.recorder = self.recorder
        return self.recorder

    def __exit__(self, *exc: Any) -> None:
        _local.recorder = self._previous


def _before_send(**_: Any) -> None:
    rec = current()
    if rec is not None:
        rec._started = rec.clock()


def _needs_retry(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    rec = current()
    if rec is None or rec._started is None:
        return
    seconds = rec.clock() - rec._started
    rec._started = None
    status, code = None, None
    if response is not None:
        http, parsed = response
        status = getattr(http, "status_code", None)
        code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    elif caught_exception is not None:
        code = type(caught_exception).__name__
    attempt = Attempt(seconds, status, code)
    rec.attempts.append(attempt)
    if rec.on_attempt is not None:
        rec.on_attempt(attempt)


def install_attempt_hooks(client: Any) -> None:
    events = client.meta.events
    events.register("before-send", _before_send, unique_id="greenfetch-before-send")
    events.register_first("needs-retry", _needs_retry, unique_id="greenfetch-needs-retry")
