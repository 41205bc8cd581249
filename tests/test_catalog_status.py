"""Issue 20, statuses and pacing: a record is ok, not_offered, unavailable, denied, expired, throttled or
error; only denied, expired, throttled and error fail the run; the summary counts each status per
service; calls are paced per (account, region, service), so one throttled service slows only itself.

Real servers: moto over HTTP where moto answers the code (Organizations with no organization, SSM's
global-infrastructure list), and the loopback server answering any operation (``any_server``'s tables)
through ``scripted`` below where it does not: Security Hub and Macie not enabled, and a token bucket on
one service.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from greenfetch import Config, Engine
from greenfetch._errors import classify
from greenfetch.cli._output import render_summary
from greenfetch.inventory import (
    Account,
    Inventory,
    accounts_from_list,
    known_regions,
    resolve_types,
    run_inventory,
)
from greenfetch.inventory._region_status import FAILING, RECORD_STATUSES, record_status
from greenfetch.inventory._regions import endpoint_regions
from greenfetch.testing import LoopbackServer

ACCOUNT = "123456789012"
_ANY_ENV = "GREENFETCH_LOOPBACK_ANY"
_SCRIPT_ENV = "GREENFETCH_STATUS_SCRIPT"

# -- the loopback handler (runs in the server's child process) -----------------------------------------

_state: dict = {}


def _script() -> dict:
    if "script" not in _state:
        import os

        _state["script"] = json.loads(os.environ.get(_SCRIPT_ENV) or "{}")
        _state["buckets"] = {}
        _state["lock"] = threading.Lock()
    return _state["script"]


def warm() -> None:
    from greenfetch.testing import _loopback_any

    _script()
    _loopback_any.warm()


def scripted(target, headers, body):
    """``any_server``'s empty pages (STS: the inventory server's), except: ``errors`` {signing name: [code, http status, message]}
    answers that error; ``buckets`` {signing name: rate} throttles that service above rate calls/s per
    region (burst: one second's worth), as AWS's per-account, per-region quotas do."""
    from greenfetch.testing import _loopback_any, _loopback_any_routes, _loopback_faults

    script = _script()
    match = _loopback_any_routes._SIGNING.search(headers.get("authorization", ""))
    service = match[1] if match else ""
    region = headers.get("authorization", "").split("/")[2] if match else ""
    protocol = _loopback_faults.protocol_of(headers, body, "auto")
    if service == "sts":  # who the caller is: the inventory server's answer
        from greenfetch.testing import _inventory_pages

        return _inventory_pages.handle(target, headers, body)
    if service in script.get("errors", {}):
        code, status, message = script["errors"][service]
        rheaders, rbody = _loopback_faults.error_body(protocol, code, message, "scripted")
        return status, rheaders, rbody
    rate = script.get("buckets", {}).get(service)
    if rate:
        with _state["lock"]:
            bucket = _state["buckets"].setdefault(
                (service, region), _loopback_faults.TokenBucket(rate, time.monotonic)
            )
            admitted = bucket.take()
        if not admitted:
            code, status = _loopback_faults.PROTOCOLS[protocol][1]
            rheaders, rbody = _loopback_faults.error_body(protocol, code, "Rate exceeded", "scripted")
            return status, rheaders, rbody
    return _loopback_any.handle(target, headers, body)


def _server(services, **script):
    env = {
        _ANY_ENV: json.dumps({"services": sorted(services), "scheme": "http"}),
        _SCRIPT_ENV: json.dumps(script),
    }
    return LoopbackServer(handler=f"{__name__}:scripted", latency=0.002, startup_timeout=60.0, env=env)


def _engine(url, **extra):
    return Engine(
        Config.resolve(
            {"endpoint_url": url, "region": "us-east-1", "concurrency": 32, "max_attempts": 3, **extra},
            environ={},
        )
    )


# -- the classifier and the record rules (pure) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "service", "message"),
    [
        ("AWSOrganizationsNotInUseException", "organizations", ""),
        ("OrganizationsNotInUseException", "cloudtrail", ""),
        ("CloudTrailAccessNotEnabledException", "cloudtrail", ""),
        ("OptInRequiredException", "compute-optimizer", ""),
        ("ServiceAccessNotEnabledException", "iam", ""),
        ("SubscriptionRequiredException", "support", ""),
        ("InvalidAccessException", "securityhub", "Account 1 is not subscribed to AWS Security Hub"),
        (
            "AccessDeniedException",
            "macie2",
            "macie2.ListAllowLists: AccessDeniedException: Macie is not enabled.",
        ),
    ],
)
def test_not_enabled_codes_are_unavailable(code, service, message):
    assert classify(code, service=service, message=message).status == "unavailable"
    assert record_status(code, service=service, message=message) == "unavailable"


def test_scoped_codes_stay_what_they_are_elsewhere():
    """A code that means "not enabled" in one service (or with one message) is not read so elsewhere:
    Organizations in a member account answers a plain AccessDeniedException, which stays denied."""
    assert (
        record_status(
            "AccessDeniedException",
            service="organizations",
            message="You don't have permissions to access this resource.",
        )
        == "denied"
    )
    assert (
        record_status("AccessDeniedException", service="macie2", message="User x is not authorized")
        == "denied"
    )
    assert record_status("InvalidAccessException", service="ec2") == "error"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", "throttled"),
        ("ExpiredToken", "expired"),
        ("UnauthorizedOperation", "denied"),
        ("InternalServerError", "error"),
        ("ValidationException", "error"),
        ("ResourceNotFoundException", "error"),
        ("ServiceQuotaExceededException", "error"),
        ("RequestTimeTooSkewed", "error"),
        (None, "error"),
    ],
)
def test_record_statuses_are_the_contracts_seven(code, status):
    assert record_status(code) == status
    assert status in RECORD_STATUSES


# -- moto over HTTP ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_engine(moto_server):
    eng = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 16, "max_attempts": 2},
            environ={},
        )
    )
    yield eng
    eng.close()


def test_moto_organizations_not_in_use_is_unavailable_and_the_run_passes(moto_engine):
    """moto answers AWSOrganizationsNotInUseException for an account in no organization: unavailable,
    counted per service, and not a failure (exit code 0)."""
    report = run_inventory(
        moto_engine,
        accounts="555000000071",
        role_name="InventoryReader",
        regions="us-east-1",
        types="organizations.roots,iam.roles",
        keep_records=True,
        cache_ttl=0,
    )
    assert {r["resource_type"]: r["status"] for r in report.records} == {
        "organizations.roots": "unavailable",
        "iam.roles": "ok",
    }
    assert report.summary["statuses"] == {"iam": {"ok": 1}, "organizations": {"unavailable": 1}}
    assert report.summary["errors"] == {"iam.roles": 0, "organizations.roots": 0}
    assert report.summary["account_regions_failed"] == 0
    assert not report.failed
    assert "  organizations: 1 unavailable" in render_summary(report.summary)


def test_moto_ssm_list_makes_not_offered_records_and_no_call(moto_engine):
    """moto's SSM global-infrastructure list has MediaStore in us-east-1, not us-east-2: the us-east-2
    record is not_offered, and nothing is called there."""
    before = _calls(moto_engine, "mediastore")
    inv = Inventory(
        moto_engine,
        accounts_from_list(["555000000072"], role="InventoryReader"),
        resolve_types("mediastore.containers"),
        regions=["us-east-1", "us-east-2"],
    )
    records = {r["region"]: r for r in inv.run()}
    assert records["us-east-1"]["status"] == "ok"
    assert records["us-east-2"]["status"] == "not_offered"
    assert "SSM" in records["us-east-2"]["error"]
    assert _calls(moto_engine, "mediastore") - before == 1
    assert inv.summary.statuses == {"mediastore": {"ok": 1, "not_offered": 1}}
    assert not inv.summary.failed


def _calls(engine, service):
    return sum(
        int(row["count"]) for row in engine.metrics.perf_stats() if row["operation"].startswith(f"{service}:")
    )


# -- the loopback server -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def status_server():
    errors = {
        "securityhub": [
            "InvalidAccessException",
            401,
            "Account 123456789012 is not subscribed to AWS Security Hub",
        ],
        "macie2": ["AccessDeniedException", 403, "Macie is not enabled."],
        "sqs": ["AccessDenied", 403, "User is not authorized to perform: sqs:ListQueues"],
    }
    with _server(["securityhub", "macie2", "s3tables", "sqs", "ssm", "ec2"], errors=errors) as url:
        yield url


def _absent_region(service):
    """A region botocore knows where its endpoint data has no endpoint for ``service``."""
    offered = endpoint_regions(None, [service])[service]
    assert offered, f"botocore has endpoint data for {service}"
    missing = [
        r
        for r in known_regions()
        if r not in offered and not r.startswith(("cn-", "us-gov", "us-iso", "eu-isoe"))
    ]
    if not missing:
        pytest.skip(f"this botocore offers {service} in every region")
    return missing[0]


def test_loopback_statuses_and_exit_code(status_server):
    """Security Hub and Macie not enabled: unavailable; Macie in a region botocore's endpoint data does
    not list (the server's SSM knows no service): not_offered, never called; S3 Tables, which has no
    endpoint data at all, is called in every region rather than dropped; SQS denied fails the run."""
    far = _absent_region("macie2")
    engine = _engine(status_server)
    try:
        inv = Inventory(
            engine,
            [Account(ACCOUNT)],
            resolve_types("securityhub.members,macie2.allow_lists,s3tables,sqs"),
            regions=["us-east-1", far],
        )
        records = {(r["resource_type"], r["region"]): r for r in inv.run()}
        calls = engine.metrics.perf_stats()
    finally:
        engine.close()
    assert len(records) == 8
    assert records[("securityhub.members", "us-east-1")]["status"] == "unavailable"
    assert records[("macie2.allow_lists", "us-east-1")]["status"] == "unavailable"
    assert records[("macie2.allow_lists", far)]["status"] == "not_offered"
    assert "botocore's endpoint data" in records[("macie2.allow_lists", far)]["error"]
    assert {records[("s3tables.table_buckets", r)]["status"] for r in ("us-east-1", far)} == {"ok"}
    assert {records[("sqs.queues", r)]["status"] for r in ("us-east-1", far)} == {"denied"}
    macie = sum(int(row["count"]) for row in calls if row["operation"].startswith("macie2:"))
    assert macie == 1  # us-east-1 only
    summary = inv.summary.to_dict()
    assert summary["statuses"]["macie2"] == {"not_offered": 1, "unavailable": 1}
    assert summary["statuses"]["s3tables"] == {"ok": 2}
    assert sum(summary["errors"].values()) == sum(1 for r in records.values() if r["status"] in FAILING) == 2
    assert inv.summary.failed  # the denied SQS call
    text = render_summary(summary)
    assert "statuses: " in text and "  sqs: 2 denied" in text and "  s3tables" not in text


def test_loopback_unavailable_alone_exits_zero(status_server, tmp_path):
    """The CLI: a run whose only non-ok records are unavailable and not_offered exits 0 and prints the
    statuses line."""
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    far = _absent_region("macie2")
    result = CliRunner().invoke(
        load_commands(),
        [
            "inventory",
            "--endpoint-url",
            status_server,
            "--accounts",
            ACCOUNT,
            "--regions",
            f"us-east-1,{far}",
            "--types",
            "securityhub.members,macie2.allow_lists",
            "--out",
            str(tmp_path / "out"),
            "--cache-ttl",
            "0",
        ],
        env={
            "AWS_ACCESS_KEY_ID": "AKIDLOOPBACK",
            "AWS_SECRET_ACCESS_KEY": "x",
            "GREENFETCH_CACHE_DIR": str(tmp_path),
        },
    )
    assert result.exit_code == 0, result.output
    assert "statuses: 1 not_offered, 3 unavailable" in result.output, result.output


def test_endpoint_regions_walk_botocore_endpoint_data_once_per_loader(monkeypatch):
    """Asked one service at a time (as the inventory asks while it plans), ``endpoint_regions`` reads
    ``endpoints.json`` and builds its table once for the engine's data loader, answers every service as
    the table read afresh would, and hands each caller a set of its own."""
    engine = Engine(Config.resolve({"region": "us-east-1"}))
    loader = engine.clients.session(None).get_component("data_loader")
    partitions = loader.load_data("endpoints")["partitions"]
    services = sorted(loader.list_available_services("service-2"))
    reads = []
    real_load = loader.load_data

    def counted(name, *args, **kwargs):
        reads.append(name)
        return real_load(name, *args, **kwargs)

    monkeypatch.setattr(loader, "load_data", counted)
    got = {service: endpoint_regions(engine, [service])[service] for service in services}
    assert reads.count("endpoints") == 1
    for service in services:
        prefix = loader.load_service_model(service, "service-2")["metadata"].get("endpointPrefix", service)
        want = {
            region
            for partition in partitions
            for region, endpoint in partition["services"].get(prefix, {}).get("endpoints", {}).items()
            if region in partition["regions"] and not endpoint.get("deprecated")
        }
        assert got[service] == (want or None), service
    assert sum(found is None for found in got.values()) > 10  # services with no endpoint list
    got["ec2"].clear()
    assert endpoint_regions(engine, ["ec2"])["ec2"]
