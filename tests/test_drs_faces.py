"""The DRS sync's faces: the Lambda handler with a realistic scheduled event, and ``greenfetch drs-sync``.

In-process (gevent engine) against moto and the loopback DRS endpoint. Budget: about 6 s.
"""

import json

import pytest
from click.testing import CliRunner

import greenfetch  # noqa: F401  (conftest imported it before anything else)
from greenfetch import aws_lambda
from greenfetch.cli import load_commands
from greenfetch.testing._drs import DrsEstate, DrsServer

OK, DENIED, TARGETS = "320000000001", "320000000002", "drs-faces-targets"


@pytest.fixture(scope="module")
def estate(moto_server):
    drs = DrsServer(sts_url=moto_server.url)
    drs.start()
    try:
        world = DrsEstate(moto_server.url, drs)
        world.targets_table(TARGETS, [(OK, "Production"), (DENIED, "Locked")])
        world.targets_table("drs-faces-bad-role", [(OK, "Production", "not a role name!")])
        ids = world.instances(OK, "us-east-1", 2, tags={"Name": "web"})
        world.servers(OK, "us-east-1", 2, instance_ids=ids)
        world.servers(OK, "eu-west-1", 1)
        drs.seed(
            errors={DENIED: {"us-east-1": "AccessDeniedException", "eu-west-1": "AccessDeniedException"}}
        )
        for name in ("drs-faces-lambda", "drs-faces-cli"):
            world.inventory_table(name)
        yield world
    finally:
        drs.stop()


@pytest.fixture
def aws_env(estate, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", estate.moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DRS", estate.drs.url)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("GREENFETCH_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("GREENFETCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(greenfetch._api, "_default", None)  # a fresh process-wide engine per test
    return estate


def scheduled_event(**detail):
    """What an EventBridge schedule delivers, with the action and options in ``detail``."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-03-01T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/drs-inventory-sync"],
        "detail": {"action": "sync_source_server_inventory", **detail},
    }


def test_lambda_scheduled_sync(aws_env, monkeypatch):
    monkeypatch.setenv("GREENFETCH_DRS_ROLE_NAME", "DRSInventoryReader")  # environment fallback for an option
    event = scheduled_event(
        targetsTable=TARGETS, inventoryTable="drs-faces-lambda", regions=["us-east-1", "eu-west-1"]
    )
    response = aws_lambda.handler(event, None)
    assert response["statusCode"] == 207  # one account denied, the other synced
    assert response["totals"] == {
        "accounts": 2,
        "accountsFailed": 0,
        "regions": 4,
        "regionsFailed": 2,
        "servers": 3,
        "enriched": 2,
        "written": 3,
        "failed": 0,
    }
    by_account = {a["accountId"]: a for a in response["accounts"]}
    assert by_account[OK]["regions"]["us-east-1"]["count"] == 2
    assert {r["status"] for r in by_account[DENIED]["regions"].values()} == {"denied"}
    assert {(e["account"], e["code"]) for e in response["errors"]} == {(DENIED, "AccessDeniedException")}
    items = aws_env.scan("drs-faces-lambda")
    assert len(items) == 3 and {i["accountId"]["S"] for i in items} == {OK}
    assert json.dumps(response)  # the response is plain JSON, as Lambda must return it
    config = aws_lambda.engine().config  # the Lambda profile: /tmp-style cache dir from env, wide fan-out
    assert config.concurrency == 50 and config.read_timeout == 30.0


def test_lambda_engine_reused_between_invocations(aws_env):
    event = scheduled_event(
        targetsTable=TARGETS,
        inventoryTable="drs-faces-lambda",
        regions="us-east-1",
        roleName="DRSInventoryReader",
    )
    aws_lambda.handler(event, None)
    first = aws_lambda.engine()
    assert aws_lambda.handler(event, None)["statusCode"] == 207
    assert aws_lambda.engine() is first


@pytest.mark.parametrize(
    "event, fragment",
    [
        ({"action": "reboot_everything"}, "unknown action 'reboot_everything'"),
        (
            {"action": "sync_source_server_inventory", "inventoryTable": "x"},
            "targetsTable and inventoryTable",
        ),
        (
            {
                "action": "sync_source_server_inventory",
                "targetsTable": "a",
                "inventoryTable": "b",
                "regions": "moon-1",
            },
            "moon-1",
        ),
        (
            {
                "action": "sync_source_server_inventory",
                "targetsTable": "a",
                "inventoryTable": "b",
                "regions": "us-east-1",
                "concurrency": "lots",
            },
            "'lots'",
        ),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_lambda_bad_event(aws_env, event, fragment):
    response = aws_lambda.handler(event, None)
    assert response["statusCode"] == 400 and fragment in response["errors"][0]["message"]


def test_lambda_missing_targets_table_is_500_with_reason(aws_env):
    response = aws_lambda.handler(
        scheduled_event(targetsTable="no-such-table", inventoryTable="x", regions="us-east-1"), None
    )
    assert response["statusCode"] == 500 and "no-such-table" in response["errors"][0]["message"]


def test_lambda_malformed_role_in_targets_table_is_500_naming_it(aws_env):
    response = aws_lambda.handler(
        scheduled_event(targetsTable="drs-faces-bad-role", inventoryTable="x", regions="us-east-1"), None
    )
    assert response["statusCode"] == 500 and "not a role name!" in response["errors"][0]["message"]


def test_lambda_inventory_action(aws_env):
    event = {
        "action": "inventory",
        "accounts": [OK],
        "roleName": "DRSInventoryReader",
        "regions": ["us-east-1"],
        "types": "ec2.instances",
    }
    response = aws_lambda.handler(event, None)
    assert response["statusCode"] == 200, response["errors"]
    assert response["summary"]["resources"] == {"ec2.instances": 2}


def test_cli_drs_sync(aws_env, tmp_path):
    out = tmp_path / "sync.json"
    result = CliRunner().invoke(
        load_commands(),
        [
            "drs-sync",
            "--targets-table",
            TARGETS,
            "--inventory-table",
            "drs-faces-cli",
            "--role-name",
            "DRSInventoryReader",
            "--regions",
            "us-east-1,eu-west-1",
            "--status-file",
            str(tmp_path / "status.json"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1, result.output  # some regions failed; the rest is written
    response = json.loads(result.stdout)
    assert response["totals"]["written"] == 3
    assert f"{DENIED}/us-east-1: drs.DescribeSourceServers: AccessDeniedException" in result.stderr
    document = json.loads(out.read_text())
    assert len(document["items"]) == 3 and len(document["statuses"]) == 4
    stored = json.loads((tmp_path / "status.json").read_text())["regions"]
    assert {(r["account"], r["region"], r["status"]) for r in stored} >= {
        (DENIED, "us-east-1", "denied"),
        (OK, "us-east-1", "ok"),
    }


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--regions", "us-east-1,nowhere"], "nowhere"),
        (["--status-file", "a.json", "--status-table", "t"], "choose one"),
    ],
)
def test_cli_bad_usage(aws_env, args, fragment):
    result = CliRunner().invoke(
        load_commands(), ["drs-sync", "--targets-table", TARGETS, "--inventory-table", "drs-faces-cli", *args]
    )
    assert result.exit_code == 2 and fragment in result.output
    assert "Traceback" not in result.output
