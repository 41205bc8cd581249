"""``processes=N``: the same API on every core (contract section 9), the parent side.

One process tops out near 1,000-1,500 calls/s on botocore's own CPU work. With ``processes > 1``,
``Engine.iter_results`` (and so ``batch_requests`` and ``adaptive_batch``) hands its requests to
:func:`iter_in_processes`, which starts N children with ``python -m greenfetch._process_child`` (fresh
interpreters that patch gevent first: never ``fork`` after patching, never ``multiprocessing.Queue`` in
a patched parent) and talks to each over a private socketpair.

Flow control: ``concurrency`` stays the total in flight. The parent pulls a request only when one of
``concurrency`` slots is free, sends it to a child (a child holds at most ``concurrency`` unanswered
requests: its credits), and frees the slot only once the caller has taken that result. So the parent
holds at most ``concurrency`` requests (kept until answered, for re-sending) plus the one being routed,
and each child at most its credits: memory is bounded by the concurrency on both ends.

Routing (one process owns each scope where a scope's state lives in the process):
- ``adaptive_batch``: by the limiter's scope (service, region, account/role), so each adaptive limit
  sees every call of its AWS throttle scope and stays exact;
- with a dedupe window: by the request's signature, so identical requests meet in one process;
- otherwise: to the child with the fewest unanswered requests (a plain batch keeps no per-scope
  state; pinning one scope to one process would leave the other cores idle on a one-account batch).

A child that dies (killed, crashed) loses nothing: each of its unanswered requests is sent again to a
live child (a replacement is started when none is left, at most N times per run) if it only reads
(``Describe*``, ``List*``, ``Get*``...), and otherwise comes back as a failed result, ``WorkerLost``,
since it may have run. Every request gets exactly one result, with its global ``index``.

Metrics: children send counter, histogram and perf-sketch deltas about once a second and at the end;
``Metrics.merge_delta`` adds them to the engine's own registry, so ``perf_stats()``, ``/metrics``, the
textfile and the Pushgateway cover every process. A child killed mid-run loses its last second of
deltas (its results still arrive, counted by whichever child re-runs them).

Credentials objects never cross as objects: they are frozen to an STS-style record whose repr shows
nothing, and the parent puts the caller's own object back on each result.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import socket
import subprocess
import sys
import time
import weakref
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._config import ConfigError, parse_processes
from ._models import Request, RequestError, Result

__all__ = ["ProcessPool", "close_pools", "iter_in_processes", "with_processes"]

_READS = ("Describe", "List", "Get", "Search", "Head", "Query", "Scan", "BatchGet", "Lookup", "Select", "Check")
_STOP_WAIT = 5.0


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


@dataclass
class _Child:
    slot: int
    proc: subprocess.Popen[bytes]
    channel: Any
    lock: Any
    outstanding: set[int] = field(default_factory=set)
    buffer: list[tuple[int, Any]] = field(default_factory=list)  # queued for the sender, not yet sent
    alive: bool = True  # may be routed to (false once a send failed or it was found dead)
    lost: bool = False  # its end of file was handled: its unanswered requests went elsewhere
    done: bool = False  # said its run is over (last metrics sent)
    reader: Any = None


@dataclass
class _Pending:
    raw: Any
    child: _Child | None = None
    sends: int = 0


class _End:
    __slots__ = ("started", "error")

    def __init__(self, started: int, error: BaseException | None = None):
        self.started, self.error = started, error


class ProcessPool:
    """N spawned children; ``run`` streams one run's results (one run at a time), ``close`` stops them.

    It holds the engine's config, backend and metrics, not the engine, so an idle pool kept on an
    engine does not keep that engine alive."""

    def __init__(self, engine: Any, processes: int):
        self.config, self.backend, self.metrics = engine.config, engine.backend, engine.metrics
        self.options: dict[str, Any] = {}
        self.running = False
        self.reusable = False
        self.generation = 0  # one per run: a sender thread of an earlier run sees it changed and returns
        self.processes = processes
        self.inbox = self.backend.queue()
        self.wake = self.backend.event()
        self.stopped = False
        self.children: list[_Child] = []
        self.retired: list[_Child] = []
        self.pending: dict[int, _Pending] = {}
        self.respawns = processes
        self.ready_seconds: list[float] = []  # each child's start-up: spawn to engine ready
        self.answered: dict[int, int] = {}  # results per child pid (tests, benchmarks)
        self._started_at: dict[int, float] = {}
        for slot in range(processes):
            self.children.append(self._spawn(slot))

    # -- children ----------------------------------------------------------------------------

    def _spawn(self, slot: int) -> _Child:
        from ._process_child import Channel  # not at import: ``-m greenfetch._process_child`` runs it fresh

        parent, child = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if k != "GREENFETCH_ENGINE"}
        try:
            proc = subprocess.Popen([sys.executable, "-m", "greenfetch._process_child", str(child.fileno())],
                                    pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, env=env)
        finally:
            child.close()
        self._started_at[proc.pid] = time.perf_counter()
        worker = _Child(slot, proc, Channel(parent), self.backend.semaphore(1))
        worker.channel.send(("start", self.config.replace(processes=1)))
        if self.running:  # a replacement mid-run joins the run at once
            worker.channel.send(("begin", self.options))
        worker.reader = self.backend.spawn(self._read, worker)
        return worker

    def _begin(self, options: dict[str, Any]) -> None:
        """A new run: children that died since the last one are replaced, then each is told to begin."""
        self.options, self.pending, self.respawns = options, {}, self.processes
        self.stopped, self.reusable, self.generation = False, False, self.generation + 1
        for child in list(self.children):
            if not child.alive or child.proc.poll() is not None:
                child.alive = False
                self.retired.append(child)
                self.children[self.children.index(child)] = self._spawn(child.slot)
        self.running = True
        for child in self.children:
            child.done, child.lost = False, False
            child.outstanding.clear()
            if not self._send(child, ("begin", options)):
                child.alive = False

    def _read(self, child: _Child) -> None:
        try:
            while True:
                self.inbox.put((child, child.channel.recv()))
        except EOFError:
            self.inbox.put((child, ("eof",)))

    def _send(self, child: _Child, message: Any) -> bool:
        try:
            with child.lock:
                child.channel.send(message)
            return True
        except OSError:
            return False  # its reader reports the death; its unanswered requests are handled there

    def _live(self) -> list[_Child]:
        return [c for c in self.children if c.alive]

    # -- routing and sending -----------------------------------------------------------------

    def _route(self, raw: Any) -> _Child | None:
        live = self._live()
        if not live:
            if self.respawns <= 0:
                return None
            self.respawns -= 1
            slot = min(c.slot for c in self.children) if self.children else 0
            replacement = self._spawn(slot)
            self.retired += [c for c in self.children if c.slot == slot]
            self.children = [c for c in self.children if c.slot != slot] + [replacement]
            return replacement
        key = self._key(raw)
        if key is None:
            return min(live, key=lambda c: len(c.outstanding))
        owner = zlib.crc32(key.encode()) % self.processes
        return next((c for c in live if c.slot == owner), live[owner % len(live)])

    def _key(self, raw: Any) -> str | None:
        if "adaptive" not in self.options and self.options.get("dedupe_window") is None:
            return None
        try:
            request = Request.coerce(raw)
        except RequestError:
            return None  # fails wherever it runs
        request = replace(request, region=request.region or self.config.region)
        if "adaptive" in self.options:
            from ._adaptive import Limits

            return Limits.scope_of(request)
        return request.signature

    def _dispatch(self, index: int, pending: _Pending) -> None:
        """Queue one request for its child (the sender ships it), or answer it here if none is left."""
        child = self._route(pending.raw)
        if child is None:
            self._answer(_lost(index, pending.raw, "no worker process is left"))
            return
        pending.child, pending.sends = child, pending.sends + 1
        child.outstanding.add(index)
        child.buffer.append((index, _sealed(pending.raw)))
        self.wake.set()

    def _ship(self, generation: int) -> None:
        """The sender: each child's queued requests in one frame, whatever queued while it last sent."""
        while not self.stopped and generation == self.generation:
            self.wake.wait()
            self.wake.clear()
            for child in list(self.children):
                while child.buffer:
                    batch, child.buffer = child.buffer, []
                    self._send_batch(child, batch)

    def _send_batch(self, child: _Child, batch: list[tuple[int, Any]]) -> None:
        try:
            sent = self._send(child, ("run", batch))
        except Exception:  # noqa: BLE001 - a request that cannot be pickled (an open file, a lambda)
            sendable = []
            for index, request in batch:
                try:
                    pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
                    sendable.append((index, request))
                except Exception as exc:  # noqa: BLE001 - this request alone fails, the run goes on
                    child.outstanding.discard(index)
                    pending = self.pending.get(index)
                    self._answer(_unsendable(index, pending.raw if pending else request, exc))
            sent = not sendable or self._send(child, ("run", sendable))
        if not sent:
            child.alive = False
            if child.lost:  # its death was handled before this batch failed: these go elsewhere now
                self._requeue(child, [index for index, _ in batch])

    def _answer(self, result: Result) -> None:
        self.inbox.put((None, ("results", [result])))

    def _child_lost(self, child: _Child) -> None:
        """Its unanswered reads (and whatever it was never sent) go to a live child; anything else may
        have run, so it fails as WorkerLost."""
        child.alive, child.lost = False, True
        unsent = [index for index, _ in child.buffer]
        child.buffer.clear()
        code = child.proc.poll()
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
        self._requeue(child, unsent)
        for index in sorted(child.outstanding):
            pending = self.pending.get(index)
            if pending is None:
                continue
            if _reads_only(pending.raw) and pending.sends < 2:
                self._dispatch(index, pending)
            else:
                reason = (f"worker process {child.proc.pid} {how} before answering; the request may have run, "
                          "so it was not sent again")
                self._answer(_lost(index, pending.raw, reason))
        child.outstanding.clear()

    def _requeue(self, child: _Child, indexes: list[int]) -> None:
        for index in indexes:
            child.outstanding.discard(index)
            pending = self.pending.get(index)
            if pending is not None:
                pending.sends -= 1  # it never reached a child
                self._dispatch(index, pending)

    # -- the run -----------------------------------------------------------------------------

    def run(self, requests: Iterable[Any], concurrency: int, *, fail_fast: bool = False, gate: Any = None,
            dedupe_window: Any = None) -> Iterator[Result]:
        options: dict[str, Any] = {"credits": concurrency, "dedupe_window": dedupe_window}
        if gate is not None:
            options["adaptive"] = gate.limits.settings
        self._begin(options)
        backend = self.backend
        slots, stopping = backend.semaphore(concurrency), backend.event()

        def feed() -> None:
            started = 0
            try:
                for index, raw in enumerate(requests):
                    slots.acquire()
                    if stopping.is_set():
                        break
                    self.pending[index] = pending = _Pending(raw)
                    started += 1
                    self._dispatch(index, pending)
            except Exception as exc:  # noqa: BLE001 - a failing input iterator: re-raised after what came before
                self.inbox.put((None, _End(started, exc)))
                return
            self.inbox.put((None, _End(started)))

        feeder, sender = backend.spawn(feed), backend.spawn(self._ship, self.generation)
        received, end, finished = 0, None, False
        try:
            while end is None or received < end.started:
                child, message = self.inbox.get()
                if isinstance(message, _End):
                    end = message
                    continue
                for result in self._handle(child, message, gate):
                    received += 1
                    yield result
                    slots.release()
                    if fail_fast and result.error is not None:
                        return
            self._finish(gate)
            finished = True
            self.reusable = all(c.alive for c in self.children)
            if end.error is not None:
                raise end.error
        finally:
            if not finished:
                self._last_metrics()
            self.running = False
            stopping.set()
            slots.release()
            feeder.kill()
            self.stopped = True  # a sender thread cannot be killed: it sees this and returns
            self.wake.set()
            sender.kill()

    def _handle(self, child: _Child | None, message: Any, gate: Any) -> list[Result]:
        kind = message[0]
        if kind == "results":
            return [r for r in (self._accept(child, result) for result in message[1]) if r is not None]
        assert child is not None
        if kind == "metrics":
            self.metrics.merge_delta(message[1], source=child.proc.pid)
        elif kind == "ready":
            self.ready_seconds.append(time.perf_counter() - self._started_at[child.proc.pid])
        elif kind == "trace":
            _merge_trace(gate, message[1])
        elif kind == "done":
            child.done = True
        elif kind == "eof" and not child.lost:
            child.proc.wait()
            self._child_lost(child)
        return []

    def _accept(self, child: _Child | None, result: Result) -> Result | None:
        pending = self.pending.get(result.index)
        if pending is None or (child is not None and pending.child is not child):
            return None  # an answer from a child already given up on: the request has its result
        del self.pending[result.index]
        if child is not None:
            child.outstanding.discard(result.index)
            self.answered[child.proc.pid] = self.answered.get(child.proc.pid, 0) + 1
        return _restore_credentials(result, pending.raw)

    def _finish(self, gate: Any) -> None:
        """Every result is in: tell each child, and take its last metrics (and trace) before it exits."""
        live = self._live()
        for child in live:
            self._send(child, ("end",))
        while any(c.alive and not c.done for c in live):
            child, message = self.inbox.get()
            if child is not None and message[0] == "eof":
                child.alive = False
            elif child is not None:
                self._handle(child, message, gate)

    def _last_metrics(self, wait: float = 1.0) -> None:
        """Stopping early (fail-fast, Ctrl-C, a stream closed): ask each child for the metrics of what it
        ran since its last report, waiting at most ``wait`` seconds, so the stats cover those calls too."""
        live = [c for c in self._live() if self._send(c, ("flush",))]
        deadline = time.monotonic() + wait
        reported: set[int] = set()
        while live and len(reported) < len(live) and time.monotonic() < deadline:
            try:
                child, message = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - queue.Empty of either backend: stop waiting
                return
            if child is not None and message[0] == "metrics":
                self.metrics.merge_delta(message[1], source=child.proc.pid)
                reported.add(child.proc.pid)
            elif child is not None and message[0] == "eof":
                reported.add(child.proc.pid)

    def close(self) -> None:
        """Stop every child: closing its channel ends it (end of file), a kill if it lingers."""
        everyone = self.children + self.retired
        for child in everyone:
            with contextlib.suppress(OSError):
                child.channel.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader thread blocked in recv
            child.channel.close()
        deadline = time.monotonic() + _STOP_WAIT
        for child in everyone:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            if child.reader is not None:
                child.reader.kill()


