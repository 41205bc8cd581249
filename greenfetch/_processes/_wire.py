"""What crosses the pipe to a worker process: the frames (``Channel``), the messages (one small typed
set, below), the requests (credentials sealed) and results as flat rows, and the results the parent
makes up itself.

The messages. Parent to child: ``Start`` once (the child's Config); per run ``Begin`` (its credits and
the run's options), ``Requests`` (a batch of requests as rows, each with its global index), ``End``
(every request of the run was sent), and ``Flush`` when the parent stops early (send the metrics now).
Child to parent: ``Ready`` once; per run ``Results`` (rows, with global indexes), ``MetricsDelta``
about once a second and at the end, ``Trace`` for adaptive runs, and ``Done``. The parent's reader
adds ``Gone`` when the channel closes (the child exited or was killed). Both sides batch: a frame
carries whatever was ready while the previous one was being sent (and a child's results may wait a
few milliseconds for company: ``_process_child._Outbox``).

Requests and results cross as rows (``pack_request`` / ``unpack_request``, ``pack_result`` /
``unpack_result``): a ``Request`` or ``Result`` becomes one flat tuple of its fields, so pickle writes
plain values instead of walking each dataclass (its reduce, a state dict per object, and the same
again to load): about half the instructions per result on each side. Whatever is not exactly a
``Request`` or ``Result`` (a record as given, a subclass) crosses as it is. The same types and values
come out on the other side.

Credentials objects never cross as objects: they are frozen to an STS-style record whose repr shows
nothing, and the parent puts the caller's own object back on each result. A request whose worker died
is sent again only if it reads (``Describe*``, ``List*``, ``Get*``...): anything else may have run.
"""

from __future__ import annotations

import operator
import pickle
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, replace
from typing import Any, NamedTuple, TypeAlias

from .._clients import account_of_credentials, frozen_credentials
from .._config import Config
from .._controller import Settings, TracePoint
from .._models import REQUEST_FIELDS, Request, RequestError, Result, failed_result

__all__ = [
    "Begin",
    "Channel",
    "Done",
    "End",
    "Flush",
    "Gone",
    "MetricsDelta",
    "Ready",
    "Requests",
    "Results",
    "SealedCredentials",
    "Start",
    "Took",
    "Trace",
    "lost",
    "pack_request",
    "pack_result",
    "reads_only",
    "restore_credentials",
    "sealed",
    "unpack_request",
    "unpack_result",
    "unsendable",
]


# -- parent to child --------------------------------------------------------------------------------


class Start(NamedTuple):
    """The first frame: the child builds its engine from this Config (``processes=1``)."""

    config: Config


class Begin(NamedTuple):
    """A run begins: how many calls this child may have in flight (the parent may queue as many again
    in it, so the next call starts without a round trip), and the run's options."""

    credits: int
    dedupe_window: float | None = None
    adaptive: Settings | None = None  # an adaptive run: the child opens its own gate with these settings
    reset: bool = False  # ... after forgetting what its limiters learned


class Requests(NamedTuple):
    """A batch of the run's requests, each a ``pack_request`` row (its global index first)."""

    items: list[tuple[Any, ...]]


class End(NamedTuple):
    """Every request of the run has been sent."""


class Flush(NamedTuple):
    """The parent stops early and is about to hang up: send the metrics now."""


# -- child to parent --------------------------------------------------------------------------------


class Ready(NamedTuple):
    """Once: the child's engine is built (seconds since it started)."""

    seconds: float


class Results(NamedTuple):
    """A batch of results, each a ``pack_result`` row, with global indexes."""

    rows: list[tuple[Any, ...]]


class MetricsDelta(NamedTuple):
    """What the child's metrics counted since its last delta (``Metrics.take_delta``)."""

    delta: dict[str, Any]


class Trace(NamedTuple):
    """An adaptive run's windows, per scope the child owns."""

    traces: dict[str, list[TracePoint]]


class Done(NamedTuple):
    """The run is over in the child: its last results, trace and metrics are sent."""


class Took(NamedTuple):
    """The child has read the next ``Requests`` frame; sent before it queues the frame's rows, so none of
    them had started before. Rows of a frame a dead child never acknowledged never ran."""


