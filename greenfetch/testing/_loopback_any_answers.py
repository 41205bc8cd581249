"""The answers of ``any_server`` (``_loopback_any``): each operation's valid, empty, final page in its
own protocol's wire format (``render``), and STS GetCallerIdentity naming ``ACCOUNT``.

What "empty" means per protocol: JSON, REST-JSON and CBOR send every list member of the output as ``[]``
(REST-JSON: of the body, or of the payload structure); query, EC2 and REST-XML send each non-flattened
list as an empty element (``<vpcSet/>``). A flattened XML list has no empty form on the wire (its items
are repeated elements with no wrapper), so it is left out and botocore leaves that key out of the result.
Operations whose output streams (a blob payload, an event stream) get an empty body.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ACCOUNT", "Answer", "render"]

Answer = tuple[int, dict[str, str], bytes]


ACCOUNT = "123456789012"  # the account every caller is, as STS GetCallerIdentity answers it


def _identity(protocol: str, op: Any) -> Answer:
    """GetCallerIdentity names an account (``ACCOUNT``): an empty page would leave a caller that checks
    whose credentials it holds (the inventory does) with no account at all."""
    fields = {"UserId": "AIDALOOPBACK", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/loopback"}
    if protocol == "query":
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
        body = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<GetCallerIdentityResult>{inner}</GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>loopback</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        )
        return 200, {"content-type": "text/xml"}, body.encode()
    if protocol == "json":
        ctype = f"application/x-amz-json-{op.metadata.get('jsonVersion', '1.0')}"
        return 200, {"content-type": ctype}, json.dumps(fields).encode()
    return render(protocol, op)


def render(protocol: str, op: Any) -> Answer:
    """The empty, final page of botocore operation model ``op`` in ``protocol``: (status, headers, body)."""
    out = op.output_shape
    if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
        shape = out
        if out is not None and protocol == "rest-json" and "payload" in out.serialization:
            shape = out.members[out.serialization["payload"]]
            if shape.type_name != "structure" or shape.serialization.get("eventstream"):
                return 200, {"content-type": "application/json"}, b""
        names = [_json_name(protocol, name, member) for name, member in _lists(shape)]
        if protocol == "smithy-rpc-v2-cbor":
            return (
                200,
                {"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                _cbor_lists(names),
            )
        ctype = (
            f"application/x-amz-json-{op.metadata.get('jsonVersion', '1.0')}"
            if protocol == "json"
            else "application/json"
        )
        return 200, {"content-type": ctype}, json.dumps(dict.fromkeys(names, [])).encode()
    if protocol == "query":
        inner = _xml_lists(out)
        wrapper = out.serialization.get("resultWrapper") if out is not None else None
        if wrapper:
            inner = f"<{wrapper}>{inner}</{wrapper}>"
        xmlns = op.metadata.get("xmlNamespace")
        attr = f' xmlns="{xmlns}"' if isinstance(xmlns, str) else ""
        body = (
            f"<{op.name}Response{attr}>{inner}<ResponseMetadata><RequestId>loopback</RequestId>"
            f"</ResponseMetadata></{op.name}Response>"
        )
        return 200, {"content-type": "text/xml"}, body.encode()
    if protocol == "ec2":
        body = (
            f'<{op.name}Response xmlns="http://ec2.amazonaws.com/doc/{op.metadata["apiVersion"]}/">'
            f"<requestId>loopback</requestId>{_xml_lists(out)}</{op.name}Response>"
        )
        return 200, {"content-type": "text/xml;charset=UTF-8"}, body.encode()
    if protocol == "rest-xml":
        root, shape = f"{op.name}Result", out
        if out is not None and "payload" in out.serialization:
            member = out.members[out.serialization["payload"]]
            if member.type_name != "structure" or member.serialization.get("eventstream"):
                return 200, {"content-type": "application/xml"}, b""
            root, shape = member.serialization.get("name", member.name), member
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{_xml_lists(shape)}</{root}>'
        return 200, {"content-type": "application/xml"}, body.encode()
    raise ValueError(
        f"protocol {protocol!r} is not answered; answered: json, rest-json, query, ec2, rest-xml, "
        "smithy-rpc-v2-cbor"
    )


def _lists(shape: Any) -> list[tuple[str, Any]]:
    """The structure's list members that travel in the body (not in headers or the status line)."""
    if shape is None or shape.type_name != "structure":
        return []
    return [
        (name, member)
        for name, member in shape.members.items()
        if member.type_name == "list" and "location" not in member.serialization
    ]


def _json_name(protocol: str, name: str, member: Any) -> str:
    return name if protocol == "smithy-rpc-v2-cbor" else member.serialization.get("name", name)


def _xml_lists(shape: Any) -> str:
    return "".join(
        f"<{member.serialization.get('name', name)}/>"
        for name, member in _lists(shape)
        if not member.serialization.get("flattened")
    )


def _cbor_lists(names: list[str]) -> bytes:
    """A CBOR map of each name to an empty array (RFC 8949: major type 5 map, 3 text, 4 array)."""
    out = bytearray(_cbor_head(5, len(names)))
    for name in names:
        raw = name.encode()
        out += _cbor_head(3, len(raw)) + raw + b"\x80"
    return bytes(out)


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 256:
        return bytes([major << 5 | 24, length])
    return bytes([major << 5 | 25]) + length.to_bytes(2, "big")
