"""Inventory scenarios against moto's server over HTTP: several accounts (assume-role into other
account ids gives each its own backend), Organizations, regions, pagination, cache, sinks, CLI.

Account ids here start with 5550 so they never collide with other modules sharing the server.
"""

import json
import uuid

import pytest
from click.testing import CliRunner

from greenfetch import Config, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.cli._demo_estate import run_demo_inventory, seed_demo
from greenfetch.inventory import (
    AccountCredentials,
    DynamoDBSink,
    InventoryError,
    RegionStatusStore,
    accounts_from_dynamodb,
    accounts_from_list,
    accounts_from_organizations,
    assume_role,
    known_regions,
    record_items,
)
from greenfetch.inventory._cache import InventoryCache
from greenfetch.inventory._catalog import CATALOG, resolve_types
from greenfetch.inventory._fetch import Inventory

ROLE = "InventoryReader"


@pytest.fixture(scope="module")
def engine(moto_server):
    eng = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 32, "max_attempts": 2},
            environ={},
        )
    )
    yield eng
    eng.close()


def _creds(engine, account):
    creds = assume_role(engine, account, ROLE)
    assert creds is not None and {"AccessKeyId", "SecretAccessKey", "SessionToken"} <= set(creds)
    return creds


def _call(engine, account, service, operation, params, region="us-east-1"):
    result = engine.execute(
        Request(service, operation, params, region=region, credentials=_creds(engine, account))
    )
    assert result.ok, result.error
    return result.result


def _run(engine, accounts, types, regions, **kw):
    inv = Inventory(
        engine,
        accounts_from_list(accounts, role=ROLE),
        resolve_types(types),
        regions=regions,
        filter_offered=False,
        **kw,
    )
    return list(inv.run()), inv.summary


def _mine(records, key="IsDefault"):
    return [i for r in records for i in r["items"] if not i.get(key)]


def test_one_account_one_region(engine):
    vpc = _call(engine, "555000000001", "ec2", "CreateVpc", {"CidrBlock": "10.1.0.0/16"}, "us-east-2")["Vpc"]
    records, summary = _run(engine, ["555000000001"], "ec2.vpcs", ["us-east-2"])
    assert len(records) == 1
    rec = records[0]
    assert set(rec) == {"resource_type", "account", "region", "items", "status", "error"}
    assert (rec["resource_type"], rec["account"], rec["region"], rec["status"]) == (
        "ec2.vpcs",
        "555000000001",
        "us-east-2",
        "ok",
    )
    assert [v["VpcId"] for v in _mine(records)] == [vpc["VpcId"]]
    assert summary.accounts_ok == {"555000000001"} and not summary.failed


def test_many_accounts_regions_and_an_empty_account(engine, tmp_path):
    accounts = {"555000000011": "prod", "555000000012": "staging", "555000000013": "sandbox (empty)"}
    seeded = seed_demo(engine.config.endpoint_url, engine=engine, accounts=accounts)
    report = run_demo_inventory(
        engine.config.endpoint_url, engine=engine, accounts=list(accounts), out=str(tmp_path)
    )
    assert not report.failed, report.summary
    files = {p.split("/")[-1]: json.loads(open(p, encoding="utf-8").read()) for p in report.files}
    found = {}
    for name, records in files.items():
        rtype = name[:-5]
        items = [
            i
            for r in records
            for i in r["items"]
            if not (isinstance(i, dict) and (i.get("IsDefault") or i.get("DefaultForAz")))
        ]
        found[rtype] = len(items)
        assert {r["account"] for r in records} == set(accounts)
        assert all(r["status"] == "ok" for r in records)
        empty = [i for r in records if r["account"] == "555000000013" for i in r["items"]]
        assert all(isinstance(i, dict) and (i.get("IsDefault") or i.get("DefaultForAz")) for i in empty)
    assert found == seeded["expected"]
    buckets = [b for r in files["s3.buckets.json"] for b in r["items"]]
    assert {b["BucketRegion"] for b in buckets} == {"us-east-1", "eu-west-1"}
    assert all(b["Accessible"] is True for b in buckets)
    raw = (tmp_path / "ec2.vpcs.json").read_bytes()
    assert "café-eu-west-1-сервер".encode() in raw


