"""Pure record logic of the DRS sync: no sockets, no AWS. Budget: about 2 s."""

from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer
from hypothesis import given
from hypothesis import strategies as st

import greenfetch  # noqa: F401  (conftest imported it before anything else)
from greenfetch import Config, Engine, Request, Result
from greenfetch.drs import (
    build_response,
    enrich_server,
    instance_summary,
    parse_regions,
    region_outcome,
    to_dynamodb_item,
)
from greenfetch.drs._records import RegionOutcome, chunks, origin_of, tag_server
from greenfetch.inventory import Account, InventoryError, WriteReport
from greenfetch.testing._drs import source_server

REQ = Request("drs", "DescribeSourceServers", region="us-east-1")


def failed(code, retryable=False, guidance=None):
    return Result(
        0,
        REQ,
        error=f"drs.DescribeSourceServers: {code}: boom",
        error_code=code,
        retryable=retryable,
        guidance=guidance,
    )


@pytest.mark.parametrize(
    "code, status",
    [
        ("AccessDeniedException", "denied"),
        ("UnrecognizedClientException", "denied"),
        ("InvalidRequestException", "unavailable"),
        ("ThrottlingException", "throttled"),
        ("ServiceQuotaExceededException", "quota"),
        ("InternalServerException", "transient"),
        ("ConflictException", "error"),
        ("EndpointConnectionError", "transient"),
    ],
)
def test_region_outcome_statuses_come_from_the_classifier(code, status):
    outcome = region_outcome("111111111111", "us-east-1", failed(code))
    assert outcome.status == status and not outcome.ok and outcome.error_code == code
    if status in ("throttled", "quota", "denied", "unavailable", "transient"):
        assert outcome.guidance  # the classifier's guidance when the engine gave none


def test_region_outcome_success_and_empty():
    server = source_server("s-1", "111111111111", "us-east-1")
    assert region_outcome("1", "r", Result(0, REQ, result={"items": [server]})).status == "ok"
    empty = region_outcome("1", "r", Result(0, REQ, result={"items": []}))
    assert empty.status == "empty" and empty.ok
    assert empty.status_record() == {
        "account": "1",
        "region": "r",
        "status": "empty",
        "count": 0,
        "error_code": None,
        "error": None,
        "guidance": None,
        "retryable": False,
    }


INSTANCE = {
    "InstanceId": "i-1",
    "InstanceType": "t3.micro",
    "State": {"Name": "running"},
    "PrivateIpAddress": "10.0.0.5",
    "Tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}],
    "IamInstanceProfile": {"Arn": "arn:aws:iam::1:instance-profile/p", "Id": "AIPA1"},
    "NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-2", "Attachment": {"DeviceIndex": 1}, "Groups": [{"GroupId": "sg-2"}]},
        {
            "NetworkInterfaceId": "eni-1",
            "Attachment": {"DeviceIndex": 0},
            "PrivateIpAddress": "10.0.0.5",
            "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.5"}],
            "SubnetId": "subnet-1",
            "VpcId": "vpc-1",
            "MacAddress": "02:00",
            "Groups": [{"GroupId": "sg-1"}],
        },
    ],
}


def test_instance_summary_keeps_interfaces_tags_profile():
    summary = instance_summary(INSTANCE)
    assert [n["networkInterfaceId"] for n in summary["networkInterfaces"]] == [
        "eni-1",
        "eni-2",
    ]  # device order
    assert summary["networkInterfaces"][0]["securityGroups"] == ["sg-1"]
    assert summary["tags"] == {"a": "1", "b": "2"}
    assert summary["instanceProfile"] == {"arn": "arn:aws:iam::1:instance-profile/p", "id": "AIPA1"}
    assert instance_summary({"InstanceId": "i-2"})["instanceProfile"] is None


def record(instance_id=None, origin=None):
    server = source_server("s-1", "111111111111", "us-east-1", instance_id=instance_id, origin_account=origin)
    return tag_server(server, "111111111111", "Prod", "us-east-1", "2026-01-01T00:00:00+00:00")


def test_enrich_server_every_case():
    assert enrich_server(record("i-1"), {"i-1": INSTANCE}, {})["ec2"]["status"] == "enriched"
    assert enrich_server(record("i-9"), {"i-1": INSTANCE}, {})["ec2"] == {
        "status": "instance_not_found",
        "instanceId": "i-9",
    }
    failed_query = enrich_server(
        record("i-9", origin="222222222222"), {}, {("222222222222", "us-east-1"): "denied"}
    )
    assert failed_query["ec2"] == {"status": "query_failed", "instanceId": "i-9", "error": "denied"}
    assert enrich_server(record(), {}, {})["ec2"] == {"status": "no_instance_id"}


def test_origin_defaults_to_where_drs_is():
    assert origin_of(record()) == ("111111111111", "us-east-1")
    assert origin_of(record("i-1", origin="222222222222")) == ("222222222222", "us-east-1")


server_ids = st.text("abcdef0123456789", min_size=3, max_size=17)


