"""Child types: a catalog row listed once per item of its parent type (ECS services per cluster, IAM
access keys per user, listeners per load balancer), end to end.

moto's server over HTTP for the records (``greenfetch inventory --types ecs.services`` lists the
clusters first, then each cluster's services, one item per service with its cluster as ``parent``;
the same with ``--processes 2`` and through a shard); the inventory loopback server for a parent that
fails (denied region) and a child call that fails (an operation it does not serve); the overlay's
checks on child rows. Account ids start with 5554.
"""

import json

import pytest
from click.testing import CliRunner

from greenfetch import Config, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.inventory import InventoryError, assume_role, catalog
from greenfetch.inventory._catalog import Catalog
from greenfetch.inventory._overlay import merge_overlays, parse_overlay, shipped_overlay
from greenfetch.inventory._shard import DirectoryShardSink, Shard, run_shard
from greenfetch.testing import inventory_server

ACCOUNT, EMPTY, ROLE, REGION = "555400000001", "555400000002", "Reader", "us-east-1"


@pytest.fixture(scope="module")
def moto(moto_server):
    return moto_server.url


@pytest.fixture(scope="module")
def estate(moto):
    """Two clusters in ACCOUNT: ``shop`` with two services, ``idle`` with none."""
    engine = Engine(Config.resolve({"endpoint_url": moto, "region": REGION, "max_attempts": 1}, environ={}))
    creds = assume_role(engine, ACCOUNT, ROLE)

    def call(service, operation, params):
        result = engine.execute(Request(service, operation, params, region=REGION, credentials=creds))
        assert result.ok, result.error
        return result.result

    shop = call("ecs", "CreateCluster", {"clusterName": "shop"})["cluster"]["clusterArn"]
    idle = call("ecs", "CreateCluster", {"clusterName": "idle"})["cluster"]["clusterArn"]
    family = call(
        "ecs",
        "RegisterTaskDefinition",
        {"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 128}]},
    )["taskDefinition"]["taskDefinitionArn"]
    services = {
        call("ecs", "CreateService", {"cluster": "shop", "serviceName": name, "taskDefinition": family})[
            "service"
        ]["serviceArn"]
        for name in ("web", "worker")
    }
    engine.close()
    return {"shop": shop, "idle": idle, "services": services}


def _inventory(moto, account, types, *extra, catalog_file=None, env=None):
    out = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            moto,
            "--region",
            REGION,
            "--max-attempts",
            "1",
            *extra,
            "inventory",
            "--accounts",
            account,
            "--role-name",
            ROLE,
            "--regions",
            REGION,
            "--types",
            types,
            "--cache-ttl",
            "0",
            "--no-progress",
            *(["--catalog", catalog_file] if catalog_file else []),
        ],
        env=env,
    )
    return out, [json.loads(line) for line in out.stdout.splitlines()]


def test_services_are_listed_per_cluster_with_their_cluster(moto, estate):
    out, records = _inventory(moto, ACCOUNT, "ecs.services")
    assert out.exit_code == 0, out.output
    # the parent type is listed for its children, and written only when it is selected too
    assert [(r["resource_type"], r["region"], r["status"]) for r in records] == [
        ("ecs.services", REGION, "ok")
    ]
    items = records[0]["items"]
    assert {i["serviceArn"] for i in items} == estate["services"]
    assert {i["parent"] for i in items} == {estate["shop"]}
    assert len(items) == 2

    out, both = _inventory(moto, ACCOUNT, "ecs.services,ecs.clusters")
    assert out.exit_code == 0, out.output
    got = {r["resource_type"]: r for r in both}
    assert set(got) == {"ecs.clusters", "ecs.services"}
    assert set(got["ecs.clusters"]["items"]) == {estate["shop"], estate["idle"]}
    assert sorted(got["ecs.services"]["items"], key=str) == sorted(items, key=str)


def test_a_parent_with_no_items_gives_an_ok_child_with_none(moto, estate):
    out, records = _inventory(moto, EMPTY, "ecs.services")
    assert out.exit_code == 0, out.output
    assert [(r["resource_type"], r["status"], r["items"]) for r in records] == [("ecs.services", "ok", [])]


