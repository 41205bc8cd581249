"""A user's own catalog file (``--catalog FILE``, ``GREENFETCH_CATALOG``) and tags for every type
(``--tags``), against moto's server over HTTP.

A user's overlay adds a type with per-item detail steps (DynamoDB DescribeTable per table) and the
details land in each item; a detail call that fails leaves its item with an error note while the
record stays ok; a bad row is exit 2 with one line naming it; the Resource Groups Tagging API's tags
are joined by ARN into the items of two types whose own APIs return none. Account ids start with 5554.
"""

import json

import pytest
from click.testing import CliRunner

from greenfetch import Config, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.inventory import InventoryError, assume_role, catalog

DETAILS, TAGS, ROLE = "555400000001", "555400000002", "Reader"
REGION = "us-east-1"

USER_CATALOG = {
    "format": "greenfetch-catalog/1",
    "about": "my tables, described",
    "types": {
        "dynamodb.table_details": {
            "operation": "ListTables",
            "items": "TableNames[].{TableName: @}",
            "id": "TableName",
            "details": [
                {
                    "operation": "DescribeTable",
                    "params": {"TableName": "TableName"},
                    "into": "Table",
                    "pick": "Table",
                },
                {
                    "operation": "DescribeTable",
                    "params": {"TableName": "{TableName}-gone"},
                    "into": "Shadow",
                    "pick": "Table.TableName",
                    "fail_value": False,
                },
            ],
        }
    },
}


@pytest.fixture(scope="module")
def moto(moto_server):
    return moto_server.url


@pytest.fixture(scope="module")
def engine(moto):
    eng = Engine(
        Config.resolve(
            {"endpoint_url": moto, "region": REGION, "concurrency": 16, "max_attempts": 1}, environ={}
        )
    )
    yield eng
    eng.close()


def _caller(engine, account):
    creds = assume_role(engine, account, ROLE)

    def call(service, operation, params):
        result = engine.execute(Request(service, operation, params, region=REGION, credentials=creds))
        assert result.ok, result.error
        return result.result

    return call


def _inventory(moto, account, types, *extra, env=None):
    args = ["--endpoint-url", moto, "--region", REGION, "--max-attempts", "1", "inventory"]
    args += ["--accounts", account, "--role-name", ROLE, "--regions", REGION, "--types", types]
    out = CliRunner().invoke(load_commands(), [*args, "--cache-ttl", "0", "--no-progress", *extra], env=env)
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return out, records


