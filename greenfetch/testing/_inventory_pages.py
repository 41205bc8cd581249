"""Realistic inventory answers for the loopback server: a small multi-account AWS on one port.

``LoopbackServer(handler="greenfetch.testing._inventory_pages:handle", latency=0.05)`` serves:

- STS ``AssumeRole`` (query XML): the credentials' access key is ``ASIA<account id>``, so every later
  call says which account it runs as; the secret is the account's own (``loopback-secret-<account
  id>``: AWS gives every role session its own, so a client derives a signing key per account, region
  and service, as it must against AWS), and so is the session token, of an AWS token's length
  (``_inventory_sts``); accounts listed in ``deny_assume`` get ``AccessDenied``. With
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
import json
import os
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from . import _inventory_sts as sts
from . import _loopback_faults as faults

__all__ = ["handle", "inventory_server", "settings", "sts_answer"]

_ENV = "GREENFETCH_INVENTORY_PAGES"
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


def sts_answer(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes | str] | None:
    """STS as this server answers it, or None for any other request (``_inventory_sts.answer``): the
    any-protocol server (``_loopback_any``) answers STS this way too, so an inventory over many
    accounts (``--role-name``) runs on it."""
    return sts.answer(headers, body, settings())


def handle(target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes | str]:
    """The loopback handler hook: one AWS answer for one request."""
    conf = settings()
    key, region, service = sts.who(headers)
    if service == "sts":
        # (the latter: an action this server does not serve)
        return sts.answer(headers, body, conf) or sts.assume_role(sts.form(body), conf)
    account = sts.account_of(key)
    protocol = faults.protocol_of(headers, body, "auto")
    form = sts.form(body) if protocol in ("query", "ec2") else {}
    action = headers.get("x-amz-target", "").rpartition(".")[2] or form.get("Action") or target
    refused = sts.refused_credentials(protocol, account, headers, conf)
    if refused is not None:
        return refused
    if region in conf["throttle_regions"]:
        return sts.error(protocol, faults.PROTOCOLS[protocol][1], "Rate exceeded")
    if region in conf["deny_regions"]:
        code = "UnauthorizedOperation" if protocol == "ec2" else "AccessDeniedException"
        return sts.error(protocol, (code, 403), f"not authorized to perform {action} in {region}")
    if protocol == "ec2":
        return _ec2(action, account, region, conf["items"])
    if service == "lambda":
        return 200, {"content-type": "application/json"}, json.dumps(_lambda(account, region, conf["items"]))
    return _json(service, action, account, region, body, conf)


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
        return sts.error("ec2", ("InvalidAction", 400), f"{action} is not served here")
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
        return sts.error("json", ("UnknownOperationException", 400), f"{action} is not served here")
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
