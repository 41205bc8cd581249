"""Credentials never file one account's resources under another: on the inventory loopback server
(greenfetch.testing._inventory_pages), whose answers say which account's key signed them."""

import time

import gevent
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, Request, RequestError
from greenfetch._signing import RoleCredentials, frozen_record
from greenfetch.inventory import AccountCredentials, accounts_from_list, assume_role, run_inventory
from greenfetch.inventory._catalog import resolve_types
from greenfetch.inventory._fetch import Inventory
from greenfetch.testing import inventory_server

DENIED = "333333333333"


@pytest.fixture(scope="module")
def server():
    with inventory_server(latency=0.05, deny_assume=[DENIED], items=2) as srv:
        yield srv


def _engine(url, **settings):
    return Engine(
        Config.resolve(
            {"endpoint_url": url, "region": "us-east-1", "max_attempts": 1, **settings}, environ={}
        )
    )


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
    runs = [
        Inventory(
            engine,
            accounts_from_list(DENIED, role="Reader"),
            types,
            regions=["us-east-1"],
            filter_offered=False,
        )
        for _ in range(2)
    ]
    jobs = [gevent.spawn(lambda inv=inv: list(inv.run())) for inv in runs]
    gevent.joinall(jobs, raise_error=True)
    for job, inv in zip(jobs, runs, strict=True):
        assert [(r["account"], r["region"], r["status"], r["items"]) for r in job.value] == [
            (DENIED, "*", "denied", [])
        ]
        assert inv.summary.to_dict()["accounts_failed"] and inv.summary.to_dict()["accounts_ok"] == 0


def _count(engine, operation):
    return sum(row["count"] for row in engine.metrics.perf_stats() if row["operation"] == operation)


def test_an_inventory_that_outlives_its_role_sessions_refreshes_them_and_every_record_is_ok():
    """STS hands out sessions of 0.6 s; the run takes several: every account's role is assumed again
    before its session ends (the probe saw one AssumeRole per account, then ExpiredToken filed as denied)."""
    accounts = ["111111111111", "222222222222", "444444444444"]
    session = 0.6
    with inventory_server(latency=0.05, session_seconds=session, items=2) as srv:
        engine = _engine(srv.url, concurrency=1)
        try:
            started = time.monotonic()
            report = run_inventory(
                engine,
                accounts=",".join(accounts),
                role_name="Reader",
                regions="us-east-1,eu-west-1",
                types="ec2.vpcs,sqs.queues,lambda.functions,kms.keys",
                cache_ttl=0,
                keep_records=True,
                filter_offered=False,
            )
            took = time.monotonic() - started
            assumed = _count(engine, "sts:AssumeRole")
            # ExpiredToken answers (the fallback): renewed in time, there are few
            refused = srv.stats()["errors"]
        finally:
            engine.close()
    records = report.records
    assert len(records) == len(accounts) * 2 * 4
    assert {(r["status"], r["error"]) for r in records} == {("ok", None)}
    assert {r["account"] for r in records} == set(accounts)
    assert took > 2.5 * session, took  # the run did outlive several sessions
    assert assumed > 2 * len(accounts), assumed
    # renewed before expiry, not after AWS refused the expired ones
    assert refused < assumed - len(accounts), (refused, assumed)
    summary = report.summary
    assert summary["accounts_ok"] == len(accounts) and summary["accounts_failed"] == {}
    print(f"run {took:.1f}s, {assumed} AssumeRole for {len(accounts)} accounts, {refused} refused")


EXPIRED, SKEWED = "555555555555", "666666666666"


@pytest.fixture(scope="module")
def refusing():
    """A server whose sessions for EXPIRED are always expired and whose clock disagrees with SKEWED's."""
    with inventory_server(latency=0.02, items=2, expired_accounts=[EXPIRED], skewed_accounts=[SKEWED]) as srv:
        yield srv


