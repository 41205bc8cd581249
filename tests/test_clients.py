"""The client cache: shared clients, bounded, keyed without secrets, User-Agent built once."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, Request


@pytest.fixture
def engine(moto_server):
    eng = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1", "max_clients": 4}))
    yield eng
    eng.close()


def test_one_client_per_service_region_identity(engine):
    req = Request("s3", "ListBuckets", region="us-east-1")
    assert engine.clients.client(req) is engine.clients.client(req)
    assert engine.clients.client(req) is not engine.clients.client(
        Request("s3", "ListBuckets", region="eu-west-1")
    )
    assert engine.clients.client(req, isolated=True) is not engine.clients.client(req)


def test_a_request_is_normalized_resolved_and_called_once(engine, monkeypatch):
    """One way down: per request one ``Request.coerce``, one ``resolve`` (one client lookup, one API
    name) and one call, plain and under the adaptive gate with a dedupe window."""
    from collections import Counter

    from greenfetch._caller import BotocoreCaller
    from greenfetch._clients import ClientCache

    seen: Counter[str] = Counter()

    def count(owner, name, wrap=lambda f: f):
        real = getattr(owner, name)

        def counted(*args, **kwargs):
            seen[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrap(counted))

    count(Request, "coerce", staticmethod)
    for name in ("resolve", "_api_name", "_call"):
        count(BotocoreCaller, name)
    count(ClientCache, "client")
    requests = [
        {"service": "dynamodb", "operation": "list_tables"},
        {"service": "sqs", "operation": "ListQueues"},
        {"service": "s3", "operation": "list_buckets"},
    ]
    once = {"coerce": 3, "resolve": 3, "client": 3, "_api_name": 3, "_call": 3}
    assert all(r.ok for r in engine.batch_requests(requests, processes=1))
    assert seen == once
    seen.clear()
    assert all(r.ok for r in engine.adaptive_batch(requests, dedupe_window=0, processes=1))
    assert seen == once


def test_an_unknown_service_or_operation_names_the_nearest_valid_ones(engine):
    """Both "did you mean" lists come from the one rule, ``_errors.suggest``."""
    service = engine.execute({"service": "dynamodbb", "operation": "ListTables"})
    assert service.error_code == "UnknownService" and "did you mean dynamodb" in service.error
    operation = engine.execute({"service": "dynamodb", "operation": "ListTabels"})
    assert operation.error_code == "UnknownOperation" and "did you mean ListTables" in operation.error
    assert (service.attempts, operation.attempts) == (0, 0)  # nothing was sent


def test_clients_are_bounded_lru(engine):
    for region in ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2"]:
        engine.clients.client(Request("sqs", "ListQueues", region=region))
    assert len(engine.clients._clients) == 4


def test_rotated_credentials_get_a_new_client_and_the_key_holds_no_secret(engine):
    one = {"AccessKeyId": "AKIAONE", "SecretAccessKey": "secret-one"}
    two = {"AccessKeyId": "AKIATWO", "SecretAccessKey": "secret-two"}
    a = engine.clients.client(
        Request("s3", "ListBuckets", region="us-east-1", account="111111111111", credentials=one)
    )
    b = engine.clients.client(
        Request("s3", "ListBuckets", region="us-east-1", account="111111111111", credentials=two)
    )
    assert a is not b
    assert "secret" not in repr(list(engine.clients._clients.keys()))


def test_memoized_user_agent_matches_botocore(engine):
    client = engine.clients.client(engine.prepare({"service": "s3", "operation": "ListBuckets"}))
    creator = client._user_agent_creator
    memo = creator.to_string()
    assert memo == type(creator).to_string(creator)
    assert creator.to_string() is memo  # built once, reused
    seen = {}

    def grab(request, **_):
        ua = request.headers["User-Agent"]
        seen["ua"] = ua.decode() if isinstance(ua, bytes) else ua

    client.meta.events.register("before-send.s3.ListBuckets", grab)
    client.list_buckets()
    assert (
        seen["ua"].split(" m/")[0] == memo.split(" m/")[0]
    )  # same UA; per-call feature ids may add " m/..."


def test_isolated_client_hooks_do_not_leak_to_the_shared_one(engine):
    req = engine.prepare({"service": "s3", "operation": "ListBuckets"})
    shared = engine.clients.client(req)
    isolated = engine.clients.client(req, isolated=True)
    calls = []
    isolated.meta.events.register("before-send.s3.ListBuckets", lambda **_: calls.append(1))
    shared.list_buckets()
    assert calls == []
    isolated.list_buckets()
    assert calls == [1]


def test_clients_of_one_service_share_class_and_model_but_not_state(engine):
    one = engine.clients.client(
        Request(
            "ec2",
            "DescribeVpcs",
            region="us-east-1",
            account="111111111111",
            credentials={"AccessKeyId": "A1", "SecretAccessKey": "s1"},
        )
    )
    two = engine.clients.client(
        Request(
            "ec2",
            "DescribeVpcs",
            region="eu-west-1",
            account="222222222222",
            credentials={"AccessKeyId": "A2", "SecretAccessKey": "s2"},
        )
    )
    assert type(one) is type(two)
    assert one.meta.service_model is two.meta.service_model
    assert one.meta.region_name != two.meta.region_name
    assert one._base is not two._base  # one shared client per region, each seen through an account


def test_a_closed_engine_leaves_nothing_of_its_session_behind(loopback):
    import gc
    import weakref

    engine = Engine(Config.resolve({"endpoint_url": loopback.url, "region": "us-east-1", "max_attempts": 1}))
    engine.clients.client(engine.prepare({"service": "ec2", "operation": "DescribeVpcs"}))
    emitter = weakref.ref(
        engine.clients.session(None).get_component("event_emitter")
    )  # what its clients hook
    engine.close()
    del engine
    gc.collect()
    assert emitter() is None


def test_botocore_sessions_that_are_not_greenfetchs_are_left_alone():
    import botocore.session

    session = botocore.session.Session()
    a = session.create_client("sqs", region_name="us-east-1")
    b = session.create_client("sqs", region_name="us-east-1")
    assert type(a) is not type(b)


# -- accounts that cost nothing ------------------------------------------------------------------

import datetime  # noqa: E402
import random  # noqa: E402
import threading  # noqa: E402

import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.credentials  # noqa: E402

from greenfetch.testing import Reply, ScriptedServer, http_response  # noqa: E402

_JSON = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", "r")]


class SigV4Checker:
    """A server-side SigV4 check: recomputes each request's signature with the secret of the access key
    it names, and answers ListTables with ``[access key, "signature-ok" | "signature-BAD"]``."""

    def __init__(self, secrets):
        self.secrets = secrets
        self.keys = []

    def __call__(self, seen):
        headers = {k.lower(): v for k, v in seen.headers}
        auth = headers["authorization"]
        fields = dict(part.strip().split("=", 1) for part in auth.split(" ", 1)[1].split(","))
        key, date, region, service, _ = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        method, path, _ = seen.request_line.split(" ")
        request = botocore.awsrequest.AWSRequest(
            method=method,
            url=f"http://{headers['host']}{path}",
            data=seen.body,
            headers={h: headers[h] for h in signed},
        )
        request.context["timestamp"] = headers["x-amz-date"]
        secret = self.secrets.get(key, "unknown key")
        signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, region)
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        self.keys.append(key)
        verdict = "signature-ok" if expected == fields["Signature"] else "signature-BAD"
        return Reply(http_response(200, f'{{"TableNames": ["{key}", "{verdict}"]}}', _JSON))


def test_fifty_accounts_interleaved_each_signed_with_its_own_credentials():
    accounts = {f"{i:012d}": (f"AKIA{i:016d}", f"secret-{i}-{random.random()}") for i in range(1, 51)}
    checker = SigV4Checker(dict(accounts.values()))
    server = ScriptedServer(checker)
    with server as url:
        engine = Engine(
            Config.resolve({"endpoint_url": url, "region": "us-east-1", "max_clients": 4, "concurrency": 10})
        )
        try:
            requests = [
                {
                    "service": "dynamodb",
                    "operation": "ListTables",
                    "account": account,
                    "credentials": {"AccessKeyId": key, "SecretAccessKey": secret},
                }
                for account, (key, secret) in accounts.items()
                for _ in range(4)
            ]
            random.Random(7).shuffle(requests)
            results = list(engine.iter_results(requests, concurrency=10))
            assert len(results) == 200
            for result in results:
                assert result.ok, result
                assert result.result["TableNames"] == [accounts[result.request.account][0], "signature-ok"]
            assert sorted(set(checker.keys)) == sorted(key for key, _ in accounts.values())
            assert engine.clients.created == 1  # one client for the regional endpoint, none per account
            assert server.connections <= 10  # one connection pool, shared by every account
        finally:
            engine.close()


def test_a_wrong_secret_is_caught_by_the_checker():
    """The check above can fail: a request signed with another secret is answered signature-BAD."""
    checker = SigV4Checker({"AKIAONE": "right"})
    with ScriptedServer(checker) as url:
        engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1"}))
        try:
            result = engine.execute(
                {
                    "service": "dynamodb",
                    "operation": "ListTables",
                    "account": "1",
                    "credentials": {"AccessKeyId": "AKIAONE", "SecretAccessKey": "wrong"},
                }
            )
            assert result.result["TableNames"] == ["AKIAONE", "signature-BAD"]
        finally:
            engine.close()


def test_refreshable_credentials_refresh_through_the_shared_client():
    now = lambda: datetime.datetime.now(datetime.timezone.utc)  # noqa: E731
    issued = []

    def refresh():
        issued.append(f"AKIAREFRESH{len(issued):05d}")
        return {
            "access_key": issued[-1],
            "secret_key": "s",
            "token": None,
            "expiry_time": (now() + datetime.timedelta(hours=1)).isoformat(),
        }

    creds = botocore.credentials.RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    checker = SigV4Checker({})
    with ScriptedServer(checker) as url:
        engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1"}))
        try:
            call = {"service": "dynamodb", "operation": "ListTables", "account": "1", "credentials": creds}
            assert engine.execute(call).ok and engine.execute(call).ok
            assert len(issued) == 1  # fresh: no refresh
            creds._expiry_time = now() + datetime.timedelta(seconds=30)  # inside botocore's refresh window
            assert engine.execute(call).ok
            assert checker.keys == [issued[0], issued[0], issued[1]]
            assert engine.clients.created == 1
        finally:
            engine.close()


@pytest.mark.skipif(
    "account_id" not in botocore.credentials.ReadOnlyCredentials._fields,
    reason="this botocore has no account-based endpoints (1.37 added them)",
)
def test_account_id_endpoint_rules_resolve_per_account():
    """DynamoDB's account-based endpoints come from the signing credentials' account id, per call."""
    engine = Engine(Config.resolve({"region": "us-east-1"}))
    seen = []

    def capture(request, **_):
        seen.append((request.url, request.headers["Authorization"].decode().split("Credential=")[1][:8]))
        response = botocore.awsrequest.AWSResponse(request.url, 200, {}, None)
        response._content = b'{"TableNames": []}'
        return response

    try:
        for account, key in (("111111111111", "AKIA1111"), ("222222222222", "AKIA2222")):
            request = Request(
                "dynamodb",
                "ListTables",
                region="us-east-1",
                account=account,
                credentials={"AccessKeyId": key, "SecretAccessKey": "s", "AccountId": account},
            )
            client = engine.clients.client(request)
            client.meta.events.register("before-send.dynamodb.ListTables", capture, unique_id="capture")
            client.list_tables()
        assert seen == [
            ("https://111111111111.ddb.us-east-1.amazonaws.com/", "AKIA1111"),
            ("https://222222222222.ddb.us-east-1.amazonaws.com/", "AKIA2222"),
        ]
        assert engine.clients.created == 1
    finally:
        engine.close()


def test_accounts_never_leak_across_greenlets_or_threads():
    """The credentials of a call are local to the greenlet (or thread) making it."""
    from greenfetch._signing import AccountClient, CallCredentials, _Signing, frozen_record

    shared = CallCredentials(None)
    views = {}

    def worker(name):
        with _Signing(frozen_record({"AccessKeyId": name, "SecretAccessKey": "s"})):
            views[name] = []
            for _ in range(50):
                views[name].append(shared.get_frozen_credentials().access_key)
                threading.Event().wait(0)  # a switch point under gevent

    workers = [threading.Thread(target=worker, args=(f"K{i}",)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(set(keys) == {name} for name, keys in views.items())
    assert not shared
    assert "secret" not in repr(AccountClient(object(), {"SecretAccessKey": "secret"}))


_THREADS_CHILD = r"""
import json, random, sys
import greenfetch
from greenfetch import Config, Engine
from greenfetch.testing import LoopbackServer
with LoopbackServer(handler="greenfetch.testing._inventory_pages:handle", latency=0.005) as url:
    engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1", "concurrency": 16}))
    accounts = [f"{i:012d}" for i in range(1, 31)]
    requests = [{"service": "sqs", "operation": "ListQueues", "account": a,
                 "credentials": {"AccessKeyId": f"ASIA{a}", "SecretAccessKey": "s"}} for a in accounts * 4]
    random.Random(3).shuffle(requests)
    wrong = sum(any(f"/{r.request.account}/" not in u for u in r.result["QueueUrls"])
                for r in engine.iter_results(requests, concurrency=16))
    print(json.dumps({"backend": engine.config.backend, "wrong": wrong, "created": engine.clients.created}))
    engine.close()
