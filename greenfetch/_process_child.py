"""One worker process of ``processes=N``: ``python -m greenfetch._process_child FD``.

Started fresh by ``_processes`` (a new interpreter: gevent's ``Popen`` forks and at once execs it, so
nothing of the patched parent runs here), so ``import greenfetch`` (which runs before this module, as
its package) patches gevent before botocore, ssl or urllib3 load, and the child inherits no threads,
sockets, locks or clients from its parent. FD is this child's end of a private
socketpair; everything crosses it as length-prefixed pickle frames of ``_processes._wire``'s messages
(pickle is fine here: both ends are this program, over a pipe no one else holds; nothing is written
to disk).

``Start`` builds the child's own ``Engine`` (its Config with ``processes=1``); it answers ``Ready``.
Then one run per ``Begin``: ``Requests`` (each acknowledged with ``Took`` before its rows are queued,
so the parent knows a frame a dead child never took never ran) feed ``engine.iter_results`` (at most ``Begin.credits`` calls
in flight; the parent may queue as many again here, so the next call starts without a round trip)
until ``End``; results go back as ``Results`` rows (``_wire.pack_result``) with *global* indexes, a
frame of them held a few milliseconds while the child has work queued (``_Outbox``), metrics as
``MetricsDelta`` about once a second, and at the run's end its ``Trace`` (adaptive runs), a last
``MetricsDelta`` and ``Done``. Every rule of one process (retries, classification, dedupe, the
adaptive limiter of each scope it owns) holds unchanged inside it. The child serves runs until its
channel closes, so an engine's pool (and each child's clients, adaptive limits and dedupe cache)
outlives one call. End of file from the parent (it stopped, failed fast, was interrupted or was
killed) ends the child at once: in-flight calls are abandoned with the process, so nothing outlives
it.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._processes._wire import (
    Begin,
    Channel,
    Done,
    End,
    Flush,
    MetricsDelta,
    Ready,
    Requests,
    Results,
    Start,
    Took,
    Trace,
    pack_result,
    unpack_request,
)

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["main"]

METRICS_EVERY = 1.0
HOLD_MAX = 0.010  # seconds a result may wait for others to share its frame (see _Outbox)
HOLD_SHARE = 0.25  # ... and at most this share of its own call's duration
Send = Callable[[Any], None]


def main(fd: int) -> None:
    began = time.perf_counter()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the parent, which stops us
    import gevent
    import gevent.lock

    from ._engine import Engine

    channel = Channel(socket.socket(fileno=fd))
    try:
        start = channel.recv()
    except EOFError:
        return
    if not isinstance(start, Start):
        raise SystemExit(f"greenfetch._process_child: expected Start first, got {type(start).__name__}")
    engine = Engine(start.config.replace(processes=1, backend="gevent"))
    lock = gevent.lock.Semaphore()

    def send(message: Any) -> None:
        try:
            with lock:
                channel.send(message)
        except OSError:  # the parent hung up: nothing left to do for it
            os._exit(0)

    inbox = _Inbox()
    gevent.spawn(
        _read_frames,
        channel,
        inbox,
        lambda: send(MetricsDelta(engine.metrics.take_delta())),
        lambda: send(Took()),
    )
    send(Ready(time.perf_counter() - began))
    while True:  # one run per Begin ... End; the engine (clients, limits, dedupe cache) stays between runs
        begin = inbox.items.get()
        assert isinstance(begin, Begin)
        _run(engine, begin, inbox, send)


class _Inbox:
    """What the parent sent, in order: each ``Requests`` frame's rows (one item), None at ``End``, a
    ``Begin``; and how many request rows it holds that the engine has not taken yet (``waiting``)."""

    def __init__(self) -> None:
        import gevent.queue

        self.items: gevent.queue.Queue[Any] = gevent.queue.Queue()
        self.waiting = 0


class _Outbox:
    """The run's results on their way back, and when they go.

    Each frame costs both processes a system call, a wake-up and a switch, whatever it carries, so a
    result may wait a little for others to share its frame: at most ``HOLD_MAX``, and at most
    ``HOLD_SHARE`` of its own call's duration, and only when about two more results are due in that
    time (so not at a low concurrency, where the wait would only add a timer's wake-up). It goes at
    once when holding it could cost a call: the requests queued here ran out (the parent refills only
    when results reach it; a pinned run queues none, so every result goes at once, as a batch of
    whatever completed together), it failed (a fail-fast run stops on it), ``credits`` results are
    waiting, or the run is over. While requests are queued here the child keeps calling, so the wait
    costs no call."""

    def __init__(self, send: Send, inbox: _Inbox, credits: int):
        import gevent.event

        self.send, self.inbox, self.full = send, inbox, max(1, credits)
        self.rows: list[tuple[Any, ...]] = []
        self.due = 0.0  # when the oldest waiting result must go
        self.now = False  # a waiting result must go at once
        self.over = False  # the run is over: send what is left and stop
        self.wake = gevent.event.Event()  # the first result, a reason to go at once, or the run's end

    def add(self, row: tuple[Any, ...], result: Any) -> None:
        rows = self.rows
        if not rows:
            took = result.duration_ms / 1000
            hold = min(HOLD_MAX, took * HOLD_SHARE)
            self.due = time.monotonic() + hold
            # worth holding only if about two more results are due meanwhile: the child's calls (as
            # many as its credits while requests are queued here), each ending once per `took`
            self.now = self.full * hold < 2 * took
            self.wake.set()
        rows.append(row)
        if result.error is not None or self.inbox.waiting <= 0 or len(rows) >= self.full:
            self.now = True
            self.wake.set()

    def dry(self) -> None:
        """The requests queued here ran out: what waits goes now, so the parent refills."""
        if self.rows:
            self.now = True
            self.wake.set()

    def close(self) -> None:
        self.over = True
        self.wake.set()

    def ship(self) -> None:
        """The run's sender (a greenlet): waits for a result, holds it as long as it may, sends them all."""
        wake = self.wake
        while True:
            wake.wait()
            wake.clear()
            while self.rows and not (self.now or self.over):
                left = self.due - time.monotonic()
                if left <= 0:
                    break
                wake.wait(left)
                wake.clear()
            if self.rows:
                batch, self.rows, self.now = self.rows, [], False
                self.send(Results(batch))
            if self.over and not self.rows:
                return


def _run(engine: Engine, begin: Begin, inbox: _Inbox, send: Send) -> None:
    """One run: requests from the inbox until its end marker (None), results back in batches, then the
    run's adaptive trace, a metrics delta, and ``Done``."""
    import gevent
    import gevent.event

    gate = None if begin.adaptive is None else engine.limits.open(begin.adaptive, reset=begin.reset)
    done = gevent.event.Event()
    flusher = gevent.spawn(_flush_metrics, engine, send, done)
    outbox = _Outbox(send, inbox, begin.credits)
    shipper = gevent.spawn(outbox.ship)
    global_index: dict[int, int] = {}  # this run's local index -> the parent's index

    def requests() -> Iterator[Any]:
        local = 0
        while (rows := inbox.items.get()) is not None:  # one Requests frame's rows at a time
            for row in rows:
                global_index[local] = row[0]
                local += 1
                inbox.waiting -= 1
                if inbox.waiting <= 0:
                    outbox.dry()
                yield unpack_request(row)

    for result in engine.iter_results(
        requests(), begin.credits, gate=gate, dedupe_window=begin.dedupe_window
    ):
        result.index = global_index.pop(result.index)
        outbox.add(pack_result(result), result)  # its credentials stay here: the parent puts its own back
    done.set()
    outbox.close()
    gevent.joinall([shipper, flusher])  # never killed mid-frame: they finish their last send and return
    if gate is not None:
        send(Trace(gate.trace()))
    send(MetricsDelta(engine.metrics.take_delta()))
    send(Done())


def _read_frames(
    channel: Channel, inbox: _Inbox, flush: Callable[[], None], took: Callable[[], None]
) -> None:
    """Each ``Requests`` frame's rows into the inbox as one item, once ``took`` has told the parent (so
    it knows a frame its dead child never acknowledged never ran), then None at ``End``; a ``Begin``
    goes in as it is; ``Flush`` sends the metrics now; end of file ends the process (the parent is gone)."""
    try:
        while True:
            match channel.recv():
                case Requests(rows):
                    took()
                    inbox.waiting += len(rows)
                    inbox.items.put(rows)
                case End():
                    inbox.items.put(None)
                case Begin() as begin:
                    inbox.items.put(begin)
                case Flush():
                    flush()
    except EOFError:
        os._exit(0)


def _flush_metrics(engine: Engine, send: Send, done: Any) -> None:
    while not done.wait(METRICS_EVERY):
        send(MetricsDelta(engine.metrics.take_delta()))


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]))
    except (OSError, EOFError):  # the parent hung up (it stopped early, was interrupted or killed)
        os._exit(0)
