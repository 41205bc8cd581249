"""Realistic inventory answers for the loopback server: a small multi-account AWS on one port.

``LoopbackServer(handler="greenfetch.testing._inventory_pages:handle", latency=0.05)`` serves:

- STS ``AssumeRole`` (query XML): the credentials' access key is ``ASIA<account id>``, so every later
  call says which account it runs as; the secret is the account's own (``loopback-secret-<account
  id>``: AWS gives every role session its own, so a client derives a signing key per account, region
  and service, as it must against AWS), and so is the session token, of an AWS token's length
  (``_session_token``); accounts listed in ``deny_assume`` get ``AccessDenied``. With
  ``session_seconds`` N the session expires N seconds after it was handed out (its ``Expiration``, and
  its token carries the time): a call signed with it after that gets ``ExpiredToken``, as AWS answers.
  ``GetCallerIdentity`` answers with the account of the key that signed it.
- EC2 (``DescribeRegions``, ``DescribeInstances``, ``DescribeVpcs``, ``DescribeSubnets``,
  ``DescribeSecurityGroups``, ``DescribeVolumes``), Lambda ``ListFunctions`` (REST-JSON), and the
  JSON-protocol lists of DynamoDB, SQS, KMS, SSM, Secrets Manager and CloudWatch Logs, each a page of
  ``items`` realistic records.
- DynamoDB ``BatchWriteItem`` that returns the last ``min(unprocessed, n // 2)`` of a batch's n
  ordinary items as ``UnprocessedItems`` (so a client must retry them, and retries converge), and never accepts an item whose ``pk``
  contains ``poison`` (so a client must dead-letter it); ``Scan`` returns what was accepted.

Who asks comes from the SigV4 ``Authorization`` header (access key -> account, credential scope ->
region). Regions in ``deny_regions`` answer an access-denied error, regions in ``throttle_regions``
a throttling error, in the caller's protocol. Settings come from the ``GREENFETCH_INVENTORY_PAGES``
environment variable (JSON) read when the child starts: ``items`` (5), ``deny_assume``,
``deny_regions``, ``throttle_regions``, ``unprocessed`` (0), ``session_seconds`` (None: sessions end
in 2099), ``expired_accounts`` (every call of these accounts' sessions gets ``ExpiredToken``, however
fresh), ``skewed_accounts`` (every call gets ``RequestTimeTooSkewed``). ``inventory_server(latency,
**settings)`` starts one with its settings and leaves this process's environment as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from . import _loopback_faults as faults

__all__ = ["handle", "inventory_server", "settings", "sts_answer"]

_ENV = "GREENFETCH_INVENTORY_PAGES"
_AUTH = re.compile(r"Credential=([^/,]+)/\d+/([^/]+)/([^/]+)/")
_TOKEN_EXPIRY = re.compile(r"-until-(\d+(?:\.\d+)?)$")
_DEFAULT_ACCOUNT = "123456789012"
_EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
]

_state: dict[str, Any] = {"accepted": {}}


@contextlib.contextmanager
def inventory_server(latency: float = 0.0, **pages: Any) -> Iterator[Any]:
    """A started ``LoopbackServer`` serving these pages (see the module docstring for ``pages``)."""
    from ._loopback import LoopbackServer

    server = LoopbackServer(handler=f"{__name__}:handle", latency=latency)
    before = os.environ.get(_ENV)
    os.environ[_ENV] = json.dumps(pages)  # read by the server's child when it starts, and only then
    try:
        server.start()
    finally:
        if before is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = before
    try:
        yield server
    finally:
        server.stop()


def settings() -> dict[str, Any]:
    if "settings" not in _state:
        raw = json.loads(os.environ.get(_ENV) or "{}")
        _state["settings"] = {
            "items": 5,
            "deny_assume": [],
            "deny_regions": [],
            "throttle_regions": [],
            "unprocessed": 0,
            "session_seconds": None,
            "expired_accounts": [],
            "skewed_accounts": [],
            **raw,
        }
    settings: dict[str, Any] = _state["settings"]
    return settings


def handle(target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes | str]:
    """The loopback handler hook: one AWS answer for one request."""
    conf = settings()
    key, region, service = _who(headers)
    if service == "sts":
        return sts_answer(headers, body) or _sts(_form(body), conf)  # (the latter: an action not served)
    account = _account_of(key)
    protocol = faults.protocol_of(headers, body, "auto")
    form = _form(body) if protocol in ("query", "ec2") else {}
    action = headers.get("x-amz-target", "").rpartition(".")[2] or form.get("Action") or target
    refused = _refused_credentials(protocol, account, headers, conf)
    if refused is not None:
        return refused
    if region in conf["throttle_regions"]:
        return _error(protocol, faults.PROTOCOLS[protocol][1], "Rate exceeded")
    if region in conf["deny_regions"]:
        code = "UnauthorizedOperation" if protocol == "ec2" else "AccessDeniedException"
        return _error(protocol, (code, 403), f"not authorized to perform {action} in {region}")
    if protocol == "ec2":
        return _ec2(action, account, region, conf["items"])
    if service == "lambda":
        return 200, {"content-type": "application/json"}, json.dumps(_lambda(account, region, conf["items"]))
    return _json(service, action, account, region, body, conf)


def _who(headers: dict[str, str]) -> tuple[str, str, str]:
    match = _AUTH.search(headers.get("authorization", ""))
    return (match[1], match[2], match[3]) if match else ("", "us-east-1", "")


def sts_answer(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes | str] | None:
    """STS's AssumeRole and GetCallerIdentity as this server answers them (the role's account in the
    credentials' key, the signing key's account as the caller), or None for any other request: the
    any-protocol server (``_loopback_any``) answers STS this way too, so an inventory over many
    accounts (``--role-name``) runs on it."""
    key, _, service = _who(headers)
    if service != "sts":
        return None
    form = _form(body)
    if form.get("Action") == "GetCallerIdentity":
        return _caller_identity(_account_of(key), key)
    if form.get("Action") == "AssumeRole":
        return _sts(form, settings())
    return None


def _account_of(key: str) -> str:
    """The account an access key is: an assumed role's (``ASIA`` + its account), else the default."""
    return key[4:16] if key.startswith("ASIA") and key[4:16].isdigit() else _DEFAULT_ACCOUNT


