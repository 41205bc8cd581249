"""greenfetch._botocore_fast against botocore's own request headers: the same requests, byte for byte.

botocore builds each request of a corpus twice, with its own ``HTTPHeaders`` and with the adaptation,
at a frozen clock and with fixed ids, and the prepared requests must be identical: method, URL, every
header (name, value, order, type) and body. The corpus is every operation of one to three services of
each protocol (JSON, query, EC2, REST-JSON, REST-XML, and CBOR), each with its required input and every member
botocore puts in a header, the query string or the path, plus hand-written calls that reach the odd
paths (repeated and non-ASCII header values, surrogate-escaped bytes, streamed bodies, presigning).
Then a server check: the hand-written calls go over real HTTP (the geventhttpclient session) to a
scripted server, and botocore's own signer, with its own header class, recomputes each SigV4 signature
from what the server received.
"""

import collections
import copy
import datetime
import io
import itertools
import logging
import time
import types
import uuid

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.compat
import botocore.config
import botocore.credentials
import botocore.endpoint
import botocore.session
import pytest

from greenfetch import Config
from greenfetch import _botocore_fast as fast
from greenfetch._http import install_http_session
from greenfetch.testing import Reply, ScriptedServer, http_response

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
SWEEP = {
    "json": ["dynamodb", "kms", "sqs"],
    "query": ["sns", "sts", "cloudformation"],
    "ec2": ["ec2"],
    "rest-json": ["lambda", "glacier"],
    "rest-xml": ["s3", "route53"],
    "smithy-rpc-v2-cbor": ["cloudwatch"],
}
EC2_EVERY = 4  # EC2 has 800 operations of one shape of serializer: a quarter of them
PLACED = {"header", "headers", "querystring", "uri"}


@pytest.fixture(autouse=True)
def _restore():
    was = fast.installed()
    yield
    if was:
        fast.install()
    else:
        fast.uninstall()


@pytest.fixture(scope="module")
def session():
    return botocore.session.get_session()


def clock(patch, now):
    """botocore's signing clock stopped at ``now`` (newer botocore reads get_current_datetime, older utcnow;
    query-string auth, as S3's presigned URLs, reads time.time() for its Expires: two builds a second
    apart differed there)."""
    patch.setattr(botocore.auth, "get_current_datetime", lambda: now, raising=False)
    naive = now.replace(tzinfo=None)
    frozen = type("Frozen", (datetime.datetime,), {"utcnow": classmethod(lambda cls: naive)})
    patch.setattr(botocore.auth.datetime, "datetime", frozen)
    stamp = now.timestamp()
    patch.setattr(
        botocore.auth,
        "time",
        types.SimpleNamespace(
            time=lambda: stamp, gmtime=lambda *_: time.gmtime(stamp), strftime=time.strftime
        ),
    )


@pytest.fixture
def frozen(monkeypatch):
    """A fixed clock and fixed ids, restarted before each build: both builds of a request see the same."""
    counter = itertools.count()
    clock(monkeypatch, NOW)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter)))

    def restart():
        nonlocal counter
        counter = itertools.count()

    return restart


def client_for(session, service, url=None, **config):
    cfg = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}, **config)
    return session.create_client(
        service,
        region_name="us-west-2",
        endpoint_url=url,
        config=cfg,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret/example",
        aws_session_token="token-example" if service in ("s3", "sqs", "iam") else None,
    )


# -- the sweep: every operation, sample input from its shapes -----------------------------------


