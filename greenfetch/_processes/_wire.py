"""What crosses the pipe to a worker process: the frames (``Channel``), the messages (one small typed
set, below), the requests (credentials sealed), and the results the parent makes up itself.

The messages. Parent to child: ``Start`` once (the child's Config); per run ``Begin`` (its credits and
the run's options), ``Requests`` (a batch of ``(global index, request)``), ``End`` (every request of
the run was sent), and ``Flush`` when the parent stops early (send the metrics now). Child to parent:
``Ready`` once; per run ``Results`` (with global indexes), ``MetricsDelta`` about once a second and at
the end, ``Trace`` for adaptive runs, and ``Done``. The parent's reader adds ``Gone`` when the
channel closes (the child exited or was killed). Both sides batch: a frame carries whatever was ready
while the previous one was being sent.

Credentials objects never cross as objects: they are frozen to an STS-style record whose repr shows
nothing, and the parent puts the caller's own object back on each result. A request whose worker died
is sent again only if it reads (``Describe*``, ``List*``, ``Get*``...): anything else may have run.
"""

from __future__ import annotations

import pickle
import socket
import struct
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from .._clients import frozen_credentials
from .._config import Config
from .._controller import Settings, TracePoint
from .._models import Request, RequestError, Result, failed_result

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
    "Trace",
    "lost",
    "reads_only",
    "restore_credentials",
    "sealed",
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
    """A batch of the run's requests: ``(global index, request)``, credentials sealed."""

    items: list[tuple[int, Any]]


class End(NamedTuple):
    """Every request of the run has been sent."""


class Flush(NamedTuple):
    """The parent stops early and is about to hang up: send the metrics now."""


# -- child to parent --------------------------------------------------------------------------------


class Ready(NamedTuple):
    """Once: the child's engine is built (seconds since it started)."""

    seconds: float


class Results(NamedTuple):
    """A batch of results, with global indexes (the parent also answers itself with one)."""

    results: list[Result]


class MetricsDelta(NamedTuple):
    """What the child's metrics counted since its last delta (``Metrics.take_delta``)."""

    delta: dict[str, Any]


class Trace(NamedTuple):
    """An adaptive run's windows, per scope the child owns."""

    traces: dict[str, list[TracePoint]]


class Done(NamedTuple):
    """The run is over in the child: its last results, trace and metrics are sent."""


class Gone(NamedTuple):
    """Never sent: the parent's reader reports that the channel closed (the child exited or was killed)."""


_HEADER = struct.Struct("!I")


class Channel:
    """Length-prefixed pickle frames over one stream socket (gevent-cooperative once patched)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buffer = bytearray()

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.sock.sendall(_HEADER.pack(len(data)) + data)

    def recv(self) -> Any:
        """The next frame; EOFError when the other end has gone (closed, exited or killed)."""
        size = _HEADER.unpack(self._read(_HEADER.size))[0]
        return pickle.loads(self._read(size))

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            try:
                chunk = self.sock.recv(max(65536, size - len(self._buffer)))
            except OSError:
                chunk = b""
            if not chunk:
                raise EOFError("the other end of the worker channel is gone")
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


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
        frozen.access_key, frozen.secret_key, frozen.token, getattr(frozen, "account_id", None)
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