class Gone(NamedTuple):
    """Never sent: the parent's reader reports that the channel closed (the child exited or was killed)."""


_HEADER = struct.Struct("!I")


class Channel:
    """Length-prefixed pickle frames over one stream socket (gevent-cooperative once patched). A
    message crosses as a plain tuple, its type's number and its fields, so pickle neither writes nor
    looks up (imports) its class on each frame."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buffer = bytearray()

    def send(self, message: Any) -> None:
        data = pickle.dumps((_NUMBER[type(message)], *message), protocol=pickle.HIGHEST_PROTOCOL)
        frame = _HEADER.pack(len(data)) + data
        sent = self.sock.send(frame)  # whole, nearly always: a third of gevent's sendall in instructions
        if sent < len(frame):
            self.sock.sendall(memoryview(frame)[sent:])

    def recv(self) -> Any:
        """The next message; EOFError when the other end has gone (closed, exited or killed)."""
        buffer = self._buffer
        self._fill(_HEADER.size)
        end = _HEADER.size + _HEADER.unpack_from(buffer)[0]
        self._fill(end)
        with memoryview(buffer) as view, view[_HEADER.size : end] as frame:
            fields = pickle.loads(frame)
        del buffer[:end]
        return _new_tuple(_MESSAGES[fields[0]], fields[1:])

    def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            try:
                chunk = self.sock.recv(max(65536, size - len(self._buffer)))
            except OSError:
                chunk = b""
            if not chunk:
                raise EOFError("the other end of the worker channel is gone")
            self._buffer += chunk

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


_MESSAGES = (Start, Begin, Requests, End, Flush, Ready, Results, MetricsDelta, Trace, Done, Took)
_NUMBER = {kind: number for number, kind in enumerate(_MESSAGES)}
_new_tuple = tuple.__new__


# -- requests and results as rows ------------------------------------------------------------------

# A row lists a Request's fields as a request record names them (REQUEST_FIELDS), in Request's order;
# credentials never cross (checked at import, and the round-trip tests check every field).
_RESULT_FIELDS = tuple(f.name for f in fields(Result))
if (*REQUEST_FIELDS, "credentials") != tuple(f.name for f in fields(Request)) or _RESULT_FIELDS[:2] != (
    "index",
    "request",
):
    raise ImportError("greenfetch._processes._wire: the rows no longer match Request's or Result's fields")
# an itemgetter of several keys gives a tuple (typeshed says Any)
_Values: TypeAlias = Callable[[dict[str, Any]], tuple[Any, ...]]
_request_values: _Values = operator.itemgetter(*REQUEST_FIELDS)
_result_values: _Values = operator.itemgetter(*_RESULT_FIELDS)
_after_request: _Values = operator.itemgetter(*_RESULT_FIELDS[2:])
_REQUEST_KEYS = len(REQUEST_FIELDS) + 1  # a plain Request's attributes: its fields and its credentials
_REQUEST_ROW = 2 + len(REQUEST_FIELDS)  # (index, credentials, *fields)
_RESULT_ROW = len(_RESULT_FIELDS)  # the fields, the request among them
_new = object.__new__


def _request(values: tuple[Any, ...], credentials: Any) -> Request:
    """A Request from its fields' values, as ``Request._evolve`` makes one (no per-field call)."""
    request = _new(Request)
    own = request.__dict__
    (
        own["service"],
        own["operation"],
        own["params"],
        own["region"],
        own["account"],
        own["role"],
        own["profile"],
        own["endpoint_url"],
        own["paginate"],
        own["id"],
    ) = values
    own["credentials"] = credentials
    return request


def pack_request(index: int, raw: Any) -> tuple[Any, ...]:
    """What the parent sends for one request: ``(index, raw)``, or for a ``Request``
    ``(index, credentials, *its fields)``; credentials are sealed here (see ``sealed``)."""
    if type(raw) is Request and len(own := raw.__dict__) == _REQUEST_KEYS:
        credentials = own["credentials"]
        return (index, None if credentials is None else _seal(credentials)) + _request_values(own)
    return index, sealed(raw)  # a record as given, a subclass, anything else: as it is