def sample(shape, depth=0, top=False):
    """A value botocore's validator accepts for ``shape``: required members, and at the top every
    member bound to the HTTP head (header, headers map, query string, path)."""
    kind = shape.type_name
    if depth > 6:
        return None
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            placed = top and member.serialization.get("location") in PLACED
            if name in shape.required_members or placed:
                # S3 checks bucket names
                value = "bucket-1" if name == "Bucket" else sample(member, depth + 1)
                if value is not None:
                    out[name] = value
        return out
    if kind == "list":
        item = sample(shape.member, depth + 1)
        return [] if item is None else [item] * max(1, shape.metadata.get("min", 1))
    if kind == "map":
        value = sample(shape.value, depth + 1)
        return {} if value is None else {"Key-One": value}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        if shape.metadata.get("jsonvalue"):
            return {"k": "v"}
        low, high = shape.metadata.get("min", 1), shape.metadata.get("max", 64)
        return ("Value " * 20)[: max(low, min(6, high))].ljust(low, "x")
    if kind in ("integer", "long"):
        return max(1, int(shape.metadata.get("min", 1)))
    if kind in ("float", "double"):
        return 1.5
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return NOW
    if kind == "blob":
        return b"blob \x00\xff" * max(1, shape.metadata.get("min", 1))
    return None


def sweep(session):
    for protocol, services in SWEEP.items():
        for service in services:
            model = session.get_service_model(service)
            assert model.protocol == protocol or service == "cloudwatch"  # query in older botocore
            names = model.operation_names[::EC2_EVERY] if service == "ec2" else model.operation_names
            for name in names:
                operation = model.operation_model(name)
                params = sample(operation.input_shape, top=True) if operation.input_shape is not None else {}
                yield service, name, params


# -- one build, captured at the wire --------------------------------------------------------------


class Captured(Exception):
    """Raised from ``before-send``: the request is built and signed, nothing goes out."""


def built(client, operation, params, restart):
    """What botocore would put on the wire for one call, as plain values (or the error it raised)."""
    seen = []

    def capture(request, **_):
        seen.append(
            (
                request.method,
                request.url,
                [(k, type(v).__name__, str(v)) for k, v in request.headers.items()],
                request.body if not hasattr(request.body, "read") else ("stream", request.body.read()),
            )
        )
        raise Captured

    client.meta.events.register_first("before-send", capture)
    restart()
    try:
        getattr(client, botocore.xform_name(operation))(**params)
    except Captured:
        return seen[0]
    except Exception as exc:  # noqa: BLE001 - compared, both ways must fail alike
        return ("error", type(exc).__name__, str(exc))
    finally:
        client.meta.events.unregister("before-send", capture)
    return ("no request", seen)


def both_ways(session, calls, frozen):
    """Each call built with botocore's class, then with the adaptation; the pairs that differ."""
    results = {}
    for installed in (False, True):
        if installed:
            assert fast.install()
        else:
            fast.uninstall()
        clients = {}
        for key, (service, operation, params, config) in calls.items():
            cache = (service, repr(config))
            client = clients.get(cache) or clients.setdefault(cache, client_for(session, service, **config))
            results.setdefault(key, []).append(built(client, operation, copy.deepcopy(params), frozen))
    return {key: pair for key, pair in results.items() if pair[0] != pair[1]}, results


def test_every_operation_of_every_protocol_builds_the_same_request(session, frozen):
    calls = {(service, name): (service, name, params, {}) for service, name, params in sweep(session)}
    differ, results = both_ways(session, calls, frozen)
    assert not differ, next(iter(differ.items()))
    sent = sum(1 for pair in results.values() if pair[0][0] not in ("error", "no request"))
    per_protocol = collections.Counter(
        session.get_service_model(s).protocol for (s, _), pair in results.items() if pair[0][0] != "error"
    )
    assert len(calls) > 700 and sent > 0.9 * len(calls), (sent, len(calls))
    every = {"json", "query", "ec2", "rest-json", "rest-xml"}
    if session.get_service_model("cloudwatch").protocol == "smithy-rpc-v2-cbor":
        every.add("smithy-rpc-v2-cbor")
    assert set(per_protocol) == every and min(per_protocol.values()) > 20, per_protocol


