"""The geventhttpclient session over TLS: the same bytes as botocore's urllib3 session, the same
certificate checks, connections kept alive, TLS sessions resumed, one TLS context per CA bundle."""

import ssl

import _needs_geventhttpclient  # noqa: F401  (skips this module where geventhttpclient is not installed)
import botocore.config
import botocore.exceptions
import botocore.session
import gevent
import pytest
from _dynamodb_clients import JSON, OK, dynamodb_client, masked

from greenfetch._http import _gevent
from greenfetch.testing import Reply, ScriptedServer, http_response


def pool_of(made):
    (origin,) = made._endpoint.http_session._origins.values()
    return origin.pool


def outcome(call):
    try:
        return ("ok", call()["TableNames"])
    except botocore.exceptions.BotoCoreError as exc:
        return (type(exc).__name__,)


def test_same_bytes_on_the_wire_as_urllib3_over_tls(cas):
    ca, _ = cas
    scripted = ScriptedServer(lambda _: OK, tls=ca)
    with scripted as url:
        for green in (False, True):
            made = dynamodb_client(url, verify=ca.ca, green=green)
            made.list_tables(ExclusiveStartTableName="ünï ✓")
            made.put_item(TableName="t", Item={"k": {"S": "v" * 70000}})  # a body past one TLS record
        half = len(scripted.seen) // 2
        assert [masked(s) for s in scripted.seen[:half]] == [masked(s) for s in scripted.seen[half:]]
        assert len(scripted.seen[-1].body) > 70000


def test_certificate_verification_is_unchanged(cas):
    ca, other = cas
    with ScriptedServer(lambda _: OK, tls=ca) as url:
        for green in (False, True):  # urllib3 first: what botocore does is what the session must do
            assert outcome(dynamodb_client(url, verify=ca.ca, green=green).list_tables) == ("ok", ["tls"])
            assert outcome(dynamodb_client(url, verify=other.ca, green=green).list_tables) == ("SSLError",)
            assert outcome(dynamodb_client(url, verify=False, green=green).list_tables) == ("ok", ["tls"])
            # botocore's default bundle (certifi) does not know a throwaway CA
            assert outcome(dynamodb_client(url, verify=None, green=green).list_tables) == ("SSLError",)
        # a session a trusting client resumed never reaches a client that does not trust the server
        trusting = dynamodb_client(url, verify=ca.ca)
        gevent.joinall([gevent.spawn(trusting.list_tables) for _ in range(3)], raise_error=True)
        assert outcome(dynamodb_client(url, verify=other.ca).list_tables) == ("SSLError",)


def test_a_connection_is_kept_across_calls(cas):
    ca, _ = cas
    scripted = ScriptedServer(lambda _: OK, tls=ca)
    with scripted as url:
        made = dynamodb_client(url, verify=ca.ca)
        for _ in range(5):
            assert made.list_tables()["TableNames"] == ["tls"]
        assert scripted.connections == 1 and len(scripted.seen) == 5
        pool = pool_of(made)
        assert pool._socket_queue.qsize() == 1 and pool._semaphore.counter == pool.size


def test_new_connections_resume_the_tls_session(cas):
    ca, _ = cas
    slow = Reply(http_response(200, b'{"TableNames": []}', JSON), delay=0.2)
    scripted = ScriptedServer(lambda _: slow, tls=ca)
    with scripted as url:
        made = dynamodb_client(url, verify=ca.ca)
        made.list_tables()  # one full handshake; its ticket comes with the first answer
        workers = [gevent.spawn(made.list_tables) for _ in range(4)]  # in flight at once: 3 more connections
        gevent.joinall(workers, timeout=10, raise_error=True)
        assert scripted.connections == 4
        sockets = list(pool_of(made)._socket_queue.queue)
        assert len(sockets) == 4
        assert sorted(s.session_reused for s in sockets) == [False, True, True, True]
        assert all(s.version() == "TLSv1.3" for s in sockets)


