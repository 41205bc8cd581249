"""What crosses the pipe to a worker process: the frames (``Channel``), the requests (credentials
sealed), and the results the parent makes up itself.

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
from typing import Any

from .._models import Request, RequestError, Result

__all__ = ["Channel", "SealedCredentials", "lost", "reads_only", "restore_credentials", "sealed", "unsendable"]

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


_READS = ("Describe", "List", "Get", "Search", "Head", "Query", "Scan", "BatchGet", "Lookup", "Select", "Check")


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
    from .._accounts import RefusedCredentials, RoleCredentials
    from .._clients import _credentials

    try:
        frozen = _credentials(value)  # live role credentials refresh here, in the parent, when due
    except RequestError as exc:
        if isinstance(value, RoleCredentials):  # its refresh failed: the child fails the request with that
            return RefusedCredentials(exc.code, str(exc))
        return f"<{type(value).__name__}>"  # the child raises the same clear InvalidCredentials error
    if frozen is None:
        return None
    return SealedCredentials(frozen.access_key, frozen.secret_key, frozen.token, getattr(frozen, "account_id", None))


def sealed(raw: Any) -> Any:
    if isinstance(raw, Request) and raw.credentials is not None:
        return replace(raw, credentials=_seal(raw.credentials))
    if isinstance(raw, Mapping) and raw.get("credentials") is not None:
        return {**raw, "credentials": _seal(raw["credentials"])}
    return raw


def restore_credentials(result: Result, raw: Any) -> Result:
    original = raw.credentials if isinstance(raw, Request) else (
        raw.get("credentials") if isinstance(raw, Mapping) else None)
    if original is not None and isinstance(result.request, Request):
        result.request = replace(result.request, credentials=original)
    return result


def reads_only(raw: Any) -> bool:
    operation = raw.operation if isinstance(raw, Request) else (
        raw.get("operation") if isinstance(raw, Mapping) else None)
    if not isinstance(operation, str):
        return True  # it cannot be built, so it cannot have changed anything
    name = operation[:1].upper() + operation[1:]
    name = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return name.startswith(_READS)


def _shown(raw: Any) -> Any:
    if isinstance(raw, Request):
        return replace(raw, credentials=None)
    if isinstance(raw, Mapping):
        return {k: v for k, v in raw.items() if k != "credentials"}
    return {"invalid": repr(raw)[:200]}


def _where(raw: Any) -> str:
    service = getattr(raw, "service", None) or (raw.get("service") if isinstance(raw, Mapping) else None)
    operation = getattr(raw, "operation", None) or (raw.get("operation") if isinstance(raw, Mapping) else None)
    return f"{service}.{operation}: " if service and operation else ""


def lost(index: int, raw: Any, reason: str) -> Result:
    return Result(index, _shown(raw), error=f"{_where(raw)}WorkerLost: {reason}", error_code="WorkerLost",
                  retryable=True, guidance="run the request again (its worker process died mid-run)")


def unsendable(index: int, raw: Any, exc: Exception) -> Result:
    return Result(index, _shown(raw), error=f"{_where(raw)}InvalidRequest: cannot be sent to a worker process "
                  f"({type(exc).__name__}: {str(exc)[:200]}); use processes=1 for requests with such values",
                  error_code="InvalidRequest")