@pytest.fixture(scope="module")
def more(moto):
    """In ACCOUNT: IAM users alice (two access keys) and bob (none); a load balancer with one listener
    that has a rule besides its default one."""
    engine = Engine(Config.resolve({"endpoint_url": moto, "region": REGION, "max_attempts": 1}, environ={}))
    creds = assume_role(engine, ACCOUNT, ROLE)

    def call(service, operation, params):
        result = engine.execute(Request(service, operation, params, region=REGION, credentials=creds))
        assert result.ok, result.error
        return result.result

    alice = call("iam", "CreateUser", {"UserName": "alice"})["User"]["Arn"]
    call("iam", "CreateUser", {"UserName": "bob"})
    keys = {
        call("iam", "CreateAccessKey", {"UserName": "alice"})["AccessKey"]["AccessKeyId"] for _ in range(2)
    }
    vpc = call("ec2", "CreateVpc", {"CidrBlock": "10.9.0.0/16"})["Vpc"]["VpcId"]
    subnets = [
        call(
            "ec2",
            "CreateSubnet",
            {"VpcId": vpc, "CidrBlock": f"10.9.{i}.0/24", "AvailabilityZone": f"{REGION}{z}"},
        )["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    lb = call("elbv2", "CreateLoadBalancer", {"Name": "front", "Subnets": subnets})["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    group = call("elbv2", "CreateTargetGroup", {"Name": "web", "Protocol": "HTTP", "Port": 80, "VpcId": vpc})[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    listener = call(
        "elbv2",
        "CreateListener",
        {"LoadBalancerArn": lb, "Protocol": "HTTP", "Port": 80, "DefaultActions": forward},
    )["Listeners"][0]["ListenerArn"]
    rule = call(
        "elbv2",
        "CreateRule",
        {
            "ListenerArn": listener,
            "Priority": 10,
            "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
            "Actions": forward,
        },
    )["Rules"][0]["RuleArn"]
    engine.close()
    return {"alice": alice, "keys": keys, "lb": lb, "listener": listener, "rule": rule}


def test_access_keys_per_user_and_rules_per_listener_per_load_balancer(moto, more):
    out, records = _inventory(moto, ACCOUNT, "iam.access_keys,elbv2.rules,elbv2.listeners")
    assert out.exit_code == 0, out.output
    got = {r["resource_type"]: r for r in records}
    assert set(got) == {"iam.access_keys", "elbv2.listeners", "elbv2.rules"}
    assert all(r["status"] == "ok" for r in records), records
    keys = got["iam.access_keys"]
    assert keys["region"] == "global"
    assert {(k["AccessKeyId"], k["parent"]) for k in keys["items"]} == {
        (k, more["alice"]) for k in more["keys"]
    }
    (listener,) = got["elbv2.listeners"]["items"]
    assert (listener["ListenerArn"], listener["parent"]) == (more["listener"], more["lb"])
    rules = got["elbv2.rules"]["items"]  # a grandchild: the load balancers are listed, then the listeners
    assert len(rules) == 2 and {r["parent"] for r in rules} == {more["listener"]}
    assert more["rule"] in {r["RuleArn"] for r in rules}

    out, alone = _inventory(moto, ACCOUNT, "elbv2.rules")
    assert out.exit_code == 0, out.output
    assert [r["resource_type"] for r in alone] == ["elbv2.rules"]
    assert sorted(map(json.dumps, alone[0]["items"])) == sorted(map(json.dumps, rules))


def test_worker_processes_and_a_shard_give_the_same_records(moto, estate, tmp_path):
    def norm(records):
        return sorted(
            (r["resource_type"], r["region"], r["status"], sorted(json.dumps(i) for i in r["items"]))
            for r in records
        )

    out, local = _inventory(moto, ACCOUNT, "ecs.services,ecs.clusters")
    assert out.exit_code == 0, out.output
    out, two = _inventory(moto, ACCOUNT, "ecs.services,ecs.clusters", "--processes", "2")
    assert out.exit_code == 0, out.output
    assert norm(two) == norm(local) and len(local) == 2

    engine = Engine(Config.resolve({"endpoint_url": moto, "region": REGION, "max_attempts": 1}, environ={}))
    try:
        sink = DirectoryShardSink(tmp_path)
        shard = Shard(
            "run1",
            ACCOUNT,
            ("ecs.services",),
            regions=(REGION,),
            role=ROLE,
            options={"cache_ttl": 0},
        )
        run_shard(engine, shard, sink)
        sharded, _ = sink.get("run1", ACCOUNT)
    finally:
        engine.close()
    assert norm(sharded) == [r for r in norm(local) if r[0] == "ecs.services"]


CHILD_LOGS = {
    "format": "greenfetch-catalog/1",
    "types": {
        "logs.streams": {
            "operation": "DescribeLogStreams",
            "parent": "logs.log_groups",
            "each": {"logGroupName": "logGroupName"},
            "items": "logStreams",
            "id": "logStreamName",
        }
    },
}


def test_a_failed_parent_fails_its_child_naming_it(tmp_path):
    """eu-west-2 denies every call: the parent is denied, so is the child, and its error names the
    parent. In us-east-1 the parent lists 2 log groups and the child's call is not served there: the
    child fails naming the parent item whose call failed."""
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(CHILD_LOGS))
    with inventory_server(deny_regions=["eu-west-2"], items=2) as server:
        out = CliRunner().invoke(
            load_commands(),
            [
                "--endpoint-url",
                server.url,
                "--region",
                REGION,
                "--max-attempts",
                "1",
                "inventory",
                "--accounts",
                "111111111111",
                "--role-name",
                ROLE,
                "--regions",
                "us-east-1,eu-west-2",
                "--types",
                "logs.streams",
                "--catalog",
                str(mine),
                "--cache-ttl",
                "0",
                "--no-progress",
            ],
        )
    assert out.exit_code == 1, out.output
    records = {r["region"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert set(records) == {"us-east-1", "eu-west-2"}
    denied = records["eu-west-2"]
    assert denied["resource_type"] == "logs.streams" and denied["status"] == "denied"
    assert denied["error"].startswith(
        "its parent type logs.log_groups was not listed: logs.DescribeLogGroups:"
    )
    failed = records["us-east-1"]
    assert failed["status"] == "error" and failed["items"] == []
    assert "logs.DescribeLogStreams: UnknownOperationException" in failed["error"]
    assert (
        "(for logs.log_groups 'arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/fn-"
        in failed["error"]
    )


def test_catalog_shows_the_parent(tmp_path):
    out = CliRunner().invoke(load_commands(), ["catalog", "--types", "ecs.services", "-o", "json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.stdout)
    assert (row["parent"], row["each"], row["tier"]) == ("ecs.clusters", {"cluster": "@"}, "generated")
    out = CliRunner().invoke(load_commands(), ["catalog", "--service", "ecs"])
    assert out.exit_code == 0, out.output
    assert "parent" in out.stdout.splitlines()[0]
    line = next(x for x in out.stdout.splitlines() if x.startswith("ecs.services "))
    assert "ecs.clusters" in line


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"parent": "ecs.clusters"}, 'types.ecs.x: "parent" needs "each"'),
        ({"each": {"cluster": "@"}}, 'types.ecs.x: "each" needs "parent"'),
        (
            {"parent": "ec2.vpcs", "each": {"cluster": "@"}},
            "types.ecs.x.parent: 'ec2.vpcs' is not valid; use another type of ecs",
        ),
        ({"parent": "ecs.x", "each": {"cluster": "@"}}, "types.ecs.x.parent: 'ecs.x' is not valid"),
        (
            {"parent": "Clusters", "each": {"cluster": "@"}},
            'types.ecs.x.parent: "Clusters" is not valid; use the name of the type',
        ),
        (
            {"parent": "ecs.clusters", "each": {}},
            "types.ecs.x.each: {} is not valid; use an object of API parameter",
        ),
        (
            {"parent": "ecs.clusters", "each": {"cluster": "[["}},
            "types.ecs.x.each.cluster: '[[' is not a JMESPath expression",
        ),
        ({"id_per_parent": True}, "types.ecs.x.id_per_parent: only a child type has it"),
        (
            {"parent": "ecs.clusters", "each": {"cluster": "@"}, "tier": "core", "items": "a", "id": "b"},
            "types.ecs.x.parent: a core type has no parent",
        ),
    ],
)
def test_bad_child_rows_name_the_key_and_what_is_valid(row, message):
    with pytest.raises(InventoryError) as err:
        parse_overlay(
            {"format": "greenfetch-catalog/1", "types": {"ecs.x": {"operation": "ListServices", **row}}},
            source="mine.json",
        )
    assert str(err.value).startswith("mine.json: " + message), str(err.value)


TASKS = {
    "operation": "ListTasks",
    "each": {"cluster": "@"},
    "items": "taskArns[].{taskArn: @}",
    "id": "taskArn",
}


@pytest.mark.parametrize(
    ("rows", "selected", "why"),
    [
        (
            {"ecs.tasks": {**TASKS, "parent": "ecs.clusterz"}},
            "ecs.tasks",
            "types.ecs.tasks.parent: 'ecs.clusterz' is not a type of ecs (did you mean ecs.clusters?)",
        ),
        (
            {"ecs.tasks": {**TASKS, "parent": "ecs.task_definitions"}},
            "ecs.tasks",
            "types.ecs.tasks.parent: 'ecs.task_definitions' is never called (slow: every revision",
        ),
        (
            {
                "ecs.tasks": {**TASKS, "parent": "ecs.services"},
                "ecs.services": {"parent": "ecs.tasks", "each": {"cluster": "taskArn"}},
            },
            "ecs.tasks",
            "makes a loop (ecs.services <- ecs.tasks <- ecs.services)",
        ),
        (
            {
                "elbv2.x3": {
                    "operation": "DescribeRules",
                    "parent": "elbv2.rules",
                    "each": {"RuleArns": "[RuleArn]"},
                },
                "elbv2.x4": {
                    "operation": "DescribeRules",
                    "parent": "elbv2.x3",
                    "each": {"RuleArns": "[RuleArn]"},
                },
            },
            "elbv2.x4",
            "types.elbv2.x4.parent: 'elbv2.x3' has 3 parents above it; a child type is at most 3 levels below",
        ),
    ],
)
def test_a_child_of_no_callable_parent_is_a_denied_row_saying_why(rows, selected, why):
    """An unknown or denied parent, a loop, a chain too deep (elbv2.rules is 2 below
    elbv2.load_balancers: a child of it is fine, a child of that child is not)."""
    shipped = shipped_overlay()
    user = parse_overlay({"format": "greenfetch-catalog/1", "types": rows}, source="mine.json", base=shipped)
    kinds = Catalog(merge_overlays(shipped, user), catalog(None).generated)
    with pytest.raises(InventoryError) as err:
        kinds.select(selected)
    assert why in str(err.value), str(err.value)
    if selected == "elbv2.x4":
        assert kinds["elbv2.x3"].depth == 3


def test_a_bad_child_row_is_exit_2_before_any_call(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "format": "greenfetch-catalog/1",
                "types": {"ecs.x": {"operation": "ListServices", "parent": "ecs.clusters"}},
            }
        )
    )
    out = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            "http://127.0.0.1:9",
            "inventory",
            "--catalog",
            str(bad),
            "--types",
            "ecs.x",
            "--no-progress",
        ],
    )
    assert out.exit_code == 2, out.output
    assert 'types.ecs.x: "parent" needs "each"' in out.output and "Traceback" not in out.output


