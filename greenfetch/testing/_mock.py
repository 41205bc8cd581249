"""A Caller that answers from a function: the engine's rules, tested with no network.

As httpx's ``MockTransport(handler)``: ``Engine(caller=MockCaller(handler))`` runs every rule of the
engine (order, fail-fast, attempts, error mapping, dedupe, adaptive gating, metrics) while
``handler(request)`` plays AWS: it returns the response dict, or raises what botocore would
(``botocore.exceptions.ClientError``, ``ReadTimeoutError``, ...). ``client_error`` builds the former.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from .._caller import Caller
from .._models import Request

__all__ = ["MockCaller", "client_error"]


class MockCaller(Caller):
    """``handler(request) -> response dict`` (or raises); ``calls`` lists the requests it was given."""

    def __init__(self, handler: Callable[[Request], Mapping[str, Any]]):
        self.handler = handler
        self.calls: list[Request] = []
        self._lock = threading.Lock()

    def call(self, request: Request, client: Any = None) -> Mapping[str, Any]:
        with self._lock:
            self.calls.append(request)
        return dict(self.handler(request))


def client_error(
    code: str, message: str = "", *, status: int = 400, operation: str = "Call", request_id: str | None = None
) -> ClientError:
    """The ClientError botocore raises for an AWS error response with this code and HTTP status."""
    meta: dict[str, Any] = {"HTTPStatusCode": status}
    if request_id:
        meta["RequestId"] = request_id
    return ClientError(
        {"Error": {"Code": code, "Message": message or code}, "ResponseMetadata": meta}, operation
    )
