"""The table of ``any_server`` (``_loopback_any``): every operation's answer, keyed the way a request
names its operation (``Routes``), built from botocore's service models (``build``).

How a request is recognised, from botocore's service models:

- JSON 1.0/1.1: the ``X-Amz-Target`` header (``{targetPrefix}.{Operation}``);
- query and EC2: the ``Action`` and ``Version`` form fields of the body;
- Smithy RPC v2 CBOR: the path ``/service/{targetPrefix}/operation/{Operation}``;
- REST-JSON and REST-XML: the method and path (and literal query keys such as S3's ``?list-type=2``)
  against each operation's ``requestUri``; the SigV4 credential scope's service narrows the candidates
  (elb and elbv2 share a signing name, so query routes key on the API version instead).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .._kept import kept
from ._loopback_any_answers import Answer, _identity, render

__all__ = ["Routes", "build"]

_SIGNING = re.compile(r"Credential=[^/,]*/\d{8}/(?:[^/,]+/)?([^/,]+)/aws4_request")
# Signing names an endpoint rule set picks instead of the model's (S3's directory buckets sign as
# s3express): the service whose routes they mean.
_SIGNING_ALIASES = {"s3express": "s3", "s3-outposts": "s3", "s3-object-lambda": "s3"}
_LABEL = re.compile(r"\{([^}]+?)(\+?)\}")
_SEEN_MAX = 65536  # REST answers remembered by exact path; cleared when full


@dataclass
class _RestRoute:
    service: str
    operation: str
    pattern: re.Pattern[str]
    query_keys: frozenset[str]
    rank: tuple[int, int]  # (literal query keys, literal path characters): the most specific wins
    reply: Answer


@dataclass
class Routes:
    """Every answer, keyed the way requests name their operation (see the module docstring)."""

    services: list[str] = field(default_factory=list)
    complete: bool = False  # every service botocore ships is served
    # X-Amz-Target -> (signing name, operation, answer) of each service that has this target
    json: dict[str, list[tuple[str, str, Answer]]] = field(default_factory=dict)
    query: dict[tuple[str, str], Answer] = field(default_factory=dict)  # (Action, Version) -> reply
    cbor: dict[str, Answer] = field(default_factory=dict)  # path -> reply
    # (signing name, or "" for every service's; method; first path segment, or "*") -> routes
    rest: dict[tuple[str, str, str], list[_RestRoute]] = field(default_factory=dict)
    discovery: set[str] = field(default_factory=set)  # targets of endpoint-discovery operations
    scheme: str = "http"  # how discovered endpoints are addressed
    operations: int = 0
    seen: dict[tuple[str, str, str], Answer | None] = field(default_factory=dict)

    def lookup(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        """The answer for one request, or None when no operation of these services matches it."""
        target = headers.get("x-amz-target")
        signing = _signing_name(headers)
        if target is not None:
            found = self.json.get(target)
            if not found:
                return None
            if target in self.discovery:
                return self._discovered(headers)
            return next((reply for sig, _, reply in found if sig == signing), found[0][2])
        if "smithy-protocol" in headers:
            return self.cbor.get(path.partition("?")[0])
        if body.startswith(b"Action=") or b"&Action=" in body:
            action, version = _form_fields(body)
            return self.query.get((action, version))
        return self._rest(signing, method, path)

    def _discovered(self, headers: dict[str, str]) -> Answer:
        """Endpoint discovery (Timestream's clients must ask before any call) finds this server."""
        endpoint = {
            "Address": f"{self.scheme}://{headers.get('host', '127.0.0.1')}",
            "CachePeriodInMinutes": 1440,
        }
        return (
            200,
            {"content-type": "application/x-amz-json-1.0"},
            json.dumps({"Endpoints": [endpoint]}).encode(),
        )

    def _rest(self, signing: str, method: str, path: str) -> Answer | None:
        key = (signing, method, path)
        if key in self.seen:
            return self.seen[key]
        bare, _, query = path.partition("?")
        keys = {pair.partition("=")[0] for pair in query.split("&") if pair} if query else set()
        seg0 = bare[1:].partition("/")[0]
        reply = None
        # The signing name's own routes first; then every service's, when every service is served (so a
        # signing name the models do not say, such as one an endpoint rule set picks, still finds its
        # operation) or the request is unsigned. Never with a subset served: GET /restapis (API Gateway)
        # would be S3's ListObjects of a bucket called "restapis".
        scopes = (signing, "") if self.complete or not signing else (signing,)
        for scope in scopes:
            best: _RestRoute | None = None
            for bucket in ((scope, method, seg0), (scope, method, "*")):
                for route in self.rest.get(bucket, ()):
                    if (
                        (best is None or route.rank > best.rank)
                        and route.query_keys <= keys
                        and route.pattern.fullmatch(bare)
                    ):
                        best = route
            if best is not None:
                reply = best.reply
                break
        return kept(self.seen, key, reply, _SEEN_MAX)


def build(services: Iterable[str] | None = None) -> Routes:
    """Render every operation's empty answer for ``services`` (default: every service botocore ships).
    An unknown service name raises ValueError naming it and the valid names."""
    import botocore.loaders
    import botocore.model

    loader = botocore.loaders.create_loader()
    wanted = loader.list_available_services("service-2") if services is None else _check_services(services)
    routes = Routes(services=sorted(wanted), complete=services is None)
    for name in routes.services:
        model = botocore.model.ServiceModel(loader.load_service_model(name, "service-2"), service_name=name)
        _add_service(routes, model)
    return routes


def _check_services(services: Iterable[str]) -> list[str]:
    import botocore.loaders

    wanted = list(services)
    available = botocore.loaders.create_loader().list_available_services("service-2")
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        from .._errors import suggest

        near = list(dict.fromkeys(match for name in unknown for match in suggest(name, available, n=3)))
        raise ValueError(
            f"unknown service(s) {unknown}: use botocore's service names (ec2, iam, s3, ...)"
            + (f"; did you mean {', '.join(near)}?" if near else "")
        )
    return wanted


def _add_service(routes: Routes, model: Any) -> None:
    protocol = (
        getattr(model, "resolved_protocol", None) or model.protocol
    )  # botocore 1.36 has no resolved_protocol
    signing = model.signing_name or model.endpoint_prefix
    for op_name in model.operation_names:
        op = model.operation_model(op_name)
        identity = (model.service_name, op_name) == ("sts", "GetCallerIdentity")
        reply = _identity(protocol, op) if identity else render(protocol, op)
        routes.operations += 1
        if protocol == "json":
            if op.is_endpoint_discovery_operation:
                routes.discovery.add(f"{model.metadata['targetPrefix']}.{op_name}")
            routes.json.setdefault(f"{model.metadata['targetPrefix']}.{op_name}", []).append(
                (signing, op_name, reply)
            )
        elif protocol in ("query", "ec2"):
            key = (op_name, model.api_version)  # rds, docdb and neptune share their API version
            routes.query[key] = _union(routes.query[key], reply) if key in routes.query else reply
        elif protocol == "smithy-rpc-v2-cbor":
            routes.cbor[f"/service/{model.metadata['targetPrefix']}/operation/{op_name}"] = reply
        else:
            route = _rest_route(model.service_name, op, reply)
            first = op.http["requestUri"].partition("?")[0][1:].partition("/")[0]
            seg0 = "*" if "{" in first else first  # the first path segment when it is literal
            for scope in (signing, ""):
                _add_rest(routes.rest.setdefault((scope, op.http["method"], seg0), []), route)


def _add_rest(bucket: list[_RestRoute], route: _RestRoute) -> None:
    """Add a route; one that no request can tell from a route already there (the same method, path and
    query keys: lex-models' StartImport and lexv2-models' ListImports are both ``POST /imports/``, told
    apart in AWS by their host alone) shares one answer, the union of both answers' lists, so each
    operation's own parser finds its lists in it (parsers skip members they do not know)."""
    for i, twin in enumerate(bucket):
        if twin.pattern.pattern == route.pattern.pattern and twin.query_keys == route.query_keys:
            bucket[i] = dataclasses.replace(twin, reply=_union(twin.reply, route.reply))
            return
    bucket.append(route)


def _union(a: Answer, b: Answer) -> Answer:
    if not b[2] or a[2] == b[2]:
        return a
    if not a[2]:
        return b
    if a[2][:1] == b"{" and b[2][:1] == b"{":
        return a[0], a[1], json.dumps({**json.loads(b[2]), **json.loads(a[2])}).encode()
    if a[2][:1] == b"<" and b[2][:1] == b"<":
        from xml.etree import ElementTree

        root, other = ElementTree.fromstring(a[2]), ElementTree.fromstring(b[2])
        have = {child.tag for child in root}
        root.extend(child for child in other if child.tag not in have)
        return a[0], a[1], ElementTree.tostring(root)
    return a


def _rest_route(service: str, op: Any, reply: Answer) -> _RestRoute:
    """A route from ``requestUri``: labels become ``[^/]+`` (greedy ``{Key+}``: ``.+``); the query keys a
    request must carry are the URI's literal ones and the input's required query-string members."""
    uri = op.http["requestUri"]
    path, _, query = uri.partition("?")
    parts, literal, last = [], 0, 0
    for label in _LABEL.finditer(path):
        parts.append(re.escape(path[last : label.start()]))
        literal += label.start() - last
        parts.append(".+" if label.group(2) else "[^/]+")
        last = label.end()
    parts.append(re.escape(path[last:]))
    literal += len(path) - last
    keys = {pair.partition("=")[0] for pair in query.split("&") if pair}
    shape = op.input_shape
    if shape is not None:
        keys.update(
            shape.members[name].serialization.get("name", name)
            for name in shape.required_members
            if shape.members[name].serialization.get("location") == "querystring"
        )
    return _RestRoute(
        service, op.name, re.compile("".join(parts)), frozenset(keys), (len(keys), literal), reply
    )


def _signing_name(headers: dict[str, str]) -> str:
    match = _SIGNING.search(headers.get("authorization", ""))
    return _SIGNING_ALIASES.get(match[1], match[1]) if match else ""


def _form_fields(body: bytes) -> tuple[str, str]:
    action = version = ""
    for pair in body.split(b"&"):
        if pair.startswith(b"Action="):
            action = pair[7:].decode("latin-1")
        elif pair.startswith(b"Version="):
            version = pair[8:].decode("latin-1")
    return action, version
