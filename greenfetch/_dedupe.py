"""Request deduplication: singleflight while in flight, a reuse window once done.

Two layers, so the rules can be tested without any concurrency:

``DedupeTable`` is pure bookkeeping with an injectable clock. Per key it knows either the flight in
progress, or the completed value and when it completed (a cachetools ``TLRUCache``: each value expires
``window`` seconds after completion, and the table never holds more than ``maxsize`` of them, least
recently used first out). Exceptions are never stored.

``Singleflight`` puts the table behind a lock and runs ``fn`` in its own greenlet (or thread); every
caller, the one that started it included, only *waits* on the flight's event. So a caller that is
killed or gives up (``timeout``) cancels neither the execution nor the other waiters. When a value
expires under load, the first caller to miss installs one new flight and everyone after it joins
that flight: one refresh, not a stampede.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TLRUCache

from ._config import ConfigError, parse_duration

__all__ = [
    "CACHED",
    "COALESCED",
    "EXECUTED",
    "DedupeTable",
    "Singleflight",
    "check_signature",
    "check_window",
]

EXECUTED, COALESCED, CACHED = "executed", "coalesced", "cached"


def check_signature(key: Any) -> str:
    """Signatures are strings (``Request.signature``); anything else is a caller's mistake."""
    if not isinstance(key, str):
        raise ConfigError(
            f"signature: {key!r} ({type(key).__name__}) is not a string; pass a string such as "
            "Request.signature (e.g. 's3:ListBuckets:...')"
        )
    return key


def check_window(window: Any) -> float:
    """Seconds from ``5``, ``"500ms"``, ``"2s"``; 0 means coalesce in flight only, never reuse."""
    seconds = parse_duration(window, "window")
    if not seconds >= 0:  # also rejects NaN
        raise ConfigError(
            f"window: {window!r} is negative; use 0 (share only while in flight) or more seconds "
            "(e.g. 5 or '5s')"
        )
    return seconds


@dataclass(frozen=True)
class _Done:
    value: Any
    completed: float
    expires: float


class DedupeTable:
    """Who runs, who waits, who gets a stored value. No I/O, no locks: callers serialize access."""

    def __init__(self, maxsize: int = 4096, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._inflight: dict[str, Any] = {}
        self._done: TLRUCache[str, _Done] = TLRUCache(maxsize, ttu=lambda _k, v, _now: v.expires, timer=clock)
        # Whether a value was ever stored: until one is, no key has one, and the TLRU cache's lookup and
        # removal (its timer's context, ~20k instructions a flight) are skipped. The inventory's
        # AssumeRoles share only in flight (window 0) and never store.
        self._stored = False

    def claim(self, key: str, window: float, flight: Any) -> tuple[str, Any]:
        """(CACHED, value) | (COALESCED, the flight in progress) | (EXECUTED, ``flight``, now installed)."""
        done = self._done.get(key) if self._stored else None
        if done is not None and self.clock() - done.completed < window:
            return CACHED, done.value
        running = self._inflight.get(key)
        if running is not None:
            return COALESCED, running
        self._inflight[key] = flight
        return EXECUTED, flight

    def complete(self, key: str, flight: Any, value: Any, window: float) -> None:
        """The flight succeeded: later callers within ``window`` seconds get ``value``."""
        self._release(key, flight)
        if window > 0:
            now = self.clock()
            self._stored = True
            self._done[key] = _Done(value, now, now + window)
        elif self._stored:
            self._done.pop(key, None)

    def fail(self, key: str, flight: Any) -> None:
        """The flight raised: its waiters see the error, nobody after them does (never cached)."""
        self._release(key, flight)

    def inflight(self, key: str) -> Any:
        return self._inflight.get(key)

    def __len__(self) -> int:
        self._done.expire()
        return len(self._done) + len(self._inflight)

    def clear(self) -> None:
        self._done.clear()

    def _release(self, key: str, flight: Any) -> None:
        if self._inflight.get(key) is flight:  # a newer flight for the key stays installed
            del self._inflight[key]


class _Flight:
    __slots__ = ("done", "value", "error")

    def __init__(self, event: Any):
        self.done: Any = event
        self.value: Any = None
        self.error: BaseException | None = None


class Singleflight:
    """``do(key, fn, window)``: one execution per key at a time, its value reused for ``window`` s."""

    def __init__(
        self,
        metrics: Any = None,
        backend: Any = None,
        *,
        maxsize: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.metrics = metrics
        self.table = DedupeTable(maxsize, clock)
        self._lock = threading.Lock()  # cooperative under gevent's patching; never held across a wait
        self._gevent = getattr(backend, "name", None) == "gevent"
        self._event: Callable[[], Any] = backend.event if self._gevent else threading.Event

    def do(
        self,
        key: str,
        fn: Callable[[], Any],
        window: Any = 5.0,
        timeout: float | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ) -> Any:
        """``fn()``'s value, shared with concurrent and recent callers of the same ``key``."""
        return self.do_outcome(key, fn, window, timeout, on_outcome)[0]

    def do_outcome(
        self,
        key: str,
        fn: Callable[[], Any],
        window: Any = 5.0,
        timeout: float | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ) -> tuple[Any, str]:
        """(value, outcome) where outcome is executed, coalesced or cached; ``fn``'s exception is raised
        to every caller that waited on that execution. ``timeout`` bounds this caller's wait only.
        ``on_outcome`` hears the outcome before the wait, so a caller learns it even when ``fn`` raises."""
        key, seconds = check_signature(key), check_window(window)
        if not callable(fn):
            raise ConfigError(f"fn: {fn!r} is not callable; pass a function of no arguments")
        mine = _Flight(self._event())
        with self._lock:
            outcome, found = self.table.claim(key, seconds, mine)
        if self.metrics is not None:
            self.metrics.dedupe(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        if outcome == CACHED:
            return found, outcome
        if outcome == EXECUTED:
            self._spawn(self._run, key, mine, fn, seconds)
        flight: _Flight = found
        if not flight.done.wait(timeout):
            raise TimeoutError(f"dedupe {key!r}: no result within {timeout}s (the shared call keeps running)")
        if flight.error is not None:
            raise flight.error
        return flight.value, outcome

    def clear(self) -> None:
        """Forget completed values (flights in progress finish and are delivered as usual)."""
        with self._lock:
            self.table.clear()

    def _run(self, key: str, flight: _Flight, fn: Callable[[], Any], window: float) -> None:
        try:
            value = fn()
        except BaseException as exc:  # noqa: BLE001 - delivered to the waiters, never lost
            with self._lock:
                self.table.fail(key, flight)
            flight.error = exc
        else:
            with self._lock:
                self.table.complete(key, flight, value, window)
            flight.value = value
        finally:
            flight.done.set()

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._gevent:
            import gevent

            gevent.spawn(fn, *args)
        else:  # a dedicated thread: a pool slot could be held by the very callers waiting on it
            threading.Thread(target=fn, args=args, daemon=True, name="greenfetch-dedupe").start()