def _form(body: bytes) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(body.decode()))


def _error(protocol: str, code_status: tuple[str, int], message: str) -> tuple[int, dict[str, str], bytes]:
    code, status = code_status
    rheaders, rbody = faults.error_body(protocol, code, message, "inventory-pages")
    return status, rheaders, rbody


# -- STS ---------------------------------------------------------------------------------------------


def _refused_credentials(
    protocol: str, account: str, headers: dict[str, str], conf: dict[str, Any]
) -> tuple[int, dict[str, str], bytes] | None:
    """AWS's answer to a call whose credentials it refuses: a clock off, or a session past its end."""
    if account in conf["skewed_accounts"]:
        return _error(
            protocol,
            ("RequestTimeTooSkewed", 403),
            "The difference between the request time and the current time is too large.",
        )
    until = _TOKEN_EXPIRY.search(headers.get("x-amz-security-token", ""))
    if account in conf["expired_accounts"] or (until is not None and float(until[1]) <= time.time()):
        code = "ExpiredTokenException" if protocol in ("json", "rest-json") else "ExpiredToken"
        return _error(
            protocol,
            (code, 403 if protocol != "json" else 400),
            "The security token included in the request is expired",
        )
    return None


def _caller_identity(account: str, key: str) -> tuple[int, dict[str, str], str]:
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


# An STS session token is ~700-1,100 characters of base64 (AWS does not promise a length); a client
# signs it in every call (the canonical request's SHA-256 reads it), so a short one would hide a cost
# every real inventory pays.
_TOKEN_LENGTH = 900


