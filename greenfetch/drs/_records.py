"""Pure record-shaping for the DRS sync: no I/O, so every rule here is tested without sockets.

The shapes (docs/drs-sync.md has the full field list):

- a region outcome: what one DescribeSourceServers fan-out in one account and region came to;
- an inventory record: the DRS SourceServer as DRS returned it (every field kept), plus
  ``accountId``, ``accountName``, ``region``, ``syncedAt`` and an ``ec2`` block saying whether and
  how the server was enriched from its EC2 instance;
- a DynamoDB item: the record in DynamoDB's attribute-value encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .._errors import classify
from .._jsonable import jsonable
from ..inventory import to_dynamodb_item

__all__ = [
    "RegionOutcome",
    "enrich_server",
    "instance_id_of",
    "instance_summary",
    "origin_of",
    "region_outcome",
    "tag_server",
    "to_dynamodb_item",
]


@dataclass
class RegionOutcome:
    """One account and region: its servers, or why there are none (status from greenfetch.classify)."""

    account: str
    region: str
    status: (
        str  # ok, empty, or a classify status: denied, unavailable, throttled, quota, transient, error, ...
    )
    servers: list[dict[str, Any]] = field(default_factory=list, repr=False)
    error_code: str | None = None
    error: str | None = None
    guidance: str | None = None
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "empty")

    def status_record(self) -> dict[str, Any]:
        """The region status as reported and stored: no server data, no timing."""
        out = asdict(self)
        out.pop("servers")
        out["count"] = len(self.servers)
        return out


def region_outcome(account: str, region: str, result: Any) -> RegionOutcome:
    """A DescribeSourceServers Result (all pages) as a RegionOutcome.

    The eight error classes of seed 001 all arrive as the engine's failed Result; their status and
    guidance come from the one classifier (AccessDenied/UnrecognizedClient -> denied,
    InvalidRequest -> unavailable, Throttling -> throttled + retry guidance, ServiceQuotaExceeded ->
    quota + increase guidance, InternalServer -> transient, any other code -> error, connection
    failures -> transient or error)."""
    if result.ok:
        servers = list((result.result or {}).get("items") or [])
        return RegionOutcome(account, region, "ok" if servers else "empty", servers)
    info = classify(result.error_code, service="drs", operation="DescribeSourceServers")
    return RegionOutcome(
        account,
        region,
        info.status,
        [],
        result.error_code,
        result.error,
        result.guidance or info.guidance,
        result.retryable,
    )


def tag_server(
    server: Mapping[str, Any], account: str, account_name: str | None, region: str, synced_at: str
) -> dict[str, Any]:
    """The DRS record with where it was found and when; DRS's own fields are kept untouched."""
    record = dict(jsonable(dict(server)))
    record.update(
        {"accountId": account, "accountName": account_name or "", "region": region, "syncedAt": synced_at}
    )
    return record


def instance_id_of(server: Mapping[str, Any]) -> str | None:
    """The EC2 instance a DRS source server replicates, when DRS knows it."""
    hints = (server.get("sourceProperties") or {}).get("identificationHints") or {}
    return hints.get("awsInstanceID") or None


def origin_of(server: Mapping[str, Any]) -> tuple[str, str]:
    """(account, region) the server's EC2 instance lives in: its origin when DRS says, else where DRS is."""
    cloud = server.get("sourceCloudProperties") or {}
    return cloud.get("originAccountID") or server["accountId"], cloud.get("originRegion") or server["region"]


def instance_summary(instance: Mapping[str, Any]) -> dict[str, Any]:
    """What the inventory keeps of an EC2 instance: network interfaces, tags, instance profile."""
    enis = sorted(
        instance.get("NetworkInterfaces") or [],
        key=lambda n: ((n.get("Attachment") or {}).get("DeviceIndex", 0), n.get("NetworkInterfaceId", "")),
    )
    profile = instance.get("IamInstanceProfile") or None
    return {
        "instanceId": instance.get("InstanceId"),
        "instanceType": instance.get("InstanceType"),
        "state": (instance.get("State") or {}).get("Name"),
        "privateIpAddress": instance.get("PrivateIpAddress"),
        "networkInterfaces": [
            {
                "networkInterfaceId": n.get("NetworkInterfaceId"),
                "privateIpAddress": n.get("PrivateIpAddress"),
                "privateIpAddresses": [p.get("PrivateIpAddress") for p in n.get("PrivateIpAddresses") or []],
                "subnetId": n.get("SubnetId"),
                "vpcId": n.get("VpcId"),
                "macAddress": n.get("MacAddress"),
                "securityGroups": [g.get("GroupId") for g in n.get("Groups") or []],
            }
            for n in enis
        ],
        "tags": {
            t["Key"]: t.get("Value", "") for t in sorted(instance.get("Tags") or [], key=lambda t: t["Key"])
        },
        "instanceProfile": {"arn": profile.get("Arn"), "id": profile.get("Id")} if profile else None,
    }


def enrich_server(
    record: Mapping[str, Any],
    instances: Mapping[str, Mapping[str, Any]],
    failures: Mapping[tuple[str, str], str],
) -> dict[str, Any]:
    """The record with an ``ec2`` block. A server whose instance is missing, or whose EC2 query
    failed, keeps all its DRS data and says why it was not enriched (``ec2.status``):
    enriched, instance_not_found, query_failed, no_instance_id."""
    out = dict(record)
    instance_id = instance_id_of(record)
    if instance_id is None:
        out["ec2"] = {"status": "no_instance_id"}
    elif instance_id in instances:
        out["ec2"] = {"status": "enriched", **instance_summary(instances[instance_id])}
    elif origin_of(record) in failures:
        out["ec2"] = {
            "status": "query_failed",
            "instanceId": instance_id,
            "error": failures[origin_of(record)],
        }
    else:
        out["ec2"] = {"status": "instance_not_found", "instanceId": instance_id}
    return out


def chunks(items: Iterable[Any], size: int) -> list[list[Any]]:
    """``items`` in lists of at most ``size``, order kept."""
    batch: list[Any] = []
    out: list[list[Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            out.append(batch)
            batch = []
    if batch:
        out.append(batch)
    return out