def test_more_than_100_resources_are_paginated(engine):
    creds = _creds(engine, "555000000021")
    puts = [
        Request(
            "ssm",
            "PutParameter",
            {"Name": f"/inv/p{n:03d}", "Value": "v", "Type": "String"},
            region="eu-west-1",
            credentials=creds,
        )
        for n in range(120)
    ]
    assert all(r.ok for r in engine.batch_requests(puts, 16))
    records, _ = _run(engine, ["555000000021"], "ssm.parameters", ["eu-west-1"])
    names = [p["Name"] for p in records[0]["items"]]
    assert len(names) == 120 == len(set(names))


def test_accounts_from_organizations_active_members_with_exclusions(engine):
    creds = _creds(engine, "555000000031")
    call = lambda op, params: engine.execute(Request("organizations", op, params, credentials=creds))  # noqa: E731
    assert call("CreateOrganization", {"FeatureSet": "ALL"}).ok
    made = [
        call("CreateAccount", {"AccountName": f"member-{n}", "Email": f"m{n}@example.com"}).result[
            "CreateAccountStatus"
        ]["AccountId"]
        for n in range(3)
    ]
    accounts = accounts_from_organizations(engine, role=ROLE, credentials=creds, exclude=[made[0]])
    ids = {a.account_id for a in accounts}
    assert set(made[1:]) | {"555000000031"} <= ids and made[0] not in ids
    assert all(a.role == ROLE for a in accounts)
    assert {a.name for a in accounts} >= {"member-1", "member-2"}


def test_accounts_from_a_dynamodb_table(engine):
    table = f"targets-{uuid.uuid4().hex[:8]}"
    engine.execute(
        Request(
            "dynamodb",
            "CreateTable",
            {
                "TableName": table,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "accountId", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "accountId", "KeyType": "HASH"}],
            },
        )
    )
    for acct, name, role in [("555000000041", "prod", "Special"), ("555000000042", "dev", None)]:
        item = {"accountId": {"S": acct}, "accountName": {"S": name}}
        if role:
            item["roleName"] = {"S": role}
        assert engine.execute(Request("dynamodb", "PutItem", {"TableName": table, "Item": item})).ok
    accounts = sorted(accounts_from_dynamodb(engine, table, role=ROLE), key=lambda a: a.account_id)
    assert [(a.account_id, a.name, a.role) for a in accounts] == [
        ("555000000041", "prod", "Special"),
        ("555000000042", "dev", ROLE),
    ]
    engine.execute(Request("dynamodb", "PutItem", {"TableName": table, "Item": {"accountId": {"S": "oops"}}}))
    with pytest.raises(InventoryError, match="'oops' is not an AWS account id"):
        accounts_from_dynamodb(engine, table)
    with pytest.raises(InventoryError, match="no-such-table-xyz.*ResourceNotFoundException"):
        accounts_from_dynamodb(engine, "no-such-table-xyz")


def test_dynamodb_sink_writes_every_record_and_missing_table_is_clear(engine, tmp_path):
    table = f"inventory-{uuid.uuid4().hex[:8]}"
    engine.execute(
        Request(
            "dynamodb",
            "CreateTable",
            {
                "TableName": table,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            },
        )
    )
    records = [
        {
            "resource_type": "ec2.vpcs",
            "account": "555000000051",
            "region": "us-east-1",
            "items": [
                {"VpcId": f"vpc-{n}", "Tags": [{"Key": "Name", "Value": "café"}], "Ratio": 0.5}
                for n in range(60)
            ],
            "status": "ok",
            "error": None,
        }
    ]
    sink = DynamoDBSink(engine, table, dead_letter_path=tmp_path / "dead.jsonl")
    sink.check()
    report = sink.write(record_items(records, lambda t, i: CATALOG[t].id_of(i)))
    assert (report.written, report.failed, report.dead_letter_path) == (60, 0, None)
    scan = engine.execute(Request("dynamodb", "Scan", {"TableName": table}, paginate=True)).result
    assert scan["Count"] == 60
    assert json.loads(scan["Items"][0]["data"]["S"])["Tags"][0]["Value"] == "café"
    with pytest.raises(InventoryError, match="'no-such-inventory'.*create it first"):
        DynamoDBSink(engine, "no-such-inventory").check()


