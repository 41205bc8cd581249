"""Any AWS request, any protocol: the loopback server answers it with a valid, empty, final page.

``any_server(latency=0.05, services=["ec2", "iam", ...])`` starts a ``LoopbackServer`` whose handler is
:func:`handle`: every operation of the named services (default: every service botocore ships) gets a 200
answer in its own protocol's wire format, with each list of the output (the page's items) present and
empty and no pagination token, so botocore parses it and a paginator stops after one page. The breadth
benchmark (``scripts/bench_breadth.py``) and ``tests/test_loopback_any.py`` use it; latency, faults and
stats are the loopback server's own knobs, as with any handler.

Four answers are not empty pages: STS AssumeRole and GetCallerIdentity answer as the inventory's
loopback server does (``_inventory_pages.sts_answer``: a role's credentials carry its account, and
GetCallerIdentity names the account of the key that signed it, ``ACCOUNT`` for any other key), an
endpoint-discovery operation (Timestream's DescribeEndpoints, which its clients must call first) names
this server, and operations that no request can tell apart (the same
method, path and query keys in two services of one signing name, told apart in AWS by host alone) share
one answer holding both operations' lists.

A request that matches nothing is answered ``400 UnknownOperationException`` naming what was asked, in
the request's protocol. Every answer is rendered once, when the server starts (:func:`build`; about 3 s
for all ~430 services, well under a second for a few), so a request costs a dictionary look-up (REST: a
few regular expressions, then a look-up too): the server is never the bottleneck of a benchmark. The
table that finds a request's answer is ``_loopback_any_routes``'s; the answers, and what "empty" means
in each protocol, are ``_loopback_any_answers``'s.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from . import _loopback_faults as faults
from ._inventory_pages import sts_answer
from ._loopback_any_answers import Answer
from ._loopback_any_routes import Routes, _check_services, build

__all__ = ["any_server", "handle", "settings"]

_ENV = "GREENFETCH_LOOPBACK_ANY"


@contextlib.contextmanager
def any_server(latency: float = 0.0, services: Iterable[str] | None = None, **knobs: Any) -> Iterator[Any]:
    """A started ``LoopbackServer`` answering every operation of ``services`` (default: all) with an empty
    final page. ``knobs`` are the loopback server's (jitter, error_rate, ...)."""
    from ._loopback import LoopbackServer

    chosen = None
    if services is not None:
        chosen = sorted(set(services))
        _check_services(chosen)  # here, so a bad name is a ValueError now, not a child that fails to start
    server = LoopbackServer(
        handler=f"{__name__}:handle",
        latency=latency,
        startup_timeout=120.0,
        env={_ENV: json.dumps({"services": chosen, "scheme": "https" if knobs.get("tls") else "http"})},
        **knobs,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the handler ---------------------------------------------------------------------------------------

_state: dict[str, Any] = {}


def settings() -> dict[str, Any]:
    """This server's settings, from ``GREENFETCH_LOOPBACK_ANY`` (JSON) when the child starts: ``services``,
    a list of botocore service names, or null for all; ``scheme``, http or https (of discovered endpoints)."""
    if "settings" not in _state:
        _state["settings"] = {"services": None, "scheme": "http", **json.loads(os.environ.get(_ENV) or "{}")}
    return _state["settings"]  # type: ignore[no-any-return]  # _state holds values of several kinds


def routes() -> Routes:
    if "routes" not in _state:
        _state["routes"] = build(settings()["services"])
        _state["routes"].scheme = settings()["scheme"]
    return _state["routes"]  # type: ignore[no-any-return]  # _state holds values of several kinds


def handle(target: str, headers: dict[str, str], body: bytes) -> Answer:
    """The loopback handler hook: the empty answer of the operation this request calls."""
    sts = sts_answer(headers, body)
    if sts is not None:
        status, sts_headers, text = sts
        return status, sts_headers, text.encode() if isinstance(text, str) else text
    reply = routes().lookup(headers[":method"], headers[":path"], headers, body)
    if reply is not None:
        return reply
    protocol = faults.protocol_of(headers, body, "auto")
    if protocol == "rest-json" and "smithy-protocol" in headers:
        protocol = "json"  # (a CBOR client reads a JSON error's status and type well enough to fail clearly)
    rheaders, rbody = faults.error_body(
        protocol,
        "UnknownOperationException",
        f"no operation of the served services matches {headers[':method']} {target}; served: "
        f"{', '.join(routes().services[:5])}{'...' if len(routes().services) > 5 else ''}",
        "loopback-any",
    )
    return 400, rheaders, rbody


def warm() -> None:
    """Build the table now (the child calls this before it takes requests, so none pays for it)."""
    routes()
