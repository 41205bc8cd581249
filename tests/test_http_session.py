"""The geventhttpclient session against botocore's own urllib3 session, on real servers.

Every parity test makes two clients that differ only in their HTTP session and asserts the same
outcome: parsed results, errors, retries, the bytes on the wire. The scripted server sends what real
servers do only sometimes (chunked bodies, resets mid-body, slow answers); moto gives the four
protocols; a throwaway CA gives TLS.
"""

import logging

import botocore.awsrequest
import botocore.config
import botocore.exceptions
import botocore.retries.standard
import botocore.session
import gevent
import gevent.event
import pytest
from _by_python import GEVENT_KIND, GEVENTHTTPCLIENT, needs_geventhttpclient
from gevent.server import StreamServer

from greenfetch import Config, Engine
from greenfetch._http import install_http_session, pool_size, session_kind
from greenfetch.testing import Reply, ScriptedServer, http_response, throwaway_ca

GEVENT = Config(backend="gevent")
JSON = [("x-amzn-RequestId", "req-1"), ("Content-Type", "application/x-amz-json-1.0")]


_SESSION = (
    botocore.session.get_session()
)  # one session: each client still gets its own endpoint and HTTP session


def make(service, url, *, attempts=3, verify=None, **cfg):
    """One client with botocore's session, as botocore builds it."""
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": attempts}, **cfg)
    return _SESSION.create_client(
        service, region_name="us-east-1", endpoint_url=url, config=config, verify=verify
    )


def pair(service, url, **kwargs):
    """(urllib3 client, geventhttpclient client), otherwise identical."""
    stock, green = make(service, url, **kwargs), make(service, url, **kwargs)
    install_http_session(green, GEVENT)
    assert (session_kind(stock), session_kind(green)) == ("urllib3", "geventhttpclient")
    return stock, green


def outcome(call):
    """What a caller can observe: the result without per-request ids and dates, or the error."""
    try:
        value = call()
    except botocore.exceptions.ClientError as exc:
        meta = exc.response["ResponseMetadata"]
        return ("ClientError", exc.response["Error"], meta["HTTPStatusCode"], meta.get("RetryAttempts"))
    except botocore.exceptions.BotoCoreError as exc:
        return (type(exc).__name__,)
    meta = value.pop("ResponseMetadata", {})
    # per-request values; last-modified too: the two clients each PUT, a second apart at worst
    headers = {
        k: v
        for k, v in meta.get("HTTPHeaders", {}).items()
        if k
        not in ("date", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "x-amz-crc32", "last-modified")
    }
    for key, item in list(value.items()):
        if hasattr(item, "read"):
            value[key] = item.read()
    return ("ok", value, meta.get("HTTPStatusCode"), meta.get("RetryAttempts"), headers)


def same(stock, green, fn):
    a, b = outcome(lambda: fn(stock)), outcome(lambda: fn(green))
    assert a == b
    return a


# -- moto: the four protocols -------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(moto_server):
    return moto_server.url