def test_cache_serves_the_second_run_without_calls(engine, tmp_path):
    _call(engine, "555000000061", "sqs", "CreateQueue", {"QueueName": "cached-q"}, "eu-west-1")
    cache = InventoryCache(600, tmp_path)
    first, s1 = _run(engine, ["555000000061"], "sqs.queues,iam.roles", ["eu-west-1"], cache=cache)
    second, s2 = _run(
        engine, ["555000000061"], "sqs.queues,iam.roles", ["eu-west-1"], cache=InventoryCache(600, tmp_path)
    )
    assert s1.calls >= 2 and s1.cached == 0
    assert s2.calls == 0 and s2.cached == 2
    key = lambda recs: sorted((r["resource_type"], json.dumps(r["items"], sort_keys=True)) for r in recs)  # noqa: E731
    assert key(first) == key(second)


def test_active_regions_skip_empty_regions_on_the_next_run(engine, tmp_path):
    _call(
        engine,
        "555000000071",
        "dynamodb",
        "CreateTable",
        {
            "TableName": "active-t",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        },
        "eu-west-1",
    )
    store = RegionStatusStore(tmp_path / "status.json")
    first, s1 = _run(engine, ["555000000071"], "dynamodb.tables", "active", status_store=store)
    assert len(first) > 5 and s1.regions_skipped == 0
    second, s2 = _run(
        engine,
        ["555000000071"],
        "dynamodb.tables",
        "active",
        status_store=RegionStatusStore(tmp_path / "status.json"),
    )
    assert [r["region"] for r in second] == ["eu-west-1"]
    assert s2.regions_skipped == len(first) - 1


def test_credentials_are_cached_per_account(engine):
    creds = AccountCredentials(engine, ROLE)
    got = creds.prefetch(["555000000081", "555000000082"])
    assert all(got.values()) and creds.assumed == 2
    assert creds.get("555000000081") is got["555000000081"] and creds.assumed == 2


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def cli_args(moto_server):
    return ["--endpoint-url", moto_server.url, "--region", "us-east-1", "--max-attempts", "1"]


