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
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import gevent
import gevent.event
import gevent.lock
import gevent.queue

from . import _codec as codec
from ._codec import LabeledError, NuValue, Span
from ._context import END, EOF_GRACE_SECONDS, CallContext, InStream, Interrupted

__all__ = ["CallContext", "Interrupted", "Server"]

Handler = Callable[[CallContext, str, dict[str, Any], Any], Any]


class Server:
    """Serves one nu engine over a pair of binary streams until Goodbye or EOF.

    ``handler(ctx, name, call, input_header)`` returns None (nothing), a Nushell value (dict), or
    an iterator of Nushell values (sent as a list stream); it raises LabeledError for errors.
    """

    def __init__(
        self,
        rfile: BinaryIO,
        wfile: BinaryIO,
        handler: Handler,
        signatures: list[Any],
        metadata: dict[str, Any],
        version: str = codec.PROTOCOL_VERSION,
        log: Any = None,
        debug: bool = False,
    ):
        self.rfile, self.wfile = rfile, wfile
        self.handler, self.signatures, self.metadata, self.version = handler, signatures, metadata, version
        self.log = log or sys.stderr
        self.debug = debug
        self._out: gevent.queue.Queue[bytes | None] = gevent.queue.Queue()
        self._waiters: dict[int, gevent.event.AsyncResult] = {}
        self._in: dict[int, InStream] = {}  # routing: until nu ends the stream
        self._unclaimed: dict[int, InStream] = {}  # registered, not yet read by a call
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
        """Reads until EOF; whatever happens here ends in ``_done``, never in a dead reader that
        leaves Interrupt and Goodbye unread while calls run on."""
        try:
            while not self._broken:
                line = self.rfile.readline()
                if not line:
                    self._on_eof()
                    return
                if line.strip():
                    try:
                        message = codec.decode_message(line)
                    except codec.MessageTooDeep as exc:  # framed fine: drop it, keep serving
                        print(f"nu_plugin_greenfetch: {exc}", file=self.log, flush=True)
                        continue
                    self._dispatch_safely(message)
            self._done.set(0)
        except codec.ProtocolError as exc:  # not JSON: the connection cannot be trusted any more
            print(f"nu_plugin_greenfetch: {exc}", file=self.log, flush=True)
            self._done.set(2)
        except Exception as exc:  # noqa: BLE001 - one line and exit 2, never a reader that silently dies
            print(
                f"nu_plugin_greenfetch: reading from nu failed: {type(exc).__name__}: {exc}",
                file=self.log,
                flush=True,
            )
            self._done.set(2)

    def _dispatch_safely(self, message: Any) -> None:
        """One odd message (a shape this version does not know) is logged, never the end of the loop."""
        try:
            self._dispatch(message)
        except Exception as exc:  # noqa: BLE001 - the reader must survive to serve the other calls
            print(
                f"nu_plugin_greenfetch: could not handle {str(message)[:200]}: {type(exc).__name__}: "
                f"{str(exc)[:200]}",
                file=self.log,
                flush=True,
            )
            if self.debug:  # the traceback only when asked (GREENFETCH_NU_DEBUG=1)
                traceback.print_exc(file=self.log)

    def _dispatch(self, message: Any) -> None:
        kind = codec.kind_of(message)
        if kind == "Hello":
            if not self._on_hello(message["Hello"]):
                self._done.set(1)
        elif kind == "Goodbye":  # finish in-flight calls (their engine calls still get answers)
            self.note(f"Goodbye: finishing {len(self._calls)} call(s), then exiting")
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
        print(
            f"nu_plugin_greenfetch: this plugin speaks the Nushell plugin protocol of nu {self.version} "
            f"(any {'.'.join(self.version.split('.')[:2])}.x), but this nu is {self.engine_version}. "
            f"Install the greenfetch release built for your nu, or run a nu "
            f"{'.'.join(self.version.split('.')[:2])}.x.",
            file=self.log,
            flush=True,
        )
        return False

    def _on_eof(self) -> None:
        """nu closed our input (it exited, usually): engine calls can no longer be answered, so they
        fail; calls that need nothing from nu get a short grace to finish, then are stopped."""
        for waiter in self._waiters.values():
            waiter.set_exception(LabeledError("nu closed the plugin's input"))
        for stream in self._in.values():
            stream.items.put(END)
        calls = list(self._calls.values())
        self.note(f"end of input: finishing {len(calls)} call(s), then exiting")
        gevent.joinall(calls, timeout=EOF_GRACE_SECONDS)
        gevent.killall(calls, timeout=5)
        self._done.set(0)

    def _on_unknown(self, body: Any) -> None:
        print(
            f"nu_plugin_greenfetch: ignoring an unknown message: {str(body)[:200]}", file=self.log, flush=True
        )

    # -- routing ------------------------------------------------------------------------------

    def _on_call(self, body: list[Any]) -> None:
        call_id, call = body
        try:
            if call == "Metadata":
                self.send(codec.call_response(call_id, {"Metadata": self.metadata}))
            elif call == "Signature":
                self.send(codec.call_response(call_id, {"Signature": self.signatures}))
            elif isinstance(call, dict) and "Run" in call:
                self._start_run(call_id, call["Run"])
            elif isinstance(call, dict) and "GetCompletion" in call:
                self.send(codec.call_response(call_id, {"CompletionItems": None}))
            else:
                raise LabeledError(f"nu_plugin_greenfetch does not support the call {str(call)[:80]}")
        except Exception as exc:  # noqa: BLE001 - every call gets an answer, or nu waits forever
            error = (
                exc
                if isinstance(exc, LabeledError)
                else LabeledError(
                    f"nu_plugin_greenfetch could not read this call: {type(exc).__name__}: {exc}"
                )
            )
            self.send(codec.error_response(call_id, error))

    def _start_run(self, call_id: int, run: dict[str, Any]) -> None:
        ctx = CallContext(self, call_id, run["call"]["head"])
        ctx.inputs = self._register_streams(run.get("input"))  # before any Data can arrive
        self._contexts[call_id] = ctx
        self._calls[call_id] = gevent.spawn(self._run, ctx, run)

    def _register_streams(self, header: Any) -> list[InStream]:
        if not isinstance(header, dict):
            return []
        for kind in ("ListStream", "ByteStream"):
            if kind in header:
                stream = InStream(header[kind]["id"])
                self._in[stream.id] = self._unclaimed[stream.id] = stream
                return [stream]
        return []

    def claim_stream(self, stream_id: int) -> InStream:
        """The stream registered for this id; it may have ended already (its END is queued)."""
        stream = self._unclaimed.pop(stream_id, None) or self._in.get(stream_id)
        if stream is None:  # unknown or claimed before and ended: nothing more will come
            stream = InStream(stream_id)
            stream.dropped = True
            stream.items.put(END)
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
            stream.items.put(END)

    def _on_ack(self, stream_id: int) -> None:
        pass  # nu does not make producers wait; Drop is what matters

    def _on_drop(self, stream_id: int) -> None:
        if stream_id in self._out_dropped:
            self._out_dropped[stream_id] = True

    def _on_signal(self, signal: str) -> None:
        if signal == "Interrupt":
            contexts = list(self._contexts.values())
            for ctx in contexts:
                ctx.interrupt()
            self.note(f"Signal Interrupt: cancelling {len(contexts)} running call(s)")

    def note(self, text: str) -> None:
        """Protocol events on stderr, when asked (GREENFETCH_NU_DEBUG=1): stdout is the protocol's."""
        if self.debug:
            print(f"nu_plugin_greenfetch: {text}", file=self.log, flush=True)

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
        return LabeledError(
            f"{name} failed inside the plugin: {type(exc).__name__}: {exc}",
            [("here", ctx.head)],
            help="this is a bug in nu_plugin_greenfetch; the traceback is on stderr",
            code="nu_plugin_greenfetch::internal",
        )


def _interrupted(head: Span) -> LabeledError:
    return LabeledError(
        "Interrupted: the batch was cancelled (Ctrl-C)",
        [("cancelled here", head)],
        code="nu_plugin_greenfetch::interrupted",
    )
