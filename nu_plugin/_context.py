"""What a command sees of the protocol: one call's context (engine calls, input streams, Ctrl-C).

The Server routes messages here; a command only ever talks to its CallContext.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Protocol

import gevent
import gevent.lock
import gevent.queue

from . import _codec as codec
from ._codec import LabeledError, NuValue, Span

__all__ = ["END", "EOF_GRACE_SECONDS", "CallContext", "InStream", "Interrupted"]

END = object()
EOF_GRACE_SECONDS = 5.0


class Interrupted(BaseException):
    """nu relayed Ctrl-C (Signal Interrupt): running batches stop.

    A BaseException, as KeyboardInterrupt is: raised inside a blocking call (resolving accounts, reading
    the regions), an Exception would be taken for that call's connection error and retried."""


class InStream:
    """A stream nu sends us (Run input or an engine-call response); acked as it is consumed."""

    def __init__(self, stream_id: int):
        self.id = stream_id
        self.items: gevent.queue.Queue[Any] = gevent.queue.Queue()
        self.dropped = False
        self.consumed = False


class Link(Protocol):
    """What a call needs of the server: send a message, make an engine call, take an input stream.
    (The Server implements it; a test can stand in for it. The context never imports the server.)"""

    def send(self, message: Any) -> None: ...
    def engine_call(self, call_id: int, call: Any) -> Any: ...
    def claim_stream(self, stream_id: int) -> InStream: ...


class CallContext:
    """What a command sees of the protocol: its head span, engine calls, its input, cancellation."""

    def __init__(self, server: Link, call_id: int, head: Span):
        self.server = server
        self.call_id = call_id
        self.head = head
        self._pumps: set[gevent.Greenlet] = set()
        self.inputs: list[InStream] = []

    # -- engine calls -------------------------------------------------------------------------

    def engine_call(self, call: Any) -> Any:
        """Send an engine call in this call's context and wait for its response body."""
        return self.server.engine_call(self.call_id, call)

    def eval_closure(
        self, closure: codec.Closure, positional: Iterable[NuValue] = (), input_value: NuValue | None = None
    ) -> NuValue:
        """Run a Nushell closure through the engine; its value, streams collected into a list."""
        header = {"Value": [input_value, None]} if input_value is not None else "Empty"
        response = self.engine_call(
            {
                "EvalClosure": {
                    "closure": closure.spanned(),
                    "positional": list(positional),
                    "input": header,
                    "redirect_stdout": True,
                    "redirect_stderr": False,
                }
            }
        )
        if "Error" in response:
            raise LabeledError.from_wire(response["Error"])
        return self.collect(response.get("PipelineData", "Empty"), closure.span)

    def get_env_var(self, name: str) -> NuValue | None:
        response = self.engine_call({"GetEnvVar": name})
        header = response.get("PipelineData", "Empty") if isinstance(response, dict) else "Empty"
        return header["Value"][0] if isinstance(header, dict) and "Value" in header else None

    # -- pipeline data ------------------------------------------------------------------------

    def collect(self, header: Any, span: Span) -> NuValue:
        """Any PipelineData as one value: list streams become lists, byte streams text or binary."""
        if header == "Empty" or header is None:
            return {"Nothing": {"span": span}}
        if "Value" in header:
            value: NuValue = header["Value"][0]
            return value
        if "ListStream" in header:
            return {"List": {"vals": list(self.stream_items(header)), "span": span}}
        chunks = bytearray()
        for item in self.stream_items(header):
            raw = item.get("Ok", item) if isinstance(item, dict) else item
            if isinstance(item, dict) and "Err" in item:
                raise LabeledError.from_wire(item["Err"])
            chunks.extend(raw if isinstance(raw, list) else [])
        return codec.to_value(bytes(chunks), span)

    def stream_items(self, header: Any) -> Iterator[Any]:
        """Items of a list stream (values) or byte stream (Raw results), acked one by one as read.

        The stream is claimed now, not at the first ``next()``: whoever asked for it owns it."""
        kind = "ListStream" if "ListStream" in header else "ByteStream"
        stream = self.server.claim_stream(header[kind]["id"])
        stream.consumed = True
        return self._items(stream)

    def _items(self, stream: InStream) -> Iterator[Any]:
        try:
            while True:
                item = stream.items.get()
                if item is END:
                    return
                self.server.send({"Ack": stream.id})
                yield item.get("List", item.get("Raw")) if isinstance(item, dict) else item
        finally:
            if not stream.dropped:  # dropped early, it stays routed (late Data is acked) until End
                stream.dropped = True
                self.server.send({"Drop": stream.id})

    def close_inputs(self) -> None:
        """Drop the input streams the command did not read, so nu stops sending them."""
        for stream in self.inputs:
            self.server.claim_stream(stream.id)  # so it does not linger unclaimed
            if not stream.consumed and not stream.dropped:
                stream.dropped = True
                self.server.send({"Drop": stream.id})

    # -- cancellation -------------------------------------------------------------------------

    def interruptible(self, iterable: Iterable[Any]) -> Generator[Any, None, None]:
        """Iterate ``iterable`` in a helper greenlet that Signal Interrupt can kill.

        Killing the helper closes the iterator where it waits (e.g. greenfetch.iter_results, whose
        ``finally`` cancels queued and in-flight requests); this generator then raises Interrupted.
        Backpressure: at most two items wait between the helper and the consumer.
        """
        items: gevent.queue.Queue[Any] = gevent.queue.Queue()
        room = gevent.lock.Semaphore(2)

        def pump() -> None:
            it = iter(iterable)
            try:
                for item in it:
                    items.put(("item", item))
                    room.acquire()
                items.put(("end", None))
            except gevent.GreenletExit:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                items.put(("error", exc))
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    close()

        helper = gevent.spawn(pump)
        self._pumps.add(helper)
        try:
            while True:
                tag, item = items.get()
                if tag == "end":
                    return
                if tag == "error":
                    raise item
                room.release()
                yield item
        finally:
            self._pumps.discard(helper)
            helper.kill()

    def interruptible_call(self, work: Callable[[], Any]) -> Any:
        """``work()``'s value (or its error), where Signal Interrupt stops it with Interrupted."""

        def once() -> Iterator[Any]:
            yield work()

        steps = self.interruptible(once())
        try:
            return next(steps)
        finally:
            steps.close()

    def interrupt(self) -> None:
        for helper in list(self._pumps):
            helper.kill(Interrupted("interrupted (Ctrl-C)"), block=False)