@needs_geventhttpclient
def test_json_protocol_results_and_errors(moto):
    stock, green = pair("dynamodb", moto)
    stock.create_table(
        TableName="parity",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    stock.put_item(TableName="parity", Item={"k": {"S": "ünïcode ✓"}})
    assert "parity" in same(stock, green, lambda c: c.list_tables())[1]["TableNames"]
    assert same(stock, green, lambda c: c.scan(TableName="parity"))[1]["Items"] == [{"k": {"S": "ünïcode ✓"}}]
    error = same(stock, green, lambda c: c.describe_table(TableName="missing"))
    assert error[0] == "ClientError" and error[1]["Code"] == "ResourceNotFoundException"


@needs_geventhttpclient
def test_query_and_ec2_protocols(moto):
    stock, green = pair("sns", moto)
    stock.create_topic(Name="parity")
    assert same(stock, green, lambda c: c.list_topics())[1]["Topics"]
    assert (
        same(stock, green, lambda c: c.get_topic_attributes(TopicArn="arn:aws:sns:us-east-1:1:nope"))[0]
        == "ClientError"
    )
    stock, green = pair("ec2", moto)
    assert same(stock, green, lambda c: c.describe_vpcs())[1]["Vpcs"]
    assert (
        same(stock, green, lambda c: c.describe_vpcs(VpcIds=["vpc-nope"]))[1]["Code"]
        == "InvalidVpcID.NotFound"
    )


@needs_geventhttpclient
def test_rest_xml_protocol_with_streamed_bodies(moto):
    stock, green = pair("s3", moto)
    body = bytes(range(256)) * 1024 + "\nzwei\ndrei ✓\n".encode()
    stock.create_bucket(Bucket="parity")
    assert same(stock, green, lambda c: c.put_object(Bucket="parity", Key="k", Body=body))[0] == "ok"
    assert same(stock, green, lambda c: c.list_objects_v2(Bucket="parity"))[1]["KeyCount"] == 1
    assert same(stock, green, lambda c: c.get_object(Bucket="parity", Key="k"))[1]["Body"] == body
    assert same(stock, green, lambda c: c.get_object(Bucket="parity", Key="nope"))[1]["Code"] == "NoSuchKey"
    assert same(stock, green, lambda c: c.head_object(Bucket="parity", Key="nope"))[2] == 404

    def streamed(client):
        stream = client.get_object(Bucket="parity", Key="k")["Body"]
        stream.set_socket_timeout(5)
        first = stream.read(10)
        buffer = bytearray(1000)
        filled = stream.readinto(buffer)
        told = stream.tell()
        chunks = list(stream.iter_chunks(65536))
        stream.close()
        lines = list(client.get_object(Bucket="parity", Key="k")["Body"].iter_lines())
        return {
            "ResponseMetadata": {},
            "parts": [first, bytes(buffer[:filled]), told, b"".join(chunks), lines],
        }

    parts = same(stock, green, streamed)[1]["parts"]
    assert parts[0] + parts[1] + parts[3] == body and parts[2] == 1010


@needs_geventhttpclient
def test_rest_json_protocol(moto):
    stock, green = pair("lambda", moto)
    assert same(stock, green, lambda c: c.list_functions())[0] == "ok"
    assert (
        same(stock, green, lambda c: c.get_function(FunctionName="nope"))[1]["Code"]
        == "ResourceNotFoundException"
    )


# -- the scripted server: the wire, retries, timeouts, broken answers ----------------------------


def masked(seen):
    volatile = {"x-amz-date", "authorization", "amz-sdk-invocation-id"}
    return seen.request_line, [(k, "*" if k.lower() in volatile else v) for k, v in seen.headers], seen.body


@needs_geventhttpclient
def test_same_bytes_on_the_wire():
    scripted = ScriptedServer(lambda _: Reply(http_response(200, b"{}", JSON)))
    with scripted as url:
        stock, green = pair("dynamodb", url)
        for client in (stock, green):
            client.list_tables(ExclusiveStartTableName="ünï ✓")
            client.get_item(TableName="t", Key={"k": {"S": "v"}})
        assert [masked(s) for s in scripted.seen[:2]] == [masked(s) for s in scripted.seen[2:]]
    scripted = ScriptedServer(lambda _: Reply(http_response(200, b"", [("x-amz-request-id", "r")])))
    with scripted as url:
        stock, green = pair("s3", url, s3={"addressing_style": "path"})
        for client in (stock, green):
            client.put_object(Bucket="b", Key="a key/ü", Body=b"x" * 70000, Metadata={"m": "v"})
            client.head_object(Bucket="b", Key="k")
            client.delete_object(Bucket="b", Key="k")
        assert [masked(s) for s in scripted.seen[:3]] == [masked(s) for s in scripted.seen[3:]]
        assert len(scripted.seen[3].body) == 70000


@needs_geventhttpclient
def test_chunked_answers_and_repeated_headers():
    body = '{"TableNames": ["ä", "b ✓"]}'.encode()
    reply = Reply(
        http_response(200, body, [*JSON, ("x-amz-meta", "one"), ("X-Amz-Meta", "two")], chunked=True)
    )
    with ScriptedServer(lambda _: reply) as url:
        stock, green = pair("dynamodb", url)
        result = same(stock, green, lambda c: c.list_tables())
        assert result[1]["TableNames"] == ["ä", "b ✓"] and result[4]["x-amz-meta"] == "one, two"


@needs_geventhttpclient
def test_retries_on_5xx_and_throttling_then_success(monkeypatch):
    # botocore's own retry handler decides and counts on both clients; only its jittered pause between
    # attempts (up to 1 s, then 2 s, after a throttle) is zero here: it is random, and outcomes cannot show it
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0
    )
    failure = Reply(http_response(500, b'{"__type": "InternalServerError", "message": "boom"}', JSON))
    throttle = Reply(http_response(400, b'{"__type": "ThrottlingException", "message": "slow down"}', JSON))
    ok = Reply(http_response(200, b'{"TableNames": []}', JSON))
    scripted = ScriptedServer()
    with scripted as url:
        stock, green = pair("dynamodb", url)
        results = []
        for client in (stock, green):
            scripted.script(failure, throttle, ok)
            results.append(outcome(client.list_tables))
        assert results[0] == results[1] and results[0][3] == 2  # RetryAttempts
        for client in (stock, green):
            scripted.script(failure, failure, failure)
            results.append(outcome(client.list_tables))
        assert (
            results[2] == results[3] and results[2][1]["Code"] == "InternalServerError" and results[2][3] == 2
        )


