"""One worker process of ``processes=N``: ``python -m greenfetch._process_child FD``.

Started fresh by ``_processes`` (spawned, never forked), so ``import greenfetch`` (which runs before
this module, as its package) patches gevent before botocore, ssl or urllib3 load, and the child
inherits no threads, sockets, locks or clients from its parent. FD is this child's end of a private
socketpair; everything crosses it as length-prefixed pickle frames (pickle is fine here: both ends are
this program, over a pipe no one else holds; nothing is written to disk).

Frames, parent to child: ``("start", config)`` once; then per run ``("begin", options)``, ``("run",
[(index, request), ...])`` (``options["credits"]`` is how many calls this child may run at once; the
parent may queue as many again here, so the next call starts without a round trip) and ``("end",)``. Child to parent: ``("ready", seconds)`` once; per run ``("results", [result, ...])`` with
*global* indexes, ``("metrics", delta)`` about once a second and at the end, ``("trace", {scope:
points})`` for adaptive runs, and ``("done",)``. The child serves runs until its channel closes, so
an engine's pool (and each child's clients, adaptive limits and dedupe cache) outlives one call. Both sides batch: a frame carries whatever was ready while the
previous one was being sent, so a busy run costs one pickle and one syscall per batch, not per call. End of file from the parent (it stopped, failed fast, was interrupted or was
killed) ends the child at once: in-flight calls are abandoned with the process, so nothing outlives it.

The child runs its requests through its own ``Engine(config with processes=1)`` and
``engine.iter_results``: every rule of one process (retries, classification, dedupe, the adaptive
limiter of each scope it owns) holds unchanged inside it.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ._processes._wire import Channel

__all__ = ["main"]

METRICS_EVERY = 1.0


def main(fd: int) -> None:
    began = time.perf_counter()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the parent, which stops us
    import gevent
    import gevent.lock
    import gevent.queue

    from ._engine import Engine

    channel = Channel(socket.socket(fileno=fd))
    try:
        kind, config = channel.recv()
    except EOFError:
        return
    assert kind == "start"
    engine = Engine(config.replace(processes=1, backend="gevent"))
    lock = gevent.lock.Semaphore()

    def send(message: Any) -> None:
        try:
            with lock:
                channel.send(message)
        except OSError:  # the parent hung up: nothing left to do for it
            os._exit(0)

    inbox: gevent.queue.Queue[Any] = gevent.queue.Queue()
    gevent.spawn(_read_frames, channel, inbox, lambda: send(("metrics", engine.metrics.take_delta())))
    send(("ready", time.perf_counter() - began))
    while True:  # one run per begin ... end; the engine (clients, limits, dedupe cache) stays between runs
        begin = inbox.get()
        assert isinstance(begin, _Begin)
        _run(engine, begin.options, inbox, send)


class _Begin:
    __slots__ = ("options",)

    def __init__(self, options: dict[str, Any]):
        self.options = options


def _run(engine: Any, options: dict[str, Any], inbox: Any, send: Any) -> None:
    """One run: requests from the inbox until its end marker, results back in batches, then the run's
    adaptive trace, a metrics delta, and ``done``."""
    import gevent
    import gevent.event

    from ._models import Request

    gate = _gate(engine, options)
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
                send(("results", batch))
            if done.is_set() and not outbox:
                return

    shipper = gevent.spawn(ship)
    globals_: dict[int, int] = {}

    def requests() -> Iterator[Any]:
        local = 0
        while (item := inbox.get()) is not None:
            globals_[local] = item[0]
            local += 1
            yield item[1]

    for result in engine.iter_results(requests(), options["credits"], gate=gate,
                                      dedupe_window=options.get("dedupe_window")):
        result.index = globals_.pop(result.index)
        if isinstance(result.request, Request) and result.request.credentials is not None:
            result.request = replace(result.request, credentials=None)  # the parent puts its own back
        outbox.append(result)
        wake.set()
    done.set()
    wake.set()
    gevent.joinall([shipper, flusher])  # never killed mid-frame: they finish their last send and return
    if gate is not None:
        send(("trace", gate.trace()))
    send(("metrics", engine.metrics.take_delta()))
    send(("done",))


def _read_frames(channel: Channel, inbox: Any, flush: Any) -> None:
    """Requests into the inbox; ``end`` closes it; ``flush`` asks for the metrics now (the parent stops
    early and is about to hang up); end of file ends the process (the parent is gone)."""
    try:
        while True:
            frame = channel.recv()
            if frame[0] == "run":
                for item in frame[1]:
                    inbox.put(item)
            elif frame[0] == "end":
                inbox.put(None)
            elif frame[0] == "begin":
                inbox.put(_Begin(frame[1]))
            elif frame[0] == "flush":
                flush()
    except EOFError:
        os._exit(0)


def _flush_metrics(engine: Any, send: Any, done: Any) -> None:
    while not done.wait(METRICS_EVERY):
        send(("metrics", engine.metrics.take_delta()))


def _gate(engine: Any, options: dict[str, Any]) -> Any:
    """The adaptive gate of this process (its limiters see every call of the scopes it owns)."""
    settings = options.get("adaptive")
    return None if settings is None else engine.limits.open(settings, reset=options.get("reset", False))


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]))
    except (OSError, EOFError):  # the parent hung up (it stopped early, was interrupted or killed)
        os._exit(0)
