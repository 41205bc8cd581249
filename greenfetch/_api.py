"""The module-level functions: one default engine, created on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ._config import Config
from ._engine import Engine, RawRequest
from ._models import Result

__all__ = [
    "adaptive_batch",
    "batch_requests",
    "dedupe_request",
    "default_engine",
    "iter_results",
    "perf_stats",
    "reset_stats",
]

T = TypeVar("T")
_default: Engine | None = None
_lock = threading.Lock()


def default_engine(make_config: Callable[[], Config] | None = None) -> Engine:
    """The process-wide engine the module-level functions, the CLI's Lambda handler and anyone else
    who wants one share (clients, pools, metrics, dedupe state). The first caller's ``make_config``
    decides its configuration (default: ``Config.resolve()``); later callers get the same engine."""
    global _default
    with _lock:
        if _default is None:
            _default = Engine(make_config() if make_config is not None else None)
        return _default


def batch_requests(
    requests: Iterable[RawRequest],
    concurrency: int | None = None,
    fail_fast: bool = False,
    processes: Any = None,
    **options: Any,
) -> list[Result]:
    """Run every request with at most ``concurrency`` in flight (default: the engine's Config, i.e.
    GREENFETCH_CONCURRENCY or 10); results in request order.

    Resilient (the default) returns a Result for every request, failed ones included. With
    ``fail_fast=True`` the first failure cancels queued and in-flight work and raises
    :class:`BatchFailed`, which carries that failure and the results completed so far.
    ``processes`` (a whole number or ``auto``) overrides GREENFETCH_PROCESSES for this call.
    """
    return default_engine().batch_requests(
        requests, concurrency, fail_fast=fail_fast, processes=processes, **options
    )


def iter_results(
    requests: Iterable[RawRequest], concurrency: int | None = None, processes: Any = None, **options: Any
) -> Iterator[Result]:
    """Stream results as they complete (each carries its ``index``), pulling requests lazily."""
    return default_engine().iter_results(requests, concurrency, processes=processes, **options)


def adaptive_batch(
    requests: Iterable[RawRequest],
    initial_concurrency: int = 5,
    target_latency: Any = 0.5,
    min_concurrency: int = 1,
    max_concurrency: int = 256,
    processes: Any = None,
    **options: Any,
) -> list[Result]:
    """Like batch_requests, while a controller moves the limit from observed latency and throttling."""
    return default_engine().adaptive_batch(
        requests,
        initial_concurrency,
        target_latency,
        min_concurrency,
        max_concurrency,
        processes=processes,
        **options,
    )


def dedupe_request(signature: str, fn: Callable[[], T], window: Any = 5.0) -> T:
    """Concurrent calls with one signature run ``fn`` once; a value is reused for ``window`` seconds."""
    return default_engine().dedupe_request(signature, fn, window=window)


def perf_stats() -> list[dict[str, Any]]:
    """One row per ``service:operation`` with count, errors, throttles and latency percentiles (seconds)."""
    return default_engine().metrics.perf_stats()


def reset_stats() -> None:
    default_engine().metrics.reset()
