"""The plugin's stdio loop on gevent: one reader, one writer, one greenlet per call.

Why this shape (protocol notes §13): nu may send a new Call while a call of ours waits for an
engine-call response (a closure that calls the plugin back, ``par-each``), and responses arrive out
of order. So nothing ever waits inside the reader: it routes engine-call responses to per-id
waiters, stream data to per-stream queues, and starts a greenlet per Call. All output goes through
one writer greenlet fed by a queue, so killing a greenlet (Ctrl-C, ``| first 3``) can never leave
half a message on the wire.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import gevent
import gevent.event
import gevent.lock
import gevent.queue

from . import _codec as codec
from ._codec import LabeledError, NuValue, Span

__all__ = ["CallContext", "Interrupted", "Server"]

_END = object()


class Interrupted(Exception):
    """nu relayed Ctrl-C (Signal Interrupt): running batches stop."""


class _InStream:
    """A stream nu sends us (Run input or an engine-call response); acked as it is consumed."""

    def __init__(self, stream_id: int):
        self.id = stream_id
        self.items: gevent.queue.Queue[Any] = gevent.queue.Queue()
        self.dropped = False
        self.consumed = False


class CallContext:
    """What a command sees of the protocol: its head span, engine calls, its input, cancellation."""

    def __init__(self, server: Server, call_id: int, head: Span):
        self.server = server
        self.call_id = call_id
        self.head = head
        self._pumps: set[gevent.Greenlet] = set()
        self.inputs: list[_InStream] = []

    # -- engine calls -------------------------------------------------------------------------

    def engine_call(self, call: Any) -> Any:
        """Send an engine call in this call's context and wait for its response body."""
        return self.server.engine_call(self.call_id, call)

    def eval_closure(self, closure: codec.Closure, positional: Iterable[NuValue] = (),
                     input_value: NuValue | None = None) -> NuValue:
        """Run a Nushell closure through the engine; its value, streams collected into a list."""
        header = {"Value": [input_value, None]} if input_value is not None else "Empty"
        response = self.engine_call({"EvalClosure": {
            "closure": closure.spanned(), "positional": list(positional), "input": header,
            "redirect_stdout": True, "redirect_stderr": False}})
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
            return header["Value"][0]  # type: ignore[no-any-return]
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
        """Items of a list stream (values) or byte stream (Raw results), acked one by one."""
        kind = "ListStream" if "ListStream" in header else "ByteStream"
        stream = self.server.in_stream(header[kind]["id"])
        stream.consumed = True
        try:
            while True:
                item = stream.items.get()
                if item is _END:
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
            self.server._unclaimed.pop(stream.id, None)
            if not stream.consumed and not stream.dropped:
                stream.dropped = True
                self.server.send({"Drop": stream.id})

    # -- cancellation -------------------------------------------------------------------------

    def interruptible(self, iterable: Iterable[Any]) -> Iterator[Any]:
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

    def interrupt(self) -> None:
        for helper in list(self._pumps):
            helper.kill(Interrupted("interrupted (Ctrl-C)"), block=False)


Handler = Callable[[CallContext, str, dict[str, Any], Any], Any]


