"""``greenfetch demo``: the main job against an embedded AWS endpoint, for a newcomer with no account."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from typing import Any

import click

from .._engine import Engine
from ._app import Session, main, pass_session
from ._output import render_table

__all__ = ["demo"]

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
_DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "demo"}


@main.command()
@click.option("--endpoint-url", help="Use this AWS endpoint instead of starting moto's server (must be a test "
                                     "endpoint: the demo creates resources).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=20, show_default=True)
@pass_session
def demo(session: Session, endpoint_url: str | None, concurrency: int) -> None:
    """Start moto's server on loopback, seed demo resources in three regions, and fetch them all at once."""
    try:
        import moto  # noqa: F401

        from ..testing import MotoServer
    except ImportError:
        raise click.ClickException("the demo needs moto's server: pip install 'greenfetch[demo]'") from None
    for name, value in _DEMO_CREDENTIALS.items():  # moto accepts any; real credentials are never needed
        os.environ[name] = value
    server = None if endpoint_url else MotoServer()
    url = endpoint_url or server.start()  # type: ignore[union-attr]
    try:
        engine = session.engine(endpoint_url=url, concurrency=concurrency)
        _say(f"embedded AWS endpoint: {url} (moto's server)")
        seeded = seed(engine)
        _say(f"seeded {seeded} resources across {', '.join(REGIONS)}")
        engine.metrics.reset()
        started = time.perf_counter()
        results = engine.batch_requests(fetch_requests(), concurrency)
        wall = time.perf_counter() - started
        click.echo(render_table(r.to_dict() for r in results))
        failed = sum(1 for r in results if not r.ok)
        _say(f"\n{len(results)} calls in {wall:.2f}s at concurrency {concurrency}; {failed} failed (on purpose: "
             "a missing bucket shows how an error stays tied to its request)\n")
        click.echo(render_stats(engine.metrics.perf_stats()))
    finally:
        if server is not None:
            server.stop()


def _say(text: str) -> None:
    click.secho(text, fg="green", err=False)


def seed(engine: Engine) -> int:
    """Create the demo estate through greenfetch itself: one batch per dependency level."""
    role = {"service": "iam", "operation": "CreateRole", "region": "us-east-1",
            "params": {"RoleName": "demo-lambda", "AssumeRolePolicyDocument": json.dumps(_TRUST)}}
    levels: list[list[dict[str, Any]]] = [[role], [], []]
    for region in REGIONS:
        bucket = f"demo-{region}"
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        levels[0] += [
            {"service": "s3", "operation": "CreateBucket", "region": region, "params": {"Bucket": bucket, **location}},
            {"service": "ec2", "operation": "CreateVpc", "region": region, "params": {"CidrBlock": "10.0.0.0/16"}},
            {"service": "dynamodb", "operation": "CreateTable", "region": region, "params": _table("demo-orders")},
        ]
        levels[1] += [{"service": "s3", "operation": "PutObject", "region": region,
                       "params": {"Bucket": bucket, "Key": f"reports/{i}.json", "Body": b"{}"}} for i in range(5)]
        levels[1] += [{"service": "lambda", "operation": "CreateFunction", "region": region, "params": _function(i)}
                      for i in range(2)]
    created = 0
    for level in levels:
        created += sum(r.ok for r in engine.batch_requests(level, 20))
    created += _seed_network(engine)
    return created


def _seed_network(engine: Engine) -> int:
    """Subnets and instances need the VPC and image ids the first level created."""
    vpcs = engine.batch_requests([{"service": "ec2", "operation": "DescribeVpcs", "region": r} for r in REGIONS])
    images = engine.batch_requests([{"service": "ec2", "operation": "DescribeImages", "region": r,
                                     "params": {"Owners": ["amazon"], "MaxResults": 5}} for r in REGIONS])
    level = []
    for region, vpc, image in zip(REGIONS, vpcs, images, strict=True):
        vpc_ids = [v["VpcId"] for v in (vpc.result or {}).get("Vpcs", []) if v["CidrBlock"] == "10.0.0.0/16"]
        image_ids = [i["ImageId"] for i in (image.result or {}).get("Images", [])]
        if vpc_ids:
            level += [{"service": "ec2", "operation": "CreateSubnet", "region": region,
                       "params": {"VpcId": vpc_ids[0], "CidrBlock": f"10.0.{i}.0/24"}} for i in range(2)]
        if image_ids:
            level.append({"service": "ec2", "operation": "RunInstances", "region": region,
                          "params": {"ImageId": image_ids[0], "MinCount": 2, "MaxCount": 2, "InstanceType": "t3.micro"}})
    return sum(r.ok for r in engine.batch_requests(level, 20))


def fetch_requests() -> list[dict[str, Any]]:
    """What an inventory script asks of every region, plus one call that fails on purpose."""
    calls = [("s3", "ListObjectsV2"), ("ec2", "DescribeVpcs"), ("ec2", "DescribeSubnets"),
             ("ec2", "DescribeInstances"), ("lambda", "ListFunctions"), ("dynamodb", "ListTables")]
    requests: list[dict[str, Any]] = [{"service": "s3", "operation": "ListBuckets", "region": "us-east-1"},
                                      {"service": "iam", "operation": "list_roles", "region": "us-east-1"}]
    for region in REGIONS:
        for service, operation in calls:
            params = {"Bucket": f"demo-{region}"} if operation == "ListObjectsV2" else {}
            requests.append({"service": service, "operation": operation, "region": region, "params": params,
                             "paginate": service == "ec2"})
    requests.append({"service": "s3", "operation": "GetObject", "region": "us-east-1",
                     "params": {"Bucket": "nonexistent-bucket", "Key": "nonexistent-key"}})
    return requests


def render_stats(rows: list[dict[str, Any]]) -> str:
    header = ["operation", "count", "errors", "throttles", "avg ms", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    lines = [header] + [[r["operation"], str(r["count"]), str(r["errors"]), str(r["throttles"])]
                        + [f"{r[k] * 1000:.1f}" for k in ("avg_duration", "p50", "p90", "p99", "max")] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
           for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}


def _table(name: str) -> dict[str, Any]:
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}


def _function(i: int) -> dict[str, Any]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return event\n")
    return {"FunctionName": f"demo-fn-{i}", "Runtime": "python3.12", "Handler": "index.handler",
            "Role": "arn:aws:iam::123456789012:role/demo-lambda", "Code": {"ZipFile": buf.getvalue()}}