def test_cli_inventory_writes_files_and_exits_0(engine, cli_args, tmp_path):
    _call(engine, "555000000091", "sns", "CreateTopic", {"Name": "cli-topic"}, "eu-west-1")
    out = CliRunner().invoke(
        load_commands(),
        [
            *cli_args,
            "inventory",
            "--accounts",
            "555000000091,555000000092",
            "--role-name",
            ROLE,
            "--regions",
            "eu-west-*",
            "--exclude-regions",
            "eu-west-2,eu-west-3",
            "--types",
            "sns.topics,iam.roles",
            "--out",
            str(tmp_path / "o"),
            "--format",
            "jsonl",
            "--cache-ttl",
            "0",
        ],
    )
    assert out.exit_code == 0, out.output
    lines = [
        json.loads(x) for x in (tmp_path / "o" / "inventory.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert {(r["resource_type"], r["account"], r["region"]) for r in lines} == {
        ("sns.topics", "555000000091", "eu-west-1"),
        ("sns.topics", "555000000092", "eu-west-1"),
        ("iam.roles", "555000000091", "global"),
        ("iam.roles", "555000000092", "global"),
    }
    assert "sns.topics" in out.stderr and "accounts: 2 ok" in out.stderr


def test_cli_inventory_on_stdout_prints_dates_as_its_files_do(engine, cli_args, tmp_path):
    _call(
        engine, "555000000094", "iam", "CreateRole", {"RoleName": "dated", "AssumeRolePolicyDocument": "{}"}
    )
    args = [
        *cli_args,
        "inventory",
        "--accounts",
        "555000000094",
        "--role-name",
        ROLE,
        "--regions",
        "us-east-1",
        "--types",
        "iam.roles",
        "--cache-ttl",
        "0",
    ]
    stdout = CliRunner().invoke(load_commands(), args)
    to_file = CliRunner().invoke(load_commands(), [*args, "--out", str(tmp_path / "o"), "--format", "jsonl"])
    assert stdout.exit_code == 0 and to_file.exit_code == 0, stdout.output + to_file.output
    (printed,) = [json.loads(line) for line in stdout.stdout.splitlines()]
    (written,) = [
        json.loads(x) for x in (tmp_path / "o" / "inventory.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    created = {role["RoleName"]: role["CreateDate"] for role in printed["items"]}
    assert created == {role["RoleName"]: role["CreateDate"] for role in written["items"]}
    assert created and all("T" in date for date in created.values())  # ISO-8601, not str(datetime)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--types", "ec2.vpcs,nope"], "unknown resource type 'nope'"),
        (["--accounts", "12345"], "'12345' is not an AWS account id"),
        (["--regions", "us-east-9"], "'us-east-9' is not an AWS region"),
        (["--role-name", "arn:aws-cn:iam::555000000093:role/R"], "partition 'aws-cn'"),
        (["--dynamodb-table", "no-such-inventory-table"], "no-such-inventory-table"),
        (
            ["--exclude-accounts", "555000000093"],
            "--exclude-accounts 555000000093 removes every account --accounts "
            "selected (1); nothing would be fetched",
        ),
        (["--exclude-accounts", "5550"], "--exclude-accounts '5550' is not an AWS account id"),
    ],
)
def test_cli_bad_input_exits_2_without_files(cli_args, tmp_path, args, message):
    base = [
        "inventory",
        "--accounts",
        "555000000093",
        "--role-name",
        ROLE,
        "--regions",
        "us-east-1",
        "--types",
        "ec2.vpcs",
        "--out",
        str(tmp_path / "o"),
    ]
    argv = list(base)
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    out = CliRunner().invoke(load_commands(), [*cli_args, *argv])
    assert out.exit_code == 2, out.output
    assert message in out.stderr and "Traceback" not in out.output
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_cli_org_with_no_account_left_exits_2_with_no_run(engine, cli_args, tmp_path):
    """`--accounts org` that resolves to nothing (every account excluded, or an empty OU) is one line and
    exit 2; it was exit 0 with an empty "finished" run. The CLI runs as an organization's management
    account here: that account's assumed-role credentials in the environment (moto keys them)."""
    creds = _creds(engine, "555000000131")
    call = lambda op, params: engine.execute(Request("organizations", op, params, credentials=creds))  # noqa: E731
    assert call("CreateOrganization", {"FeatureSet": "ALL"}).ok
    root = call("ListRoots", {}).result["Roots"][0]["Id"]
    empty_ou = call("CreateOrganizationalUnit", {"ParentId": root, "Name": "empty"}).result[
        "OrganizationalUnit"
    ]["Id"]
    env = {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }
    base = [
        *cli_args,
        "inventory",
        "--accounts",
        "org",
        "--role-name",
        ROLE,
        "--regions",
        "us-east-1",
        "--types",
        "ec2.vpcs",
        "--cache-ttl",
        "0",
    ]
    cases = [
        (
            ["--exclude-accounts", "555000000131", "--out", str(tmp_path / "a.db")],
            "Error: --exclude-accounts 555000000131 removes every account --accounts org selected (1); "
            "nothing would be fetched",
        ),
        (
            ["--org-ou", empty_ou, "--out", str(tmp_path / "b.db")],
            f"Error: --accounts org --org-ou {empty_ou} found no account to inventory",
        ),
    ]
    for extra, message in cases:
        out = CliRunner().invoke(load_commands(), [*base, *extra], env=env)
        assert out.exit_code == 2, out.output
        assert message in out.stderr and "Traceback" not in out.output
    assert list(tmp_path.iterdir()) == []  # no database, so no empty "finished" run in one


def test_cli_regions_for_a_service_that_does_not_exist_is_a_did_you_mean(cli_args):
    out = CliRunner().invoke(load_commands(), [*cli_args, "regions", "--service", "ec3"])
    assert out.exit_code == 2, out.output
    (line,) = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: --service: 'ec3' is not an AWS service (did you mean ") and "ec2" in line
    assert out.stdout == ""  # it listed every region
    ok = CliRunner().invoke(
        load_commands(), [*cli_args, "regions", "--service", "lambda", "--regions", "eu-*"]
    )
    assert ok.exit_code == 0 and "eu-west-1" in ok.stdout.split(), ok.output


def test_cli_catalog_and_cache_commands(tmp_path):
    runner = CliRunner()
    out = runner.invoke(load_commands(), ["catalog", "-o", "json"])
    assert out.exit_code == 0 and {r["name"] for r in json.loads(out.stdout) if r["tier"] == "core"} == set(
        CATALOG
    )
    InventoryCache(60, tmp_path).set("k", 1)
    info = runner.invoke(load_commands(), ["cache", "info", "--cache-dir", str(tmp_path)])
    assert "fresh_entries: 1" in info.stdout
    cleared = runner.invoke(load_commands(), ["cache", "clear", "--cache-dir", str(tmp_path)])
    assert cleared.stdout.strip() == "removed 1 cache entries"


def test_s3_cache_tier_and_s3_upload(engine, tmp_path):
    bucket = f"inv-cache-{uuid.uuid4().hex[:8]}"
    assert engine.execute(Request("s3", "CreateBucket", {"Bucket": bucket})).ok
    uri = f"s3://{bucket}/runs"
    with InventoryCache(600, tmp_path / "a", s3_uri=uri, engine=engine) as cache:
        cache.set("sig", [{"Name": "café"}])
    fresh = InventoryCache(600, tmp_path / "b", s3_uri=uri, engine=engine)  # another machine: nothing local
    assert fresh.get("sig") == [{"Name": "café"}] and fresh.hits["s3"] == 1
    assert fresh.info()["entries"] == 1  # promoted to the local tier
    from greenfetch.inventory import FileSink, upload_to_s3

    with FileSink(tmp_path / "out") as sink:
        sink.add(
            {
                "resource_type": "iam.roles",
                "account": "555000000101",
                "region": "global",
                "items": [],
                "status": "ok",
                "error": None,
            }
        )
        paths = sink.close()
    assert upload_to_s3(engine, paths, uri) == []
    listed = engine.execute(Request("s3", "ListObjectsV2", {"Bucket": bucket, "Prefix": "runs/iam"})).result
    assert [o["Key"] for o in listed["Contents"]] == ["runs/iam.roles.json"]


def test_region_status_store_in_dynamodb(engine):
    table = f"region-status-{uuid.uuid4().hex[:8]}"
    engine.execute(
        Request(
            "dynamodb",
            "CreateTable",
            {
                "TableName": table,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "scope", "AttributeType": "S"},
                    {"AttributeName": "region", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "scope", "KeyType": "HASH"},
                    {"AttributeName": "region", "KeyType": "RANGE"},
                ],
            },
        )
    )
    with RegionStatusStore(engine=engine, table=table) as store:
        store.update("555000000111", "drs", "us-east-1", "ok", count=4)
        store.update("555000000111", "drs", "eu-west-1", "unavailable", "UninitializedAccountException")
    again = RegionStatusStore(engine=engine, table=table)
    assert again.get("555000000111", "drs", "eu-west-1").error_code == "UninitializedAccountException"
    assert again.active_regions("555000000111", "drs", ["us-east-1", "eu-west-1", "ap-south-1"]) == [
        "us-east-1",
        "ap-south-1",
    ]
    assert again.invalidate("555000000111") == 2
    assert RegionStatusStore(engine=engine, table=table).get("555000000111", "drs", "us-east-1") is None