"""


def test_accounts_on_real_threads_sign_as_their_own_account():
    """The threads backend (its own process: this one is gevent-patched). The pages server names the
    account from each call's access key, and each queue URL carries it."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, GREENFETCH_ENGINE="threads")
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_CHILD], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"backend": "threads", "wrong": 0, "created": 1}


_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_REGIONS), max_size=25))
def test_the_client_lru_keeps_the_most_recently_used_hits_included(engine, regions):
    """A hit (lock-free) counts as a use: the cache evicts exactly what an LRU of 4 would, and makes a
    client exactly when such an LRU misses."""
    cache = engine.clients
    cache.close()  # empty, whatever the examples before left
    model: list[str] = []
    for region in regions:
        before = cache.created
        client = cache.client(Request("sqs", "ListQueues", region=region))
        assert client.meta.region_name == region
        assert cache.created == before + (region not in model)
        if region in model:
            model.remove(region)
        model.append(region)
        del model[:-4]
        assert [key[2] for key in cache._clients] == model


_LRU_THREADS_CHILD = r"""
import json, sys, threading
import greenfetch
from greenfetch import Config, Engine, Request
engine = Engine(Config.resolve({"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1", "max_clients": 4}))
regions = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2"]
wrong, errors = [], []
def work(offset):
    try:
        for i in range(400):
            # mostly hits on three, a miss in ten on the other three: evictions beside lock-free hits
            region = regions[(i + offset) % 3] if i % 10 else regions[3 + (i // 10 + offset) % 3]
            if engine.clients.client(Request("sqs", "ListQueues", region=region)).meta.region_name != region:
                wrong.append(region)
    except Exception as exc:
        errors.append(repr(exc))
sys.setswitchinterval(1e-5)  # switch threads often
threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"backend": engine.config.backend, "wrong": len(wrong), "errors": errors[:3],
                  "size": len(engine.clients._clients)}))
engine.close()
"""


def test_the_client_lru_on_real_threads_hands_out_the_right_client_and_stays_bounded():
    """Lock-free hits beside locked misses and evictions, on OS threads switching as often as they can."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, GREENFETCH_ENGINE="threads")
    out = subprocess.run(
        [sys.executable, "-c", _LRU_THREADS_CHILD], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "backend": "threads",
        "wrong": 0,
        "errors": [],
        "size": 4,
    }
