"""``processes=N``: the same API on every core (docs/contract.md, section 9), the parent side.

One process tops out near 1,000-1,500 calls/s on botocore's own CPU work. With ``processes > 1``,
``Engine.iter_results`` (and so ``batch_requests`` and ``adaptive_batch``) hands its requests to
:func:`iter_in_processes`, which starts N children with ``python -m greenfetch._process_child`` (fresh
interpreters that patch gevent first: never ``fork`` after patching, never ``multiprocessing.Queue`` in
a patched parent) and talks to each over a private socketpair.

Flow control: ``concurrency`` stays the total in flight; each child runs at most its credits at once.
In a spread run (below) the children split ``concurrency`` between them as credits, and the parent may
pull as many requests again to queue in the children, so a child starts its next call as one ends
instead of waiting for a round trip through the parent. In a pinned run each child's credits are the
whole ``concurrency`` (its scopes may be all there are), and the parent holds no more than that, so the
total still cannot exceed it. A slot frees only once the caller has taken that result. So the parent
never holds more than ``concurrency`` + credits requests (each kept until answered, for re-sending),
and a child never more than its credits plus its queue: memory is bounded by the concurrency on both
ends.

Routing. A run is *pinned* when some scope's state lives in the process, so one process must own it:
- ``adaptive_batch`` (and botocore's ``adaptive`` retry mode, a rate limiter per client): by the
  limiter's scope (service, region, account/role), so each limit sees every call of its AWS throttle
  scope and stays exact;
- with a dedupe window: by the request's signature, so identical requests meet in one process;
- otherwise the run is *spread*: each request goes to the child with the fewest unanswered requests.
  A plain batch keeps no per-scope state, and pinning would leave the other cores idle on a
  one-account batch.

A child that dies (killed, crashed) loses nothing: each of its unanswered requests is sent again to a
live child (a replacement is started when none is left, at most N times per run) if it only reads
(``Describe*``, ``List*``, ``Get*``...), and otherwise comes back as a failed result, ``WorkerLost``,
since it may have run. Every request gets exactly one result, with its global ``index``.

Metrics: children send counter, histogram and perf-sketch deltas about once a second and at the end;
``Metrics.merge_delta`` adds them to the engine's own registry, so ``perf_stats()``, ``/metrics``, the
textfile and the Pushgateway cover every process. A child killed mid-run loses its last second of
deltas (its results still arrive, counted by whichever child re-runs them).

Credentials objects never cross as objects (``_wire``): they are frozen to an STS-style
record whose repr shows nothing, and the parent puts the caller's own object back on each result.

Lifetime: an engine keeps its pool between calls, so start-up (~0.5-1 s per child, in parallel) is paid
once and each child keeps its clients, adaptive limits and dedupe cache; ``Engine.close`` (or the
engine being collected, or the interpreter exiting) stops it. Here: the API and the pool's lifetime;
``_pool``: the pool; ``_process_child`` (one floor up, it builds an Engine): a child; ``_wire``: what crosses.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from .._config import ConfigError, parse_processes
from .._models import Result
from ._pool import ProcessPool

__all__ = ["ProcessPool", "close_pools", "iter_in_processes", "with_processes"]


def with_processes(engine: Any, processes: Any) -> Any:
    """The engine, or a view of it (same clients, metrics, dedupe state) whose config says ``processes``."""
    if processes is None:
        return engine
    wanted = parse_processes(processes)
    if wanted == engine.config.processes:
        return engine
    _pools(engine)  # made on the engine itself first, so the view shares it
    view = copy.copy(engine)
    view.config = engine.config.replace(processes=wanted)
    return view


def iter_in_processes(engine: Any, requests: Iterable[Any], concurrency: int, *, fail_fast: bool = False,
                      gate: Any = None, dedupe_window: Any = None) -> Iterator[Result]:
    """``engine.iter_results`` over ``engine.config.processes`` worker processes (see the module doc).

    The engine keeps its pool between calls (start-up is paid once; each child keeps its clients,
    adaptive limits and dedupe cache). A run takes the pool for itself (a concurrent run on the same
    engine gets a pool of its own) and gives it back only if it ended cleanly; a run stopped early
    (fail-fast, Ctrl-C, a stream closed) stops every child, and the next run starts fresh ones."""
    if gate is not None and getattr(getattr(gate, "limits", None), "settings", None) is None:
        raise ConfigError("gate: a custom gate cannot cross processes; use processes=1 with it")
    processes, pools = engine.config.processes, _pools(engine)
    pool = pools.pop(processes, None) or ProcessPool(engine, processes)
    try:
        yield from pool.run(requests, concurrency, fail_fast=fail_fast, gate=gate, dedupe_window=dedupe_window)
    finally:
        if pool.reusable and processes not in pools:
            pools[processes] = pool
        else:
            pool.close()


def _pools(engine: Any) -> dict[int, ProcessPool]:
    """The engine's idle pools by size; closed when the engine is collected or the interpreter exits."""
    pools = engine.__dict__.get("_process_pools")
    if pools is None:
        pools = engine.__dict__["_process_pools"] = {}
        weakref.finalize(engine, _close_pools, pools)
    return pools  # type: ignore[no-any-return]


def close_pools(engine: Any) -> None:
    """Stop the engine's idle worker processes now (``Engine.close`` calls this)."""
    _close_pools(engine.__dict__.get("_process_pools") or {})


def _close_pools(pools: dict[int, ProcessPool]) -> None:
    while pools:
        pools.popitem()[1].close()
