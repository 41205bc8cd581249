"""The worker pool behind ``processes=N`` (the rules are in the package docstring).

``Router`` (``_router``) decides which child takes a request and how many calls each may run: pure,
tested without spawning children. ``ProcessPool`` runs the children: each ``_Child`` is in one
``ChildState``; a run (``_Run``) is ``_scheduler``'s bounded loop fed to the children (``feed_bounded``),
a sender that ships each child's queued requests in one frame, and the handling of what comes back
(``_wire``'s messages), a child's death included. The records of a child, a request and a run are
``_state``'s.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from .._adaptive import Gate
from .._backends import Backend
from .._config import Config
from .._metrics import Metrics
from .._models import Result
from .._scheduler import FeedEnd, feed_bounded
from ._router import Router
from ._state import IDLE, LOST, RUNNING, UNREACHABLE, _Child, _Pending, _Run
from ._wire import (
    Begin,
    Channel,
    Done,
    End,
    Flush,
    Gone,
    MetricsDelta,
    Ready,
    Requests,
    Results,
    Start,
    Took,
    Trace,
    lost,
    pack_request,
    reads_only,
    restore_credentials,
    unpack_request,
    unpack_result,
    unsendable,
)

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


class ProcessPool:
    """N spawned children; ``run`` streams one run's results (one run at a time), ``close`` stops them.

    It holds the engine's config, backend and metrics, not the engine, so an idle pool kept on an
    engine does not keep that engine alive."""

    def __init__(self, engine: EngineParts, processes: int):
        self.config, self.backend, self.metrics = engine.config, engine.backend, engine.metrics
        self.processes = processes
        self.current: _Run | None = None
        self.reusable = (
            False  # the last run ended cleanly with every child idle: the engine may keep the pool
        )
        self.inbox = self.backend.queue()  # (child or None, message) from the readers; the feeder's FeedEnd
        self.wake = self.backend.event()  # the sender has requests to ship
        self.buffers = self.backend.semaphore(1)  # the feeder appends while the sender swaps (threads)
        self.retired: list[_Child] = []
        self.ready_seconds: list[float] = []  # each child's start-up: spawn to engine ready
        self.answered: dict[int, int] = {}  # results per child pid (tests, benchmarks)
        self._started_at: dict[int, float] = {}
        self.children = [self._spawn(slot) for slot in range(processes)]

    # -- children ----------------------------------------------------------------------------

    def _spawn(self, slot: int) -> _Child:
        parent, child = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if k != "GREENFETCH_ENGINE"}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "greenfetch._process_child", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        finally:
            child.close()
        self._started_at[proc.pid] = time.perf_counter()
        worker = _Child(slot, proc, Channel(parent), self.backend.semaphore(1))
        worker.channel.send(Start(self.config.replace(processes=1)))
        if self.current is not None:  # a replacement mid-run joins the run at once
            worker.channel.send(self.current.begin_for(slot))
            worker.state = RUNNING
        worker.reader = self.backend.spawn(self._read, worker)
        return worker

    def _begin(self, run: _Run) -> None:
        """A new run: children that died since the last one are replaced, then each is told to begin."""
        self.reusable = False
        for i, child in enumerate(self.children):
            if child.state is not IDLE or child.proc.poll() is not None:
                self.retired.append(child)
                self.children[i] = self._spawn(child.slot)
        self.current = run
        for child in self.children:
            child.outstanding.clear()
            child.sent.clear()
            sent = self._send(child, run.begin_for(child.slot))
            child.state = RUNNING if sent else UNREACHABLE

    def _read(self, child: _Child) -> None:
        try:
            while True:
                self.inbox.put((child, child.channel.recv()))
        except EOFError:
            self.inbox.put((child, Gone()))

    def _send(self, child: _Child, message: Any) -> bool:
        try:
            with child.lock:
                child.channel.send(message)
            return True
        except OSError:
            return False  # its reader reports the death; its unanswered requests are handled there

    def _running(self) -> list[_Child]:
        return [c for c in self.children if c.state is RUNNING]

    # -- routing and sending -----------------------------------------------------------------

    def _route(self, run: _Run, raw: Any) -> _Child | None:
        """The router's pick among the running children; a replacement when none is left (at most N
        per run); None when no replacement is left either."""
        live = self._running()
        if live:
            return run.router.pick(raw, live)
        if run.respawns <= 0:
            return None
        run.respawns -= 1
        slot = min(c.slot for c in self.children) if self.children else 0
        replacement = self._spawn(slot)
        self.retired += [c for c in self.children if c.slot == slot]
        self.children = [c for c in self.children if c.slot != slot] + [replacement]
        return replacement

    def _dispatch(self, run: _Run, index: int, pending: _Pending) -> None:
        """Queue one request for its child (the sender ships it), or answer it here if none is left."""
        child = self._route(run, pending.raw)
        if child is None:
            self._answer(lost(index, pending.raw, "no worker process is left"))
            return
        pending.child, pending.sends = child, pending.sends + 1
        child.outstanding.add(index)
        row = pack_request(index, pending.raw)
        with self.buffers:
            child.buffer.append(row)
        self.wake.set()

    def _ship(self, run: _Run) -> None:
        """The sender: each child's queued requests in one frame, whatever queued while it last sent."""
        while not run.over:
            self.wake.wait()
            self.wake.clear()
            for child in list(self.children):
                while child.buffer:
                    self._send_batch(run, child)

    def _send_batch(self, run: _Run, child: _Child) -> None:
        """Ship what is queued for the child in one frame, kept in ``sent`` until the child acknowledges
        it. A batch whose send fails never reached it: its rows wait in ``unsent`` for its end to be
        handled (``_child_lost``), then go elsewhere as never sent, as do those of a frame it never
        acknowledged. The child's lock is held from taking the batch to that verdict, so its end is
        never handled while a batch to it is under way (each row is queued, sent, or unsent)."""
        with child.lock:
            with self.buffers:
                batch, child.buffer = child.buffer, []
            if not batch:  # its end was handled meanwhile: what was queued went elsewhere
                return
            sent = self._sent(child, batch)
            if sent is None:  # a request that cannot be pickled (an open file, a lambda)
                batch = self._sendable(run, child, batch)
                sent = not batch or self._sent(child, batch)
            if sent:
                return
            # Nothing of a failed batch ran: a batch is one pickled frame, and a child unpickles a frame
            # (and so runs its rows) only once it has all of it. A send cut partway (an error other than
            # the child's end) leaves a live child a frame it never completes: nothing more goes to it,
            # and the channel's sending side is shut, so it reads end of file and exits, and its end is
            # handled as any child's.
            with contextlib.suppress(OSError):
                child.channel.sock.shutdown(socket.SHUT_WR)
            indexes = [row[0] for row in batch]
            with self.buffers:
                handled = child.state is LOST
                if not handled:
                    child.state = UNREACHABLE
                    child.unsent += indexes
        if handled:  # queued after its end was handled (routed there just before, on another thread)
            self._requeue(run, child, indexes)

    def _sent(self, child: _Child, batch: list[tuple[Any, ...]]) -> bool | None:
        """Send one frame (the child's lock held): True if sent, False if the send failed, None if a
        request could not be pickled (a frame is pickled whole before a byte is written). The frame is
        kept as unacknowledged before it is sent: its ``Took`` may be handled before the send returns."""
        child.sent.append([row[0] for row in batch])
        try:
            child.channel.send(Requests(batch))
            return True
        except OSError:
            outcome: bool | None = False
        except Exception:  # noqa: BLE001 - pickling failed: nothing was written
            outcome = None
        child.sent.pop()
        return outcome

    def _sendable(self, run: _Run, child: _Child, batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows of ``batch`` that pickle; each other one is answered here, as unsendable."""
        sendable = []
        for row in batch:
            try:
                pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
                sendable.append(row)
            except Exception as exc:  # noqa: BLE001 - this request alone fails, the run goes on
                index = row[0]
                child.outstanding.discard(index)
                pending = run.pending.get(index)
                self._answer(unsendable(index, pending.raw if pending else unpack_request(row), exc))
        return sendable

    def _answer(self, result: Result) -> None:
        """The parent answers a request itself (no child is left for it, it cannot be sent)."""
        self.inbox.put((None, result))

    def _child_lost(self, run: _Run, child: _Child) -> None:
        """Its unanswered reads, and whatever never reached it (queued, in a batch whose send failed, or
        in a frame it never acknowledged), go to a live child; anything else it took may have run, so it
        fails as WorkerLost."""
        with child.lock:  # a batch being sent to it ends first (at once: its end of the channel is gone)
            with self.buffers:
                child.state = LOST
                unsent = [row[0] for row in child.buffer] + child.unsent
                unsent += [index for frame in child.sent for index in frame]  # never acknowledged: never ran
                child.buffer, child.unsent = [], []
                child.sent.clear()
        code = child.proc.poll()
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
        self._requeue(run, child, unsent)
        for index in sorted(child.outstanding):
            pending = run.pending.get(index)
            if pending is None:
                continue
            if reads_only(pending.raw) and pending.sends < 2:
                self._dispatch(run, index, pending)
            else:
                why = (
                    "a read is sent again once, and this one was"
                    if reads_only(pending.raw)
                    else "the request may have run, so it was not sent again"
                )
                self._answer(
                    lost(index, pending.raw, f"worker process {child.proc.pid} {how} before answering; {why}")
                )
        child.outstanding.clear()

    def _requeue(self, run: _Run, child: _Child, indexes: list[int]) -> None:
        """Route these again as never sent: their send to ``child`` never happened, or failed, so this
        is not their one resend."""
        for index in indexes:
            child.outstanding.discard(index)
            pending = run.pending.get(index)
            if pending is not None:
                pending.sends -= 1  # it never reached a child
                self._dispatch(run, index, pending)

    # -- the run -----------------------------------------------------------------------------

    def run(
        self,
        requests: Iterable[Any],
        concurrency: int,
        *,
        fail_fast: bool = False,
        gate: Gate | None = None,
        dedupe_window: float | None = None,
    ) -> Iterator[Result]:
        router = Router.for_run(
            self.config,
            self.processes,
            concurrency,
            adaptive=gate is not None,
            dedupe=dedupe_window is not None,
        )
        begin = Begin(1, dedupe_window, gate.settings if gate else None, gate.reset if gate else False)
        run = _Run(router, begin, gate, respawns=self.processes)
        self._begin(run)
        sender = self.backend.spawn(self._ship, run)
        finished = False

        def start(index: int, raw: Any) -> None:
            run.pending[index] = pending = _Pending(raw)
            self._dispatch(run, index, pending)

        def complete() -> None:  # every result is in
            nonlocal finished
            finished = True
            self.reusable = self._finish(run) and all(c.state is IDLE for c in self.children)

        stop = (lambda result: result.error is not None) if fail_fast else None
        try:
            yield from feed_bounded(
                self.backend,
                requests,
                start,
                router.window,
                self.inbox,
                unpack=lambda item: self._handle(run, *item),
                stop=stop,
                complete=complete,
            )
        finally:
            if not finished:
                self._last_metrics()
            self.current = None
            run.over = True
            self.wake.set()
            sender.kill()

    def _handle(self, run: _Run, child: _Child | None, message: Any) -> list[Result]:
        """What one message means; the results it carries that this run still waits for."""
        if child is None:  # the parent's own answer
            accepted = self._accept(run, None, message)
            return [] if accepted is None else [accepted]
        match message:
            case Results(rows):
                return [
                    r for r in (self._accept(run, child, unpack_result(row)) for row in rows) if r is not None
                ]
            case MetricsDelta(delta):
                self.metrics.merge_delta(delta, source=child.proc.pid)
            case Ready():
                self.ready_seconds.append(time.perf_counter() - self._started_at[child.proc.pid])
            case Trace(traces):
                if run.gate is not None:
                    run.gate.add_trace(traces)
            case Took():
                child.sent.popleft()  # its rows count as received from now on
            case Done():
                child.state = IDLE
            case Gone():
                if child.state is not LOST:
                    child.proc.wait()
                    self._child_lost(run, child)
        return []

    def _accept(self, run: _Run, child: _Child | None, result: Result) -> Result | None:
        pending = run.pending.get(result.index)
        if pending is None or (child is not None and pending.child is not child):
            return None  # an answer from a child already given up on: the request has its result
        del run.pending[result.index]
        if child is not None:
            child.outstanding.discard(result.index)
            self.answered[child.proc.pid] = self.answered.get(child.proc.pid, 0) + 1
        return restore_credentials(result, pending.raw)

    def _finish(self, run: _Run, wait: float = 10.0) -> bool:
        """Every result is in: tell each child, and take its last metrics (and trace). False if a child
        did not answer within ``wait`` seconds (the pool is then not kept)."""
        live = self._running()
        for child in live:
            self._send(child, End())
        deadline = time.monotonic() + wait
        while any(c.state is RUNNING for c in live):
            if (item := self._next_message(deadline)) is None:
                return False
            sender, message = item
            if sender is not None and isinstance(message, Gone):
                sender.state = LOST  # nothing of its is unanswered any more
            elif sender is not None:
                self._handle(run, sender, message)
        return True

    def _last_metrics(self, wait: float = 1.0) -> None:
        """Stopping early (fail-fast, Ctrl-C, a stream closed): ask each child for the metrics of what it
        ran since its last report, waiting at most ``wait`` seconds, so the stats cover those calls too."""
        live = [c for c in self._running() if self._send(c, Flush())]
        deadline = time.monotonic() + wait
        reported: set[int] = set()
        while live and len(reported) < len(live) and (item := self._next_message(deadline)) is not None:
            child, message = item
            if child is None:
                continue
            match message:
                case MetricsDelta(delta):
                    self.metrics.merge_delta(delta, source=child.proc.pid)
                    reported.add(child.proc.pid)
                case Gone():
                    reported.add(child.proc.pid)

    def _next_message(self, deadline: float) -> tuple[_Child | None, Any] | None:
        """The next (child, message) before ``deadline``, None if none came; the feeder's end is skipped
        (the run's loop has stopped reading the inbox)."""
        while True:
            try:
                item = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - queue.Empty of either backend
                return None
            if not isinstance(item, FeedEnd):
                return item  # type: ignore[no-any-return]  # the backend's queue is untyped

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