def test_tags_are_read_for_a_child_whose_parent_came_from_the_cache(moto, estate, tmp_path):
    """The second run serves ecs.clusters from the cache and calls only ListServices: the tagging
    API is still read for that account and region, so the services' tags are known, not assumed none."""
    from greenfetch.inventory import run_inventory

    engine = Engine(Config.resolve({"endpoint_url": moto, "region": REGION, "max_attempts": 1}, environ={}))
    where = {"accounts": ACCOUNT, "role_name": ROLE, "regions": REGION, "cache_dir": str(tmp_path)}
    try:
        first = run_inventory(engine, types="ecs.clusters", cache_ttl=3600, tags=True, **where)
        assert first.summary["resources"] == {"ecs.clusters": 2}  # cached with their tags
        report = run_inventory(
            engine, types="ecs.services", cache_ttl=3600, tags=True, keep_records=True, **where
        )
    finally:
        engine.close()
    assert report.summary["tag_calls"] >= 1 and not report.summary["tags_failed"]
    (rec,) = report.records
    assert rec["status"] == "ok" and len(rec["items"]) == 2 and all("tags" in i for i in rec["items"])


def test_ids_unique_only_within_a_parent_are_keyed_by_the_parent_too(moto, tmp_path):
    """One policy attached to two roles is an item of each; in SQLite each gets its own resource id
    (``<role ARN>/<policy ARN>``), so neither hides the other. A stack's resources likewise."""
    import sqlite3

    engine = Engine(Config.resolve({"endpoint_url": moto, "region": REGION, "max_attempts": 1}, environ={}))
    creds = assume_role(engine, EMPTY, ROLE)

    def call(service, operation, params):
        result = engine.execute(Request(service, operation, params, region=REGION, credentials=creds))
        assert result.ok, result.error
        return result.result

    policy = call("iam", "CreatePolicy", {"PolicyName": "read", "PolicyDocument": POLICY})["Policy"]["Arn"]
    roles = [
        call("iam", "CreateRole", {"RoleName": name, "AssumeRolePolicyDocument": "{}"})["Role"]["Arn"]
        for name in ("r1", "r2")
    ]
    for name in ("r1", "r2"):
        call("iam", "AttachRolePolicy", {"RoleName": name, "PolicyArn": policy})
    call("iam", "PutRolePolicy", {"RoleName": "r1", "PolicyName": "inline", "PolicyDocument": POLICY})
    stack = call("cloudformation", "CreateStack", {"StackName": "app", "TemplateBody": TEMPLATE})["StackId"]
    engine.close()

    db = tmp_path / "inv.db"
    types = "iam.attached_role_policies,iam.role_policies,cloudformation.stack_resources"
    out = CliRunner().invoke(
        load_commands(),
        ["--endpoint-url", moto, "--region", REGION, "--max-attempts", "1", "inventory", "--accounts", EMPTY]
        + ["--role-name", ROLE, "--regions", REGION, "--types", types, "--cache-ttl", "0", "--no-progress"]
        + ["--out", str(db)],
    )
    assert out.exit_code == 0, out.output
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT resource_type, resource_id FROM resources ORDER BY 1, 2").fetchall()
    assert rows == sorted(
        [("iam.attached_role_policies", f"{role}/{policy}") for role in roles]
        + [("iam.role_policies", f"{roles[0]}/inline"), ("cloudformation.stack_resources", f"{stack}/Q")]
    )


POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
)
TEMPLATE = json.dumps(
    {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-q"}}}}
)


def test_a_parent_item_gone_by_the_childs_call_gives_no_items_and_no_failure(moto, more, tmp_path):
    """A user deleted between ListUsers and ListAccessKeys answers NoSuchEntity: that user has no
    keys, and the record stays ok (here every user looks gone: each names a user that never was)."""
    mine = tmp_path / "mine.json"
    row = {
        "operation": "ListAccessKeys",
        "parent": "iam.users",
        "each": {"UserName": "join('', [UserName, '-gone'])"},
    }
    mine.write_text(json.dumps({"format": "greenfetch-catalog/1", "types": {"iam.keys_of_gone_users": row}}))
    out, records = _inventory(moto, ACCOUNT, "iam.keys_of_gone_users", catalog_file=str(mine))
    assert out.exit_code == 0, out.output
    assert [(r["resource_type"], r["status"], r["items"], r["error"]) for r in records] == [
        ("iam.keys_of_gone_users", "ok", [], None)
    ]


def test_a_child_types_first_failure_stands():
    """A child type's record is its first failure (a parent not listed, a parent item without the
    parameter, a failed call), with that failure's error code: a later one does not replace it."""
    from greenfetch.inventory._children import _Children

    family = _Children(unit=None)  # a failed child's record reads no field of its unit
    first = {"status": "denied", "error": "first"}
    family.fail(first, "AccessDenied")
    family.fail({"status": "error", "error": "later"}, "ThrottlingException")
    assert family.record() is first and family.code == "AccessDenied"


GRANDCHILD_LOGS = {
    "format": "greenfetch-catalog/1",
    "types": {
        **CHILD_LOGS["types"],
        "logs.stream_events": {
            "operation": "GetLogEvents",
            "parent": "logs.streams",
            "each": {"logStreamName": "logStreamName"},
            "items": "events",
            "id": "eventId",
        },
    },
}


def test_a_denied_grandparent_gives_its_error_code_down_to_the_grandchild(tmp_path):
    """eu-west-2 denies every call: the parent type is denied, and its child and grandchild carry its
    error code into the region status store as it does (so ``--regions active`` treats the three
    alike), not only its status in the record."""
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(GRANDCHILD_LOGS))
    store = tmp_path / "status.json"
    with inventory_server(deny_regions=["eu-west-2"], items=1) as server:
        out = CliRunner().invoke(
            load_commands(),
            [
                *("--endpoint-url", server.url, "--region", REGION, "--max-attempts", "1", "inventory"),
                *("--accounts", "111111111111", "--role-name", ROLE, "--regions", "eu-west-2"),
                *("--status-store", str(store), "--types", "logs.stream_events,logs.log_groups"),
                *("--catalog", str(mine), "--cache-ttl", "0", "--no-progress"),
            ],
        )
    assert out.exit_code == 1, out.output
    records = {r["resource_type"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert records["logs.stream_events"]["status"] == records["logs.log_groups"]["status"] == "denied"
    rows = {row["service"]: row for row in json.loads(store.read_text())["regions"]}
    assert set(rows) == {"logs.log_groups", "logs.stream_events"}  # (logs.streams is not asked for)
    for row in rows.values():
        assert (row["status"], row["error_code"]) == ("denied", "AccessDeniedException"), row