@needs_geventhttpclient
def test_read_timeout_and_reset_mid_body_and_refused_connections():
    slow = Reply(http_response(200, b"{}", JSON), delay=2.0)
    cut = Reply(http_response(200, b'{"TableNames": ["a", "b"]}', JSON)[:-10], close=True)
    garbage = Reply(b"NOT HTTP AT ALL\r\n\r\n", close=True)
    scripted = ScriptedServer(lambda _: Reply(http_response(200, b"{}", JSON)))
    with scripted as url:
        stock, green = pair("dynamodb", url, attempts=1, read_timeout=0.3)
        for reply, expected in ((slow, "ReadTimeoutError"), (garbage, "ConnectionClosedError")):
            for client in (stock, green):
                scripted.script(reply)
                assert outcome(client.list_tables) == (expected,), reply
        # One deliberate difference: a body shorter than its Content-Length. urllib3 (enforce_content_length
        # off) hands botocore the partial body, which parses as an empty result; a lost page looks like
        # success. This session raises ConnectionClosedError, which the standard retry mode retries.
        scripted.script(cut, cut)
        assert outcome(stock.list_tables)[:2] == ("ok", {})
        assert outcome(green.list_tables) == ("ConnectionClosedError",)
        reset = Reply(b"", close=True)  # hung up without an answer
        retried = []
        for client in (stock, green):  # standard mode retries a reset: the second attempt answers
            retry_client = make("dynamodb", url, attempts=3)
            if client is green:
                install_http_session(retry_client, GEVENT)
            scripted.script(reset)
            retried.append(outcome(retry_client.list_tables))
        assert retried[0] == retried[1] and retried[0][3] == 1
    stock, green = pair("dynamodb", url, attempts=1)  # the server is gone
    assert same(stock, green, lambda c: c.list_tables()) == ("EndpointConnectionError",)