def _session_token(account: str) -> str:
    """The account's session token: ``loopback-token-<account>-`` and hex padding to ``_TOKEN_LENGTH``."""
    head = f"loopback-token-{account}-"
    pad = hashlib.sha256(account.encode()).hexdigest()
    return head + (pad * (_TOKEN_LENGTH // len(pad) + 1))[: _TOKEN_LENGTH - len(head)]


def _sts(form: dict[str, str], conf: dict[str, Any]) -> tuple[int, dict[str, str], bytes | str]:
    arn = form.get("RoleArn", "")
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    if form.get("Action") != "AssumeRole":
        return _error("query", ("InvalidAction", 400), f"{form.get('Action')} is not served here")
    if account in conf["deny_assume"]:
        return _error(
            "query",
            ("AccessDenied", 403),
            f"User is not authorized to perform: sts:AssumeRole on resource: {arn}",
        )
    token, expiration = _session_token(account), "2099-01-01T00:00:00Z"
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
        f"<AssumedRoleUser><AssumedRoleId>AROA:{escape(form.get('RoleSessionName', ''))}</AssumedRoleId>"
        f"<Arn>{escape(arn)}</Arn></AssumedRoleUser>"
    )
    xml = (
        f'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>{creds}{user}'
        "</AssumeRoleResult><ResponseMetadata><RequestId>loopback</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    )
    return 200, {"content-type": "text/xml"}, xml


# -- EC2 ---------------------------------------------------------------------------------------------


def _xml(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in value.items())
    if isinstance(value, list):
        return "".join(f"<item>{_xml(v)}</item>" for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _tags(name: str) -> list[dict[str, str]]:
    return [
        {"key": "Name", "value": name},
        {"key": "team", "value": "inventory"},
        {"key": "env", "value": "bench"},
    ]


def _ec2_items(action: str, account: str, region: str, n: int) -> tuple[str, list[Any]] | None:
    sid = f"{int(account) % 100000:05x}"
    az = f"{region}a"
    rows: dict[str, tuple[str, Any]] = {
        "DescribeRegions": ("regionInfo", lambda i: None),
        "DescribeVpcs": (
            "vpcSet",
            lambda i: {
                "vpcId": f"vpc-{sid}{i:07x}",
                "ownerId": account,
                "state": "available",
                "cidrBlock": f"10.{i}.0.0/16",
                "dhcpOptionsId": "dopt-0a1b2c3d",
                "instanceTenancy": "default",
                "isDefault": i == 0,
                "tagSet": _tags(f"vpc-{i}"),
            },
        ),
        "DescribeSubnets": (
            "subnetSet",
            lambda i: {
                "subnetId": f"subnet-{sid}{i:07x}",
                "vpcId": f"vpc-{sid}0000000",
                "state": "available",
                "cidrBlock": f"10.0.{i}.0/24",
                "availableIpAddressCount": 251,
                "availabilityZone": az,
                "mapPublicIpOnLaunch": False,
                "ownerId": account,
                "tagSet": _tags(f"subnet-{i}"),
            },
        ),
        "DescribeSecurityGroups": (
            "securityGroupInfo",
            lambda i: {
                "ownerId": account,
                "groupId": f"sg-{sid}{i:07x}",
                "groupName": f"web-{i}",
                "groupDescription": "allow web traffic",
                "vpcId": f"vpc-{sid}0000000",
                "ipPermissions": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 443,
                        "toPort": 443,
                        "ipRanges": [{"cidrIp": "0.0.0.0/0"}],
                    }
                ],
                "tagSet": _tags(f"sg-{i}"),
            },
        ),
        "DescribeVolumes": (
            "volumeSet",
            lambda i: {
                "volumeId": f"vol-{sid}{i:012x}",
                "size": 8 + i,
                "availabilityZone": az,
                "status": "in-use",
                "createTime": "2024-05-01T10:00:00.000Z",
                "volumeType": "gp3",
                "iops": 3000,
                "encrypted": True,
                "tagSet": _tags(f"vol-{i}"),
            },
        ),
        "DescribeInstances": (
            "reservationSet",
            lambda i: {
                "reservationId": f"r-{sid}{i:012x}",
                "ownerId": account,
                "instancesSet": [
                    {
                        "instanceId": f"i-{sid}{i:012x}",
                        "imageId": "ami-0abcdef1234567890",
                        "instanceState": {"code": 16, "name": "running"},
                        "privateDnsName": f"ip-10-0-0-{i}.ec2.internal",
                        "instanceType": "t3.micro",
                        "launchTime": "2024-05-01T10:00:00.000Z",
                        "placement": {"availabilityZone": az, "tenancy": "default"},
                        "subnetId": f"subnet-{sid}0000000",
                        "vpcId": f"vpc-{sid}0000000",
                        "privateIpAddress": f"10.0.0.{i + 10}",
                        "architecture": "x86_64",
                        "rootDeviceType": "ebs",
                        "tagSet": _tags(f"web-{i}"),
                    }
                ],
            },
        ),
    }
    if action not in rows:
        return None
    key, make = rows[action]
    if action == "DescribeRegions":
        return key, [
            {
                "regionName": r,
                "regionEndpoint": f"ec2.{r}.amazonaws.com",
                "optInStatus": "opt-in-not-required",
            }
            for r in REGIONS
        ]
    return key, [make(i) for i in range(n)]


def _ec2(action: str, account: str, region: str, n: int) -> tuple[int, dict[str, str], bytes | str]:
    found = _ec2_items(action, account, region, n)
    if found is None:
        return _error("ec2", ("InvalidAction", 400), f"{action} is not served here")
    key, items = found
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><{action}Response xmlns="{_EC2_NS}">'
        f"<requestId>loopback</requestId><{key}>{_xml(items)}</{key}></{action}Response>"
    )
    return 200, {"content-type": "text/xml;charset=UTF-8"}, xml


