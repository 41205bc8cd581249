"""A real AWS-shaped HTTP server on 127.0.0.1, in a child process, with injectable latency and faults.

``with LoopbackServer(latency=0.05) as url:`` starts it (under 2 s) and gives its endpoint URL; point
botocore (or greenfetch's ``endpoint_url``) at it. The child has its own interpreter, so its CPU does not
share the client's GIL, and it answers ~3,000 requests/s over hundreds of keep-alive connections.

Default protocol: DynamoDB JSON 1.0. ``X-Amz-Target: DynamoDB_20120810.ListTables`` answers
``{"TableNames": [...the tables knob...]}``; any other target answers ``{}``.

Knobs (constructor keywords, and at runtime ``server.control(**knobs)``, i.e. ``POST /_control``):

- ``latency`` seconds before each answer (0.05); ``jitter`` adds uniform(0, jitter) seconds.
- ``knee`` C: latency is flat up to C requests in flight, then ``latency * (inflight / C) ** 2``.
- ``plateau`` C: latency is flat up to C in flight, then ``latency * inflight / C`` (throughput plateaus).
- ``error_rate``, ``throttle_rate``, ``drop_rate``, ``http429_rate``: fractions of requests answered
  with a 5xx server error, a throttling error, a closed socket and no answer, or a bare HTTP 429 with
  no error code. Errors are AWS errors in the request's protocol (``protocol`` knob: ``auto`` guesses
  JSON from ``X-Amz-Target``, query/EC2 from an ``Action=`` body, else rest-json; or name one of
  ``json``, ``rest-json``, ``query``, ``ec2``, ``rest-xml``). JSON 1.0 throttling is HTTP 400
  ``{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}``;
  its server error is HTTP 500 ``InternalServerError``.
- ``html_rate`` (a fraction) and ``html_count`` N (the next N requests, counted down: a deterministic
  first failure) are answered with a web server's own error page, in no AWS protocol (the HTML page moto's
  server answers when it crashes), with status ``html_status`` (500; any of 400-599).
- ``token_bucket`` R: above R requests/s (burst R) answer throttling errors.
- ``targets``: per-target overrides, ``{"DynamoDB_20120810.DescribeTable": {"latency": 0, "error_rate": 1}}``.
  A target is the ``X-Amz-Target`` header, else the query ``Action``, else ``"METHOD /path"``.
- ``seed``: reproducible randomness (jitter and the rate rolls). ``tables``: what ListTables lists.

``server.stats()`` (``GET /_stats``): requests, ok, throttled, errors, http429, html, dropped, cancelled
(clients that hung up while waiting), connections (accepted, the control routes' own included), inflight, inflight_max, delay_min/delay_max (seconds actually
applied, knee included), per_target counts, and the child's cpu_seconds and max_rss_kb.
``server.reset_stats()`` (``POST /_reset``) zeroes them. These three paths are the only control routes;
every other path is served as an AWS request.

Handler hook, for realistic answers in other protocols:
``LoopbackServer(handler="package.module:function")`` imports ``function`` in the child and calls it
instead of the DynamoDB default, as ``function(target_or_path, headers, body) -> (status, headers, body)``:
``target_or_path`` is the ``X-Amz-Target`` header or else the request path with its query string;
``headers`` has lower-case names plus ``":method"`` and ``":path"``; ``body`` is bytes. Return body as
bytes or str; return status ``None`` to drop the connection without an answer. Latency, knee, token
bucket and the fault rates still apply around it (a fault replaces the handler's answer). The module is
imported from the parent's ``sys.path``; keep it light (importing greenfetch there patches the child).
If the handler's module defines ``warm()``, the child calls it before it takes requests (a handler that
precomputes its answers pays for that at start, not on the first request). ``env`` adds environment
variables to the child only (a handler's settings), leaving this process's environment as it was.
Ready-made handlers: ``greenfetch.testing.inventory_server`` (a small multi-account AWS) and
``greenfetch.testing.any_server`` (any operation of any protocol answered with an empty page).

HTTPS, opt-in: ``LoopbackServer(tls=throwaway_ca(dir))`` serves ``https://127.0.0.1:PORT`` with the
certificate the throwaway CA signed (the same answers, knobs and control routes); clients trust
``ca.ca`` as their bundle (botocore ``verify=ca.ca`` or ``AWS_CA_BUNDLE``). Each new connection pays a
TLS handshake, as against real AWS; the default stays plain HTTP.
"""

from __future__ import annotations

import json
import os
import select
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._child import ChildServer, server_environ
from ._loopback_faults import check_knobs
from ._tls import ThrowawayCA

__all__ = ["LoopbackServer"]

_CHILD = Path(__file__).with_name("_loopback_child.py")


class LoopbackServer(ChildServer):
    """The parent side: starts the child, reads its port, and talks to its control endpoint."""

    def __init__(
        self,
        *,
        handler: str | None = None,
        port: int = 0,
        startup_timeout: float = 10.0,
        tls: ThrowawayCA | None = None,
        env: Mapping[str, str] | None = None,
        **knobs: Any,
    ):
        self.knobs = check_knobs(dict(knobs))
        self.handler = handler
        self.env = dict(env or {})
        self.tls = tls
        self.port = port
        self.url = ""
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        config = {
            "knobs": self.knobs,
            "handler": self.handler,
            "port": self.port,
            "parent": os.getpid(),
            "tls": {"cert": self.tls.cert, "key": self.tls.key} if self.tls else None,
        }
        env = server_environ(
            dict(os.environ, **self.env, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        )
        self._proc = subprocess.Popen(
            [sys.executable, str(_CHILD), json.dumps(config)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        line = self._first_line()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"loopback server did not start: {line or 'no output'}")
        self.port = int(line)
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        return self.url

    def _first_line(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        poller = select.poll()  # not select(): a process with many files open has descriptors past 1023
        poller.register(self._proc.stdout, select.POLLIN)
        if not poller.poll(self._timeout * 1000):
            return f"no answer within {self._timeout}s"
        return self._proc.stdout.readline().decode(errors="replace").strip()

    def stats(self) -> dict[str, Any]:
        """The child's counters (see the module docstring)."""
        return self._call("GET", "/_stats")

    def control(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs while running; returns every knob in force. Bad knobs raise ValueError."""
        return self._call("POST", "/_control", check_knobs(dict(knobs)))

    def reset_stats(self) -> None:
        self._call("POST", "/_reset", {})

    def _call(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        if not self.url:
            raise RuntimeError("the loopback server is not running: use `with LoopbackServer() as url:`")
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        context = ssl.create_default_context(cafile=self.tls.ca) if self.tls else None
        with urllib.request.urlopen(req, timeout=10, context=context) as response:
            answer: dict[str, Any] = json.loads(response.read())  # the server answers a JSON object
            return answer