@needs_geventhttpclient
def test_streamed_body_cut_mid_way():
    cut = Reply(http_response(200, b"x" * 50000, [("x-amz-request-id", "r")])[:-20000], close=True)
    scripted = ScriptedServer()
    with scripted as url:
        stock, green = pair("s3", url, attempts=1, s3={"addressing_style": "path"})
        for client in (stock, green):
            scripted.script(cut)
            body = client.get_object(Bucket="b", Key="k")["Body"]
            with pytest.raises(botocore.exceptions.ResponseStreamingError):
                body.read()


@needs_geventhttpclient
def test_tls_with_a_ca_bundle(tmp_path):
    ca = throwaway_ca(tmp_path / "ca")
    other = throwaway_ca(tmp_path / "other")
    with ScriptedServer(lambda _: Reply(http_response(200, b'{"TableNames": ["tls"]}', JSON)), tls=ca) as url:
        stock, green = pair("dynamodb", url, verify=ca.ca)
        assert same(stock, green, lambda c: c.list_tables())[1]["TableNames"] == ["tls"]
        stock, green = pair("dynamodb", url, verify=other.ca, attempts=1)
        assert same(stock, green, lambda c: c.list_tables()) == ("SSLError",)
        stock, green = pair("dynamodb", url, verify=False)
        assert same(stock, green, lambda c: c.list_tables())[0] == "ok"


@needs_geventhttpclient
def test_100_continue_does_not_hand_the_socket_back_early():
    """botocore's uploads send ``Expect: 100-continue``; the interim answer is not the end of the exchange."""
    closing = Reply(http_response(200, b"", [("x-amz-request-id", "r"), ("Connection", "close")]))
    scripted = ScriptedServer(lambda _: Reply(http_response(200, b"", [("x-amz-request-id", "r")])))
    with scripted as url:
        client = make("s3", url, attempts=1, s3={"addressing_style": "path"})
        install_http_session(client, GEVENT)
        scripted.script(closing)
        client.put_object(Bucket="b", Key="k", Body=b"x" * 5000)
        assert b"expect: 100-continue" in scripted.seen[-1].head.lower()
        pool = pool_of(client)
        assert (pool._socket_queue.qsize(), pool._semaphore.counter) == (0, pool.size)  # closed, not pooled
        client.put_object(Bucket="b", Key="k", Body=b"x" * 5000)
        assert (pool._socket_queue.qsize(), pool._semaphore.counter) == (1, pool.size)  # kept alive once


# -- cancellation: a killed greenlet never keeps a pool slot -------------------------------------


def pool_of(client):
    (origin,) = client._endpoint.http_session._origins.values()
    return origin.pool


@needs_geventhttpclient
def test_a_greenlet_killed_mid_send_gives_its_slot_back():
    accepted, release = gevent.event.Event(), gevent.event.Event()

    def never_reads(sock, _address):
        accepted.set()
        release.wait(30)
        sock.close()

    server = StreamServer(("127.0.0.1", 0), never_reads)
    server.start()
    try:
        client = make(
            "s3",
            f"http://127.0.0.1:{server.server_port}",
            attempts=1,
            max_pool_connections=2,
            s3={"addressing_style": "path"},
        )
        install_http_session(client, GEVENT)
        worker = gevent.spawn(client.put_object, Bucket="b", Key="k", Body=b"x" * (64 << 20))
        assert accepted.wait(10)
        pool = pool_of(client)
        deadline = gevent.Timeout(10)
        with deadline:  # the body is far larger than the socket buffers: the sender is blocked
            while pool._semaphore.counter != 1:
                gevent.sleep(0.01)
        worker.kill()
        assert pool._semaphore.counter == 2
    finally:
        release.set()
        server.stop()