def test_expired_token_that_persists_after_a_refresh_is_its_own_status_and_the_account_is_not_ok(refusing):
    engine = _engine(refusing.url, concurrency=4)
    try:
        report = run_inventory(
            engine,
            accounts=f"111111111111,{EXPIRED}",
            role_name="Reader",
            regions="us-east-1",
            types="ec2.vpcs,sqs.queues",
            cache_ttl=0,
            keep_records=True,
            filter_offered=False,
        )
        assumed = _count(engine, "sts:AssumeRole")
    finally:
        engine.close()
    got = {(r["account"], r["resource_type"]): r for r in report.records}
    for rtype in ("ec2.vpcs", "sqs.queues"):
        assert got[("111111111111", rtype)]["status"] == "ok"
        expired = got[(EXPIRED, rtype)]
        assert expired["status"] == "expired" and expired["items"] == [], expired  # never "denied"
        assert "ExpiredToken" in expired["error"]
    assert assumed == 3  # one per account, and one refresh for the account AWS said had expired
    summary = report.summary
    assert summary["accounts_ok"] == 1 and list(summary["accounts_failed"]) == [EXPIRED]
    assert "ExpiredToken" in summary["accounts_failed"][EXPIRED] and report.failed


def test_clock_skew_names_the_clock_and_the_account_is_not_ok(refusing):
    engine = _engine(refusing.url)
    try:
        result = engine.execute(
            {
                "service": "sqs",
                "operation": "ListQueues",
                "region": "us-east-1",
                "role": f"arn:aws:iam::{SKEWED}:role/Reader",
            }
        )
        report = run_inventory(
            engine,
            accounts=SKEWED,
            role_name="Reader",
            regions="us-east-1",
            types="sqs.queues",
            cache_ttl=0,
            keep_records=True,
            filter_offered=False,
        )
    finally:
        engine.close()
    assert result.error_code == "RequestTimeTooSkewed" and "clock" in result.guidance, result
    (rec,) = report.records
    assert rec["status"] == "error" and "RequestTimeTooSkewed" in rec["error"]
    assert report.summary["accounts_ok"] == 0 and list(report.summary["accounts_failed"]) == [SKEWED]


# -- the guard at the seam ---------------------------------------------------------------------------------


def test_a_request_for_one_account_never_runs_with_another_accounts_credentials(server, engine):
    creds = AccountCredentials(engine, "Reader")
    theirs = creds.get("222222222222")
    before = server.stats()["requests"]
    wrong = [
        Request("sqs", "ListQueues", region="us-east-1", account="111111111111", credentials=theirs),
        Request(
            "sqs",
            "ListQueues",
            region="us-east-1",
            account="111111111111",
            role="arn:aws:iam::222222222222:role/Reader",
        ),
        Request(
            "sqs",
            "ListQueues",
            region="us-east-1",
            role="arn:aws:iam::111111111111:role/Reader",
            credentials=theirs,
        ),
        Request(
            "sqs",
            "ListQueues",
            region="us-east-1",
            account="111111111111",
            credentials={**assume_role(engine, "222222222222", "Reader")},
        ),
    ]
    before = server.stats()["requests"]
    for result in engine.batch_requests(wrong):
        assert result.error_code == "IdentityMismatch", result
        assert "account 111111111111" in result.error and "222222222222" in result.error
        assert "clock" not in (result.guidance or "") and "role" in result.guidance
        assert result.attempts == 0
    assert server.stats()["requests"] == before  # refused before anything was sent
    right = engine.execute(
        Request("sqs", "ListQueues", region="us-east-1", account="222222222222", credentials=theirs)
    )
    assert right.ok and all("/222222222222/" in url for url in right.result["QueueUrls"])


def test_an_account_with_no_role_runs_as_the_caller_only_if_it_is_the_callers_own(engine):
    """No role means the caller's own credentials: fine for the caller's own account (the loopback's base
    key is 123456789012), refused for any other, whose records would hold the caller's resources."""
    types = resolve_types("ec2.vpcs")
    inv = Inventory(
        engine,
        accounts_from_list("123456789012,111111111111"),
        types,
        regions=["us-east-1"],
        filter_offered=False,
    )
    got = {r["account"]: r for r in inv.run()}
    assert got["123456789012"]["status"] == "ok"
    assert {v["OwnerId"] for v in got["123456789012"]["items"]} == {"123456789012"}
    other = got["111111111111"]
    assert (other["region"], other["status"], other["items"]) == ("*", "error", [])
    assert "no role to assume in account 111111111111" in other["error"] and "123456789012" in other["error"]
    # and the engine, which has now seen whose its own credentials are, refuses them for another account
    result = engine.execute(Request("sqs", "ListQueues", region="us-east-1", account="111111111111"))
    assert result.error_code == "IdentityMismatch" and "caller's own are account 123456789012" in result.error


# -- RoleCredentials' schedule (a plain fetch function and clock: no network needed for the rule) ----------