def hand_written():
    """Calls that reach what the sweep does not: values that are not ASCII, repeated headers,
    streamed bodies, checksums, host prefixes, the virtual-host S3 addressing."""
    meta = {"Metadata": {"m1": "v", "Mixed-Case": "x y"}}
    return {
        "dynamodb unicode": ("dynamodb", "PutItem", {"TableName": "t", "Item": {"k": {"S": "ünï ✓"}}}, {}),
        "dynamodb list": ("dynamodb", "ListTables", {}, {}),
        "sqs send": (
            "sqs",
            "SendMessage",
            {"QueueUrl": "https://sqs.us-west-2.amazonaws.com/1/q", "MessageBody": "b ✓"},
            {},
        ),
        "sns publish": (
            "sns",
            "Publish",
            {
                "TopicArn": "arn:aws:sns:us-west-2:1:t",
                "Message": "m ✓",
                "MessageAttributes": {"a": {"DataType": "String", "StringValue": "v"}},
            },
            {},
        ),
        "sts assume": (
            "sts",
            "AssumeRole",
            {"RoleArn": "arn:aws:iam::1:role/r", "RoleSessionName": "session"},
            {},
        ),
        "ec2 filters": (
            "ec2",
            "DescribeInstances",
            {"Filters": [{"Name": "tag:a b", "Values": ["x", "ü"]}]},
            {},
        ),
        "lambda invoke": (
            "lambda",
            "Invoke",
            {"FunctionName": "f", "Payload": b'{"a": 1}', "InvocationType": "Event", "ClientContext": "e30="},
            {},
        ),
        "lambda list": ("lambda", "ListFunctions", {"MaxItems": 5}, {}),
        "glacier upload": (
            "glacier",
            "UploadArchive",
            {"vaultName": "v", "body": b"x" * 3000, "archiveDescription": "d"},
            {},
        ),
        "s3 put": (
            "s3",
            "PutObject",
            {
                "Bucket": "bucket",
                "Key": "a key/ü ✓",
                "Body": b"x" * 2000,
                "ContentType": "text/plain",
                **meta,
            },
            {},
        ),
        "s3 put stream": (
            "s3",
            "PutObject",
            {"Bucket": "bucket", "Key": "k", "Body": io.BytesIO(b"y" * 5000)},
            {},
        ),
        "s3 put latin-1 header": (
            "s3",
            "PutObject",
            {
                "Bucket": "bucket",
                "Key": "k",
                "Body": b"z",
                "ContentDisposition": 'attachment; filename="ü.txt"',
            },
            {},
        ),
        "s3 put surrogate header": (
            "s3",
            "PutObject",
            {"Bucket": "bucket", "Key": "k", "Body": b"z", "ContentDisposition": "a\udcffb"},
            {},
        ),
        "s3 get range": (
            "s3",
            "GetObject",
            {"Bucket": "bucket", "Key": "k", "Range": "bytes=0-9", "IfNoneMatch": '"etag"'},
            {},
        ),
        "s3 list path": (
            "s3",
            "ListObjectsV2",
            {"Bucket": "bucket", "Prefix": "p/ü", "MaxKeys": 3},
            {"s3": {"addressing_style": "path"}},
        ),
        "s3 copy": ("s3", "CopyObject", {"Bucket": "bucket", "Key": "k2", "CopySource": "src/ä b"}, {}),
        "s3 delete many": (
            "s3",
            "DeleteObjects",
            {"Bucket": "bucket", "Delete": {"Objects": [{"Key": "a"}]}},
            {},
        ),
        "route53 change": (
            "route53",
            "ChangeResourceRecordSets",
            {
                "HostedZoneId": "Z1",
                "ChangeBatch": {
                    "Changes": [
                        {
                            "Action": "UPSERT",
                            "ResourceRecordSet": {
                                "Name": "a.example.com",
                                "Type": "A",
                                "TTL": 60,
                                "ResourceRecords": [{"Value": "1.2.3.4"}],
                            },
                        }
                    ]
                },
            },
            {},
        ),
        "cloudwatch metrics": ("cloudwatch", "ListMetrics", {"Namespace": "AWS/EC2"}, {}),
    }


