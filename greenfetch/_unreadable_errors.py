"""An AWS error answer whose body is not the service's error format: ``unreadable_error`` says so in one
error (``HTTP<status>`` and a short message) before botocore parses it (``_clients``' ``before-parse``
handler applies it to every answer). What an error code means is ``_errors``' (``classify``).
"""

from __future__ import annotations

import http
import json
from xml.etree import ElementTree

from ._redact import redact

__all__ = ["UNREADABLE_EXCERPT", "unreadable_error"]

# The error format of each protocol botocore speaks: an AWS error answer is a JSON object, an XML
# document or a CBOR map. An error answer whose body is none of these came from something in front of
# the service or from a service that crashed (a proxy's or load balancer's page, a server's own HTML
# crash page): botocore recognizes only a 5xx body that starts with exactly ``<html>``, and otherwise
# its query, EC2 and CBOR parsers raise ResponseParserError before its retry handler sees the answer
# (never retried), its JSON parsers take the whole page for the message, and its REST-XML parser the
# status's reason phrase. ``unreadable_error`` is the rule the client applies to every error answer
# before botocore parses it (``_clients``), so each is one error that botocore's standard retry mode
# retries when its status is 500, 502, 503 or 504, like any other 5xx, and never when it is a 4xx.
_FORMATS = {
    "json": "JSON",
    "rest-json": "JSON",
    "query": "XML",
    "ec2": "XML",
    "rest-xml": "XML",
    "smithy-rpc-v2-cbor": "CBOR",
}
UNREADABLE_EXCERPT = 80  # characters of the body an unreadable error's message quotes, at most


def unreadable_error(
    protocol: str, status: int, body: bytes, content_type: str = ""
) -> tuple[str, str] | None:
    """(code, message) for an error answer (``status`` >= 400) whose ``body`` is not ``protocol``'s
    error format, else None (an empty body, a protocol this does not know, a body in the format).
    The code is ``HTTP<status>``; the message names the status, says the body was not the service's
    error format and quotes at most ``UNREADABLE_EXCERPT`` characters of it, secrets masked."""
    expected = _FORMATS.get(protocol)
    if status < 400 or expected is None or not body.strip() or _in_format(expected, body):
        return None
    try:
        reason = f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        reason = ""
    got = " ".join(content_type.split())[:60] or "no content type"
    return (
        f"HTTP{status}",
        f"HTTP {status}{reason}, and its body is not the service's error format ({expected} expected; "
        f"got {got}, {len(body)} bytes): {_excerpt(body)}",
    )


def _in_format(expected: str, body: bytes) -> bool:
    if expected == "JSON":
        try:
            return isinstance(json.loads(body), dict)
        except ValueError:  # UnicodeDecodeError included
            return False
    if expected == "XML":
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return False
        return root.tag.rpartition("}")[2].lower() != "html"  # an XHTML page parses, and is no AWS error
    return body[0] >> 5 == 5  # CBOR: major type 5, a map


def _excerpt(body: bytes) -> str:
    """The body's start on one line, secrets masked before it is cut (a cut could hide a key's name)."""
    text = redact(" ".join(body[: UNREADABLE_EXCERPT * 8].decode("utf-8", "replace").split()))
    return repr(text if len(text) <= UNREADABLE_EXCERPT else text[: UNREADABLE_EXCERPT - 3] + "...")
