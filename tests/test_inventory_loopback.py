"""Inventory failure scenarios on the loopback server (greenfetch.testing._inventory_pages): a role
that cannot be assumed, a region that denies, a region that throttles, DynamoDB UnprocessedItems."""

import json
import uuid
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, Request
from greenfetch.inventory import AccountCredentials, DynamoDBSink, accounts_from_list
from greenfetch.inventory._catalog import resolve_types
from greenfetch.inventory._fetch import Inventory
from greenfetch.testing import inventory_server

PAGES = {
    "deny_assume": ["999999999999"],
    "deny_regions": ["eu-west-2"],
    "throttle_regions": ["eu-west-1"],
    "unprocessed": 7,
    "items": 3,
}


@pytest.fixture(scope="module")
def server():
    with inventory_server(**PAGES) as srv:
        yield srv


@pytest.fixture
def engine(server):
    eng = Engine(
        Config.resolve(
            {"endpoint_url": server.url, "region": "us-east-1", "max_attempts": 2, "concurrency": 16},
            environ={},
        )
    )
    yield eng
    eng.close()


def _by_key(records):
    return {(r["resource_type"], r["account"], r["region"]): r for r in records}


def test_failed_role_denied_region_and_throttled_region_do_not_stop_the_rest(engine, server):
    accounts = accounts_from_list("111111111111,999999999999,222222222222", role="Reader")
    types = resolve_types("ec2.vpcs,dynamodb.tables,lambda.functions")
    inv = Inventory(
        engine, accounts, types, regions=["us-east-1", "eu-west-1", "eu-west-2"], filter_offered=False
    )
    records = _by_key(inv.run())
    for rtype in ("ec2.vpcs", "dynamodb.tables", "lambda.functions"):
        for account in ("111111111111", "222222222222"):
            assert records[(rtype, account, "us-east-1")]["status"] == "ok"
            assert len(records[(rtype, account, "us-east-1")]["items"]) == 3
            assert records[(rtype, account, "eu-west-2")]["status"] == "denied"
            throttled = records[(rtype, account, "eu-west-1")]
            assert throttled["status"] == "throttled" and throttled["items"] == []
            assert "Rate exceeded" in throttled["error"]
        failed = records[(rtype, "999999999999", "*")]
        assert failed["status"] == "denied" and "sts.AssumeRole: AccessDenied" in failed["error"]
    assert len(records) == 3 * 2 * 3 + 3
    summary = inv.summary.to_dict()
    assert list(summary["accounts_failed"]) == ["999999999999"] and summary["accounts_ok"] == 2
    assert summary["throttled"] == 6
    assert "loopback-secret" not in json.dumps(list(records.values()))  # no secret in any record


def test_each_account_is_given_a_secret_and_a_session_token_of_its_own_as_aws_gives(engine):
    """The benchmarks count what a real inventory pays only if the server's accounts are AWS's: one
    secret for every account would let a signing key serve them all, a short token would hide the
    hashing of a real one (docs/performance/inventory-cost.md, part 13)."""
    creds = AccountCredentials(engine, "Reader")
    one, two = (creds.get(a).get_frozen_credentials() for a in ("111111111111", "222222222222"))
    assert one.secret_key != two.secret_key
    assert one.token != two.token and min(len(one.token), len(two.token)) >= 700


def test_credentials_are_reassumed_before_expiry(engine):
    clock = [
        datetime(2098, 12, 31, 23, 0, tzinfo=timezone.utc).timestamp()
    ]  # the server's creds end 2099-01-01
    creds = AccountCredentials(engine, "Reader", refresh_margin=300, clock=lambda: clock[0])
    first = creds.get("111111111111")
    assert first.get_frozen_credentials().access_key == "ASIA111111111111" and creds.assumed == 1
    assert first.account_id == "111111111111"
    assert creds.get("111111111111") is first and creds.assumed == 1
    clock[0] += 3600 - 301  # not yet within the refresh margin
    first.get_frozen_credentials()
    assert creds.assumed == 1
    clock[0] += 2  # within it: the next signing assumes again, the same live object
    first.get_frozen_credentials()
    assert creds.assumed == 2 and creds.get("111111111111") is first
    assert creds.get("999999999999") is None and creds.status("999999999999").error_code == "AccessDenied"