def test_a_server_that_hung_up_an_idle_connection_costs_no_retry(cas):
    ca, _ = cas
    closing = Reply(
        http_response(200, b'{"TableNames": ["tls"]}', [*JSON, ("Connection", "keep-alive")]), close=True
    )
    scripted = ScriptedServer(lambda _: OK, tls=ca)
    with scripted as url:
        made = dynamodb_client(url, verify=ca.ca, attempts=1)
        scripted.script(closing)  # answered, then the server closes the kept-alive connection
        made.list_tables()
        gevent.sleep(0.05)
        result = made.list_tables()  # the pooled socket is seen dead and replaced: no error, no retry
        assert result["ResponseMetadata"]["RetryAttempts"] == 0
        assert scripted.connections == 2


def test_one_tls_context_per_ca_bundle(cas, tmp_path):
    ca, other = cas
    with ScriptedServer(lambda _: OK, tls=ca) as url:
        first, second = dynamodb_client(url, verify=ca.ca), dynamodb_client(url, verify=ca.ca)
        for made in (first, second):
            made.list_tables()
        assert pool_of(first)._tls is pool_of(second)._tls
        unverified = dynamodb_client(url, verify=False)
        unverified.list_tables()
        assert pool_of(unverified)._tls is not pool_of(first)._tls
        assert pool_of(unverified)._tls.verify_mode == ssl.CERT_NONE
        assert pool_of(first)._tls.verify_mode == ssl.CERT_REQUIRED and pool_of(first)._tls.check_hostname
    # a bundle changed on disk is read again
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(open(other.ca, "rb").read())
    before = _gevent._shared_context(str(bundle))
    bundle.write_bytes(open(ca.ca, "rb").read() + open(other.ca, "rb").read())
    assert _gevent._shared_context(str(bundle)) is not before
    assert _gevent._shared_context(str(bundle)) is _gevent._shared_context(str(bundle))


def test_taking_a_pooled_connection_does_not_yield_to_the_hub(cas):
    """gevent's select() sleeps even with a zero timeout: every call paid a hub round trip to check its
    pooled socket. The check is one system call now, and the caller keeps running."""
    ca, _ = cas
    with ScriptedServer(lambda _: OK, tls=ca) as url:
        made = dynamodb_client(url, verify=ca.ca)
        made.list_tables()
        pool = pool_of(made)
        ran = []
        gevent.spawn(ran.append, 1)
        sock = pool.get_socket()
        assert ran == []  # the other greenlet has not run: no switch happened
        pool.return_socket(sock)
        gevent.sleep(0)
        assert ran == [1]


def test_a_connection_on_a_high_descriptor_is_kept(cas):
    """select() refuses descriptors from 1024 on; a check that fails there would call every pooled
    socket dead and open (and handshake) a new connection for every call."""
    import gc
    import os
    import resource

    ca, _ = cas
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1300:
        if hard != resource.RLIM_INFINITY and hard < 1300:
            pytest.skip("the descriptor limit is below 1300")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1300, hard))
    fillers = []

    def fill():  # every free descriptor below 1100
        while not fillers or fillers[-1] < 1100:
            fillers.append(os.open(os.devnull, os.O_RDONLY))

    gc.disable()
    fill()
    gc.collect()
    gevent.sleep(0.1)  # earlier tests' sockets that close through the hub or the collector: now, not later
    fillers.append(os.open(os.devnull, os.O_RDONLY))
    fill()
    try:
        scripted = ScriptedServer(lambda _: OK, tls=ca)
        with scripted as url:
            made = dynamodb_client(url, verify=ca.ca)
            for _ in range(3):
                assert made.list_tables()["TableNames"] == ["tls"]
            (sock,) = pool_of(made)._socket_queue.queue
            assert sock.fileno() >= 1024
            assert scripted.connections == 1
    finally:
        for fd in fillers:
            os.close(fd)
        gc.enable()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
