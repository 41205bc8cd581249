"""A small multi-account, multi-region estate in moto, and an inventory of it (``greenfetch demo``).

moto gives each account id its own backend when you assume a role there, so three accounts are
three AssumeRole calls away. Everything goes through the engine (no boto3 clients), with the caller's
environment credentials (moto accepts any).
"""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Callable
from typing import Any

from .. import Config, Engine, Request
from ..inventory import InventoryReport, Record, assume_role, run_inventory

__all__ = ["DEMO_ACCOUNTS", "DEMO_REGIONS", "DEMO_ROLE", "DEMO_TYPES", "run_demo_inventory", "seed_demo"]

DEMO_ACCOUNTS = {"111111111111": "prod", "222222222222": "staging", "333333333333": "sandbox (empty)"}
DEMO_REGIONS = ("us-east-1", "eu-west-1")
DEMO_ROLE = "GreenfetchInventoryReader"
_DEMO_AMI = "ami-12c6146b"  # one of moto's built-in images (looking one up costs seconds)
DEMO_TYPES = (
    "ec2.vpcs,ec2.subnets,ec2.instances,s3.buckets,lambda.functions,dynamodb.tables,iam.roles,"
    "sqs.queues,sns.topics"
)


def _engine(endpoint_url: str, concurrency: int = 32) -> Engine:
    return Engine(
        Config.resolve({"endpoint_url": endpoint_url, "region": "us-east-1", "concurrency": concurrency})
    )


def seed_demo(
    endpoint_url: str, *, engine: Engine | None = None, accounts: dict[str, str] | None = None
) -> dict[str, Any]:
    """Create the estate; returns ``{accounts, regions, role_name, resources, expected}`` where
    ``expected`` counts resources per type that the seeding created (moto adds a default VPC with
    its subnets in every account and region on top). ``accounts`` ({id: label}; a label containing
    "empty" gets nothing) defaults to DEMO_ACCOUNTS; tests pass their own ids to share one moto."""
    engine = engine or _engine(endpoint_url)
    accounts = accounts or DEMO_ACCOUNTS
    expected: dict[str, int] = {}
    jobs = []
    for n, (account, label) in enumerate(accounts.items()):
        if "empty" in label:
            continue
        creds = assume_role(engine, account, DEMO_ROLE, session_name="greenfetch-demo-seed")
        if creds is None:
            raise RuntimeError(f"moto refused AssumeRole into {account}; is {endpoint_url} moto's server?")
        call = _caller(engine, account, creds)
        role_arn = call(
            "iam",
            "CreateRole",
            {"RoleName": f"demo-fn-role-{n}", "AssumeRolePolicyDocument": "{}"},
            "us-east-1",
        )["Role"]["Arn"]
        _count(expected, "iam.roles")
        jobs += [(call, account, region, role_arn, n) for region in DEMO_REGIONS]
    _in_parallel(engine, [functools.partial(_seed_region, *job, expected) for job in jobs])
    return {
        "accounts": list(accounts),
        "regions": list(DEMO_REGIONS),
        "role_name": DEMO_ROLE,
        "resources": sum(expected.values()),
        "expected": expected,
    }


def _seed_region(
    call: Callable[..., Any], account: str, region: str, role_arn: str, n: int, expected: dict[str, int]
) -> None:
    tags = [{"Key": "Name", "Value": f"café-{region}-сервер"}, {"Key": "team", "Value": "inventory"}]
    vpc = call(
        "ec2",
        "CreateVpc",
        {"CidrBlock": "10.20.0.0/16", "TagSpecifications": [{"ResourceType": "vpc", "Tags": tags}]},
        region,
    )["Vpc"]["VpcId"]
    subnet = call("ec2", "CreateSubnet", {"VpcId": vpc, "CidrBlock": "10.20.1.0/24"}, region)["Subnet"][
        "SubnetId"
    ]
    call("ec2", "CreateSubnet", {"VpcId": vpc, "CidrBlock": "10.20.2.0/24"}, region)
    call(
        "ec2",
        "RunInstances",
        {
            "ImageId": _DEMO_AMI,
            "MinCount": 2,
            "MaxCount": 2,
            "InstanceType": "t3.micro",
            "SubnetId": subnet,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        },
        region,
    )
    _count(expected, "ec2.vpcs", 1)
    _count(expected, "ec2.subnets", 2)
    _count(expected, "ec2.instances", 2)
    bucket = f"greenfetch-demo-{account}-{region}"
    params: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    call("s3", "CreateBucket", params, region)
    call("s3", "PutObject", {"Bucket": bucket, "Key": "hello.txt", "Body": b"hello"}, region)
    _count(expected, "s3.buckets")
    call(
        "lambda",
        "CreateFunction",
        {
            "FunctionName": f"demo-fn-{n}",
            "Runtime": "python3.12",
            "Role": role_arn,
            "Handler": "app.handler",
            "Code": {"ZipFile": _zip()},
        },
        region,
    )
    _count(expected, "lambda.functions")
    call(
        "dynamodb",
        "CreateTable",
        {
            "TableName": f"demo-orders-{n}",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        },
        region,
    )
    _count(expected, "dynamodb.tables")
    call("sqs", "CreateQueue", {"QueueName": f"demo-jobs-{n}"}, region)
    _count(expected, "sqs.queues")
    call("sns", "CreateTopic", {"Name": f"demo-alerts-{n}"}, region)
    _count(expected, "sns.topics")


def _in_parallel(engine: Engine, jobs: list[Callable[[], None]]) -> None:
    """Run the seeding jobs at once on the engine's backend; the first error is raised after all end."""
    done, errors = engine.backend.queue(), []

    def run(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other jobs finish
            errors.append(exc)
        finally:
            done.put(None)

    for job in jobs:
        engine.backend.spawn(run, job)
    for _ in jobs:
        done.get()
    if errors:
        raise errors[0]


def _caller(engine: Engine, account: str, creds: Any) -> Callable[..., Any]:
    def call(service: str, operation: str, params: dict[str, Any], region: str) -> Any:
        result = engine.execute(
            Request(service, operation, params, region=region, account=account, credentials=creds)
        )
        if not result.ok:
            raise RuntimeError(f"seeding the demo failed: {result.error}")
        return result.result

    return call


def _count(expected: dict[str, int], rtype: str, n: int = 1) -> None:
    expected[rtype] = expected.get(rtype, 0) + n


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 'hello'\n")
    return buf.getvalue()


def run_demo_inventory(
    endpoint_url: str,
    *,
    out: str | None = None,
    fmt: str = "json",
    types: str = DEMO_TYPES,
    concurrency: int = 32,
    engine: Engine | None = None,
    on_record: Callable[[Record], None] | None = None,
    cache_dir: str | None = None,
    accounts: list[str] | None = None,
) -> InventoryReport:
    """Inventory the demo estate: every demo account (one with no resources), both regions."""
    engine = engine or _engine(endpoint_url, concurrency)
    return run_inventory(
        engine,
        accounts=",".join(accounts or DEMO_ACCOUNTS),
        role_name=DEMO_ROLE,
        regions=",".join(DEMO_REGIONS),
        types=types,
        out=out,
        fmt=fmt,
        concurrency=concurrency,
        keep_records=out is None,
        on_record=on_record,
        cache_ttl=0,
        cache_dir=cache_dir,
    )