def test_cli_regions_lists_matching_and_offered_regions(cli_args):
    out = CliRunner().invoke(
        load_commands(), [*cli_args, "regions", "--regions", "eu-west-*", "--service", "ec2"]
    )
    assert out.exit_code == 0, out.output
    assert out.stdout.split() == ["eu-west-1", "eu-west-2", "eu-west-3"]
    bad = CliRunner().invoke(load_commands(), [*cli_args, "regions", "--regions", "mars-1"])
    assert bad.exit_code == 2 and "'mars-1' is not an AWS region" in bad.stderr


def test_active_regions_are_tracked_per_resource_type(engine, tmp_path):
    """ec2.key_pairs empty everywhere must not make ``active`` skip ec2.vpcs (moto's default VPCs)."""
    path = tmp_path / "status.json"
    keep = {"us-east-1", "eu-west-1", "ap-south-1"}
    others = [
        r for r in known_regions() if r not in keep
    ]  # fewer regions: moto seeds EC2 defaults per region
    first, _ = _run(
        engine,
        ["555000000121"],
        "ec2.vpcs,ec2.key_pairs",
        "active",
        exclude=others,
        status_store=RegionStatusStore(path),
    )
    vpc_regions = sorted(r["region"] for r in first if r["resource_type"] == "ec2.vpcs")
    assert vpc_regions == sorted(keep)
    second, summary = _run(
        engine,
        ["555000000121"],
        "ec2.vpcs,ec2.key_pairs",
        "active",
        exclude=others,
        status_store=RegionStatusStore(path),
    )
    assert sorted(r["region"] for r in second if r["resource_type"] == "ec2.vpcs") == vpc_regions
    assert [r for r in second if r["resource_type"] == "ec2.key_pairs"] == []
    assert summary.regions_skipped == len(keep)
