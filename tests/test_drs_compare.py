"""The DRS sync on gevent and on threads: identical output across the ten scenarios of seed 002.

One world (moto for STS, DynamoDB and EC2; the loopback DRS endpoint for DRS) is built once; then one
child process per engine runs all ten scenarios (``python -m greenfetch.drs``), both at the same
time. Each scenario writes to its own inventory table and region status file per engine, so the
two runs can be compared item for item. Budget: about 20 s for the module on 2 shared cores.

Allowed differences (and only these): ``response.engine`` names the engine; each engine writes its
own inventory table and status file (the table names differ, their contents may not); region
status ``checked_at`` timestamps differ (wall clock of each run).
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import greenfetch  # noqa: F401  (conftest imported it before anything else)
from greenfetch.testing._drs import DrsEstate, DrsServer

ENGINES = ("gevent", "threads")
SCENARIOS = (
    "empty",
    "single",
    "many",
    "no_servers",
    "access_denied",
    "throttling",
    "mixed_regions",
    "large",
    "cross_account",
    "partial_ec2",
)
NOW = "2026-03-01T12:00:00+00:00"
ERROR_REGIONS = {  # the eight error classes of seed 001, one region each
    "us-east-2": "AccessDeniedException",
    "us-west-1": "UnrecognizedClientException",
    "us-west-2": "InvalidRequestException",
    "eu-west-1": "ThrottlingException",
    "eu-west-2": "ServiceQuotaExceededException",
    "eu-west-3": "InternalServerException",
    "eu-central-1": "ClientError",
    "eu-north-1": "ConnectionFailure",
}
EXPECTED_STATUS = {
    "AccessDeniedException": "denied",
    "UnrecognizedClientException": "denied",
    "InvalidRequestException": "unavailable",
    "ThrottlingException": "throttled",
    "ServiceQuotaExceededException": "quota",
    "InternalServerException": "transient",
    "ClientError": "error",
}


def acct(scenario: int, n: int) -> str:
    return f"31{scenario:02d}000000{n:02d}"


def build_world(estate: DrsEstate, tmp) -> dict:
    """Seed moto and the DRS endpoint for every scenario; return the runs per engine and facts to check."""
    facts: dict = {}
    runs: dict = {e: [] for e in ENGINES}

    def scenario(name: str, accounts: list[tuple[str, str]], regions, **extra) -> None:
        estate.targets_table(f"drs-targets-{name}", accounts)
        for engine in ENGINES:
            estate.inventory_table(f"drs-inv-{name}-{engine}")
            runs[engine].append(
                {
                    "name": name,
                    "now": NOW,
                    "status_file": str(tmp / f"status-{name}-{engine}.json"),
                    "options": {
                        "targets_table": f"drs-targets-{name}",
                        "inventory_table": f"drs-inv-{name}-{engine}",
                        "role_name": "DRSInventoryReader",
                        "regions": regions,
                        "dead_letter_dir": str(tmp),
                        **extra,
                    },
                }
            )

    scenario("empty", [], ["us-east-1"])

    a = acct(2, 1)
    ids = estate.instances(a, "us-east-1", 3, tags={"App": "billing"})
    estate.servers(a, "us-east-1", 3, instance_ids=ids)
    scenario("single", [(a, "Single")], ["us-east-1"])

    many = [(acct(3, i), f"Many {i}") for i in range(3)]
    for account, _ in many:
        for region in ("us-east-1", "us-west-2", "eu-west-1"):
            estate.servers(account, region, 2, instance_ids=estate.instances(account, region, 2))
    scenario("many", many, ["us-east-1", "us-west-2", "eu-west-1"])

    scenario("no_servers", [(acct(4, 1), "Empty")], "active")

    ok, denied = acct(5, 1), acct(5, 2)
    estate.servers(ok, "us-east-1", 2)
    estate.servers(denied, "us-east-1", 2)
    estate.drs.seed(
        errors={denied: {"us-east-1": "AccessDeniedException", "us-west-2": "AccessDeniedException"}}
    )
    scenario("access_denied", [(ok, "Fine"), (denied, "Denied")], ["us-east-1", "us-west-2"])
    facts["denied"] = denied

    t = acct(6, 1)
    estate.servers(t, "us-east-1", 2)
    estate.drs.seed(errors={t: {"us-west-2": "ThrottlingException"}})
    scenario("throttling", [(t, "Throttled")], ["us-east-1", "us-west-2"])

    m = acct(7, 1)
    estate.servers(m, "us-east-1", 2)
    estate.drs.seed(errors={m: ERROR_REGIONS})
    scenario("mixed_regions", [(m, "Mixed")], ["us-east-1", *ERROR_REGIONS])
    facts["mixed"] = m

    big = acct(8, 1)
    estate.servers(big, "us-east-1", 120, instance_ids=estate.instances(big, "us-east-1", 120))
    scenario("large", [(big, "Big")], ["us-east-1"])
    facts["large"] = big

    drs_account, origin = acct(9, 1), acct(9, 2)  # origin is NOT a target: its role is assumed for EC2 only
    origin_ids = estate.instances(origin, "us-west-2", 2, tags={"Team": "dr"}, profile="drs-origin-profile")
    estate.servers(
        drs_account, "eu-west-1", 2, instance_ids=origin_ids, origin_account=origin, origin_region="us-west-2"
    )
    scenario("cross_account", [(drs_account, "Recovery")], ["eu-west-1"])
    facts["cross"] = (drs_account, origin, origin_ids)

    p = acct(10, 1)
    real = estate.instances(p, "us-east-1", 2)
    servers = estate.servers(p, "us-east-1", 4, instance_ids=[*real, "i-0123456789abcdef0"])
    scenario("partial_ec2", [(p, "Partial")], ["us-east-1"])
    facts["partial"] = [s["sourceServerID"] for s in servers]
    return {"runs": runs, "facts": facts}


def run_engine(engine: str, runs_file, moto_url: str, drs_url: str) -> list:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFETCH_")}
    env.update(
        GREENFETCH_ENGINE=engine,
        AWS_ENDPOINT_URL=moto_url,
        AWS_ENDPOINT_URL_DRS=drs_url,
        AWS_REGION="us-east-1",
        GREENFETCH_MAX_ATTEMPTS="2",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "greenfetch.drs", str(runs_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def world(moto_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drs")
    drs = DrsServer(sts_url=moto_server.url)
    drs.start()
    try:
        estate = DrsEstate(moto_server.url, drs)
        built = build_world(estate, tmp)
        files = {}
        for engine in ENGINES:
            files[engine] = tmp / f"runs-{engine}.json"
            files[engine].write_text(json.dumps(built["runs"][engine]))
        with ThreadPoolExecutor(2) as pool:
            futures = {e: pool.submit(run_engine, e, files[e], moto_server.url, drs.url) for e in ENGINES}
            out = {e: {r["name"]: r for r in f.result()} for e, f in futures.items()}
        yield {"out": out, "estate": estate, "facts": built["facts"], "tmp": tmp, "drs_calls": drs.calls()}
    finally:
        drs.stop()


def _statuses(path) -> list:
    if not os.path.exists(path):
        return []
    rows = json.loads(open(path).read())["regions"]
    return [{k: v for k, v in r.items() if k != "checked_at"} for r in rows]


@pytest.mark.parametrize("name", SCENARIOS)
def test_engines_agree(world, name):
    g, t = world["out"]["gevent"][name], world["out"]["threads"][name]
    assert g["records"] == t["records"]
    assert g["statuses"] == t["statuses"]
    assert g["items"] == t["items"]  # the same DynamoDB items, in the same order
    assert {**g["response"], "engine": None} == {**t["response"], "engine": None}
    assert (g["response"]["engine"], t["response"]["engine"]) == ENGINES
    assert _statuses(world["tmp"] / f"status-{name}-gevent.json") == _statuses(
        world["tmp"] / f"status-{name}-threads.json"
    )
    estate = world["estate"]
    g_table, t_table = estate.scan(f"drs-inv-{name}-gevent"), estate.scan(f"drs-inv-{name}-threads")
    assert g_table == t_table
    assert len(g_table) == g["response"]["totals"]["written"] == len(g["items"])


def out(world, name):
    return world["out"]["gevent"][name]


def test_empty_account_list(world):
    r = out(world, "empty")["response"]
    assert r["statusCode"] == 200 and r["accounts"] == [] and r["errors"] == []
    assert r["totals"]["servers"] == r["totals"]["written"] == 0


def test_single_account_region_enriched(world):
    result = out(world, "single")
    assert result["response"]["statusCode"] == 200
    assert [r["ec2"]["status"] for r in result["records"]] == ["enriched"] * 3
    first = result["records"][0]
    assert first["ec2"]["tags"] == {"App": "billing"}
    assert first["ec2"]["networkInterfaces"][0]["networkInterfaceId"].startswith("eni-")
    assert first["sourceProperties"]["identificationHints"]["awsInstanceID"] == first["ec2"]["instanceId"]
    assert first["syncedAt"] == NOW and first["accountName"] == "Single" and first["region"] == "us-east-1"


def test_many_accounts_regions_in_order(world):
    result = out(world, "many")
    assert result["response"]["totals"] == {
        "accounts": 3,
        "accountsFailed": 0,
        "regions": 9,
        "regionsFailed": 0,
        "servers": 18,
        "enriched": 18,
        "written": 18,
        "failed": 0,
    }
    order = [(r["accountId"], r["region"]) for r in result["records"]]
    expected = [
        (acct(3, i), region)
        for i in range(3)
        for region in ("us-east-1", "us-west-2", "eu-west-1")
        for _ in range(2)
    ]
    assert order == expected


def test_account_without_servers_uses_active_regions(world):
    result = out(world, "no_servers")
    assert result["response"]["statusCode"] == 200
    statuses = result["statuses"]
    assert len(statuses) > 10  # every DRS region botocore knows, none ruled out yet
    assert {s["status"] for s in statuses} == {"empty"}
    stored = _statuses(world["tmp"] / "status-no_servers-gevent.json")
    assert {r["status"] for r in stored} == {"empty"} and len(stored) == len(statuses)


def test_access_denied_isolated(world):
    result = out(world, "access_denied")
    response = result["response"]
    assert response["statusCode"] == 207
    denied = next(a for a in response["accounts"] if a["accountId"] == world["facts"]["denied"])
    assert {r["status"] for r in denied["regions"].values()} == {"denied"}
    assert all("permission" in r["guidance"] for r in denied["regions"].values())
    assert response["totals"]["servers"] == 2 and response["totals"]["written"] == 2  # the other account's


def test_throttling_has_retry_guidance(world):
    response = out(world, "throttling")["response"]
    throttled = response["accounts"][0]["regions"]["us-west-2"]
    assert throttled["status"] == "throttled" and "back off" in throttled["guidance"]
    error = next(e for e in response["errors"] if e["region"] == "us-west-2")
    assert error["retryable"] is True and error["code"] == "ThrottlingException"
    assert response["accounts"][0]["regions"]["us-east-1"]["count"] == 2


def test_mixed_regions_every_error_class(world):
    regions = out(world, "mixed_regions")["response"]["accounts"][0]["regions"]
    assert regions["us-east-1"] == {"status": "ok", "count": 2, "errorCode": None, "guidance": None}
    for region, kind in ERROR_REGIONS.items():
        if kind in EXPECTED_STATUS:
            assert regions[region]["status"] == EXPECTED_STATUS[kind], (region, kind)
        else:  # a connection failure: no AWS code, an error or transient status
            assert regions[region]["status"] in ("error", "transient")
            assert "Connection" in regions[region]["errorCode"]
    assert "quota increase" in regions["eu-west-2"]["guidance"]


def test_large_inventory_paginated_and_batched(world):
    result = out(world, "large")
    assert result["response"]["totals"]["servers"] == 120 == result["response"]["totals"]["written"]
    assert len({r["sourceServerID"] for r in result["records"]}) == 120
    # 120 servers at 100 per page is 2 DescribeSourceServers calls per engine run
    assert world["drs_calls"]["by_scope"][f"{world['facts']['large']}/us-east-1"] == 4


def test_cross_account_enrichment_uses_origin_account(world):
    drs_account, origin, ids = world["facts"]["cross"]
    records = out(world, "cross_account")["records"]
    assert [r["accountId"] for r in records] == [drs_account] * 2
    assert [r["ec2"]["instanceId"] for r in records] == ids
    for r in records:
        assert r["ec2"]["status"] == "enriched" and r["ec2"]["tags"] == {"Team": "dr"}
        assert r["ec2"]["instanceProfile"]["arn"].startswith(f"arn:aws:iam::{origin}:instance-profile/")
    # the instances really are only in the origin account: the DRS account's EC2 does not have them
    ec2 = world["estate"].client("ec2", drs_account, "us-west-2")
    found = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids}])["Reservations"]
    assert found == []


def test_partial_ec2_metadata_keeps_drs_data(world):
    records = {r["sourceServerID"]: r for r in out(world, "partial_ec2")["records"]}
    ids = world["facts"]["partial"]
    assert [records[i]["ec2"]["status"] for i in ids] == [
        "enriched",
        "enriched",
        "instance_not_found",
        "no_instance_id",
    ]
    missing = records[ids[2]]
    assert missing["ec2"]["instanceId"] == "i-0123456789abcdef0"
    assert missing["sourceProperties"]["recommendedInstanceType"] == "m5.large"  # DRS data kept
    assert out(world, "partial_ec2")["response"]["totals"]["enriched"] == 2