# -- requests across the pipe -----------------------------------------------------------------

class SealedCredentials(Mapping[str, Any]):
    """Frozen credentials as an STS record (what ``_clients`` accepts); its repr shows no secret."""

    def __init__(self, access_key: str, secret_key: str, token: str | None):
        self._data = {"AccessKeyId": access_key, "SecretAccessKey": secret_key, "SessionToken": token}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return "<credentials (hidden)>"


def _seal(value: Any) -> Any:
    from ._clients import _credentials

    try:
        frozen = _credentials(value)
    except RequestError:
        return f"<{type(value).__name__}>"  # the child raises the same clear InvalidCredentials error
    return None if frozen is None else SealedCredentials(frozen.access_key, frozen.secret_key, frozen.token)


def _sealed(raw: Any) -> Any:
    if isinstance(raw, Request) and raw.credentials is not None:
        return replace(raw, credentials=_seal(raw.credentials))
    if isinstance(raw, Mapping) and raw.get("credentials") is not None:
        return {**raw, "credentials": _seal(raw["credentials"])}
    return raw


def _restore_credentials(result: Result, raw: Any) -> Result:
    original = raw.credentials if isinstance(raw, Request) else (
        raw.get("credentials") if isinstance(raw, Mapping) else None)
    if original is not None and isinstance(result.request, Request):
        result.request = replace(result.request, credentials=original)
    return result