# -- REST-JSON and JSON ----------------------------------------------------------------------------------


def _lambda(account: str, region: str, n: int) -> dict[str, Any]:
    return {
        "Functions": [
            {
                "FunctionName": f"fn-{i}",
                "FunctionArn": f"arn:aws:lambda:{region}:{account}:function:fn-{i}",
                "Runtime": "python3.12",
                "Role": f"arn:aws:iam::{account}:role/fn-role",
                "Handler": "app.handler",
                "CodeSize": 1024 + i,
                "Timeout": 30,
                "MemorySize": 256,
                "LastModified": "2024-05-01T10:00:00.000+0000",
                "Version": "$LATEST",
                "PackageType": "Zip",
                "Architectures": ["arm64"],
            }
            for i in range(n)
        ]
    }


def _json(
    service: str, action: str, account: str, region: str, body: bytes, conf: dict[str, Any]
) -> tuple[int, dict[str, str], bytes | str]:
    n = conf["items"]
    pages: dict[str, Any] = {
        "ListTables": lambda: {"TableNames": [f"table-{i}" for i in range(n)]},
        "ListQueues": lambda: {
            "QueueUrls": [f"https://sqs.{region}.amazonaws.com/{account}/queue-{i}" for i in range(n)]
        },
        "ListKeys": lambda: {
            "Keys": [
                {
                    "KeyId": f"{i:08x}-1111-2222-3333-444444444444",
                    "KeyArn": f"arn:aws:kms:{region}:{account}:key/{i:08x}-1111-2222-3333-4444",
                }
                for i in range(n)
            ],
            "Truncated": False,
        },
        "DescribeParameters": lambda: {
            "Parameters": [
                {
                    "Name": f"/app/param-{i}",
                    "Type": "String",
                    "LastModifiedDate": 1714557600.0,
                    "Version": 1,
                    "Tier": "Standard",
                    "DataType": "text",
                }
                for i in range(n)
            ]
        },
        "ListSecrets": lambda: {
            "SecretList": [
                {
                    "ARN": f"arn:aws:secretsmanager:{region}:{account}:secret:app/secret-{i}-AbCdEf",
                    "Name": f"app/secret-{i}",
                    "LastChangedDate": 1714557600.0,
                }
                for i in range(n)
            ]
        },
        "DescribeLogGroups": lambda: {
            "logGroups": [
                {
                    "logGroupName": f"/aws/lambda/fn-{i}",
                    "creationTime": 1714557600000,
                    "storedBytes": 1024 * i,
                    "arn": f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/fn-{i}:*",
                }
                for i in range(n)
            ]
        },
        "GetParametersByPath": lambda: {
            "Parameters": [
                {"Name": f"/aws/service/global-infrastructure/regions/{r}", "Value": r, "Type": "String"}
                for r in REGIONS
            ]
        },
        "BatchWriteItem": lambda: _batch_write(json.loads(body or b"{}"), conf["unprocessed"]),
        "Scan": lambda: {"Items": list(_state["accepted"].values()), "Count": len(_state["accepted"])},
    }
    if action not in pages:
        return _error("json", ("UnknownOperationException", 400), f"{action} is not served here")
    return 200, {"content-type": "application/x-amz-json-1.0"}, json.dumps(pages[action]())


def _batch_write(request: dict[str, Any], unprocessed: int) -> dict[str, Any]:
    """Accept the batch except any ``poison`` item and the last ``min(unprocessed, good // 2)`` others."""
    left: dict[str, list[Any]] = {}
    for table, writes in request.get("RequestItems", {}).items():
        good = [
            w
            for w in writes
            if "poison" not in w.get("PutRequest", {}).get("Item", {}).get("pk", {}).get("S", "")
        ]
        keep = len(good) - min(unprocessed, len(good) // 2)
        for write in [w for w in writes if w not in good] + good[keep:]:
            left.setdefault(table, []).append(write)
        for write in good[:keep]:
            item = write["PutRequest"]["Item"]
            _state["accepted"][json.dumps(item, sort_keys=True)] = item
    return {"UnprocessedItems": left}