class Server:
    """Serves one nu engine over a pair of binary streams until Goodbye or EOF.

    ``handler(ctx, name, call, input_header)`` returns None (nothing), a Nushell value (dict), or
    an iterator of Nushell values (sent as a list stream); it raises LabeledError for errors.
    """

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO, handler: Handler, signatures: list[Any],
                 metadata: dict[str, Any], version: str = codec.PROTOCOL_VERSION, log: Any = None):
        self.rfile, self.wfile = rfile, wfile
        self.handler, self.signatures, self.metadata, self.version = handler, signatures, metadata, version
        self.log = log or sys.stderr
        self._out: gevent.queue.Queue[bytes | None] = gevent.queue.Queue()
        self._waiters: dict[int, gevent.event.AsyncResult] = {}
        self._in: dict[int, _InStream] = {}  # routing: until nu ends the stream
        self._unclaimed: dict[int, _InStream] = {}  # registered, not yet read by a call
        self._out_dropped: dict[int, bool] = {}
        self._calls: dict[int, gevent.Greenlet] = {}
        self._contexts: dict[int, CallContext] = {}
        self._engine_ids = itertools.count()
        self._stream_ids = itertools.count()
        self._closing = False
        self._broken = False
        self.engine_version: str | None = None
        self._done: gevent.event.AsyncResult = gevent.event.AsyncResult()

    # -- output -------------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        """Queue one message for the writer (never blocks, never switches mid-message)."""
        self._out.put(codec.encode_message(message))

    def _writer(self) -> None:
        while True:
            data = self._out.get()
            if data is None:
                return
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, OSError):  # nu went away: nothing left to talk to
                self._broken = True
                return

    # -- main loop ----------------------------------------------------------------------------

    def serve(self) -> int:
        """Run until Goodbye (after in-flight calls finish) or EOF; the exit status."""
        self.wfile.write(codec.ENCODING_PREAMBLE)
        writer = gevent.spawn(self._writer)
        self.send(codec.hello(self.version))
        reader = gevent.spawn(self._read_loop)
        status = self._done.get()
        reader.kill()
        self._out.put(None)
        writer.join(timeout=5)
        return int(status)

    def _read_loop(self) -> None:
        try:
            while not self._broken:
                line = self.rfile.readline()
                if not line:
                    self._on_eof()
                    return
                if line.strip():
                    self._dispatch(codec.decode_message(line))
            self._done.set(0)
        except codec.ProtocolError as exc:
            print(f"nu_plugin_greenfetch: {exc}", file=self.log, flush=True)
            self._done.set(2)

    def _dispatch(self, message: Any) -> None:
        kind = codec.kind_of(message)
        if kind == "Hello":
            if not self._on_hello(message["Hello"]):
                self._done.set(1)
        elif kind == "Goodbye":  # finish in-flight calls (their engine calls still get answers)
            self._closing = True
            gevent.spawn(self._finish)
        else:
            getattr(self, f"_on_{kind.lower()}", self._on_unknown)(message[kind])

    def _finish(self) -> None:
        gevent.joinall(list(self._calls.values()))
        self._done.set(0)

    def _on_hello(self, theirs: dict[str, Any]) -> bool:
        self.engine_version = str(theirs.get("version"))
        if theirs.get("protocol") == "nu-plugin" and codec.is_compatible(self.version, self.engine_version):
            return True
        print(f"nu_plugin_greenfetch: this plugin speaks the Nushell plugin protocol of nu {self.version} "
              f"(any {'.'.join(self.version.split('.')[:2])}.x), but this nu is {self.engine_version}. "
              f"Install the greenfetch release built for your nu, or run a nu "
              f"{'.'.join(self.version.split('.')[:2])}.x.", file=self.log, flush=True)
        return False

    def _on_eof(self) -> None:
        """nu exited (no Goodbye): nobody is left to answer, so stop everything now."""
        for waiter in self._waiters.values():
            waiter.set_exception(LabeledError("nu closed the plugin's input"))
        for stream in self._in.values():
            stream.items.put(_END)
        gevent.killall(list(self._calls.values()), timeout=5)
        self._done.set(0)

    def _on_unknown(self, body: Any) -> None:
        print(f"nu_plugin_greenfetch: ignoring an unknown message: {str(body)[:200]}", file=self.log, flush=True)

    # -- routing ------------------------------------------------------------------------------

    def _on_call(self, body: list[Any]) -> None:
        call_id, call = body
        if call == "Metadata":
            self.send(codec.call_response(call_id, {"Metadata": self.metadata}))
        elif call == "Signature":
            self.send(codec.call_response(call_id, {"Signature": self.signatures}))
        elif isinstance(call, dict) and "Run" in call:
            self._start_run(call_id, call["Run"])
        elif isinstance(call, dict) and "GetCompletion" in call:
            self.send(codec.call_response(call_id, {"CompletionItems": None}))
        else:
            error = LabeledError(f"nu_plugin_greenfetch does not support the call {codec.kind_of(call)}")
            self.send(codec.error_response(call_id, error))

    def _start_run(self, call_id: int, run: dict[str, Any]) -> None:
        ctx = CallContext(self, call_id, run["call"]["head"])
        ctx.inputs = self._register_streams(run.get("input"))  # before any Data can arrive
        self._contexts[call_id] = ctx
        self._calls[call_id] = gevent.spawn(self._run, ctx, run)

    def _register_streams(self, header: Any) -> list[_InStream]:
        if not isinstance(header, dict):
            return []
        for kind in ("ListStream", "ByteStream"):
            if kind in header:
                stream = _InStream(header[kind]["id"])
                self._in[stream.id] = self._unclaimed[stream.id] = stream
                return [stream]
        return []

    def in_stream(self, stream_id: int) -> _InStream:
        """The stream object registered for this id (it may have ended already: its END is queued)."""
        stream = self._unclaimed.pop(stream_id, None) or self._in.get(stream_id)
        if stream is None:
            raise LabeledError(f"nu_plugin_greenfetch: unknown input stream {stream_id}")
        return stream

    def _on_enginecallresponse(self, body: list[Any]) -> None:
        engine_id, response = body
        if isinstance(response, dict) and "PipelineData" in response:
            self._register_streams(response["PipelineData"])
        waiter = self._waiters.pop(engine_id, None)
        if waiter is not None:
            waiter.set(response)

    def _on_data(self, body: list[Any]) -> None:
        stream_id, data = body
        stream = self._in.get(stream_id)
        if stream is None or stream.dropped:
            self.send({"Ack": stream_id})
        else:
            stream.items.put(data)

    def _on_end(self, stream_id: int) -> None:
        stream = self._in.pop(stream_id, None)
        if stream is not None:
            stream.items.put(_END)

    def _on_ack(self, stream_id: int) -> None:
        pass  # nu does not make producers wait; Drop is what matters

    def _on_drop(self, stream_id: int) -> None:
        if stream_id in self._out_dropped:
            self._out_dropped[stream_id] = True

    def _on_signal(self, signal: str) -> None:
        if signal == "Interrupt":
            for ctx in list(self._contexts.values()):
                ctx.interrupt()

    # -- engine calls -------------------------------------------------------------------------

    def engine_call(self, context: int, call: Any) -> Any:
        engine_id = next(self._engine_ids)
        waiter = self._waiters[engine_id] = gevent.event.AsyncResult()
        self.send(codec.engine_call(context, engine_id, call))
        return waiter.get()

    # -- one call -----------------------------------------------------------------------------

    def _run(self, ctx: CallContext, run: dict[str, Any]) -> None:
        call_id = ctx.call_id
        try:
            try:
                reply = self.handler(ctx, run["name"], run["call"], run.get("input", "Empty"))
            except LabeledError as exc:
                self.send(codec.error_response(call_id, exc))
                return
            except Interrupted:
                self.send(codec.error_response(call_id, _interrupted(ctx.head)))
                return
            except Exception as exc:  # noqa: BLE001 - every call gets an answer
                self.send(codec.error_response(call_id, self._internal(ctx, run["name"], exc)))
                return
            if reply is None:
                self.send(codec.call_response(call_id, {"PipelineData": "Empty"}))
            elif isinstance(reply, dict):
                self.send(codec.call_response(call_id, codec.pipeline_value(reply)))
            else:
                self._stream_out(ctx, run["name"], reply)
        finally:
            ctx.close_inputs()
            self._contexts.pop(call_id, None)
            self._calls.pop(call_id, None)

    def _stream_out(self, ctx: CallContext, name: str, items: Iterator[NuValue]) -> None:
        stream_id = next(self._stream_ids)
        self._out_dropped[stream_id] = False
        self.send(codec.call_response(ctx.call_id, codec.list_stream_header(stream_id, ctx.head)))
        try:
            for item in items:
                if self._out_dropped.get(stream_id):
                    break  # the consumer stopped (e.g. `| first 3`): stop the work too
                self.send({"Data": [stream_id, {"List": item}]})
        except LabeledError as exc:
            self._send_error_item(stream_id, exc, ctx.head)
        except Interrupted:
            self._send_error_item(stream_id, _interrupted(ctx.head), ctx.head)
        except Exception as exc:  # noqa: BLE001 - the stream still ends properly
            self._send_error_item(stream_id, self._internal(ctx, name, exc), ctx.head)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self.send({"End": stream_id})
            self._out_dropped.pop(stream_id, None)

    def _send_error_item(self, stream_id: int, error: LabeledError, span: Span) -> None:
        self.send({"Data": [stream_id, {"List": {"Error": {"error": error.to_wire(), "span": span}}}]})

    def _internal(self, ctx: CallContext, name: str, exc: Exception) -> LabeledError:
        traceback.print_exception(exc, file=self.log)
        return LabeledError(f"{name} failed inside the plugin: {type(exc).__name__}: {exc}",
                            [("here", ctx.head)], help="this is a bug in nu_plugin_greenfetch; "
                            "the traceback is on stderr", code="nu_plugin_greenfetch::internal")


def _interrupted(head: Span) -> LabeledError:
    return LabeledError("Interrupted: the batch was cancelled (Ctrl-C)", [("cancelled here", head)],
                        code="nu_plugin_greenfetch::interrupted")
