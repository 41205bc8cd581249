"""STS as the inventory loopback server answers it (``_inventory_pages``), and who a request is from.

Who asks comes from the SigV4 ``Authorization`` header: the access key says the account (an assumed
role's key is ``ASIA<account id>``), the credential scope the region and service. ``AssumeRole`` hands
out the account's own secret (``loopback-secret-<account id>``) and a session token of an AWS token's
length; ``GetCallerIdentity`` answers with the signing key's account. The settings (``conf``) are the
server's (``_inventory_pages.settings``): ``deny_assume``, ``session_seconds``, ``expired_accounts``,
``skewed_accounts``.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any
from xml.sax.saxutils import escape

from . import _loopback_faults as faults

_AUTH = re.compile(r"Credential=([^/,]+)/\d+/([^/]+)/([^/]+)/")
_TOKEN_EXPIRY = re.compile(r"-until-(\d+(?:\.\d+)?)$")
_DEFAULT_ACCOUNT = "123456789012"

# An STS session token is ~700-1,100 characters of base64 (AWS does not promise a length); a client
# signs it in every call (the canonical request's SHA-256 reads it), so a short one would hide a cost
# every real inventory pays.
_TOKEN_LENGTH = 900

Answer = tuple[int, dict[str, str], bytes | str]


def who(headers: dict[str, str]) -> tuple[str, str, str]:
    """The (access key, region, service) that signed a request."""
    match = _AUTH.search(headers.get("authorization", ""))
    return (match[1], match[2], match[3]) if match else ("", "us-east-1", "")


def account_of(key: str) -> str:
    """The account an access key is: an assumed role's (``ASIA`` + its account), else the default."""
    return key[4:16] if key.startswith("ASIA") and key[4:16].isdigit() else _DEFAULT_ACCOUNT


def form(body: bytes) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(body.decode()))


def error(protocol: str, code_status: tuple[str, int], message: str) -> tuple[int, dict[str, str], bytes]:
    code, status = code_status
    rheaders, rbody = faults.error_body(protocol, code, message, "inventory-pages")
    return status, rheaders, rbody


def answer(headers: dict[str, str], body: bytes, conf: dict[str, Any]) -> Answer | None:
    """STS's AssumeRole and GetCallerIdentity (the role's account in the credentials' key, the signing
    key's account as the caller), or None for any other request."""
    key, _, service = who(headers)
    if service != "sts":
        return None
    fields = form(body)
    if fields.get("Action") == "GetCallerIdentity":
        return caller_identity(account_of(key), key)
    if fields.get("Action") == "AssumeRole":
        return assume_role(fields, conf)
    return None


def refused_credentials(
    protocol: str, account: str, headers: dict[str, str], conf: dict[str, Any]
) -> tuple[int, dict[str, str], bytes] | None:
    """AWS's answer to a call whose credentials it refuses: a clock off, or a session past its end."""
    if account in conf["skewed_accounts"]:
        return error(
            protocol,
            ("RequestTimeTooSkewed", 403),
            "The difference between the request time and the current time is too large.",
        )
    until = _TOKEN_EXPIRY.search(headers.get("x-amz-security-token", ""))
    if account in conf["expired_accounts"] or (until is not None and float(until[1]) <= time.time()):
        code = "ExpiredTokenException" if protocol in ("json", "rest-json") else "ExpiredToken"
        return error(
            protocol,
            (code, 403 if protocol != "json" else 400),
            "The security token included in the request is expired",
        )
    return None


def caller_identity(account: str, key: str) -> tuple[int, dict[str, str], str]:
    arn = (
        f"arn:aws:sts::{account}:assumed-role/Reader/greenfetch"
        if key.startswith("ASIA")
        else f"arn:aws:iam::{account}:user/loopback"
    )
    xml = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        f"<Arn>{arn}</Arn><UserId>AIDALOOPBACK</UserId><Account>{account}</Account></GetCallerIdentityResult>"
        "<ResponseMetadata><RequestId>loopback</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    )
    return 200, {"content-type": "text/xml"}, xml


def session_token(account: str) -> str:
    """The account's session token: ``loopback-token-<account>-`` and hex padding to ``_TOKEN_LENGTH``."""
    head = f"loopback-token-{account}-"
    pad = hashlib.sha256(account.encode()).hexdigest()
    return head + (pad * (_TOKEN_LENGTH // len(pad) + 1))[: _TOKEN_LENGTH - len(head)]


def assume_role(fields: dict[str, str], conf: dict[str, Any]) -> Answer:
    """AssumeRole's answer (an ``InvalidAction`` error for any other STS action)."""
    arn = fields.get("RoleArn", "")
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    if fields.get("Action") != "AssumeRole":
        return error("query", ("InvalidAction", 400), f"{fields.get('Action')} is not served here")
    if account in conf["deny_assume"]:
        return error(
            "query",
            ("AccessDenied", 403),
            f"User is not authorized to perform: sts:AssumeRole on resource: {arn}",
        )
    token, expiration = session_token(account), "2099-01-01T00:00:00Z"
    if conf["session_seconds"] is not None:
        until = time.time() + float(conf["session_seconds"])
        token += f"-until-{until:.3f}"
        expiration = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(until)) + f".{int(until % 1 * 1000):03d}Z"
    creds = (
        f"<Credentials><AccessKeyId>ASIA{account}</AccessKeyId><SecretAccessKey>loopback-secret-{account}</SecretAccessKey>"
        f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration>"
        "</Credentials>"
    )
    user = (
        f"<AssumedRoleUser><AssumedRoleId>AROA:{escape(fields.get('RoleSessionName', ''))}</AssumedRoleId>"
        f"<Arn>{escape(arn)}</Arn></AssumedRoleUser>"
    )
    xml = (
        f'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>{creds}{user}'
        "</AssumeRoleResult><ResponseMetadata><RequestId>loopback</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    )
    return 200, {"content-type": "text/xml"}, xml