def _reads_only(raw: Any) -> bool:
    operation = raw.operation if isinstance(raw, Request) else (
        raw.get("operation") if isinstance(raw, Mapping) else None)
    if not isinstance(operation, str):
        return True  # it cannot be built, so it cannot have changed anything
    name = operation[:1].upper() + operation[1:]
    name = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return name.startswith(_READS)


def _shown(raw: Any) -> Any:
    if isinstance(raw, Request):
        return replace(raw, credentials=None)
    if isinstance(raw, Mapping):
        return {k: v for k, v in raw.items() if k != "credentials"}
    return {"invalid": repr(raw)[:200]}


def _where(raw: Any) -> str:
    service = getattr(raw, "service", None) or (raw.get("service") if isinstance(raw, Mapping) else None)
    operation = getattr(raw, "operation", None) or (raw.get("operation") if isinstance(raw, Mapping) else None)
    return f"{service}.{operation}: " if service and operation else ""


def _lost(index: int, raw: Any, reason: str) -> Result:
    return Result(index, _shown(raw), error=f"{_where(raw)}WorkerLost: {reason}", error_code="WorkerLost",
                  retryable=True, guidance="run the request again (its worker process died mid-run)")


def _unsendable(index: int, raw: Any, exc: Exception) -> Result:
    return Result(index, _shown(raw), error=f"{_where(raw)}InvalidRequest: cannot be sent to a worker process "
                  f"({type(exc).__name__}: {str(exc)[:200]}); use processes=1 for requests with such values",
                  error_code="InvalidRequest")


def _merge_trace(gate: Any, traces: dict[str, list[Any]]) -> None:
    """A child's adaptive windows join the parent gate's trace (each scope lives in one child)."""
    if gate is None:
        return
    for scope, points in traces.items():
        gate.scopes.add(scope)
        gate.limits.limiter(scope).controller.trace.extend(points)