def _table(call, name):
    call(
        "dynamodb",
        "CreateTable",
        {
            "TableName": name,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def test_a_user_file_adds_a_type_whose_detail_steps_land_in_each_item(engine, moto, tmp_path):
    call = _caller(engine, DETAILS)
    for name in ("orders", "users", "events"):
        _table(call, name)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(USER_CATALOG))
    out, records = _inventory(moto, DETAILS, "dynamodb.table_details", "--catalog", str(path))
    assert out.exit_code == 0, out.output
    (rec,) = records
    assert rec["status"] == "ok"
    items = {i["TableName"]: i for i in rec["items"]}
    assert set(items) == {"orders", "users", "events"}
    for name, item in items.items():
        assert item["Table"]["TableName"] == name  # DescribeTable's answer, picked, in its item
        assert item["Table"]["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
        # the template's table does not exist: that item's note, not a failed type
        assert item["Shadow"] is False and item["ShadowError"] == "ResourceNotFoundException"
    # the run's calls count every detail call: the list, then DescribeTable and the template's for each table
    assert "1 fetches, 7 calls," in out.stderr
    # the environment variable reads the same file (flag > environment > default)
    out, records = _inventory(moto, DETAILS, "dynamodb.table_details", env={"GREENFETCH_CATALOG": str(path)})
    assert out.exit_code == 0, out.output
    assert {i["Table"]["TableName"] for i in records[0]["items"]} == {"orders", "users", "events"}


def test_a_user_file_changes_a_shipped_type_without_repeating_its_operation(tmp_path):
    path = tmp_path / "change.json"
    path.write_text(
        json.dumps(
            {
                "format": "greenfetch-catalog/1",
                "types": {
                    "iam.users": {
                        "details": [
                            {
                                "operation": "ListAccessKeys",
                                "params": {"UserName": "UserName"},
                                "into": "AccessKeys",
                                "pick": "AccessKeyMetadata",
                            }
                        ]
                    }
                },
                "deny": {"efs": {"DescribeFileSystems": "not mine: the storage team inventories it"}},
            }
        )
    )
    kinds = catalog(str(path))
    users = kinds["iam.users"]
    assert users.operation == "ListUsers" and users.tier == "core" and users.arn == "Arn"
    assert [d.operation for d in users.details] == ["ListAccessKeys"]
    assert "efs.file_systems" not in kinds and "efs.file_systems" in catalog(None)
    assert not catalog(None)["iam.users"].details  # the shipped catalog is untouched


BAD_ROWS = [
    (
        {"dynamodb.x": {"operation": "ListTables", "detials": []}},
        "types.dynamodb.x: unknown key 'detials' (did you mean details?)",
    ),
    (
        {
            "dynamodb.x": {
                "operation": "ListTables",
                "details": [{"operation": "DescribeTable", "params": {"TableName": "[["}, "into": "T"}],
            }
        },
        "types.dynamodb.x.details[0].params.TableName: '[[' is not a JMESPath expression",
    ),
    (
        {
            "dynamodb.x": {
                "operation": "ListTables",
                "details": [{"operation": "DescribeTable", "params": {}}],
            }
        },
        "types.dynamodb.x.details[0]: missing into",
    ),
    ({"DynamoDB.x": {"operation": "ListTables"}}, "types.DynamoDB.x: a type name is service.snake_noun"),
    ({"dynamodb.x": {"items": "TableNames"}}, 'types.dynamodb.x: "operation" is missing'),
]


@pytest.mark.parametrize(("types", "message"), BAD_ROWS)
def test_a_bad_row_is_exit_2_with_one_line_naming_it(moto, tmp_path, types, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "greenfetch-catalog/1", "types": types}))
    with pytest.raises(InventoryError, match=r"bad\.json"):
        catalog(str(path))
    out, records = _inventory(moto, DETAILS, "core", "--catalog", str(path))
    assert out.exit_code == 2 and not records
    line = out.stderr.strip()
    assert "\n" not in line and "Traceback" not in out.output
    assert line.startswith(f"Error: {path}: ") and message in line, line


def test_tags_from_the_tagging_api_land_in_items_of_two_types(engine, moto):
    call = _caller(engine, TAGS)
    tagged = call("sns", "CreateTopic", {"Name": "alerts", "Tags": [{"Key": "team", "Value": "ops"}]})[
        "TopicArn"
    ]
    bare = call("sns", "CreateTopic", {"Name": "untagged"})["TopicArn"]
    key = call("kms", "CreateKey", {"Tags": [{"TagKey": "cost-center", "TagValue": "42"}]})["KeyMetadata"][
        "Arn"
    ]
    out, records = _inventory(moto, TAGS, "sns.topics,kms.keys", "--tags")
    assert out.exit_code == 0, out.output
    items = {r["resource_type"]: r["items"] for r in records}
    topics = {i["TopicArn"]: i for i in items["sns.topics"]}
    assert topics[tagged]["tags"] == {"team": "ops"}
    assert topics[bare]["tags"] == {}  # known untagged: one query finds it across types
    assert {i["KeyArn"]: i["tags"] for i in items["kms.keys"]} == {key: {"cost-center": "42"}}
    assert "tags: 1 tagging API calls in " in out.stderr  # one account, one region: one call
    # off by default: no tags key, no tagging call
    out, records = _inventory(moto, TAGS, "sns.topics")
    assert out.exit_code == 0 and all("tags" not in i for r in records for i in r["items"])