@needs_geventhttpclient
def test_greenlets_killed_while_waiting_for_answers_leave_the_pool_whole():
    scripted = ScriptedServer(lambda _: Reply(http_response(200, b"{}", JSON), delay=0.5))
    with scripted as url:
        client = make("dynamodb", url, max_pool_connections=5)
        install_http_session(client, GEVENT)
        workers = [gevent.spawn(client.list_tables) for _ in range(12)]
        with gevent.Timeout(10):
            while len(scripted.seen) < 5:
                gevent.sleep(0.01)
        gevent.killall(workers)
        pool = pool_of(client)
        assert pool._semaphore.counter == 5
        scripted.default = lambda _: Reply(http_response(200, b'{"TableNames": []}', JSON))
        done = [gevent.spawn(client.list_tables) for _ in range(10)]
        gevent.joinall(done, timeout=10, raise_error=True)
        assert all(g.value["TableNames"] == [] for g in done)
        assert pool._semaphore.counter == 5


# -- where the session is installed, and where it is not ----------------------------------------


def test_the_engine_uses_geventhttpclient_on_gevent_and_urllib3_on_threads(loopback):
    """(botocore's urllib3 session on gevent too where greenfetch does not install geventhttpclient.)"""
    for backend, kind in (("gevent", GEVENT_KIND), ("threads", "urllib3")):
        engine = Engine(
            Config.resolve({"endpoint_url": loopback.url, "region": "us-east-1", "backend": backend})
        )
        try:
            result = engine.execute({"service": "dynamodb", "operation": "ListTables"})
            assert result.ok, result
            client = engine.clients.client(engine.prepare({"service": "dynamodb", "operation": "ListTables"}))
            assert session_kind(client) == kind
        finally:
            engine.close()


def test_falls_back_to_urllib3_for_what_geventhttpclient_lacks(tmp_path, caplog):
    from greenfetch import _http

    _http._said.clear()
    caplog.set_level(logging.INFO, logger="greenfetch")
    cases = [
        make("dynamodb", "http://127.0.0.1:9", proxies={"http": "http://user:hunter2@127.0.0.1:3128"}),
        make("dynamodb", "http://127.0.0.1:9", proxies={"http": "http://user:hunter2@127.0.0.1:3128"}),
        make("dynamodb", "https://127.0.0.1:9", client_cert=str(tmp_path / "cert.pem")),
        make("dynamodb", "https://127.0.0.1:9", verify=str(tmp_path)),
    ]
    for client in cases:
        install_http_session(client, GEVENT)
        assert session_kind(client) == "urllib3"
    said = [r.getMessage() for r in caplog.records if "urllib3 HTTP session" in r.getMessage()]
    assert len(said) == 3  # once per reason, not per client
    assert not any("hunter2" in line for line in said)
    plain = make("dynamodb", "http://127.0.0.1:9", tcp_keepalive=True)
    install_http_session(plain, GEVENT)  # socket options are applied by the gevent session itself
    assert session_kind(plain) == GEVENT_KIND
    if not GEVENTHTTPCLIENT:  # Python 3.10: the one reason there, said too
        assert caplog.records[-1].getMessage().endswith(": geventhttpclient is not installed")


def test_pool_size_follows_concurrency_within_bounds():
    assert pool_size(10) == 256
    assert pool_size(700) == 700
    assert pool_size(10**9) == 1024


# -- invariants of the wire framing --------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from greenfetch._http._wire import Fields, joined, write  # noqa: E402

_names = st.sampled_from(["x-amz-meta", "X-Amz-Meta", "ETag", "etag", "Content-Type", "x-a"])
_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters=","), max_size=12
)


@given(st.lists(st.tuples(_names, _values), max_size=12))
def test_response_headers_join_as_urllib3_joins_them(pairs):
    from urllib3 import HTTPHeaderDict

    theirs = HTTPHeaderDict()
    for name, value in pairs:
        theirs.add(name, value)
    fields = Fields()
    for name, value in pairs:
        fields.add(name, value)
    ours = joined(fields)
    assert {k.lower(): v for k, v in ours.items()} == {k.lower(): v for k, v in theirs.itermerged()}
    assert botocore.awsrequest.HeadersDict(ours) == botocore.awsrequest.HeadersDict(theirs)


