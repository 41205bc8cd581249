"""Credentials never file one account's resources under another: on the inventory loopback server
(greenfetch.testing._inventory_pages), whose answers say which account's key signed them."""

import gevent
import pytest

from greenfetch import Config, Engine
from greenfetch.inventory import AccountCredentials, accounts_from_list
from greenfetch.inventory._catalog import resolve_types
from greenfetch.inventory._fetch import Inventory
from greenfetch.testing import inventory_server

DENIED = "333333333333"


@pytest.fixture(scope="module")
def server():
    with inventory_server(latency=0.05, deny_assume=[DENIED], items=2) as srv:
        yield srv


def _engine(url, **settings):
    return Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1", "max_attempts": 1, **settings},
                                 environ={}))


@pytest.fixture
def engine(server):
    eng = _engine(server.url)
    yield eng
    eng.close()


def test_two_concurrent_lookups_of_a_denied_account_both_learn_it_failed(engine):
    """Two runs on one engine (two shards in one worker) ask for a denied account at once: they share
    one AssumeRole, and both must see the failure (the second once got None and no status, which the
    run read as "use my own credentials")."""
    first, second = AccountCredentials(engine, "Reader"), AccountCredentials(engine, "Reader")
    jobs = [gevent.spawn(creds.get, DENIED) for creds in (first, second)]
    gevent.joinall(jobs, raise_error=True)
    assert [job.value for job in jobs] == [None, None]
    for creds in (first, second):
        status = creds.status(DENIED)
        assert status is not None and not status.ok, status
        assert status.status == "denied" and status.error_code == "AccessDenied"
        assert [s.account for s in creds.failures()] == [DENIED]
    assert engine.metrics.perf_stats()[0]["operation"] == "sts:AssumeRole"
    assert engine.metrics.perf_stats()[0]["count"] == 1  # they did share the one call


def test_two_concurrent_runs_never_file_the_worker_account_under_a_denied_one(engine):
    """The probe's sequence through the Python API: two inventories of a denied account at once on one
    engine. Every record is the denial; none holds the process's own account's VPCs."""
    types = resolve_types("ec2.vpcs")
    runs = [Inventory(engine, accounts_from_list(DENIED, role="Reader"), types, regions=["us-east-1"],
                      filter_offered=False) for _ in range(2)]
    jobs = [gevent.spawn(lambda inv=inv: list(inv.run())) for inv in runs]
    gevent.joinall(jobs, raise_error=True)
    for job, inv in zip(jobs, runs, strict=True):
        assert [(r["account"], r["region"], r["status"], r["items"]) for r in job.value] == [
            (DENIED, "*", "denied", [])]
        assert inv.summary.to_dict()["accounts_failed"] and inv.summary.to_dict()["accounts_ok"] == 0
