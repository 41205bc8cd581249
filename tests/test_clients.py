"""The client cache: shared clients, bounded, keyed without secrets, User-Agent built once."""

import pytest

from greenfetch import Config, Engine, Request


@pytest.fixture
def engine(moto_server):
    eng = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1", "max_clients": 4}))
    yield eng
    eng.close()


def test_one_client_per_service_region_identity(engine):
    req = Request("s3", "ListBuckets", region="us-east-1")
    assert engine.clients.client(req) is engine.clients.client(req)
    assert engine.clients.client(req) is not engine.clients.client(Request("s3", "ListBuckets", region="eu-west-1"))
    assert engine.clients.client(req, isolated=True) is not engine.clients.client(req)


def test_clients_are_bounded_lru(engine):
    for region in ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2"]:
        engine.clients.client(Request("sqs", "ListQueues", region=region))
    assert len(engine.clients._clients) == 4


def test_rotated_credentials_get_a_new_client_and_the_key_holds_no_secret(engine):
    one = {"AccessKeyId": "AKIAONE", "SecretAccessKey": "secret-one"}
    two = {"AccessKeyId": "AKIATWO", "SecretAccessKey": "secret-two"}
    a = engine.clients.client(Request("s3", "ListBuckets", region="us-east-1", account="111111111111", credentials=one))
    b = engine.clients.client(Request("s3", "ListBuckets", region="us-east-1", account="111111111111", credentials=two))
    assert a is not b
    assert "secret" not in repr(list(engine.clients._clients.keys()))


def test_memoized_user_agent_matches_botocore(engine):
    _, client = engine.prepare({"service": "s3", "operation": "ListBuckets"})
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
    assert seen["ua"].split(" m/")[0] == memo.split(" m/")[0]  # same UA; per-call feature ids may add " m/..."


def test_isolated_client_hooks_do_not_leak_to_the_shared_one(engine):
    req, shared = engine.prepare({"service": "s3", "operation": "ListBuckets"})
    isolated = engine.clients.client(req, isolated=True)
    calls = []
    isolated.meta.events.register("before-send.s3.ListBuckets", lambda **_: calls.append(1))
    shared.list_buckets()
    assert calls == []
    isolated.list_buckets()
    assert calls == [1]


def test_clients_of_one_service_share_class_and_model_but_not_state(engine):
    one = engine.clients.client(Request("ec2", "DescribeVpcs", region="us-east-1", account="111111111111",
                                        credentials={"AccessKeyId": "A1", "SecretAccessKey": "s1"}))
    two = engine.clients.client(Request("ec2", "DescribeVpcs", region="eu-west-1", account="222222222222",
                                        credentials={"AccessKeyId": "A2", "SecretAccessKey": "s2"}))
    assert type(one) is type(two)
    assert one.meta.service_model is two.meta.service_model
    assert one.meta.region_name != two.meta.region_name
    assert one._request_signer._credentials.access_key != two._request_signer._credentials.access_key


def test_botocore_sessions_that_are_not_greenfetchs_are_left_alone():
    import botocore.session

    session = botocore.session.Session()
    a = session.create_client("sqs", region_name="us-east-1")
    b = session.create_client("sqs", region_name="us-east-1")
    assert type(a) is not type(b)
