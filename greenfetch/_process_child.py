"""One worker process of ``processes=N``: ``python -m greenfetch._process_child FD``.

Started fresh by ``_processes`` (spawned, never forked), so ``import greenfetch`` (which runs before
this module, as its package) patches gevent before botocore, ssl or urllib3 load, and the child
inherits no threads, sockets, locks or clients from its parent. FD is this child's end of a private
socketpair; everything crosses it as length-prefixed pickle frames of ``_processes._wire``'s messages
(pickle is fine here: both ends are this program, over a pipe no one else holds; nothing is written
to disk).

``Start`` builds the child's own ``Engine`` (its Config with ``processes=1``); it answers ``Ready``.
Then one run per ``Begin``: ``Requests`` feed ``engine.iter_results`` (at most ``Begin.credits`` calls
in flight; the parent may queue as many again here, so the next call starts without a round trip)
until ``End``; results go back as ``Results`` rows (``_wire.pack_result``) with *global* indexes, metrics as ``MetricsDelta`` about
once a second, and at the run's end its ``Trace`` (adaptive runs), a last ``MetricsDelta`` and
``Done``. Every rule of one process (retries, classification, dedupe, the adaptive limiter of each
scope it owns) holds unchanged inside it. The child serves runs until its channel closes, so an
engine's pool (and each child's clients, adaptive limits and dedupe cache) outlives one call. End of
file from the parent (it stopped, failed fast, was interrupted or was killed) ends the child at once:
in-flight calls are abandoned with the process, so nothing outlives it.
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
    Trace,
    pack_result,
    unpack_request,
)

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["main"]

METRICS_EVERY = 1.0
Send = Callable[[Any], None]


def main(fd: int) -> None:
    began = time.perf_counter()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the parent, which stops us
    import gevent
    import gevent.lock
    import gevent.queue

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

    inbox: gevent.queue.Queue[Any] = gevent.queue.Queue()
    gevent.spawn(_read_frames, channel, inbox, lambda: send(MetricsDelta(engine.metrics.take_delta())))
    send(Ready(time.perf_counter() - began))
    while True:  # one run per Begin ... End; the engine (clients, limits, dedupe cache) stays between runs
        begin = inbox.get()
        assert isinstance(begin, Begin)
        _run(engine, begin, inbox, send)


def _run(engine: Engine, begin: Begin, inbox: Any, send: Send) -> None:
    """One run: requests from the inbox until its end marker (None), results back in batches, then the
    run's adaptive trace, a metrics delta, and ``Done``."""
    import gevent
    import gevent.event

    gate = None if begin.adaptive is None else engine.limits.open(begin.adaptive, reset=begin.reset)
    done = gevent.event.Event()
    flusher = gevent.spawn(_flush_metrics, engine, send, done)
    outbox: list[Any] = []
    wake = gevent.event.Event()

    def ship() -> None:
        """Results go back in batches: whatever completed while the last batch was being sent."""
        while True:
            wake.wait()
            wake.clear()
            if outbox:
                batch = outbox[:]
                outbox.clear()
                send(Results(batch))
            if done.is_set() and not outbox:
                return

    shipper = gevent.spawn(ship)
    global_index: dict[int, int] = {}  # this run's local index -> the parent's index

    def requests() -> Iterator[Any]:
        local = 0
        while (rows := inbox.get()) is not None:  # one Requests frame's rows at a time
            for row in rows:
                global_index[local] = row[0]
                local += 1
                yield unpack_request(row)

    for result in engine.iter_results(
        requests(), begin.credits, gate=gate, dedupe_window=begin.dedupe_window
    ):
        result.index = global_index.pop(result.index)
        outbox.append(pack_result(result))  # its credentials stay here: the parent puts its own back
        wake.set()
    done.set()
    wake.set()
    gevent.joinall([shipper, flusher])  # never killed mid-frame: they finish their last send and return
    if gate is not None:
        send(Trace(gate.trace()))
    send(MetricsDelta(engine.metrics.take_delta()))
    send(Done())


def _read_frames(channel: Channel, inbox: Any, flush: Callable[[], None]) -> None:
    """Each ``Requests`` frame's rows into the inbox as one item, then None at ``End``; a ``Begin`` goes
    in as it is; ``Flush`` sends the metrics now; end of file ends the process (the parent is gone)."""
    try:
        while True:
            match channel.recv():
                case Requests(rows):
                    inbox.put(rows)
                case End():
                    inbox.put(None)
                case Begin() as begin:
                    inbox.put(begin)
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