def test_hand_written_calls_build_the_same_request(session, frozen):
    differ, results = both_ways(session, hand_written(), frozen)
    assert not differ, next(iter(differ.items()))
    failed = {key: pair[0][:2] for key, pair in results.items() if pair[0][0] in ("error", "no request")}
    # botocore's own class hands the signer an email Header for a surrogate-escaped value, which it
    # cannot sign; the adaptation hands over the same object and fails the same way
    assert failed == {"s3 put surrogate header": ("error", "AttributeError")}
    latin = dict((k, (t, v)) for k, t, v in results["s3 put latin-1 header"][1][2])
    assert latin["Content-Disposition"] == ("bytes", str('attachment; filename="ü.txt"'.encode()))


def test_presigned_urls_are_the_same(session, frozen, monkeypatch):
    urls = []
    for installed in (False, True):
        fast.install() if installed else fast.uninstall()
        client = client_for(session, "s3")
        frozen()
        urls.append(client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k ü"}))
    assert urls[0] == urls[1]


# -- the header class itself ---------------------------------------------------------------------


def test_the_class_behaves_as_botocores_for_every_verb():
    import email.header

    from hypothesis import given, settings
    from hypothesis import strategies as st

    names = st.sampled_from(["Host", "host", "X-Amz-Date", "x-amz-date", "Content-Type", "ü-Name"])
    values = st.one_of(st.text(max_size=6), st.sampled_from(["a\udcffb", "ü", ""]), st.integers())
    verbs = st.lists(
        st.tuples(st.sampled_from(["set", "del", "get", "in", "all", "replace"]), names, values), max_size=25
    )

    def plain(value):  # an email Header compares by its text (its repr names its address)
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, tuple):
            return tuple(plain(v) for v in value)
        return ("Header", str(value)) if isinstance(value, email.header.Header) else value

    def text(headers):
        try:
            return headers.as_string()
        except Exception as exc:  # noqa: BLE001 - compared
            return type(exc).__name__

    @settings(max_examples=60, deadline=None)
    @given(verbs)
    def check(script):
        ours, theirs = fast.Headers(), botocore.compat.HTTPHeaders()
        for verb, name, value in script:
            outcome = []
            for headers in (ours, theirs):
                try:
                    if verb == "set":
                        headers[name] = value
                    elif verb == "del":
                        del headers[name]
                    elif verb == "replace":
                        headers.replace_header(name, value)
                    outcome.append(
                        plain(
                            (
                                headers.get(name, "absent"),
                                name in headers,
                                headers.get_all(name),
                                headers[name],
                            )
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - compared
                    outcome.append(type(exc).__name__)
            assert outcome[0] == outcome[1], (verb, name, value)
            assert plain(ours.items()) == plain(theirs.items())
            assert plain(ours.values()) == plain(theirs.values())
            assert ours.keys() == theirs.keys() and list(ours) == list(theirs) and len(ours) == len(theirs)
        assert text(ours) == text(theirs)

    check()


def test_isinstance_and_other_policies():
    import email.policy

    assert isinstance(fast.Headers(), botocore.compat.HTTPHeaders)
    # a policy that is not written out: botocore's class
    assert type(fast.Headers(email.policy.default)) is botocore.compat.HTTPHeaders
    assert type(fast.Headers.from_dict({"a": "b"})) is fast.Headers


def test_outside_the_checked_versions_botocores_class_stays_and_it_is_said_once(monkeypatch, caplog):
    fast.uninstall()
    monkeypatch.setattr(fast, "_said", False)
    monkeypatch.setattr(botocore, "__version__", "1.99.0")
    caplog.set_level(logging.INFO, logger="greenfetch")
    assert fast.install() is False and fast.install() is False
    assert botocore.awsrequest.HTTPHeaders is botocore.compat.HTTPHeaders
    assert botocore.auth.HTTPHeaders is botocore.compat.HTTPHeaders
    said = [r.getMessage() for r in caplog.records if "request-path adaptations" in r.getMessage()]
    assert len(said) == 1 and "1.99.0" in said[0]
    assert (
        fast.checked((1, 43))
        and fast.checked((1, 36))
        and not fast.checked((1, 35))
        and not fast.checked((2, 0))
    )


def test_the_engine_installs_it():
    from greenfetch import Engine

    fast.uninstall()
    engine = Engine(Config(backend="gevent"))
    try:
        assert fast.installed()
    finally:
        engine.close()


# -- the server check: botocore's own signer recomputes every signature --------------------------


def verify(seen):
    """Recompute the SigV4 signature of a request as received, with botocore's signer (and its own
    header class): the signed headers from the request, the body as received, the request's clock."""
    method, target, _ = seen.request_line.split(" ", 2)
    lines = seen.head.decode("utf-8").split("\r\n")[1:]  # botocore sends header values as UTF-8
    received = [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines if line)]
    lookup = {}
    for name, value in received:
        lookup.setdefault(name.lower(), []).append(value)
    authorization = lookup["authorization"][0]
    scheme, _, fields = authorization.partition(" ")
    parts = dict(part.strip().split("=", 1) for part in fields.split(","))
    key, date, region, service, _ = parts["Credential"].split("/")
    request = botocore.awsrequest.AWSRequest(
        method=method, url=f"http://{lookup['host'][0]}{target}", data=seen.body
    )
    for name in parts["SignedHeaders"].split(";"):
        for value in lookup[name]:
            request.headers[name] = value
    if lookup.get("x-amz-content-sha256") == [botocore.auth.STREAMING_UNSIGNED_PAYLOAD_TRAILER]:
        request.context["checksum"] = {"request_algorithm": {"in": "trailer"}}  # aws-chunked: not hashed
    token = lookup.get("x-amz-security-token", [None])[0]
    credentials = botocore.credentials.Credentials(key, "secret/example", token)
    signer = (botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth)(
        credentials, service, region
    )
    stamp = datetime.datetime.strptime(lookup["x-amz-date"][0], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    with pytest.MonkeyPatch.context() as patch:
        clock(patch, stamp)
        signer.add_auth(request)
    assert scheme == "AWS4-HMAC-SHA256"
    assert request.headers["Authorization"] == authorization, (
        seen.request_line,
        request.headers["Authorization"],
    )
    if service == "s3":  # the payload hash is recomputed from the body as received
        assert request.headers["X-Amz-Content-SHA256"] == lookup["x-amz-content-sha256"][0]
    return service


def test_a_server_recomputes_every_signature(session):
    scripted = ScriptedServer(lambda _: Reply(http_response(200, b"", [("x-amzn-RequestId", "r")])))
    calls = {key: call for key, call in hand_written().items() if "surrogate" not in key}
    assert fast.install()
    with scripted as url:
        for service, operation, params, config in calls.values():
            client = client_for(session, service, url, **config)
            install_http_session(client, Config(backend="gevent"))
            try:
                getattr(client, botocore.xform_name(operation))(**params)
            except Exception:  # noqa: BLE001 - an empty answer may not parse; what was sent is checked
                pass
    fast.uninstall()  # the server side is botocore's own
    assert botocore.auth.HTTPHeaders is botocore.compat.HTTPHeaders
    services = [verify(seen) for seen in scripted.seen]
    assert len(services) >= len(calls)
    assert {
        "dynamodb",
        "sqs",
        "sns",
        "sts",
        "ec2",
        "lambda",
        "glacier",
        "s3",
        "route53",
        "monitoring",
    } <= set(services)
