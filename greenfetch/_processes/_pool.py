"""The worker pool behind ``processes=N`` (see the package docstring for the rules): spawning children,
routing requests to them, shipping batches, the run loop, a child's death, and stopping.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .._backends import Backend
from .._config import Config
from .._metrics import Metrics
from .._models import Request, RequestError, Result
from .._scheduler import FeedEnd
from ._wire import Channel, lost, reads_only, restore_credentials, sealed, unsendable

__all__ = ["EngineParts", "ProcessPool"]

_STOP_WAIT = 5.0


class EngineParts(Protocol):
    """What a pool takes from its engine: its settings, its backend and its metrics (children's deltas
    merge into them). Never the engine itself, so an idle pool does not keep its engine alive."""

    @property
    def config(self) -> Config: ...

    @property
    def backend(self) -> Backend: ...

    @property
    def metrics(self) -> Metrics: ...


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


class ProcessPool:
    """N spawned children; ``run`` streams one run's results (one run at a time), ``close`` stops them.

    It holds the engine's config, backend and metrics, not the engine, so an idle pool kept on an
    engine does not keep that engine alive."""

    def __init__(self, engine: EngineParts, processes: int):
        self.config, self.backend, self.metrics = engine.config, engine.backend, engine.metrics
        self.options: dict[str, Any] = {}
        self.running = False
        self.reusable = False
        self.generation = 0  # one per run: a sender thread of an earlier run sees it changed and returns
        self.processes = processes
        self.inbox = self.backend.queue()
        self.wake = self.backend.event()
        self.buffers = self.backend.semaphore(1)  # the feeder appends while the sender swaps (threads)
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
            worker.channel.send(("begin", self._options_for(slot)))
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
            if not self._send(child, ("begin", self._options_for(child.slot))):
                child.alive = False

    def _options_for(self, slot: int) -> dict[str, Any]:
        """A child's run options; its ``credits`` is how many calls it may have in flight."""
        return {**self.options, "credits": max(1, self._share(slot))}  # a child with no share gets no work

    def _share(self, slot: int) -> int:
        """Pinned runs: a child may run all ``concurrency`` calls (its scopes may be all there are), and
        the parent holds no more than that. Spread runs: the children split ``concurrency`` (slots
        beyond it get none), and the parent may hold as many again queued in the children, so a child
        starts its next call the moment one ends instead of waiting for a round trip through the
        parent: what bounds the throughput on a busy machine otherwise."""
        total = self.options["concurrency"]
        if self.options["pinned"]:
            return total
        return total // self.processes + (1 if slot < total % self.processes else 0)

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
        key = self._key(raw) if self.options["pinned"] else None
        if key is None:
            usable = [c for c in live if self._share(c.slot)] or live
            return min(usable, key=lambda c: len(c.outstanding))
        owner = zlib.crc32(key.encode()) % self.processes
        return next((c for c in live if c.slot == owner), live[owner % len(live)])

    def _key(self, raw: Any) -> str | None:
        """What pins a request to one child: its throttle scope when a limit lives in the process (the
        adaptive gate; botocore's ``adaptive`` retry mode, a rate limiter per client), its signature
        with a dedupe window; else nothing (the least loaded child takes it)."""
        by_scope = "adaptive" in self.options or self.config.retry_mode == "adaptive"
        try:
            request = Request.coerce(raw)
        except RequestError:
            return None  # fails wherever it runs
        request = replace(request, region=request.region or self.config.region)
        if by_scope:
            from .._adaptive import Limits

            return Limits.scope_of(request)
        return request.signature

    def _dispatch(self, index: int, pending: _Pending) -> None:
        """Queue one request for its child (the sender ships it), or answer it here if none is left."""
        child = self._route(pending.raw)
        if child is None:
            self._answer(lost(index, pending.raw, "no worker process is left"))
            return
        pending.child, pending.sends = child, pending.sends + 1
        child.outstanding.add(index)
        frame = (index, sealed(pending.raw))
        with self.buffers:
            child.buffer.append(frame)
        self.wake.set()

    def _ship(self, generation: int) -> None:
        """The sender: each child's queued requests in one frame, whatever queued while it last sent."""
        while not self.stopped and generation == self.generation:
            self.wake.wait()
            self.wake.clear()
            for child in list(self.children):
                while child.buffer:
                    with self.buffers:
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
                    self._answer(unsendable(index, pending.raw if pending else request, exc))
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
        with self.buffers:
            unsent, child.buffer = [index for index, _ in child.buffer], []
        code = child.proc.poll()
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
        self._requeue(child, unsent)
        for index in sorted(child.outstanding):
            pending = self.pending.get(index)
            if pending is None:
                continue
            if reads_only(pending.raw) and pending.sends < 2:
                self._dispatch(index, pending)
            else:
                why = ("a read is sent again once, and this one was" if reads_only(pending.raw)
                       else "the request may have run, so it was not sent again")
                self._answer(lost(index, pending.raw, f"worker process {child.proc.pid} {how} before answering; {why}"))
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
        options: dict[str, Any] = {"concurrency": concurrency, "dedupe_window": dedupe_window}
        if gate is not None:
            options["adaptive"], options["reset"] = gate.settings, gate.reset
        options["pinned"] = bool(gate is not None or dedupe_window is not None or self.config.retry_mode == "adaptive")
        self._begin(options)
        backend = self.backend
        window = concurrency if options["pinned"] else 2 * concurrency  # concurrency + the children's queues
        slots, stopping = backend.semaphore(window), backend.event()

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
                self.inbox.put((None, FeedEnd(started, exc)))
                return
            self.inbox.put((None, FeedEnd(started)))

        feeder, sender = backend.spawn(feed), backend.spawn(self._ship, self.generation)
        received, end, finished = 0, None, False
        try:
            while end is None or received < end.started:
                child, message = self.inbox.get()
                if isinstance(message, FeedEnd):
                    end = message
                    continue
                for result in self._handle(child, message, gate):
                    received += 1
                    yield result
                    slots.release()
                    if fail_fast and result.error is not None:
                        return
            finished = True
            self.reusable = self._finish(gate) and all(c.alive for c in self.children)
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
        return restore_credentials(result, pending.raw)

    def _finish(self, gate: Any, wait: float = 10.0) -> bool:
        """Every result is in: tell each child, and take its last metrics (and trace). False if a child
        did not answer within ``wait`` seconds (the pool is then not kept)."""
        live = self._live()
        for child in live:
            self._send(child, ("end",))
        deadline = time.monotonic() + wait
        while any(c.alive and not c.done for c in live):
            try:
                child, message = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - queue.Empty of either backend
                return False
            if child is not None and message[0] == "eof":
                child.alive = False
            elif child is not None:
                self._handle(child, message, gate)
        return True

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


def _merge_trace(gate: Any, traces: dict[str, list[Any]]) -> None:
    """A child's adaptive windows join the parent gate's trace (each scope lives in one child)."""
    if gate is not None:
        gate.add_trace(traces)
