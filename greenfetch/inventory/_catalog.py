"""The resource catalog: one declarative row per resource type, dispatched by name.

A row says which call lists the type, where the items sit in the response (a JMESPath expression),
whether it is regional or global, which field identifies an item, and optional detail steps (one
call per item, run in parallel, merged into the item: S3 buckets get their region and an access
check). Adding a type is adding a row; nothing branches on type names.

Two more columns serve the SQLite sink and ``greenfetch diff``: ``arn`` names the field holding the
ARN where the API has long returned one (the resource id is then the ARN, else the ``id_field``),
and ``volatile`` names fields that change between two fetches of an unchanged resource (a restore
window that moves every five minutes, bytes stored, an alarm's last evaluation), which a diff ignores.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jmespath

from ._types import InventoryError

__all__ = ["CATALOG", "Detail", "ResourceType", "GLOBAL", "resolve_types"]

GLOBAL = "global"


@dataclass(frozen=True)
class Detail:
    """One call per item: ``params`` values are item field names (``{"Bucket": "Name"}``). On
    success the item gets ``into`` = the response at JMESPath ``pick`` (or True when ``pick`` is
    None); on failure ``into`` = ``fail_value`` and ``<into>Error`` = the AWS error code.
    ``region_from`` names an item field holding the region to call (S3 objects live in theirs)."""

    operation: str
    params: Mapping[str, str]
    into: str
    pick: str | None = None
    default: Any = None
    fail_value: Any = None
    region_from: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceType:
    name: str
    service: str
    operation: str
    items: str                       # JMESPath into the (merged) response
    id_field: str | None             # None: the item itself is the id (a name or URL string)
    params: Mapping[str, Any] = field(default_factory=dict)
    paginate: bool = True
    scope: str = "regional"          # or GLOBAL: called once per account, recorded as region "global"
    api_region: str = "us-east-1"    # where a global type's API is called
    keep: tuple[str, ...] = ()       # when set, only these fields are kept (Secrets Manager: names only)
    details: tuple[Detail, ...] = ()
    ssm_service: str | None = None   # name in SSM's global-infrastructure parameters, if not ``service``
    arn: str | None = None           # the item's ARN field, where the API returns one (see resource_id)
    volatile: tuple[str, ...] = ()   # dotted paths a diff ignores: they move without the resource changing

    @property
    def is_global(self) -> bool:
        return self.scope == GLOBAL

    def extract(self, response: Any) -> list[Any]:
        found = jmespath.search(self.items, response) or []
        if self.keep:
            found = [{k: item[k] for k in self.keep if k in item} for item in found]
        return list(found)

    def id_of(self, item: Any) -> str:
        if self.id_field is None or not isinstance(item, Mapping):
            return str(item)
        return str(item.get(self.id_field, ""))

    def resource_id(self, item: Any) -> str:
        """The stable id of an item in the SQLite sink: its ARN where the type declares one and the
        item carries it, else ``id_of`` (the id field, or the item itself for name/URL lists)."""
        if self.arn is not None and isinstance(item, Mapping) and item.get(self.arn):
            return str(item[self.arn])
        return self.id_of(item)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "service": self.service, "operation": self.operation,
                "scope": self.scope, "id_field": self.id_field or "(item)",
                "resource_id": self.arn or self.id_field or "(item)",
                "details": ",".join(d.operation for d in self.details)}


def _t(name: str, operation: str, items: str, id_field: str | None, **kw: Any) -> ResourceType:
    return ResourceType(name, name.split(".")[0], operation, items, id_field, **kw)


_TYPES = [
    _t("ec2.instances", "DescribeInstances", "Reservations[].Instances[]", "InstanceId"),
    _t("ec2.vpcs", "DescribeVpcs", "Vpcs", "VpcId"),
    _t("ec2.subnets", "DescribeSubnets", "Subnets", "SubnetId", arn="SubnetArn"),
    _t("ec2.security_groups", "DescribeSecurityGroups", "SecurityGroups", "GroupId"),
    _t("ec2.volumes", "DescribeVolumes", "Volumes", "VolumeId"),
    _t("ec2.snapshots", "DescribeSnapshots", "Snapshots", "SnapshotId", params={"OwnerIds": ["self"]}),
    _t("ec2.images", "DescribeImages", "Images", "ImageId", params={"Owners": ["self"]},
       volatile=("LastLaunchedTime",)),
    _t("ec2.key_pairs", "DescribeKeyPairs", "KeyPairs", "KeyName", paginate=False),
    _t("ec2.internet_gateways", "DescribeInternetGateways", "InternetGateways", "InternetGatewayId"),
    _t("ec2.nat_gateways", "DescribeNatGateways", "NatGateways", "NatGatewayId"),
    _t("ec2.route_tables", "DescribeRouteTables", "RouteTables", "RouteTableId"),
    _t("ec2.network_interfaces", "DescribeNetworkInterfaces", "NetworkInterfaces", "NetworkInterfaceId"),
    _t("ec2.addresses", "DescribeAddresses", "Addresses", "AllocationId", paginate=False),
    _t("s3.buckets", "ListBuckets", "Buckets", "Name", scope=GLOBAL, details=(
        Detail("GetBucketLocation", {"Bucket": "Name"}, "BucketRegion", pick="LocationConstraint",
               default="us-east-1"),
        Detail("ListObjectsV2", {"Bucket": "Name"}, "Accessible", extra={"MaxKeys": 1}, fail_value=False,
               region_from="BucketRegion"),
        # public by its bucket policy; a bucket with no policy gets IsPublicError NoSuchBucketPolicy
        Detail("GetBucketPolicyStatus", {"Bucket": "Name"}, "IsPublic", pick="PolicyStatus.IsPublic", default=False,
               fail_value=False, region_from="BucketRegion"),
    )),
    _t("lambda.functions", "ListFunctions", "Functions", "FunctionArn", arn="FunctionArn"),
    _t("iam.roles", "ListRoles", "Roles", "Arn", arn="Arn", scope=GLOBAL),
    _t("iam.users", "ListUsers", "Users", "Arn", arn="Arn", scope=GLOBAL,
       volatile=("PasswordLastUsed",)),
    _t("iam.policies", "ListPolicies", "Policies", "Arn", arn="Arn", params={"Scope": "Local"},
       scope=GLOBAL),
    _t("rds.instances", "DescribeDBInstances", "DBInstances", "DBInstanceArn", arn="DBInstanceArn",
       volatile=("LatestRestorableTime",)),
    _t("rds.clusters", "DescribeDBClusters", "DBClusters", "DBClusterArn", arn="DBClusterArn",
       volatile=("LatestRestorableTime", "EarliestRestorableTime", "PercentProgress")),
    _t("dynamodb.tables", "ListTables", "TableNames", None),
    _t("sqs.queues", "ListQueues", "QueueUrls", None),
    _t("sns.topics", "ListTopics", "Topics", "TopicArn", arn="TopicArn"),
    _t("ecs.clusters", "ListClusters", "clusterArns", None),
    _t("eks.clusters", "ListClusters", "clusters", None),
    _t("cloudformation.stacks", "DescribeStacks", "Stacks", "StackId", arn="StackId",
       volatile=("DriftInformation.LastCheckTimestamp",)),
    _t("kms.keys", "ListKeys", "Keys", "KeyArn", arn="KeyArn"),
    _t("ssm.parameters", "DescribeParameters", "Parameters", "Name", arn="ARN"),
    _t("route53.hosted_zones", "ListHostedZones", "HostedZones", "Id", scope=GLOBAL),
    _t("cloudwatch.alarms", "DescribeAlarms", "MetricAlarms", "AlarmArn", arn="AlarmArn",
       volatile=("StateReason", "StateReasonData", "StateUpdatedTimestamp", "StateTransitionedTimestamp")),
    _t("secretsmanager.secrets", "ListSecrets", "SecretList", "ARN", arn="ARN", keep=("Name", "ARN")),
    _t("logs.log_groups", "DescribeLogGroups", "logGroups", "arn", arn="arn", volatile=("storedBytes",)),
    _t("elbv2.load_balancers", "DescribeLoadBalancers", "LoadBalancers", "LoadBalancerArn", arn="LoadBalancerArn",
       ssm_service="elb"),
    _t("autoscaling.groups", "DescribeAutoScalingGroups", "AutoScalingGroups", "AutoScalingGroupARN",
       arn="AutoScalingGroupARN"),
    _t("ecr.repositories", "DescribeRepositories", "repositories", "repositoryArn", arn="repositoryArn"),
    _t("kinesis.streams", "ListStreams", "StreamNames", None),
]

CATALOG: dict[str, ResourceType] = {t.name: t for t in _TYPES}


def resolve_types(spec: str | Iterable[str] | None) -> list[ResourceType]:
    """``all`` / None, or a comma list of names; also a service name (``ec2``) for all its types.
    An unknown name raises InventoryError listing the valid ones."""
    if spec is None or spec == "all" or (not isinstance(spec, str) and list(spec) == ["all"]):
        return list(CATALOG.values())
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n and n.strip()]
    if not names:
        raise InventoryError(f"no resource types given; use 'all' or names from: {', '.join(CATALOG)}")
    chosen: list[ResourceType] = []
    for name in names:
        matched = [CATALOG[name]] if name in CATALOG else [t for t in _TYPES if t.service == name]
        if not matched:
            near = difflib.get_close_matches(name, list(CATALOG), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise InventoryError(f"unknown resource type {name!r}{hint}; valid types: {', '.join(CATALOG)} "
                                 "(or a service name such as ec2, or 'all')")
        chosen += [t for t in matched if t not in chosen]
    return chosen
