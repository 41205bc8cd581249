"""``processes=N``: the same API on every core (docs/contract.md, section 9), the parent side.

One process tops out near 1,000-1,500 calls/s on botocore's own CPU work. With ``processes > 1``,
``Engine.iter_results`` (and so ``batch_requests`` and ``adaptive_batch``) hands its requests to
``engine.pools`` (:class:`WorkerPools`), which starts N children with ``python -m
greenfetch._process_child`` and talks to each over a private socketpair. Each child is a fresh
interpreter that patches gevent first: gevent's ``Popen`` forks and at once execs it (docs/testing.md,
"Other Pythons"), so no forked copy of the patched parent ever runs greenfetch. Nor does a patched
parent use ``multiprocessing.Queue``.

Flow control: ``concurrency`` stays the total in flight; each child runs at most its credits at once.
In a spread run (below) the children split ``concurrency`` between them as credits, and the parent may
pull as many requests again to queue in the children, so a child starts its next call as one ends
instead of waiting for a round trip through the parent. In a pinned run each child's credits are the
whole ``concurrency`` (its scopes may be all there are), and the parent holds no more than that, so the
total still cannot exceed it. A slot frees only once the caller has taken that result. So the parent
never holds more than ``concurrency`` + credits requests (each kept until answered, for re-sending),
and a child never more than its credits plus its queue: memory is bounded by the concurrency on both
ends.

Routing (``Router``, pure). A run is *pinned* when some scope's state lives in the process, so one
process must own it:
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
since it may have run. A read is sent again once: a read lost twice comes back ``WorkerLost`` too. A
request whose send failed never reached its child (a batch is one pickled frame, run only once whole),
so once that child's end is handled it is sent on as never sent, a write included, and it does not use
up a read's one resend. So is one in a frame the child never acknowledged: a child sends ``Took`` for
each frame before it queues the frame's rows, so a frame written into the socket of a child already
dying (a killed process closes its files last) never ran. Of two children killed at once, only a read
the second had already taken as its resend comes back ``WorkerLost``. A child's end is handled only once
no send to it is under way, and a send that fails also ends the channel, so a live child left with a
cut frame exits and is handled as one that died. No request runs in two children, a read's resend
aside. Every request gets exactly one result, with its global ``index``.

Metrics: children send counter, histogram and perf-sketch deltas about once a second and at the end;
``Metrics.merge_delta`` adds them to the engine's own registry, so ``perf_stats()``, ``/metrics``, the
textfile and the Pushgateway cover every process. A child killed mid-run loses its last second of
deltas (its results still arrive, counted by whichever child re-runs them).

Credentials objects never cross as objects (``_wire``): they are frozen to an STS-style
record whose repr shows nothing, and the parent puts the caller's own object back on each result.

Lifetime: an engine keeps its pool between calls (``engine.pools``, a ``WorkerPools`` the engine makes),
so start-up (~0.5-1 s per child, in parallel) is paid once and each child keeps its clients, adaptive
limits and dedupe cache; ``Engine.close`` (or the engine being collected, or the interpreter exiting)
stops it. ``processes`` is an argument of ``Engine.iter_results`` (default: the Config's).

Here: the engine's pools and their lifetime. ``_pool``: the pool, on ``_state`` (its records: one
state per child, the pending requests, the run); ``_router``: which child takes a request (pure);
``_wire``: what crosses the pipe (the typed messages); ``_process_child`` (one floor up, as it builds
an Engine): a child.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .._adaptive import Gate
from .._backends import Backend
from .._config import Config, ConfigError
from .._metrics import Metrics
from .._models import Result
from ._pool import EngineParts, ProcessPool
from ._router import Router

__all__ = ["EngineParts", "ProcessPool", "Router", "WorkerPools"]


class WorkerPools:
    """An engine's worker pools by size (``engine.pools``), each kept idle between calls.

    It holds the engine's config, backend and metrics (so it is ``EngineParts`` itself), never the
    engine, so an idle pool does not keep its engine alive: the engine closes it, or its finalizer does."""

    def __init__(self, engine: EngineParts):
        self.config: Config = engine.config
        self.backend: Backend = engine.backend
        self.metrics: Metrics = engine.metrics
        self._idle: dict[int, ProcessPool] = {}

    def iter_results(
        self,
        processes: int,
        requests: Iterable[Any],
        concurrency: int,
        *,
        fail_fast: bool = False,
        gate: object = None,
        dedupe_window: float | None = None,
    ) -> Iterator[Result]:
        """``Engine.iter_results`` over ``processes`` worker processes (see the module doc).

        A run takes the idle pool of its size for itself (a concurrent run on the same engine gets a
        pool of its own) and gives it back only if it ended cleanly; a run stopped early (fail-fast,
        Ctrl-C, a stream closed) stops every child, and the next run starts fresh ones."""
        if gate is not None and not isinstance(gate, Gate):
            raise ConfigError("gate: a custom gate cannot cross processes; use processes=1 with it")
        pool = self._idle.pop(processes, None) or ProcessPool(self, processes)
        try:
            yield from pool.run(
                requests, concurrency, fail_fast=fail_fast, gate=gate, dedupe_window=dedupe_window
            )
        finally:
            if pool.reusable and processes not in self._idle:
                self._idle[processes] = pool
            else:
                pool.close()

    def idle(self, processes: int) -> ProcessPool | None:
        """The idle pool of this size, if one is kept (benchmarks and tests read its start-up times)."""
        return self._idle.get(processes)

    def close(self) -> None:
        """Stop every idle worker process now."""
        while self._idle:
            self._idle.popitem()[1].close()