def unpack_request(row: tuple[Any, ...]) -> Any:
    """The request ``pack_request`` packed (its index is ``row[0]``)."""
    if len(row) == _REQUEST_ROW:
        return _request(row[2:], row[1])
    return row[1]


def pack_result(result: Result) -> tuple[Any, ...]:
    """What a child sends for one result: its fields in order, and when its request is a ``Request``,
    that place left empty and the request's fields after them (its credentials stay behind: the parent
    puts the caller's own back). A subclass, or an object given more attributes, crosses whole, as
    ``(result,)``."""
    values = result.__dict__
    request = values.get("request")
    if type(result) is not Result or len(values) != _RESULT_ROW:
        return (result,)
    if type(request) is Request and len(own := request.__dict__) == _REQUEST_KEYS:
        return (values["index"], None) + _after_request(values) + _request_values(own)
    if isinstance(request, Request) and request.credentials is not None:
        values = {**values, "request": replace(request, credentials=None)}
    return _result_values(values)


def unpack_result(row: tuple[Any, ...]) -> Result:
    """The result ``pack_result`` packed: the same type and field values."""
    size = len(row)
    if size == _RESULT_ROW:
        return Result(*row)
    if size == 1:
        crossed: Result = row[0]  # a Result subclass, sent as it is
        return crossed
    result = Result(*row[:_RESULT_ROW])
    result.request = _request(row[_RESULT_ROW:], None)
    return result


_READS = (
    "Describe",
    "List",
    "Get",
    "Search",
    "Head",
    "Query",
    "Scan",
    "BatchGet",
    "Lookup",
    "Select",
    "Check",
)


class SealedCredentials(Mapping[str, Any]):
    """Frozen credentials as an STS record (what ``_clients`` accepts); its repr shows no secret. The
    account they were assumed for goes too, so the child's guard refuses them for any other account."""

    def __init__(self, access_key: str, secret_key: str, token: str | None, account_id: str | None = None):
        self._data = {"AccessKeyId": access_key, "SecretAccessKey": secret_key, "SessionToken": token}
        if account_id:
            self._data["AccountId"] = account_id

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return "<credentials (hidden)>"


def _seal(value: Any) -> Any:
    from .._signing import RefusedCredentials, RoleCredentials

    try:
        frozen = frozen_credentials(value)  # live role credentials refresh here, in the parent, when due
    except RequestError as exc:
        if isinstance(value, RoleCredentials):  # its refresh failed: the child fails the request with that
            return RefusedCredentials(exc.code, str(exc))
        return f"<{type(value).__name__}>"  # the child raises the same clear InvalidCredentials error
    if frozen is None:
        return None
    return SealedCredentials(
        frozen.access_key, frozen.secret_key, frozen.token, account_of_credentials(value)
    )


def sealed(raw: Any) -> Any:
    if isinstance(raw, Request) and raw.credentials is not None:
        return replace(raw, credentials=_seal(raw.credentials))
    if isinstance(raw, Mapping) and raw.get("credentials") is not None:
        return {**raw, "credentials": _seal(raw["credentials"])}
    return raw


def restore_credentials(result: Result, raw: Any) -> Result:
    original = (
        raw.credentials
        if isinstance(raw, Request)
        else (raw.get("credentials") if isinstance(raw, Mapping) else None)
    )
    if original is not None and isinstance(result.request, Request):
        result.request = replace(result.request, credentials=original)
    return result


def reads_only(raw: Any) -> bool:
    operation = (
        raw.operation
        if isinstance(raw, Request)
        else (raw.get("operation") if isinstance(raw, Mapping) else None)
    )
    if not isinstance(operation, str):
        return True  # it cannot be built, so it cannot have changed anything
    name = operation[:1].upper() + operation[1:]
    name = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return name.startswith(_READS)


def lost(index: int, raw: Any, reason: str) -> Result:
    return failed_result(
        index,
        raw,
        "WorkerLost",
        reason,
        retryable=True,
        guidance="run the request again (its worker process died mid-run)",
    )


def unsendable(index: int, raw: Any, exc: Exception) -> Result:
    return failed_result(
        index,
        raw,
        "InvalidRequest",
        f"cannot be sent to a worker process ({type(exc).__name__}: "
        f"{str(exc)[:200]}); use processes=1 for requests with such values",
    )