class _Sts:
    """Hands out sessions of ``lifetime`` seconds on a clock the test moves; ``fail`` makes it refuse."""

    def __init__(self, lifetime):
        self.now, self.lifetime, self.calls, self.fail = 1000.0, lifetime, 0, False

    def fetch(self):
        self.calls += 1
        if self.fail:
            raise RequestError("cannot refresh: sts.AssumeRole: AccessDenied: no", code="AccessDenied")
        frozen = frozen_record(
            {
                "AccessKeyId": f"ASIA{self.calls}",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "AccountId": "111111111111",
            }
        )
        return frozen, self.now + self.lifetime

    def credentials(self, margin=300.0):
        return RoleCredentials(
            "111111111111", self.fetch, *self.fetch(), refresh=margin, clock=lambda: self.now
        )


@settings(max_examples=60, deadline=None)
@given(lifetime=st.floats(0.2, 7200), margin=st.floats(1, 900), step=st.floats(0.01, 0.3))
def test_role_credentials_are_never_used_past_their_expiry_and_renewed_once_per_window(
    lifetime, margin, step
):
    """Whatever the session length and margin: walking the clock through three sessions, the credentials
    handed out are never expired, and each session is renewed about once (not on every call)."""
    sts = _Sts(lifetime)
    creds = sts.credentials(margin)
    expiries = {creds.get_frozen_credentials().access_key: sts.now + lifetime}
    end = sts.now + 3 * lifetime
    while sts.now < end:
        frozen = creds.get_frozen_credentials()
        expiries.setdefault(frozen.access_key, sts.now + lifetime)
        assert sts.now < expiries[frozen.access_key]
        sts.now += step * lifetime
    # the first, then about one per session (two at most: a rounding step)
    assert sts.calls <= 2 + 3 * 2


def test_a_failed_early_refresh_keeps_the_credentials_and_a_failed_late_one_fails_the_call():
    sts = _Sts(1000)
    creds = sts.credentials(margin=300)
    first = creds.get_frozen_credentials()
    sts.fail = True
    sts.now += 1000 - 299  # within the margin, not yet within half of it: the current ones still serve
    assert creds.get_frozen_credentials() is first and sts.calls == 2
    assert creds.get_frozen_credentials() is first and sts.calls == 2  # not again on every call
    sts.now += 149  # within half the margin: a refresh must succeed, and this one fails the call
    with pytest.raises(RequestError, match="AccessDenied"):
        creds.get_frozen_credentials()
    sts.fail = False
    assert creds.get_frozen_credentials().access_key == f"ASIA{sts.calls}"
    assert creds.account_id == "111111111111" and "secret" not in repr(creds)


def test_after_an_expired_token_many_callers_renew_once():
    sts = _Sts(3600)
    creds = sts.credentials()
    seen = creds.generation
    for _ in range(5):  # five calls that failed with the same credentials
        creds.refresh_after(seen)
    assert sts.calls == 2 and creds.generation == seen + 1


def test_worker_processes_sign_with_credentials_the_parent_renews_and_refuse_another_account():
    """processes=2: the parent seals each request's credentials as it sends it (renewing them when due)
    with the account they were assumed for, so a child's guard refuses them for any other account."""
    session = 0.5
    with inventory_server(latency=0.05, session_seconds=session, items=1) as srv:
        engine = _engine(srv.url, concurrency=2, processes=2)
        try:
            # the children are up before the sessions start
            engine.batch_requests([Request("sqs", "ListQueues", region="us-east-1")] * 2)
            creds = AccountCredentials(engine, "Reader")
            mine, theirs = creds.get("111111111111"), creds.get("222222222222")
            requests = [
                Request("sqs", "ListQueues", region="us-east-1", account=account, credentials=c)
                for _ in range(12)
                for account, c in (("111111111111", mine), ("222222222222", theirs))
            ]
            requests.append(
                Request("sqs", "ListQueues", region="us-east-1", account="111111111111", credentials=theirs)
            )
            started = time.monotonic()
            results = engine.batch_requests(requests)
            took = time.monotonic() - started
        finally:
            engine.close()
    *fetched, refused = results
    assert all(r.ok for r in fetched), [r.error for r in fetched if not r.ok][:3]
    for request, result in zip(requests, fetched, strict=False):
        assert {url.split("/")[3] for url in result.result["QueueUrls"]} == {request.account}
    assert refused.error_code == "IdentityMismatch" and refused.attempts == 0
    assert took > session and creds.assumed > 2 + 1, (took, creds.assumed)  # renewed in the parent as it sent