def test_dynamodb_unprocessed_items_are_retried_and_poison_goes_to_dead_letters(engine, tmp_path):
    sleeps = []
    sink = DynamoDBSink(
        engine,
        "inv",
        dead_letter_path=tmp_path / "dead.jsonl",
        max_attempts=8,
        sleep=sleeps.append,
        rng=lambda: 1.0,
    )
    items = [{"pk": f"acct#{n}", "sk": str(n), "v": n} for n in range(100)]
    items += [{"pk": f"poison#{n}", "sk": str(n)} for n in range(3)]
    report = sink.write(items)
    assert (report.written, report.failed) == (100, 3)
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert sorted(d["item"]["pk"]["S"] for d in dead) == ["poison#0", "poison#1", "poison#2"]
    assert report.rounds == 8 and sleeps == sorted(sleeps) and sleeps[0] > 0  # exponential backoff
    stored = engine.execute(Request("dynamodb", "Scan", {"TableName": "inv"})).result["Items"]
    assert sorted(int(i["v"]["N"]) for i in stored if "v" in i) == list(range(100))  # nothing lost


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(good=st.integers(0, 80), poison=st.integers(0, 4), attempts=st.integers(1, 6))
def test_dynamodb_sink_never_loses_an_item(engine, tmp_path, good, poison, attempts):
    """Whatever the retry budget: written + failed = items given, the server holds exactly the written
    ones, and every failed item is in the dead-letter file."""
    run = uuid.uuid4().hex[:8]
    dead = tmp_path / f"dead-{run}.jsonl"
    sink = DynamoDBSink(engine, "inv", dead_letter_path=dead, max_attempts=attempts, sleep=lambda s: None)
    items = [{"pk": f"{run}#{n}", "sk": str(n)} for n in range(good)]
    items += [{"pk": f"{run}#poison{n}", "sk": str(n)} for n in range(poison)]
    report = sink.write(items)
    assert report.written + report.failed == len(items)
    stored = engine.execute(Request("dynamodb", "Scan", {"TableName": "inv"})).result["Items"]
    assert len([i for i in stored if i["pk"]["S"].startswith(f"{run}#")]) == report.written
    lines = dead.read_text().splitlines() if dead.exists() else []
    assert len(lines) == report.failed >= poison


def test_cli_exit_1_when_an_account_fails_and_the_rest_is_written(server, tmp_path):
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    out = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            server.url,
            "--region",
            "us-east-1",
            "--max-attempts",
            "1",
            "inventory",
            "--accounts",
            "111111111111,999999999999",
            "--role-name",
            "Reader",
            "--regions",
            "us-east-1",
            "--types",
            "dynamodb.tables",
            "--out",
            str(tmp_path),
            "--cache-ttl",
            "0",
        ],
    )
    assert out.exit_code == 1, out.output
    records = json.loads((tmp_path / "dynamodb.tables.json").read_text(encoding="utf-8"))
    assert {(r["account"], r["region"], r["status"]) for r in records} == {
        ("111111111111", "us-east-1", "ok"),
        ("999999999999", "*", "denied"),
    }
    assert "account 999999999999: cannot assume" in out.stderr


def test_a_missed_pages_cache_key_is_made_once_from_lookup_to_store(engine, tmp_path, monkeypatch):
    """With a TTL over 0 a unit's cache key is made for its lookup and kept for its store (the
    signature's canonical text and SHA-256 once a unit, not twice); the page is stored under it and
    the next run reads it back."""
    from greenfetch.inventory import InventoryCache

    made: list[str] = []
    signature = Request.signature

    def counted(self):
        made.append(self.operation)
        return signature.fget(self)

    accounts = accounts_from_list("111111111111,222222222222", role="Reader")
    types = resolve_types("ec2.vpcs,dynamodb.tables")
    regions = ["us-east-1", "ap-south-1"]
    cache = InventoryCache(3600, tmp_path / "cache")
    inv = Inventory(engine, accounts, types, regions=regions, filter_offered=False, cache=cache)
    monkeypatch.setattr(Request, "signature", property(counted))
    records = list(inv.run())
    units = [r for r in records if r["status"] == "ok"]
    assert len(units) == 2 * 2 * 2
    assert sorted(made) == sorted(["DescribeVpcs", "ListTables"] * 4)  # one a unit (main: two)
    again = Inventory(engine, accounts, types, regions=regions, filter_offered=False, cache=cache)
    read = _by_key(again.run())
    assert {k: r["items"] for k, r in read.items()} == {k: r["items"] for k, r in _by_key(records).items()}
    assert again.summary.to_dict()["cached"] == 8  # stored under the key the lookup made