class _Sink:
    def __init__(self):
        self.data = b""

    def sendall(self, data):
        self.data += data

    def send(self, data):
        self.data += data
        return len(data)


def _dechunk(data):
    body = b""
    while True:
        size, _, data = data.partition(b"\r\n")
        size = int(size, 16)
        if size == 0:
            assert data == b"\r\n"
            return body
        body, data = body + data[:size], data[size:]
        assert data[:2] == b"\r\n"
        data = data[2:]


@given(st.lists(st.binary(max_size=40000), max_size=4), st.sampled_from(["bytes", "file", "iterable"]))
def test_chunked_bodies_frame_and_unframe_to_the_same_bytes(parts, kind):
    import io

    payload = b"".join(parts)
    body = {"bytes": payload, "file": io.BytesIO(payload), "iterable": iter(parts)}[kind]
    sink = _Sink()
    write(sink, b"HEAD\r\n\r\n", body, chunked=True)
    assert sink.data.startswith(b"HEAD\r\n\r\n")
    assert _dechunk(sink.data[len(b"HEAD\r\n\r\n") :]) == payload


@needs_geventhttpclient
def test_origins_are_a_bounded_lru(monkeypatch):
    from greenfetch._http import _gevent as _http_gevent

    monkeypatch.setattr(_http_gevent, "_MAX_ORIGINS", 2)
    session = _http_gevent.GeventHTTPSession()
    first, _ = session._origin("http://a.example:1/x")
    session._origin("http://b.example:1/")
    session._origin("http://a.example:1/y")  # a is used again: b is now the oldest
    session._origin("http://c.example:1/")
    assert list(session._origins) == ["http://a.example:1", "http://c.example:1"]
    assert session._origins["http://a.example:1"] is first
    session.close()


# -- the pool's checkout and check-in --------------------------------------------------------------


@needs_geventhttpclient
def test_checkout_and_checkin_are_upstreams():
    """The same script of checkouts, check-ins, drops, a peer hanging up and a close, on our pool and on
    geventhttpclient's own checkout and check-in (same class otherwise): the same socket handed out at
    each step (newest idle first, a dead one closed and skipped), the same idle count and free slots."""
    from geventhttpclient.connectionpool import ConnectionPool

    from greenfetch._http._gevent import _Pool

    peers = []
    server = StreamServer(("127.0.0.1", 0), lambda sock, _: (peers.append(sock), gevent.sleep(30)))
    server.start()

    class Upstream(_Pool):
        get_socket = ConnectionPool.get_socket
        return_socket = ConnectionPool.return_socket

    def run(cls):
        pool = cls(
            "127.0.0.1",
            server.server_port,
            size=3,
            connect_timeout=5,
            read_timeout=5,
            socket_options=[],
            tls=None,
        )
        made, trace, out = [], [], []

        def state(step):
            trace.append((step, pool._socket_queue.qsize(), pool._semaphore.counter))

        def take():
            sock = pool.get_socket()
            if not any(sock is s for s in made):
                made.append(sock)
            out.append(sock)
            state(("took", next(i for i, s in enumerate(made) if s is sock)))

        for _ in range(3):
            take()
        pool.return_socket(out.pop(0))
        pool.return_socket(out.pop(1))
        state("returned two")
        take()
        pool.release_socket(out.pop())
        state("dropped one")
        pool.return_socket(out.pop())
        gevent.sleep(0.05)
        peers[-3].close()  # the first connection's server side hangs up: it is idle now, and dead
        gevent.sleep(0.05)
        take()
        take()
        state(("closed", [s.fileno() < 0 for s in made]))
        pool.return_socket(out.pop())
        pool.close()
        pool.return_socket(out.pop())
        state(("after close", [s.fileno() < 0 for s in made]))
        return trace

    try:
        ours = run(_Pool)
        peers.clear()
        theirs = run(Upstream)
    finally:
        server.stop()
    assert ours == theirs
