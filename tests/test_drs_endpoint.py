"""The loopback DRS endpoint, spoken to by botocore through the engine. Budget: about 4 s."""

import pytest

import greenfetch  # noqa: F401  (conftest imported it before anything else)
from greenfetch import Config, Engine, Request
from greenfetch.drs import query_region
from greenfetch.inventory import assume_role
from greenfetch.testing._drs import ERROR_CLASSES, DrsServer, source_server

ACCOUNT = "123456789012"  # moto's default account: the plain "testing" key belongs to it
OTHER = "330000000001"
STATUS = {
    "AccessDeniedException": "denied",
    "UnrecognizedClientException": "denied",
    "InvalidRequestException": "unavailable",
    "ThrottlingException": "throttled",
    "ServiceQuotaExceededException": "quota",
    "InternalServerException": "transient",
    "ClientError": "error",
    "ConnectionFailure": "transient",
}  # a closed connection: botocore's ConnectionClosedError


@pytest.fixture(scope="module")
def drs(moto_server):
    server = DrsServer(sts_url=moto_server.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def engine(moto_server, drs, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL_DRS", drs.url
    )  # what query_region reaches: no endpoint_url in the call
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    eng = Engine(Config.resolve({"max_attempts": 1}))
    yield eng
    eng.close()


def describe(engine, drs, region, credentials=None, **params):
    return engine.execute(
        Request(
            "drs",
            "DescribeSourceServers",
            params,
            region=region,
            endpoint_url=drs.url,
            credentials=credentials,
            paginate=True,
        )
    )


def test_pages_follow_next_token(engine, drs):
    servers = [source_server(f"s-{i:017x}", ACCOUNT, "ap-south-1") for i in range(23)]
    drs.seed({ACCOUNT: {"ap-south-1": servers}})
    before = drs.calls()["by_scope"].get(f"{ACCOUNT}/ap-south-1", 0)
    result = describe(engine, drs, "ap-south-1", maxResults=5)
    assert [s["sourceServerID"] for s in result.result["items"]] == [s["sourceServerID"] for s in servers]
    assert drs.calls()["by_scope"][f"{ACCOUNT}/ap-south-1"] - before == 5  # 23 servers, 5 a page


def test_account_from_access_key_and_region_from_scope(engine, drs):
    mine = source_server("s-00000000000000aaa", OTHER, "sa-east-1")
    drs.seed({OTHER: {"sa-east-1": [mine]}})
    creds = assume_role(engine, OTHER, "DRSInventoryReader")
    assert describe(engine, drs, "sa-east-1", creds).result["items"] == [mine]
    assert describe(engine, drs, "sa-east-1").result["items"] == []  # the caller's own account has none
    assert describe(engine, drs, "ca-central-1", creds).result["items"] == []  # nor another region


def test_unknown_access_key_is_unrecognized(engine):
    # moto's STS answers every key (unknown ones with its default account), so this endpoint asks nobody
    with DrsServer() as url:
        server = DrsServer.__new__(DrsServer)
        server.url = url
        server_known = {"AKIAKNOWN00000000000": ACCOUNT}
        server.seed(keys=server_known)
        fake = {"AccessKeyId": "ASIAUNKNOWNKEY000000", "SecretAccessKey": "x", "SessionToken": "y"}
        known = {"AccessKeyId": "AKIAKNOWN00000000000", "SecretAccessKey": "x"}
        assert describe(engine, server, "us-east-1", fake).error_code == "UnrecognizedClientException"
        assert describe(engine, server, "us-east-1", known).ok


def test_filters_by_source_server_ids(engine, drs):
    servers = [source_server(f"s-{i:017x}", ACCOUNT, "eu-south-1") for i in range(3)]
    drs.seed({ACCOUNT: {"eu-south-1": servers}})
    result = describe(engine, drs, "eu-south-1", filters={"sourceServerIDs": [servers[1]["sourceServerID"]]})
    assert result.result["items"] == [servers[1]]


@pytest.mark.parametrize("kind", sorted(ERROR_CLASSES))
def test_each_error_class_injectable_per_region(engine, drs, kind):
    region = "me-south-1"
    drs.seed(errors={ACCOUNT: {region: kind}})
    try:
        outcome = query_region(engine, ACCOUNT, region, None)
        healthy = query_region(engine, ACCOUNT, "af-south-1", None)
    finally:
        drs.seed(errors={ACCOUNT: {region: "ClientError"}})  # leave a known state for the next case
    status, code, _ = ERROR_CLASSES[kind]
    if status:
        assert outcome.error_code == code
        assert outcome.error.startswith(f"drs.DescribeSourceServers: {code}: ")
    else:
        assert "Connection" in outcome.error_code
    assert outcome.status == STATUS[kind] and not outcome.ok and outcome.servers == []
    if kind == "ThrottlingException":
        assert outcome.retryable and "back off" in outcome.guidance
    if kind == "ServiceQuotaExceededException":
        assert "quota increase" in outcome.guidance
    assert healthy.ok


def test_seed_rejects_unknown_error_class(drs):
    with pytest.raises(ValueError, match="BogusException.*valid: AccessDeniedException"):
        drs.seed(errors={ACCOUNT: {"us-east-1": "BogusException"}})


def test_latency_injected_per_region(engine, drs):
    drs.seed(region_latency={"il-central-1": 0.2})
    slow = describe(engine, drs, "il-central-1")
    assert slow.ok and slow.duration_ms >= 200  # a lower bound only: the server slept before answering
