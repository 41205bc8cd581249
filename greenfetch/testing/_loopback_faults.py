"""The loopback server's fault policy and AWS wire shapes: pure, tested without sockets.

``Faults`` decides the fate of each request from the knobs, a clock and a seeded RNG; ``error_body``
renders an AWS error in the protocol botocore expects. Standard library only, because the child process
(``_loopback_child.py``) imports this file as a plain sibling module, outside the greenfetch package.
"""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEFAULT_KNOBS",
    "PROTOCOLS",
    "Faults",
    "Stats",
    "TokenBucket",
    "check_knobs",
    "default_response",
    "error_body",
    "html_page",
    "protocol_of",
]

DEFAULT_KNOBS: dict[str, Any] = {
    "latency": 0.05,
    "jitter": 0.0,
    "error_rate": 0.0,
    "throttle_rate": 0.0,
    "drop_rate": 0.0,
    "http429_rate": 0.0,
    "html_rate": 0.0,
    "html_count": 0,
    "html_status": 500,
    "token_bucket": None,
    "knee": None,
    "plateau": None,
    "seed": None,
    "tables": [],
    "targets": {},
    "protocol": "auto",
}
_RATES = ("error_rate", "throttle_rate", "drop_rate", "http429_rate", "html_rate")
# Per protocol: (content type, throttling code and status, server-error code).
PROTOCOLS = {
    "json": ("application/x-amz-json-1.0", ("ThrottlingException", 400), "InternalServerError"),
    "rest-json": ("application/json", ("ThrottlingException", 429), "InternalServerException"),
    "query": ("text/xml", ("Throttling", 400), "InternalFailure"),
    "ec2": ("text/xml", ("RequestLimitExceeded", 503), "InternalError"),
    "rest-xml": ("application/xml", ("SlowDown", 503), "InternalError"),
}


def check_knobs(knobs: dict[str, Any]) -> dict[str, Any]:
    """Validated knobs; a ValueError names the bad one and what would be valid."""
    for name, value in knobs.items():
        if name not in DEFAULT_KNOBS:
            raise ValueError(f"unknown knob {name!r}; valid knobs: {', '.join(DEFAULT_KNOBS)}")
        if name in _RATES and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name}: {value!r} is not a fraction; use a number from 0.0 to 1.0")
        if name in ("latency", "jitter") and not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{name}: {value!r} is not a duration; use seconds >= 0 (e.g. 0.05)")
        if (
            name in ("token_bucket", "knee", "plateau")
            and value is not None
            and not (isinstance(value, (int, float)) and value > 0)
        ):
            raise ValueError(f"{name}: {value!r} is not allowed; use a number > 0, or None to turn it off")
        if name == "html_count" and not (
            isinstance(value, int) and not isinstance(value, bool) and value >= 0
        ):
            raise ValueError(f"html_count: {value!r} is not a count; use a whole number >= 0")
        if name == "html_status" and not (isinstance(value, int) and 400 <= value <= 599):
            raise ValueError(f"html_status: {value!r} is not an error status; use 400 to 599 (e.g. 500)")
        if name == "protocol" and value != "auto" and value not in PROTOCOLS:
            raise ValueError(f"protocol: {value!r} is unknown; use auto, {', '.join(PROTOCOLS)}")
    return knobs