@given(st.lists(st.tuples(server_ids, st.booleans(), st.booleans()), max_size=30))
def test_enrichment_never_loses_drs_fields(rows):
    instances = {
        f"i-{sid}": {**INSTANCE, "InstanceId": f"i-{sid}"} for sid, has, found in rows if has and found
    }
    for sid, has, _ in rows:
        rec = tag_server(
            source_server(f"s-{sid}", "1" * 12, "us-east-1", instance_id=f"i-{sid}" if has else None),
            "1" * 12,
            "",
            "us-east-1",
            "t",
        )
        out = enrich_server(rec, instances, {})
        assert {k: v for k, v in out.items() if k != "ec2"} == rec
        expected = (
            "no_instance_id" if not has else "enriched" if f"i-{sid}" in instances else "instance_not_found"
        )
        assert out["ec2"]["status"] == expected


@given(st.lists(st.integers(), max_size=200), st.integers(min_value=1, max_value=30))
def test_chunks_keep_order_and_bound_size(items, size):
    parts = chunks(items, size)
    assert [x for part in parts for x in part] == items
    assert all(0 < len(part) <= size for part in parts)
    assert all(len(part) == size for part in parts[:-1])


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(10**12), 10**12)
        | st.text(max_size=8)
        | st.floats(allow_nan=False, allow_infinity=False, width=32),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_dynamodb_item_round_trips(value):
    item = to_dynamodb_item({"sourceServerID": "s-1", "value": value})
    back = TypeDeserializer().deserialize(item["value"])

    def plain(v):
        if isinstance(v, Decimal):
            return float(v)
        if isinstance(v, float):
            return float(Decimal(repr(v)))
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    assert plain(back) == plain(value)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("active", "active"),
        (" us-east-1 , eu-west-1,us-east-1", ["us-east-1", "eu-west-1"]),
        (["ap-southeast-2"], ["ap-southeast-2"]),
    ],
)
def test_parse_regions(spec, expected):
    assert parse_regions(spec) == expected


@pytest.mark.parametrize("spec", ["", "us-east-1,mars", "*", ["US-EAST-1"]])
def test_parse_regions_rejects_with_the_bad_value(spec):
    with pytest.raises(InventoryError, match="active"):
        parse_regions(spec)


@pytest.fixture(scope="module")
def engine():
    eng = Engine(Config.resolve({"region": "us-east-1"}))
    yield eng
    eng.close()


def test_build_response_codes(engine):
    account = Account("111111111111", name="Prod")
    ok = RegionOutcome("111111111111", "us-east-1", "ok", [{"sourceServerID": "s-1"}])
    bad = RegionOutcome(
        "111111111111", "eu-west-1", "throttled", [], "ThrottlingException", "slow down", "back off", True
    )
    clean = build_response(
        engine, "t", [account], None, [ok], [{"ec2": {"status": "enriched"}}], WriteReport(1, 0, None)
    )
    assert clean["statusCode"] == 200 and clean["errors"] == []
    assert clean["totals"] == {
        "accounts": 1,
        "accountsFailed": 0,
        "regions": 1,
        "regionsFailed": 0,
        "servers": 1,
        "enriched": 1,
        "written": 1,
        "failed": 0,
    }
    partial = build_response(
        engine, "t", [account], None, [ok, bad], [{}], WriteReport(0, 1, "/tmp/dl.jsonl")
    )
    assert partial["statusCode"] == 207
    assert [e["code"] for e in partial["errors"]] == ["ThrottlingException", "WriteFailed"]
    assert "/tmp/dl.jsonl" in partial["errors"][1]["message"]
    fatal = build_response(engine, "t", [], None, [], [], None, fatal="cannot read table 'x'")
    assert fatal["statusCode"] == 500 and fatal["errors"][0]["message"] == "cannot read table 'x'"


def test_active_regions_skip_what_the_store_rules_out(engine, tmp_path):
    from greenfetch.drs import resolve_regions
    from greenfetch.inventory import RegionStatusStore

    store = RegionStatusStore(tmp_path / "status.json", clock=lambda: 1000.0)
    store.update("111111111111", "drs", "us-east-1", "empty")
    store.update("111111111111", "drs", "us-west-2", "error", "ThrottlingException")  # errors never skip
    regions = resolve_regions(engine, "active", [Account("111111111111"), Account("222222222222")], store)
    assert "us-east-1" not in regions["111111111111"] and "us-west-2" in regions["111111111111"]
    assert "us-east-1" in regions["222222222222"]  # per account
    assert resolve_regions(engine, "eu-west-1,us-east-1", [Account("111111111111")]) == {
        "111111111111": ["eu-west-1", "us-east-1"]
    }


def test_client_budget_bounds_but_covers_concurrency():
    from greenfetch.drs import client_budget

    assert client_budget(10) == 64 and client_budget(50) == 100 and client_budget(300) == 600


def test_build_response_reports_accounts_without_credentials(engine):
    from greenfetch.inventory import AssumeStatus

    class Creds:  # the one method build_response reads from AccountCredentials
        def status(self, account):
            return AssumeStatus(
                account.account_id,
                "arn:aws:iam::222222222222:role/R",
                False,
                "denied",
                "AccessDenied",
                "cannot assume arn:aws:iam::222222222222:role/R: sts.AssumeRole: ...",
            )

    response = build_response(
        engine, "t", [Account("222222222222")], Creds(), [], [], WriteReport(0, 0, None)
    )
    assert response["statusCode"] == 207
    assert response["accounts"][0]["credentials"] == "denied" and response["totals"]["accountsFailed"] == 1
    assert (
        response["errors"][0]["code"] == "AccessDenied"
        and "cannot assume" in response["errors"][0]["message"]
    )