class TokenBucket:
    """``rate`` requests per second with a burst of ``rate`` (one second's worth)."""

    def __init__(self, rate: float, clock: Callable[[], float]):
        self.rate, self.clock = float(rate), clock
        self.tokens, self.stamp = max(1.0, self.rate), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Faults:
    """Decides, per request, the delay and the outcome: ok, throttle, error, http429, html or drop."""

    def __init__(self, knobs: dict[str, Any] | None = None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.knobs = dict(DEFAULT_KNOBS)
        self.bucket: TokenBucket | None = None
        self.rng = random.Random()
        self.html_left = 0  # the next requests answered with the HTML page (the html_count knob)
        self.update(knobs or {})

    def update(self, knobs: dict[str, Any]) -> None:
        self.knobs.update(check_knobs(dict(knobs)))
        if "seed" in knobs:
            self.rng = random.Random(knobs["seed"])
        if "token_bucket" in knobs:
            rate = knobs["token_bucket"]
            self.bucket = TokenBucket(rate, self.clock) if rate else None
        if "html_count" in knobs:
            self.html_left = knobs["html_count"]

    def decide(self, target: str, inflight: int) -> tuple[float, str]:
        """(delay seconds, outcome) for a request that arrives with ``inflight`` in flight (itself included)."""
        knobs = self.knobs
        override = knobs["targets"].get(target)
        if override:
            knobs = {**knobs, **override}
        delay = knobs["latency"]
        if knobs["jitter"]:
            delay += self.rng.uniform(0.0, knobs["jitter"])
        knee = knobs["knee"]
        if knee and inflight > knee:
            delay *= (inflight / knee) ** 2
        plateau = knobs["plateau"]
        if plateau and inflight > plateau:  # throughput stays plateau/latency: more in flight only waits
            delay *= inflight / plateau
        if self.html_left > 0:
            self.html_left -= 1
            return delay, "html"
        if self.bucket is not None and not self.bucket.take():
            return delay, "throttle"
        roll = self.rng.random()
        for outcome, rate in (
            ("drop", knobs["drop_rate"]),
            ("throttle", knobs["throttle_rate"]),
            ("error", knobs["error_rate"]),
            ("http429", knobs["http429_rate"]),
            ("html", knobs["html_rate"]),
        ):
            if roll < rate:
                return delay, outcome
            roll -= rate
        return delay, "ok"


class Stats:
    """Counters the parent reads through ``GET /_stats``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = self.ok = self.throttled = self.errors = self.http429 = self.html = self.dropped = 0
        self.cancelled = self.inflight_max = self.connections = 0
        self.delay_min: float | None = None
        self.delay_max = 0.0
        self.per_target: dict[str, int] = {}
        self.inflight = getattr(self, "inflight", 0)

    def arrive(self, target: str) -> int:
        self.requests += 1
        self.inflight += 1
        self.inflight_max = max(self.inflight_max, self.inflight)
        self.per_target[target] = self.per_target.get(target, 0) + 1
        return self.inflight

    def delayed(self, delay: float) -> None:
        self.delay_max = max(self.delay_max, delay)
        self.delay_min = delay if self.delay_min is None else min(self.delay_min, delay)

    def snapshot(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        out.update(cpu_seconds=usage.ru_utime + usage.ru_stime, max_rss_kb=usage.ru_maxrss)
        return out


def protocol_of(headers: dict[str, str], body: bytes, knob: str) -> str:
    """The AWS protocol to answer errors in: the knob, else guessed from the request."""
    if knob != "auto":
        return knob
    if "x-amz-target" in headers:
        return "json"
    if body.startswith(b"Action=") or b"&Action=" in body:
        return "ec2" if b"Version=2016-11-15" in body else "query"
    return "rest-json"


def error_body(protocol: str, code: str, message: str, request_id: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of an AWS error in ``protocol``, as botocore's parsers expect it."""
    ctype = PROTOCOLS[protocol][0]
    if protocol == "json":
        kind = f"com.amazonaws.dynamodb.v20120810#{code}"
        return {"content-type": ctype}, json.dumps({"__type": kind, "message": message}).encode()
    if protocol == "rest-json":
        return ({"content-type": ctype, "x-amzn-errortype": code}, json.dumps({"message": message}).encode())
    if protocol == "query":
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    elif protocol == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    return {"content-type": ctype}, xml.encode()


def html_page(status: int) -> tuple[dict[str, str], bytes]:
    """Headers and body of a web server's own error page, in no AWS protocol: what moto's server (Flask
    and werkzeug) answers when it crashes, byte for byte but the status. botocore's parsers cannot read it."""
    phrase = _PHRASES.get(status, "Error")
    text = (
        f"<!doctype html>\n<html lang=en>\n<title>{status} {phrase}</title>\n<h1>{phrase}</h1>\n"
        "<p>The server encountered an internal error and was unable to complete your request. Either the "
        "server is overloaded or there is an error in the application.</p>\n"
    )
    return {"content-type": "text/html; charset=utf-8"}, text.encode()


_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def default_response(target: str, tables: list[str]) -> tuple[int, dict[str, str], bytes]:
    """DynamoDB JSON 1.0: ListTables lists the ``tables`` knob; any other target answers ``{}``."""
    payload = {"TableNames": list(tables)} if target.endswith(".ListTables") else {}
    return 200, {"content-type": "application/x-amz-json-1.0"}, json.dumps(payload).encode()
