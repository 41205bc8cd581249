"""greenfetch._botocore_fast's signing and endpoint adaptations against botocore's own code, piece by piece.

tests/test_headers_parity.py builds every request of a corpus both ways (all adaptations installed, then
none) and has a server recompute the signatures; this module checks each later adaptation where that
sweep cannot reach: the Host of URLs the corpus does not use (ports, user info, IPv6, case), the map of
headers to sign when one signer is reused on a request that changed, signing keys across secrets, days,
regions and services, and the endpoint ruleset's parameters for every operation of services whose
rulesets read the operation's input (static and operation context parameters, JMESPath paths, client
context) under several client configurations.
"""

import collections.abc
import copy
import datetime
import functools
import itertools
import os
import sys
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.configprovider
import botocore.credentials
import botocore.endpoint
import botocore.hooks
import botocore.session
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_headers_parity import client_for, sample

from greenfetch import _botocore_fast as fast

pytestmark = pytest.mark.usefixtures("fast_installed")


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__)


urls = st.builds(
    "{}://{}{}{}{}".format,
    st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    st.sampled_from(["", "user@", "user:pw@"]),
    st.sampled_from(
        ["dynamodb.us-east-1.amazonaws.com", "Bucket.S3.Amazonaws.com", "[::1]", "[FE80::1]", "127.0.0.1"]
    ),
    st.sampled_from(["", ":80", ":443", ":8443", ":0", ":x", ":99999"]),
    st.sampled_from(["", "/", "/a/b?x=1", "?q", "#f"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(urls, min_size=1, max_size=8))
def test_host_from_url_is_botocores(seen):
    """In any order (the cache must key on the whole URL): the same Host, or the same error."""
    for url in seen:
        assert outcome(fast.host_from_url, url) == outcome(fast._host_from_url, url), url
    assert fast.host_from_url(b"http://bytes.example") == fast._host_from_url(b"http://bytes.example")


def request(url="https://dynamodb.us-east-1.amazonaws.com/", **headers):
    made = botocore.awsrequest.AWSRequest(method="POST", url=url, data=b"{}", headers=headers)
    made.context["timestamp"] = "20260102T030405Z"
    return made


def pairs(headers):
    return [(k, str(v)) for k, v in headers.items()]


def test_headers_to_sign_follow_the_request_when_a_signer_is_reused():
    """Within one signature the second map is the first; a changed header or URL, another request or
    a caller that altered the map it got all see what botocore's own code would give."""
    creds = botocore.credentials.Credentials("AKID", "secret")
    signer = botocore.auth.SigV4Auth(creds, "dynamodb", "us-east-1")
    first = request(**{"X-Amz-Target": "DynamoDB_20120810.ListTables", "User-Agent": "ua"})

    def same(req):
        ours = signer.headers_to_sign(req)
        assert pairs(ours) == pairs(fast._headers_to_sign(signer, req))
        return ours

    got = same(first)
    assert pairs(same(first)) == pairs(got)
    got["x-added"] = "by a caller"  # the map handed out is the caller's: the next one does not have it
    assert "x-added" not in same(first)
    first.headers["X-Amz-Date"] = "20260102T030405Z"
    assert "x-amz-date" in same(first)
    del first.headers["X-Amz-Target"]
    assert "x-amz-target" not in same(first)
    first.url = "https://dynamodb.us-east-1.amazonaws.com:8443/"
    assert same(first)["host"] == "dynamodb.us-east-1.amazonaws.com:8443"
    other = request(url="http://other.example:81/")
    assert same(other)["host"] == "other.example:81"
    first.headers["Host"] = "explicit.example"
    assert same(first)["host"] == "explicit.example"


def test_signatures_across_secrets_days_regions_and_services():
    """Keys are derived per (secret, day, region, service): every combination, interleaved and
    repeated (a key's first signature, its second, which makes its HMAC states, and a later one),
    signs as botocore's own derivation does."""
    combos = list(
        itertools.product(
            ["secret-a", "secret-b", "sécret/ü"],
            ["20260102T030405Z", "20260103T000000Z"],
            ["us-east-1", "eu-west-1"],
            ["dynamodb", "s3"],
        )
    )
    for round_, (secret, stamp, region, service) in enumerate(combos * 3):
        creds = botocore.credentials.Credentials("AKID", secret, "token").get_frozen_credentials()
        signer = (botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth)(
            creds, service, region
        )
        req = request()
        req.context["timestamp"] = stamp
        string_to_sign = f"AWS4-HMAC-SHA256\n{stamp}\nscope\nhash{round_}"
        assert fast.signature(signer, string_to_sign, req) == fast._signature(signer, string_to_sign, req)


header_names = st.sampled_from(["host", "x-amz-date", "X-Amz-Date", "content-type", "ü-name", "a b", " x"])
header_values = st.one_of(
    st.sampled_from(["v", "  two  spaces ", "a\tb\nc", "", "ünï", "x\udcffy", "\x1cx"]), st.binary(max_size=2)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(header_names, header_values), max_size=6), st.sampled_from([0, 1, 2]))
@example([("host", "  two  spaces "), ("x-amz-date", "a\tb")], 0)
@example([("host", "  two  spaces ")], 2)
@example([("x-amz-date", "1"), ("X-Amz-Date", "2"), ("host", "h")], 0)
def test_canonical_and_signed_headers_are_botocores(pairs_, kind):
    """Any map of headers to sign (names repeated or in any case, values with runs of whitespace,
    not ASCII, surrogate-escaped or bytes), through botocore's SigV4 and S3 signers and one that
    trims values its own way: the same canonical headers and signed headers, or the same error,
    asked twice (the signed headers are remembered per list of names)."""

    class OwnTrim(botocore.auth.SigV4Auth):
        def _header_value(self, value):
            return value.strip()

    cls = (botocore.auth.SigV4Auth, botocore.auth.S3SigV4Auth, OwnTrim)[kind]
    signer = cls(botocore.credentials.Credentials("AKID", "secret"), "dynamodb", "us-east-1")
    headers = fast.Headers()
    for name, value in pairs_:
        headers[name] = value
    for _ in range(2):
        assert outcome(fast.canonical_headers, signer, headers) == outcome(
            fast._canonical_headers, signer, headers
        )
        assert outcome(fast.signed_headers, signer, headers) == outcome(fast._signed_headers, signer, headers)


class Unsized:
    """A body whose length botocore cannot tell (it sends it chunked)."""

    def read(self, n=-1):
        return b""


prepared_names = st.sampled_from(
    ["X-Amz-Date", "x-amz-date", "Content-Length", "transfer-encoding", "Ü", "Host"]
)
prepared_values = st.one_of(
    st.sampled_from(["v", "ünï", "x\udcffy", "12"]), st.binary(max_size=2), st.builds(str, st.integers(0, 9))
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(prepared_names, prepared_values), max_size=6),
    st.sampled_from(["POST", "GET", "PUT", "HEAD"]),
    st.sampled_from([None, b"", b"{}", "ü", {"Action": "A"}, "file", "unsized"]),
)
@example([("X-Amz-Date", "1"), ("x-amz-date", b"2"), ("X-AMZ-DATE", "3")], "POST", b"{}")
@example([("Content-Length", "5"), ("Host", "h")], "POST", b"{}")
@example([("Host", "h")], "POST", "unsized")
def test_encoded_and_prepared_headers_are_botocores(pairs_, method, data):
    """``Endpoint.prepare_request`` on any headers (a name set again in another case, ``str``, bytes,
    non-ASCII and surrogate-escaped values, a Content-Length or Transfer-Encoding of the caller's), any
    method and body (none, bytes, text, a form, a file, one of unknown length): the same request
    headers after encoding and the same prepared headers (names as spelled, values, types, order)."""
    import io

    endpoint = botocore.endpoint.Endpoint("https://x.example", "x", botocore.hooks.HierarchicalEmitter())

    def prepare(installed):
        fast.install() if installed else fast.uninstall()
        body = (
            {"file": io.BytesIO(b"abc"), "unsized": Unsized()}.get(data, data)
            if isinstance(data, str)
            else data
        )
        req = botocore.awsrequest.AWSRequest(method=method, url="https://x.example/", data=body)
        for name, value in pairs_:
            req.headers[name] = value
        try:
            prepared = endpoint.prepare_request(req)
        except Exception as exc:  # noqa: BLE001 - compared
            return ("error", type(exc).__name__)
        shown = [(str(k), type(v).__name__, str(v)) for k, v in req.headers.items()]
        sent = [
            (str(k), isinstance(k, botocore.awsrequest._HeaderKey), hash(k), type(v).__name__, str(v))
            for k, v in prepared.headers._dict.items()
        ]  # the key a _HeaderKey (greenfetch's is one hashed in C: tests/test_attempts_headerkey.py)
        return shown, sent, type(prepared.headers).__name__

    ours, theirs = prepare(True), prepare(False)
    fast.install()
    assert ours[:2] == theirs[:2]


def test_a_signed_request_is_botocores_at_any_clock():
    """add_auth end to end, installed and not, across a day boundary (the key changes)."""
    from test_headers_parity import clock

    creds = botocore.credentials.Credentials("AKID", "secret", "token")
    for now in (
        datetime.datetime(2026, 1, 2, 23, 59, 59, tzinfo=datetime.timezone.utc),
        datetime.datetime(2026, 1, 3, 0, 0, 1, tzinfo=datetime.timezone.utc),
    ):
        signed = []
        for installed in (True, False):
            fast.install() if installed else fast.uninstall()
            with pytest.MonkeyPatch.context() as patch:
                clock(patch, now)
                req = botocore.awsrequest.AWSRequest(
                    method="POST",
                    url="https://sqs.us-east-1.amazonaws.com/",
                    data={"Action": "ListQueues", "ü": "✓"},
                )
                botocore.auth.SigV4Auth(creds, "sqs", "us-east-1").add_auth(req)
                signed.append((pairs(req.headers), req.body))
        assert signed[0] == signed[1]


def test_the_body_is_the_prepared_body():
    for data in (b"", b"{}", "ünï", {"Action": "A", "k": "ü"}, [("a", "1"), ("a", "2")], None):
        req = botocore.awsrequest.AWSRequest(
            method="POST", url="https://x.example/?q=1", data=data, params={"p": "v"}
        )
        assert fast.request_body.fget(req) == fast._body.fget(req), data


_texts = st.one_of(
    st.text(max_size=12), st.binary(max_size=12), st.sampled_from(["Action", "Version", "ü ✓+&="])
)
_values = st.one_of(
    _texts, st.integers(), st.floats(), st.booleans(), st.lists(_texts, max_size=2), st.none()
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_texts, _values, max_size=6))
@example({"Action": "DescribeInstances", "Version": "2016-11-15", "Filter.1.Name": "tag:a b"})
@example({b"Action": b"A\xff", "Action": "ü"})
def test_a_query_body_is_written_as_urlencode_writes_it(data):
    """Names and values of text or bytes (any character, a space, a reserved one, bytes that are no
    UTF-8), integers, floats, booleans, lists and None: the body botocore's preparer writes, and what
    it raises."""
    preparer = botocore.awsrequest.AWSRequestPreparer()
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://x.example/", data=data)

    def outcome(prepare):
        try:
            return ("ok", prepare(preparer, request))
        except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
            return ("error", type(exc).__name__)

    assert outcome(fast.prepare_body) == outcome(fast._Preparer_body)


def test_a_query_body_keeps_only_names_and_the_action_and_version_quoted():
    """What the body's writer remembers across requests: parameter names and the Action's and
    Version's values, never another value (a body can carry a password)."""
    from greenfetch._botocore_fast import _request

    _request._quoted.clear()
    data = {"Action": "CreateLoginProfile", "Version": "2010-05-08", "Password": "s3cr3t pässword"}
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://iam.example/", data=data)
    body = fast.prepare_body(botocore.awsrequest.AWSRequestPreparer(), request)
    assert body == "Action=CreateLoginProfile&Version=2010-05-08&Password=s3cr3t+p%C3%A4ssword"
    assert set(_request._quoted) == {b"Action", b"Version", b"Password", b"CreateLoginProfile", b"2010-05-08"}


# -- endpoint ruleset parameters -------------------------------------------------------------------

CONFIGS = {
    "s3": [
        {},
        {"s3": {"addressing_style": "path"}},
        {"s3": {"use_accelerate_endpoint": True}},
        {"s3": {"use_arn_region": True}, "use_dualstack_endpoint": True},
        {"use_fips_endpoint": True},
    ],
    "s3control": [{}, {"s3": {"use_arn_region": True}}],
    "dynamodb": [{}, {"account_id_endpoint_mode": "disabled"}],
    "lambda": [{}],
    "sts": [{}],
    "ec2": [{}],
    "cloudwatch": [{}],
    "signin": [{}],  # a static context parameter that is False
}


@pytest.fixture(scope="module")
def session():
    return botocore.session.get_session()


def test_every_operations_endpoint_parameters_are_botocores(session):
    """For every operation of services whose rulesets read static, operation or JMESPath context
    parameters or client context: the same parameters (or the same error) as botocore gathers, with
    the operation's sample input, with its context members absent, and from an endpoint URL."""
    if fast._version() < fast._SINCE[fast.provider_params]:
        pytest.skip("the endpoint plan is not installed on this botocore")
    checked = 0
    kinds = set()
    for service, configs in CONFIGS.items():
        if service not in session.get_available_services():
            continue  # an older botocore
        for config, url in itertools.product(configs, (None, "http://127.0.0.1:9")):
            client = client_for(session, service, url, **config)
            resolver = client._ruleset_resolver
            for name in client.meta.service_model.operation_names:
                op = client.meta.service_model.operation_model(name)
                params = sample(op.input_shape, top=True) if op.input_shape is not None else {}
                if op.static_context_parameters:
                    kinds.add("static")
                if op.context_parameters:
                    kinds.add("member")
                if op.operation_context_parameters:
                    kinds.add("path")
                for args in (params, {}):
                    context = {"client_region": "us-west-2", "client_config": client.meta.config}
                    ours = outcome(fast.provider_params, resolver, op, dict(args), dict(context))
                    theirs = outcome(fast._get_provider_params, resolver, op, dict(args), dict(context))
                    assert ours == theirs, (service, config, name, args)
                    checked += 1
    assert kinds == {"static", "member", "path"} and checked > 2000, (kinds, checked)


# -- the response parse ----------------------------------------------------------------------------

TEXT = "välue ✓ \U0001f600 token+/=="
BLOB = b"\x00\xffbin\x80"
JSON_SERVICES = ["dynamodb", "kms", "sqs", "lambda", "glacier", "logs"]


def body_value(shape, depth=0):
    """A value for ``shape`` as a JSON service would send it: every member, two list items, a map
    entry, text that is not ASCII, base64 blobs, epoch timestamps."""
    kind = shape.type_name
    if depth > 5:
        return None
    if kind == "structure":
        if shape.is_document_type:
            return {"doc": [1, TEXT, None]}
        members = [
            (name, member)
            for name, member in shape.members.items()
            if member.serialization.get("location") is None and not member.serialization.get("eventstream")
        ]
        if shape.is_tagged_union:
            members = members[:1]
        out = {}
        for name, member in members:
            value = body_value(member, depth + 1)
            if value is not None:
                out[member.serialization.get("name", name)] = value
        return out
    if kind == "list":
        item = body_value(shape.member, depth + 1)
        return [] if item is None else [item, item]
    if kind == "map":
        value = body_value(shape.value, depth + 1)
        return {} if value is None else {"kéy": value}
    return {
        "string": TEXT,
        "integer": 7,
        "long": 2**40,
        "float": 1.5,
        "double": 2.25,
        "boolean": True,
        "timestamp": 1767322245.5,
        "blob": __import__("base64").b64encode(BLOB).decode(),
    }.get(kind)


def response_dict(operation, status, body, headers=None):
    import botocore.endpoint

    http = botocore.awsrequest.AWSResponse(
        "https://example/", status, {"x-amzn-RequestId": "req-ü", **(headers or {})}, None
    )
    http._content = body
    return botocore.endpoint.convert_to_response_dict(http, operation)


def parsed_both_ways(session, cases):
    """Each (service, operation, shape name or None, response) parsed by a fresh parser of the
    service's protocol with botocore's own ``_parse_shape``, then with the adaptation."""
    import botocore.parsers

    results = []
    for installed in (False, True):
        fast.install() if installed else fast.uninstall()
        out = []
        for service, operation, error, response in cases:
            model = session.get_service_model(service)
            op = model.operation_model(operation)
            shape = model.shape_for(error) if error else op.output_shape
            parser = botocore.parsers.create_parser(model.protocol)
            out.append(outcome(parser.parse, dict(response), shape))
        results.append(out)
    return results


def test_every_json_response_parses_as_botocore_parses_it(session):
    """Every operation's output of six JSON and REST-JSON services, with every member, then each of
    its modeled errors and an unmodeled one: the same dict (datetimes, bytes, tokens, metadata)."""
    import json

    cases = []
    for service in JSON_SERVICES:
        model = session.get_service_model(service)
        for name in model.operation_names:
            op = model.operation_model(name)
            if op.output_shape is not None and not op.has_event_stream_output and not op.has_streaming_output:
                body = json.dumps(body_value(op.output_shape)).encode()
                cases.append((service, name, None, response_dict(op, 200, body)))
            for error in op.error_shapes[:2]:
                payload = {"__type": f"com.amazonaws#{error.name}", "message": TEXT, **body_value(error)}
                cases.append(
                    (service, name, error.name, response_dict(op, 400, json.dumps(payload).encode()))
                )
            cases.append(
                (
                    service,
                    name,
                    None,
                    response_dict(op, 400, b'{"__type": "Throttling:x", "Message": "slow \xc3\xbc"}'),
                )
            )
    ours, theirs = parsed_both_ways(session, cases)[::-1]
    differ = [(case[:3], a, b) for case, a, b in zip(cases, ours, theirs, strict=True) if a != b]
    assert not differ, differ[0]
    ok = [result for result in theirs if result[0] == "ok"]
    assert len(cases) > 1000 and len(ok) > 0.95 * len(cases), (len(ok), len(cases))
    blobs = [
        r for r in ok if BLOB in repr(r).encode("unicode_escape") or b"\\x00\\xffbin" in repr(r).encode()
    ]
    stamps = [r for r in ok if "datetime.datetime(2026, 1, 2" in repr(r)]
    assert blobs and stamps


def _thinned(value, keep):
    """``value`` with every other key of each object dropped (``keep`` 0 or 1 says which) and the keys
    left in reverse order: botocore's output follows the shape's order whatever the answer's."""
    if isinstance(value, dict):
        items = list(value.items())[keep::2] if keep is not None else list(value.items())
        return {k: _thinned(v, keep) for k, v in reversed(items)}
    if isinstance(value, list):
        return [_thinned(v, keep) for v in value]
    return value


def test_json_structures_with_members_missing_or_reordered_parse_as_botocore_parses_them(session):
    """Every operation's output of the JSON services, its answer thinned (every other key, either half)
    or only reordered, and a null member, a string member holding a number, an unknown key, and kafka's
    members with JSON names of their own: the same dicts with keys in the same order."""
    import json

    cases = []
    for service in [*JSON_SERVICES, "kafka"]:  # kafka: body members with JSON names of their own
        model = session.get_service_model(service)
        for name in model.operation_names:
            op = model.operation_model(name)
            if op.output_shape is None or op.has_event_stream_output or op.has_streaming_output:
                continue
            body = body_value(op.output_shape)
            strings = [
                member.serialization.get("name", member_name)
                for member_name, member in op.output_shape.members.items()
                if member.type_name == "string" and not member.serialization.get("location")
            ]
            for keep in (None, 0, 1):
                thinned = _thinned(body, keep)
                if isinstance(thinned, dict):
                    thinned = {"Unknown": 1, **thinned}
                    first = next(iter(op.output_shape.members), None)
                    if first is not None and keep == 0:
                        thinned[first] = None
                    if strings and keep is None:  # a string member holding a number: kept as it came
                        thinned[strings[0]] = 7
                cases.append((service, name, None, response_dict(op, 200, json.dumps(thinned).encode())))
    ours, theirs = parsed_both_ways(session, cases)[::-1]
    order = lambda r: repr(r)  # noqa: E731 - the repr shows each dict's key order
    differ = [(c[:3], a, b) for c, a, b in zip(cases, ours, theirs, strict=True) if order(a) != order(b)]
    assert not differ, differ[0]
    assert len(cases) > 800 and sum(r[0] == "ok" for r in theirs) > 0.95 * len(cases)


XML_CASES = [
    (
        "sts",
        "GetCallerIdentity",
        None,
        200,
        b"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/\xc3\xbc</Arn>"
        b"<UserId>U</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
        b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
    ),
    (
        "sns",
        "ListTopics",
        None,
        400,
        b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>r\xc3\xa4te</Message>"
        b"</Error><RequestId>r</RequestId></ErrorResponse>",
    ),
    (
        "s3",
        "ListObjectsV2",
        None,
        200,
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Prefix></Prefix>'
        b"<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
        b"<NextContinuationToken>tok+/==</NextContinuationToken>"
        b"<Contents><Key>\xc3\xbc \xe2\x9c\x93</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified>"
        b"<ETag>&quot;e&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>"
        b"<Contents><Key>k2</Key><Size>0</Size></Contents></ListBucketResult>",
    ),
    (
        "s3",
        "GetObject",
        None,
        404,
        b"<Error><Code>NoSuchKey</Code><Message>gone \xc3\xbc</Message><Key>k</Key></Error>",
    ),
    (
        "ec2",
        "DescribeInstances",
        None,
        200,
        b'<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
        b"<reservationSet><item><reservationId>r-1</reservationId><instancesSet><item>"
        b"<instanceId>i-1</instanceId><launchTime>2026-01-02T03:04:05.000Z</launchTime>"
        b"<tagSet><item><key>Name</key><value>n\xc3\xbc</value></item></tagSet>"
        b"<instanceState><code>16</code><name>running</name></instanceState></item></instancesSet>"
        b"</item></reservationSet><nextToken>next+/=</nextToken></DescribeInstancesResponse>",
    ),
    (
        "ec2",
        "DescribeInstances",
        None,
        400,
        b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>m</Message></Error></Errors>"
        b"<RequestID>r</RequestID></Response>",
    ),
    (
        "route53",
        "ListHostedZones",
        None,
        200,
        b'<ListHostedZonesResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><HostedZones>'
        b"<HostedZone><Id>/hostedzone/Z1</Id><Name>\xc3\xbc.example.</Name><CallerReference>c</CallerReference>"
        b"<ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone></HostedZones>"
        b"<IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListHostedZonesResponse>",
    ),
]


def test_xml_responses_parse_as_botocore_parses_them(session):
    """Query, EC2 and REST-XML answers and errors, with text that is not ASCII, timestamps, tokens."""
    cases = []
    for service, operation, error, status, body in XML_CASES:
        op = session.get_service_model(service).operation_model(operation)
        cases.append((service, operation, error, response_dict(op, status, body)))
    ours, theirs = parsed_both_ways(session, cases)[::-1]
    assert ours == theirs
    assert all(result[0] == "ok" for result in theirs), theirs
    assert theirs[2][1]["Contents"][0]["Key"] == "ü ✓" and theirs[2][1]["NextContinuationToken"] == "tok+/=="


def test_a_handler_set_on_a_parser_is_used():
    import botocore.parsers

    parser = botocore.parsers.create_parser("json")
    model = botocore.session.get_session().get_service_model("dynamodb")
    op = model.operation_model("ListTables")
    response = response_dict(op, 200, b'{"TableNames": ["a"]}')
    assert parser.parse(dict(response), op.output_shape)["TableNames"] == ["a"]
    parser._handle_string = lambda shape, value: value.upper()
    assert parser.parse(dict(response), op.output_shape)["TableNames"] == ["A"]


# -- HeadersDict -----------------------------------------------------------------------------------


def test_headers_dict_behaves_as_botocores():
    """Built from a dict, a list of pairs, another HeadersDict or keywords, then any sequence of
    sets, deletes, gets, ``in``, listings and copies: the same answers, pairs and order as botocore's
    class, and the parsers' lowercase copy the same dict."""
    import botocore.parsers

    names = st.sampled_from(["Content-Length", "content-length", "X-Amz-Crc32", "ü-Name", "Date", "date"])
    values = st.one_of(st.text(max_size=4), st.binary(max_size=3), st.integers())
    sources = st.one_of(
        st.dictionaries(names, values, max_size=4),
        st.lists(st.tuples(names, values), max_size=5),
        st.lists(st.tuples(names, values), max_size=3).map(lambda pairs: ("view", pairs)),
    )
    verbs = st.lists(
        st.tuples(st.sampled_from(["set", "del", "get", "in", "getitem"]), names, values), max_size=15
    )

    def build(cls, source):
        if isinstance(source, tuple):  # an items view of another HeadersDict
            return cls(botocore.awsrequest.HeadersDict(source[1]).items())
        return cls(source)

    def listing(headers):
        return (
            list(headers.items()),
            list(headers),
            list(headers.keys()),
            list(headers.values()),
            len(headers),
            repr(headers),
            dict(headers.copy().items()),
            type(headers.copy()).__name__,
            botocore.parsers.lowercase_dict(headers),
        )

    @settings(max_examples=80, deadline=None)
    @given(sources, verbs)
    def check(source, script):
        ours = build(fast.HeadersDict, source)
        fast.uninstall()
        try:
            theirs = build(botocore.awsrequest.HeadersDict, source)
            assert type(theirs) is botocore.awsrequest.HeadersDict
            for verb, name, value in script:
                outcome_pair = []
                for headers in (ours, theirs):
                    try:
                        if verb == "set":
                            headers[name] = value
                        elif verb == "del":
                            del headers[name]
                        seen = (headers.get(name, "absent"), name in headers, headers.get(name))
                        outcome_pair.append(seen + ((headers[name],) if verb == "getitem" else ()))
                    except Exception as exc:  # noqa: BLE001 - compared
                        outcome_pair.append(type(exc).__name__)
                assert outcome_pair[0] == outcome_pair[1], (verb, name)
            fast.install()
            mine = listing(ours)
            fast.uninstall()
            assert mine[:7] == listing(theirs)[:7] and mine[8] == listing(theirs)[8]
            assert mine[7] == "HeadersDict"
        finally:
            fast.install()

    check()
    assert fast.HeadersDict(x=1).items() and isinstance(fast.HeadersDict(), botocore.awsrequest.HeadersDict)


def test_a_response_is_botocores_for_any_headers():
    """``AWSResponse`` built from a dict (the HTTP session's), a list of pairs, a HeadersDict or a dict
    with a name that is not a ``str``: the same attributes, the same headers (pairs, order, repr,
    lookups, the parsers' lowercase copy) or the same exception as botocore's ``__init__``; and two
    responses with the same names do not share a change to one of them."""
    import botocore.parsers

    names = st.one_of(
        st.sampled_from(["Content-Length", "content-length", "x-amzn-RequestId", "Date", "date", "ü"]),
        st.text(max_size=3),
    )
    values = st.one_of(st.text(max_size=4), st.binary(max_size=3), st.integers())
    odd = st.one_of(st.binary(max_size=2), st.integers(), st.none())
    sources = st.one_of(
        st.dictionaries(names, values, max_size=5),
        st.lists(st.tuples(names, values), max_size=4),
        st.dictionaries(names, values, max_size=3).map(botocore.awsrequest.HeadersDict),
        st.tuples(st.dictionaries(names, values, max_size=3), odd, values).map(
            lambda t: {**t[0], t[1]: t[2]}
        ),
    )

    def make(source):
        try:
            response = botocore.awsrequest.AWSResponse("https://h/", 200, source, "raw")
        except Exception as exc:  # noqa: BLE001 - compared
            return type(exc).__name__
        headers = response.headers
        rest = {k: v for k, v in vars(response).items() if k != "headers"}
        try:
            listing = (
                list(headers.items()),
                repr(headers),
                [(name, headers.get(name), name in headers) for name in list(headers)],
                botocore.parsers.lowercase_dict(headers),
            )
        except Exception as exc:  # noqa: BLE001 - compared
            listing = type(exc).__name__
        return rest, listing, isinstance(headers, botocore.awsrequest.HeadersDict)

    @settings(max_examples=150, deadline=None)
    @given(sources)
    def check(source):
        assert fast.installed()
        ours = make(source)
        fast.uninstall()
        try:
            theirs = make(source)
        finally:
            fast.install()
        assert ours == theirs

    check()
    one = botocore.awsrequest.AWSResponse("u", 200, {"Date": "a", "X-Y": "1"}, None)
    two = botocore.awsrequest.AWSResponse("u", 200, {"date": "b", "X-Y": "2"}, None)
    assert type(one.headers) is fast.HeadersDict and one.headers._dict  # the fast path was taken
    one.headers["DATE"] = "c"
    del one.headers["x-y"]
    assert list(two.headers.items()) == [("date", "b"), ("X-Y", "2")]
    assert list(one.headers.items()) == [("Date", "c")]


# -- standard mode's retry decision ----------------------------------------------------------------


def test_the_retry_decision_is_botocores(session, caplog, monkeypatch):
    """Two clients per service in standard mode, one whose handler is greenfetch's and one whose is
    botocore's, fed the same answers in the same order (their retry quotas move alike): answers
    with and without errors, retryable and throttling codes, modeled and unmodeled, 5xx, STS's
    IDPCommunicationError, DynamoDB's CRC32 right, wrong and unreadable, the last attempt, no
    retries context, a connection error: the same delay, the same response and request context
    afterwards, the same log lines."""
    import logging
    import random
    from binascii import crc32

    import botocore.awsrequest
    import botocore.exceptions
    from botocore.retries.standard import RetryHandler

    body = b'{"TableNames": []}'
    good = str(crc32(body) & 0xFFFFFFFF)
    answers = [
        (200, {}, {}),
        (200, {"x-amz-crc32": good}, {}),
        (200, {"x-amz-crc32": "1"}, {}),
        (200, {"x-amz-crc32": "nan"}, {}),
        (200, {}, {"Error": {"Code": "Throttling"}}),
        (400, {}, {"Error": {"Code": "ThrottlingException"}}),
        (400, {}, {"Error": {"Code": "ProvisionedThroughputExceededException"}}),
        (400, {}, {"Error": {"Code": "IDPCommunicationError"}}),
        (400, {}, {"Error": {"Code": "ValidationException"}}),
        (400, {}, {"Error": "not a dict"}),
        (500, {}, {}),
        (503, {}, {"Error": {"Code": "ServiceUnavailable"}}),
        (302, {}, {}),
        (200, {"x-amz-retry-after": "10"}, {"Error": {"Code": "RequestTimeout"}}),
    ]

    def handler_of(client):
        found = client.meta.events._emitter._handlers.prefix_search(
            "needs-retry." + client.meta.service_model.service_id.hyphenize() + ".X"
        )
        return next(h.__self__ for h in found if isinstance(getattr(h, "__self__", None), RetryHandler))

    theirs = fast._needs_retry
    decided = []
    monkeypatch.setattr(fast._response, "_needs_retry", lambda *a, **k: decided.append(1) or theirs(*a, **k))
    for service, operation in (
        ("dynamodb", "ListTables"),
        ("sts", "AssumeRoleWithSAML"),
        ("sqs", "ListQueues"),
    ):
        config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3})
        pair = [
            session.create_client(
                service,
                region_name="us-west-2",
                endpoint_url="https://x.example",
                config=config,
                aws_access_key_id="AKID",
                aws_secret_access_key="secret",
            )
            for _ in range(2)
        ]
        handlers = [handler_of(c) for c in pair]
        op = pair[0].meta.service_model.operation_model(operation)
        cases = [
            (status, headers, parsed, attempt, retries, exc)
            for status, headers, parsed in answers
            for attempt in (1, 2, 3)
            for retries in (True, False)
            for exc in (None,)
        ] + [(None, None, None, 1, True, botocore.exceptions.EndpointConnectionError(endpoint_url="x"))]
        for status, headers, parsed, attempt, retries, exc in cases * 2:
            seen = []
            for function, handler in ((fast.needs_retry, handlers[0]), (theirs, handlers[1])):
                context = {"retries": {"attempt": attempt, "invocation-id": "i"}} if retries else {}
                response = None
                if status is not None:
                    http = botocore.awsrequest.AWSResponse("https://x.example", status, headers, None)
                    http._content = body
                    response = (http, copy.deepcopy(parsed))
                caplog.clear()
                random.seed(7)
                with caplog.at_level(logging.DEBUG, logger="botocore.retries"):
                    delay = outcome(
                        functools.partial(
                            function,
                            handler,
                            response=response,
                            endpoint=None,
                            operation=op,
                            attempts=attempt,
                            caught_exception=exc,
                            request_dict={"context": context},
                        )
                    )
                seen.append(
                    (delay, response and response[1], context, [r.getMessage() for r in caplog.records])
                )
            assert seen[0] == seen[1], (service, status, headers, parsed, attempt, retries)
    assert 0 < len(decided) < len(cases) * 6  # some answers took the shortcut, the rest botocore's walk


# -- event emission --------------------------------------------------------------------------------


def test_events_reach_the_same_handlers_with_the_same_arguments():
    """Twin aliasers with the same handlers (under old and new names, wildcards, first and last,
    answering or not) emit any event name both ways: the same handlers called in the same order with
    the same arguments, the same answers, the caller's arguments untouched; an emitter with its own
    ``emit`` or an aliaser with its own aliasing keeps botocore's path."""
    import botocore.hooks

    def twins(emitter_cls=botocore.hooks.HierarchicalEmitter, aliaser_cls=botocore.hooks.EventAliaser):
        made = []
        for _ in range(2):
            calls = []

            def handler(tag, answer=None, calls=calls):
                def h(**kwargs):
                    calls.append((tag, sorted(kwargs.items())))
                    return answer

                return h

            aliaser = aliaser_cls(emitter_cls())
            aliaser.register("before-call.api-gateway", handler("new"))
            aliaser.register("before-call.apigateway.GetRestApis", handler("old", "answer"))
            aliaser.register_first("before-call", handler("first"))
            aliaser.register_last("before-call.*.GetRestApis", handler("last", 0))
            aliaser.register("needs-retry.dynamodb", handler("retry", False))
            aliaser.register("before-call.s3.ListBuckets", handler("quiet"))
            aliaser.register("before-call.s3", handler("s3", "answer"))
            made.append((aliaser, calls))
        return made

    class OwnEmit(botocore.hooks.HierarchicalEmitter):
        def emit(self, event_name, **kwargs):
            return [("own", event_name)]

        def emit_until_response(self, event_name, **kwargs):
            return ("own", event_name)

    class OwnAlias(botocore.hooks.EventAliaser):
        def _alias_event_name(self, event_name):  # remembers one name, answers another
            self._alias_name_cache[event_name] = event_name
            return "needs-retry.dynamodb"

    names = [
        "before-call.apigateway.GetRestApis",
        "before-call.api-gateway.GetRestApis",
        "before-call.apigateway",
        "before-call.s3.ListBuckets",
        "needs-retry.dynamodb.ListTables",
        "after-call.nothing",
        "before-call",
    ]
    for emitter_cls, aliaser_cls in (
        (botocore.hooks.HierarchicalEmitter, botocore.hooks.EventAliaser),
        (OwnEmit, botocore.hooks.EventAliaser),
        (botocore.hooks.HierarchicalEmitter, OwnAlias),
    ):
        (ours, our_calls), (theirs, their_calls) = twins(emitter_cls, aliaser_cls)
        for name in names * 2:
            for ours_fn, theirs_fn in (
                (fast.aliaser_emit, fast._aliaser_emit),
                (fast.aliaser_emit_until_response, fast._aliaser_until),
            ):
                arguments = {"params": {"a": 1}, "context": {}}
                got = ours_fn(ours, name, **arguments)
                assert arguments == {"params": {"a": 1}, "context": {}}
                want = theirs_fn(theirs, name, **arguments)
                strip = lambda answer: [a[1] for a in answer] if isinstance(answer, list) else answer[1:]  # noqa: E731
                assert strip(got) == strip(want), (emitter_cls, aliaser_cls, name)
                assert our_calls == their_calls, (emitter_cls, aliaser_cls, name)


def _event_names() -> list[str]:
    """Event names as clients emit and register them: every service's id under each event a call
    emits, with and without an operation, and each of botocore's old names in those places."""
    session = botocore.session.get_session()
    ids = []
    for service in session.get_available_services():
        model = session.get_service_model(service)
        ids.append((model.service_id.hyphenize(), model.operation_names[0] if model.operation_names else "X"))
    events = [
        "before-parameter-build",
        "before-call",
        "needs-retry",
        "before-endpoint-resolution",
        "after-call",
    ]
    names = ["before-call", "creating-client-class", "docs.request-example"]
    for event in events:
        for sid, operation in ids:
            names += [f"{event}.{sid}", f"{event}.{sid}.{operation}"]
        for old in botocore.hooks.EVENT_ALIASES:
            names += [f"{event}.{old}", f"{event}.{old}.Op", f"{old}.{event}"]
    return names


def _client_aliaser(**kwargs):
    """What a client gets: a copy of its session's aliaser (``EventAliaser.__copy__`` copies the table)."""
    return copy.copy(botocore.hooks.EventAliaser(botocore.hooks.HierarchicalEmitter(), **kwargs))


_ALIAS_PARTS = st.sampled_from(
    [old for key in botocore.hooks.EVENT_ALIASES for old in (key, *key.split("."))]
    + ["before-call", "needs-retry", "s3", "ListTables", "api", "data", "runtime", "x", ""]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALIAS_PARTS, min_size=1, max_size=6), st.text(alphabet="a.-", max_size=4))
def test_an_event_names_alias_is_botocores_for_any_name(parts, tail):
    """``_alias_of`` gives botocore's walk's answer for names made of the table's own parts (several
    entries in one name, dotted ones spanning parts or not, repeated parts, empty parts)."""
    name = ".".join(parts) + tail
    assert fast._events._alias_of(_client_aliaser(), name) == fast._events._alias_event_name(
        _client_aliaser(), name
    )


def test_an_event_names_alias_is_found_once_a_process(monkeypatch):
    """Every name clients emit: botocore's walk's answer. Aliasers holding botocore's table (a client's
    is a copy of its session's) share the answers: a second one looks up no name the first one
    aliased, and keeps each answer in its own cache as botocore does; an aliaser whose table differs
    from botocore's walks its own table, every time."""
    names = _event_names()
    assert len(names) > 5000
    botocore_walk, ours = fast._events._alias_event_name, fast._events._alias_of
    want = [botocore_walk(_client_aliaser(), n) for n in names]
    assert sum(w != n for w, n in zip(want, names, strict=True)) > 100  # many names are aliased
    looked, walks = [], []
    monkeypatch.setattr(fast._events, "_alias_of", lambda aliaser, n: looked.append(n) or ours(aliaser, n))
    monkeypatch.setattr(
        fast._events, "_alias_event_name", lambda a, n: walks.append(n) or botocore_walk(a, n)
    )
    monkeypatch.setattr(fast._events, "_aliases_seen", {})
    first, second = _client_aliaser(), _client_aliaser()
    assert first._event_aliases is not second._event_aliases
    assert [fast._events.alias_event_name(first, n) for n in names] == want
    assert len(looked) == len(set(names)) and walks == []  # each name found once, without the walk
    looked.clear()
    assert [fast._events.alias_event_name(second, n) for n in names] == want
    assert looked == []
    assert second._alias_name_cache == dict(zip(names, want, strict=True))
    own_table = {"dynamodb": "ddb", "api.sagemaker": "sagemaker"}
    own, theirs = (_client_aliaser(event_aliases=own_table) for _ in range(2))
    for name in names[:300] + ["before-call.dynamodb.ListTables", "before-call.api.sagemaker.X"]:
        assert fast._events.alias_event_name(own, name) == botocore_walk(theirs, name)
    assert (
        fast._events.alias_event_name(own, "before-call.dynamodb.ListTables") == "before-call.ddb.ListTables"
    )
    assert len(walks) == 302 and looked == []


# -- part 7b: the invocation id ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=16, max_size=16))
@example(b"\x00" * 16)
@example(b"\xff" * 16)
def test_an_invocation_id_is_uuid4s_text_of_the_same_bytes(raw):
    import uuid

    from greenfetch._botocore_fast import _context

    assert _context.format_uuid4(raw) == str(uuid.UUID(bytes=raw, version=4))


def test_invocation_ids_are_random_v4_uuids_and_a_replaced_uuid4_is_used(monkeypatch):
    """Each call's id is a fresh random version-4 UUID in its canonical text; a ``uuid.uuid4`` a
    caller put in place (a test freezing ids) is what botocore gets; any other name is ``uuid``'s."""
    import inspect
    import uuid

    from greenfetch._botocore_fast import _context

    assert botocore.endpoint.uuid is _context.uuid_module
    # the premise: botocore.endpoint uses uuid for str(uuid.uuid4()) and nothing else
    uses = [line.strip() for line in inspect.getsource(botocore.endpoint).splitlines() if "uuid" in line]
    assert uses == ["import uuid", "retries_context['invocation-id'] = str(uuid.uuid4())"]
    endpoint = botocore.endpoint.Endpoint("https://x.example", "x", botocore.hooks.HierarchicalEmitter())
    seen = set()
    for _ in range(200):
        context = {}
        endpoint._update_retries_context(context, 1)
        text = context["retries"]["invocation-id"]
        parsed = uuid.UUID(text)
        assert type(text) is str and str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 200
    assert _context.uuid_module.NAMESPACE_DNS is uuid.NAMESPACE_DNS
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=7))
    context = {}
    endpoint._update_retries_context(context, 1)
    assert context["retries"]["invocation-id"] == str(uuid.UUID(int=7))
    fast.uninstall()
    assert botocore.endpoint.uuid is uuid


# -- part 7b: the recursion-detection header ---------------------------------------------------------

env_values = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["", "fn", 'Root=1-a;Sampled=1 "[x]"'])
)


@settings(max_examples=150, deadline=None)
@given(env_values, env_values, st.booleans())
@example("fn", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", False)
@example("fn", "Root=1", True)
def test_the_recursion_detection_header_is_botocores(lambda_name, trace_id, preset):
    """Any combination of the two variables (absent, empty, any text) and a header the caller set:
    the same headers as botocore's handler leaves."""
    import os

    from greenfetch._botocore_fast import _context

    saved = {name: os.environ.get(name) for name in ("AWS_LAMBDA_FUNCTION_NAME", "_X_AMZN_TRACE_ID")}
    try:
        for name, value in (("AWS_LAMBDA_FUNCTION_NAME", lambda_name), ("_X_AMZN_TRACE_ID", trace_id)):
            if value is None or "\x00" in value:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        got, want = ({"headers": {"X-Amzn-Trace-Id": "mine"} if preset else {}} for _ in range(2))
        _context.add_recursion_detection_header(got, event_name="before-call.x")
        _context._add_recursion_detection_header(want, event_name="before-call.x")
        assert got == want
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_the_recursion_detection_header_follows_a_replaced_environ_and_sessions_get_it(monkeypatch):
    import os

    from greenfetch._botocore_fast import _context

    monkeypatch.setattr(os, "environ", {"AWS_LAMBDA_FUNCTION_NAME": "fn", "_X_AMZN_TRACE_ID": "Root=1"})
    got = {"headers": {}}
    _context.add_recursion_detection_header(got)
    assert got == {"headers": {"X-Amzn-Trace-Id": "Root=1"}}
    monkeypatch.undo()
    handlers = botocore.session.Session().get_component("event_emitter")._emitter._handlers
    assert _context.add_recursion_detection_header in handlers.prefix_search("before-call.dynamodb.X")
    fast.uninstall()
    handlers = botocore.session.Session().get_component("event_emitter")._emitter._handlers
    found = handlers.prefix_search("before-call.dynamodb.X")
    assert _context._add_recursion_detection_header in found
    assert _context.add_recursion_detection_header not in found


# -- part 7b: the endpoint ---------------------------------------------------------------------------


def test_endpoint_builtins_are_read_where_no_handler_can_change_them(session):
    """Where nothing listens to ``before-endpoint-resolution`` the client's builtins are read as they
    are; a handler registered later (after the emitter remembered "no handler") changes them as it
    does for botocore; the same parameters both ways at each step, for DynamoDB and S3."""
    from greenfetch._botocore_fast import _endpoint

    if fast._version() < fast._SINCE[fast.provider_params]:
        pytest.skip("the endpoint plan is not installed on this botocore")
    import botocore.context  # 1.40+

    for service, operation, args in (
        ("dynamodb", "ListTables", {}),
        ("s3", "ListObjectsV2", {"Bucket": "b"}),
    ):
        client = client_for(session, service)
        resolver = client._ruleset_resolver
        op = client.meta.service_model.operation_model(operation)

        def both(client=client, resolver=resolver, op=op, args=args, service=service):
            """The parameters both ways, and the user-agent features each registered in a call's context."""
            context = {"client_region": "us-west-2", "client_config": client.meta.config}
            seen = []
            for fn in (fast.provider_params, fast._get_provider_params):
                with botocore.context.start_as_current_context():
                    got = outcome(fn, resolver, op, dict(args), dict(context))
                    seen.append((got, sorted(botocore.context.get_context().features)))
            assert seen[0] == seen[1], service
            assert seen[0][1] or service != "dynamodb", "no feature registered: nothing compared"
            return seen[0][0]

        first = both()
        builtins = _endpoint._builtins(resolver, op, args, {})
        emitter = client.meta.events._emitter
        name = f"before-endpoint-resolution.{client.meta.service_model.service_id.hyphenize()}"
        listening = emitter._lookup_cache.get(name)
        if listening is not None and not listening:  # nothing listens: the client's own, not a copy
            assert builtins is resolver._builtins
        else:
            assert builtins is not resolver._builtins and builtins == resolver._builtins

        def moved(builtins, **kwargs):
            builtins["AWS::Region"] = "eu-central-1"
            builtins["AWS::UseFIPS"] = True

        client.meta.events.register(name, moved)
        second = both()
        assert second != first and second[1]["Region"] == "eu-central-1" and second[1]["UseFIPS"] is True
        assert resolver._builtins["AWS::Region"] == "us-west-2"  # the handler changed a copy
        client.meta.events.unregister(name, moved)
        assert both() == first


param_values = st.one_of(
    st.sampled_from(["us-east-1", "eu-west-1", "https://127.0.0.1:9", "preferred", "disabled", "1"]),
    st.booleans(),
    st.just(1),
    st.lists(st.just("arn:aws:dynamodb:us-east-1:123456789012:table/t"), max_size=2),
)
param_sets = st.dictionaries(
    st.sampled_from(["Region", "UseFIPS", "UseDualStack", "Endpoint", "AccountId", "AccountIdEndpointMode"]),
    param_values,
    max_size=6,
)


PROVIDERS: dict = {}


@settings(max_examples=150, deadline=None)
@given(st.lists(param_sets, min_size=1, max_size=8))
@example([{"Region": "us-east-1", "UseFIPS": True}, {"Region": "us-east-1", "UseFIPS": 1}])
@example([{"Region": "us-east-1"}, {"Region": "eu-west-1"}, {"Region": "eu-west-1", "UseFIPS": True}])
@example([{"Region": "us-east-1", "UseFIPS": False}, {"UseFIPS": False, "Region": "us-east-1"}])
def test_the_providers_answer_is_botocores_for_any_parameters(session, seen):
    """In any order (the memo must key on every name and value, and tell True from 1): the same
    endpoint or the same error as botocore's provider, for DynamoDB's ruleset and S3's."""
    from greenfetch._botocore_fast import _endpoint

    for service in ("dynamodb", "s3"):
        if service not in PROVIDERS:  # one client per service: Hypothesis calls this test many times
            PROVIDERS[service] = client_for(session, service)._ruleset_resolver._provider
        provider = PROVIDERS[service]
        for params in seen:
            ours = outcome(lambda p, at=provider: _endpoint.resolve_endpoint(at, **p), dict(params))
            theirs = outcome(lambda p, at=provider: _endpoint._resolve_endpoint(at, **p), dict(params))
            assert ours == theirs, (service, params)


join_urls = st.builds(
    "{}://{}{}{}".format,
    st.sampled_from(["http", "https"]),
    st.sampled_from(["dynamodb.us-east-1.amazonaws.com", "127.0.0.1:9", "[::1]:8443", "h"]),
    st.sampled_from(["", "/", "/base", "/base/"]),
    st.sampled_from(["", "?q=1", "#f"]),
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            join_urls,
            st.sampled_from(["", "/", "/a", "a", "/a/b/", "//x", "/k%20ey"]),
            st.sampled_from([None, "", "data-", "acct."]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_urljoin_is_botocores(seen):
    """In any order (the memo must key on all three): the same URL or the same error."""
    from greenfetch._botocore_fast import _endpoint

    for url, path, prefix in seen:
        assert outcome(_endpoint.urljoin, url, path, prefix) == outcome(_endpoint._urljoin, url, path, prefix)
    for odd in ((b"http://h", b"/a", None), ("http://h", "/a", b"p"), ("http://h", None, None)):
        assert outcome(_endpoint.urljoin, *odd) == outcome(_endpoint._urljoin, *odd)


# -- part 7b: the emitter's debug line, event names --------------------------------------------------


def test_the_emitters_debug_lines_are_botocores_when_a_handler_changes_logging(caplog):
    """Twin emitters, one through greenfetch's ``_emit`` and one through botocore's: the same handlers,
    answers and debug lines with debug logging off, on, and switched on or off by a handler in the
    middle of an emit (``Logger`` forgets its cached answer then; the next handler's line must show)."""
    import logging

    from greenfetch._botocore_fast import _events

    hooks_logger = logging.getLogger("botocore.hooks")

    def louder(**kwargs):
        hooks_logger.setLevel(logging.DEBUG)

    def quieter(**kwargs):
        hooks_logger.setLevel(logging.WARNING)

    def twin(emit):
        calls = []
        emitter = botocore.hooks.HierarchicalEmitter()
        emitter.register("ev.a", lambda **kw: calls.append(("a", sorted(kw))))
        emitter.register("ev.a.b", louder)
        emitter.register("ev.a.b", lambda **kw: calls.append(("after", sorted(kw))) or "answer")
        emitter.register("ev.a.b", quieter)
        emitter.register("ev.a.b", lambda **kw: calls.append(("last", sorted(kw))))
        return lambda name, stop: (emit(emitter, name, {"x": 1}, stop), calls)

    before = hooks_logger.level
    try:
        for start in (logging.WARNING, logging.DEBUG, logging.NOTSET):
            for name, stop in (("ev.a.b", False), ("ev.a.b", True), ("ev.a", False), ("ev.none", False)):
                seen = []
                for emit in (_events.emitter_emit, _events._emitter_inner):
                    hooks_logger.setLevel(start)
                    caplog.clear()
                    with caplog.at_level(logging.DEBUG, logger="botocore"):
                        hooks_logger.setLevel(start)
                        answers, calls = twin(emit)(name, stop)
                        answers = [answer for _, answer in answers]
                        lines = [r.getMessage().split(" calling handler ")[0] for r in caplog.records]
                    seen.append((answers, calls, lines, hooks_logger.level))
                assert seen[0] == seen[1], (start, name, stop)
    finally:
        hooks_logger.setLevel(before)


def test_a_logger_of_another_kind_gets_botocores_emit(monkeypatch):
    import logging

    from greenfetch._botocore_fast import _events

    lines = []

    class Counting(logging.Logger):
        def debug(self, msg, *args, **kwargs):
            lines.append(msg % args)

    monkeypatch.setattr(botocore.hooks, "logger", Counting("counting"))
    emitter = botocore.hooks.HierarchicalEmitter()
    emitter.register("ev", lambda **kw: None)
    _events.emitter_emit(emitter, "ev", {})
    assert len(lines) == 1
    plain = logging.Logger("plain", logging.WARNING)
    plain.isEnabledFor(logging.DEBUG)  # its cache says "off"
    plain.debug = lambda msg, *args: lines.append(msg % args)
    monkeypatch.setattr(botocore.hooks, "logger", plain)
    _events.emitter_emit(emitter, "ev", {})
    assert len(lines) == 2
    asked = logging.Logger("asked", logging.WARNING)
    asked.isEnabledFor(logging.DEBUG)  # its cache says "off", its own isEnabledFor says "on"
    asked.isEnabledFor = lambda level: True
    asked.addHandler(logging.Handler())
    asked.handlers[0].emit = lambda record: lines.append(record.getMessage())
    monkeypatch.setattr(botocore.hooks, "logger", asked)
    _events.emitter_emit(emitter, "ev", {})
    assert len(lines) == 3


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(max_size=12) | st.sampled_from(["DynamoDB", "API Gateway", "Elastic Load Balancing v2"]))
)
def test_hyphenized_service_ids_are_botocores(names):
    import botocore.model
    import botocore.utils

    from greenfetch._botocore_fast import _events

    for name in names:
        service_id = botocore.model.ServiceId(name)
        assert (
            service_id.hyphenize()
            == _events._hyphenize(service_id)
            == botocore.utils.hyphenize_service_id(name)
        )


def test_a_replaced_hyphenize_service_id_is_used(monkeypatch):
    import botocore.model

    service_id = botocore.model.ServiceId("Some Service")
    assert service_id.hyphenize() == "some-service"
    monkeypatch.setattr(botocore.model, "hyphenize_service_id", lambda text: "replaced")
    assert service_id.hyphenize() == "replaced"


# -- part 7b: the timestamp ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)))
@example(datetime.datetime(999, 12, 31, 23, 59, 59))
@example(datetime.datetime(1000, 1, 1))
@example(datetime.datetime(9999, 12, 31, 23, 59, 59, 999999))
def test_the_timestamp_is_strftimes(now):
    from greenfetch._botocore_fast import _sigv4

    assert _sigv4.timestamp(now) == now.strftime("%Y%m%dT%H%M%SZ")


def test_add_auth_is_botocores_on_its_own_clock_and_a_stopped_one(caplog, monkeypatch):
    """Both ways, on botocore's clock (through a stand-in for ``botocore.compat.datetime`` that every
    read of the real clock goes through), a clock stopped in ``botocore.auth`` (both kinds), an
    unsigned payload, a session token, a retry (an old Authorization header), the S3 signer and the
    query signer: the same headers, URL, context and debug lines, with debug logging on and off."""
    import logging
    import types

    import botocore.compat
    import botocore.exceptions

    from greenfetch._botocore_fast import _sigv4

    moment = [datetime.datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=datetime.timezone.utc)]

    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return moment[0].astimezone(tz) if tz else moment[0].replace(tzinfo=None)

        @classmethod
        def utcnow(cls):
            return moment[0].replace(tzinfo=None)

    stand_in = types.SimpleNamespace(datetime=Clock, timezone=datetime.timezone)
    monkeypatch.setattr(botocore.compat, "datetime", stand_in)
    monkeypatch.setattr(botocore.auth.datetime, "datetime", Clock)
    frozen = botocore.credentials.Credentials("AKID", "secret", "token").get_frozen_credentials()
    plain = botocore.credentials.Credentials("AKID", "secret").get_frozen_credentials()

    def sign(add_auth, signer_cls, creds, context, level, **kw):
        made = botocore.awsrequest.AWSRequest(
            method="POST",
            url="https://dynamodb.us-east-1.amazonaws.com/?a=1",
            data=b"{}",
            headers={"Authorization": "old", "X-Amz-Target": "T"},
        )
        made.context.update(context)
        signer = signer_cls(creds, "dynamodb", "us-east-1", **kw)
        caplog.clear()
        with caplog.at_level(level, logger="botocore.auth"):
            add_auth(signer, made)
            lines = [r.getMessage() for r in caplog.records if r.name == "botocore.auth"]
        return made.url, sorted((k, str(v)) for k, v in made.headers.items()), made.context, lines

    cases = [
        (botocore.auth.SigV4Auth, frozen, {}, {}),
        (botocore.auth.SigV4Auth, plain, {"payload_signing_enabled": False}, {}),
        (botocore.auth.S3SigV4Auth, frozen, {}, {}),
        (botocore.auth.SigV4QueryAuth, frozen, {}, {"expires": 60}),
    ]
    stops = [None, "naive", "aware"]
    for (signer_cls, creds, context, kw), level, stop in itertools.product(
        cases, (logging.DEBUG, logging.WARNING), stops
    ):
        if stop is not None:
            at = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
            at = at if stop == "aware" else at.replace(tzinfo=None)
            monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda at=at: at, raising=False)
        elif _sigv4._get_current_datetime is not None:
            monkeypatch.setattr(botocore.auth, "get_current_datetime", _sigv4._get_current_datetime)
        ours = sign(_sigv4.add_auth, signer_cls, creds, context, level, **kw)
        theirs = sign(_sigv4._add_auth, signer_cls, creds, context, level, **kw)
        assert ours == theirs, (signer_cls, context, level, stop)
        stopped = stop is not None and _sigv4.CLOCK == "get_current_datetime"  # older: utcnow, not stopped
        assert ours[2]["timestamp"] == ("20250102T030405Z" if stopped else "20260304T050607Z")
    assert botocore.auth.SigV4Auth.add_auth is _sigv4.add_auth or _sigv4.CLOCK is None
    with pytest.raises(botocore.exceptions.NoCredentialsError):
        _sigv4.add_auth(botocore.auth.SigV4Auth(None, "s", "r"), request())


# -- a client's creation: the emitter's copy, the handlers' keyword check, the proxies -----------------


CLIENT_PATCHES = [
    patch for patch in fast._PATCHES if getattr(patch[3], "__module__", None) == fast._client.__name__
]


def way(installed):
    """This module's client-creation adaptations (all the others stay installed: they replace some
    handlers with their own, which would differ for reasons of their own) or botocore's code."""
    assert len(CLIENT_PATCHES) == 7
    if not installed:
        fast._client.unshare()  # as uninstall() does: botocore's code changes a trie's nodes in place
    for owner, name, theirs, ours in CLIENT_PATCHES:
        setattr(owner, name, ours if installed else theirs)


def described(handler):
    """A handler as a client's own objects cannot change it: a bound method by its function and its
    object's class, a partial by its function and arguments, anything else as itself."""
    if isinstance(handler, functools.partial):
        return ("partial", described(handler.func), tuple(map(described, handler.args)), handler.keywords)
    if hasattr(handler, "__self__") and hasattr(handler, "__func__"):
        return ("method", type(handler.__self__).__qualname__, handler.__func__)
    if callable(handler) and not hasattr(handler, "__code__") and not isinstance(handler, type):
        return ("object", type(handler).__qualname__)
    return handler


def trie_keys(node, prefix=()):
    for chunk, child in node["children"].items():
        yield from trie_keys(child, (*prefix, chunk))
    if prefix:
        yield ".".join(prefix)


def handlers_by_event(client, service, operations):
    emitter = client.meta.events._emitter
    events = set(trie_keys(emitter._handlers._root))
    for event in (
        "before-call",
        "after-call",
        "before-parameter-build",
        "provide-client-params",
        "needs-retry",
    ):
        events.update(f"{event}.{service}.{op}" for op in operations)
    events.update(e.replace("*", "Any") for e in list(events))
    return {event: [described(h) for h in emitter._handlers.prefix_search(event)] for event in sorted(events)}


CLIENT_SAMPLE = ["s3", "dynamodb", "ec2", "sqs", "lambda", "iam", "sts", "route53", "s3control", "glacier"]


def test_every_events_handlers_are_botocores_in_a_client_made_either_way(session):
    """For a sample of services (every protocol, S3's own handlers): every event a client's trie holds,
    and each operation's main events, reach the same handlers in the same order whether the client was
    made with the adaptations or without."""
    got = {}
    for installed in (True, False):
        way(installed)
        for service in CLIENT_SAMPLE:
            client = client_for(session, service)
            operations = client.meta.service_model.operation_names[:5]
            got[installed, service] = handlers_by_event(
                client, client.meta.service_model.endpoint_prefix, operations
            )
    way(True)
    for service in CLIENT_SAMPLE:
        assert got[True, service] == got[False, service], service
        assert sum(map(len, got[True, service].values())) > 20, service


def containers(node, found=None):
    found = [] if found is None else found
    found.append(node)
    for value in node.values():
        if isinstance(value, dict):
            containers(value, found)
        elif isinstance(value, botocore.hooks.NodeList):
            found.extend(value)
    return found


trie_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "add", "remove"]),
        st.sampled_from(["a", "a.b", "a.*", "a.b.c", "a.*.c", "b", "b.x.y", "*.b"]),
        st.integers(0, 4),
        st.sampled_from([0, 1, 2]),
    ),
    max_size=30,
)
handlers_pool = [functools.partial(lambda n, **kw: n, n) for n in range(5)]


def _apply(trie, ops, append, remove):
    for op, key, n, section in ops:
        if op == "add":
            append(trie, key, handlers_pool[n], section)
        else:
            try:
                remove(trie, key, handlers_pool[n])
            except (ValueError, AttributeError):
                pass


@settings(max_examples=150, deadline=None)
@given(trie_ops, trie_ops)
def test_a_tries_recursive_copy_is_botocores_and_shares_nothing(before, after):
    """Any trie (appends in the three sections, removals): the full copy (``_recursive_copy``, which
    ``unshare`` and botocore's ``__copy__`` make) is botocore's (the same node dicts, keys in the same
    order, the same handlers in the same order), no dict or list of it is one of the original's, and
    what is done to one after the copy never reaches the other."""
    appending, removing = fast._client._append_item, fast._client._remove_item
    original = botocore.hooks._PrefixTrie()
    _apply(original, before, appending, removing)
    ours = botocore.hooks._PrefixTrie()
    ours.__dict__ = fast._client.recursive_copy(original, original.__dict__)
    theirs = fast._client._recursive_copy(original, original.__dict__)
    assert list(ours.__dict__) == list(theirs)
    assert repr(ours.__dict__) == repr(theirs)
    assert ours.__dict__ == theirs
    assert not {id(c) for c in containers(ours.__dict__)} & {id(c) for c in containers(original.__dict__)}
    keys = ["a", "a.b", "a.b.c", "a.q.c", "b.x.y", "q.b", "a.b.c.d"]
    seen = {key: list(original.prefix_search(key)) for key in keys}
    _apply(ours, after, appending, removing)
    assert {key: list(original.prefix_search(key)) for key in keys} == seen


trie_steps = st.lists(
    st.one_of(
        st.tuples(st.just("copy"), st.integers(0, 9)),
        st.tuples(st.just("ops"), st.integers(0, 9), trie_ops),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(trie_ops, trie_steps)
def test_tries_that_share_nodes_hold_what_botocores_copies_hold(before, steps):
    """Tries copied from tries copied from one (``trie_copy``: one root, shared until written), each
    then changed on its own (appends in the three sections, removals, present or not): after every
    step each trie holds what botocore's full copies changed the same way hold (the same node dicts,
    keys in the same order, the same handlers in the same order, the same prefix searches), and no
    trie ever changed a node another reaches."""
    appending, removing = fast._client.append_item, fast._client.remove_item
    their_append, their_remove = fast._client._append_item, fast._client._remove_item
    ours, theirs = [botocore.hooks._PrefixTrie()], [botocore.hooks._PrefixTrie()]
    _apply(ours[0], before, appending, removing)
    _apply(theirs[0], before, their_append, their_remove)
    keys = ["a", "a.b", "a.b.c", "a.q.c", "b.x.y", "q.b", "a.b.c.d", "b", "z"]
    for step in steps:
        index = step[1] % len(ours)
        if step[0] == "copy":
            ours.append(fast._client.trie_copy(ours[index]))
            theirs.append(fast._client._trie_copy(theirs[index]))
            continue
        others = [repr(trie.__dict__) for trie in ours]
        _apply(ours[index], step[2], appending, removing)
        _apply(theirs[index], step[2], their_append, their_remove)
        assert [repr(trie.__dict__) for n, trie in enumerate(ours) if n != index] == [
            text for n, text in enumerate(others) if n != index
        ]
        for mine, botocores in zip(ours, theirs, strict=True):
            assert repr(mine.__dict__) == repr(botocores.__dict__)
            assert [list(mine.prefix_search(k)) for k in keys] == [
                list(botocores.prefix_search(k)) for k in keys
            ]
    fast._client.unshare()  # every trie its own nodes again, holding the same
    assert [repr(t.__dict__) for t in ours] == [repr(t.__dict__) for t in theirs]
    ids = [{id(c) for c in containers(t.__dict__)} for t in ours]
    assert all(not (a & b) for n, a in enumerate(ids) for b in ids[n + 1 :])


def test_a_clients_trie_is_shared_until_it_registers(session):
    """What the point is: a client's emitter copies no node of the session's trie it does not change
    (its creation registers three handlers: their paths' nodes are its own, the rest shared)."""
    client = client_for(session, "sqs")
    mine = containers(client.meta.events._emitter._handlers.__dict__)
    sessions = {id(c) for c in containers(session.get_component("event_emitter")._emitter._handlers.__dict__)}
    shared = sum(id(c) in sessions for c in mine)
    assert shared > 0.9 * len(mine) and len(mine) - shared < 30


def test_a_handler_registered_on_one_client_reaches_no_other(session):
    """Clients from one session, and the session itself after they were made: a handler registered on
    one reaches only its own events."""
    calls = []

    def mine(**kwargs):
        calls.append(kwargs.get("model").name if kwargs.get("model") else None)

    first, second = client_for(session, "sqs"), client_for(session, "sqs")
    first.meta.events.register("before-call.sqs.ListQueues", mine)
    session.register("before-call.sqs.ListQueues", mine)
    try:
        assert mine in list(first.meta.events._emitter._handlers.prefix_search("before-call.sqs.ListQueues"))
        for other in (second, client_for(session, "sqs")):
            handlers = list(other.meta.events._emitter._handlers.prefix_search("before-call.sqs.ListQueues"))
            assert (mine in handlers) is (other is not second), other
    finally:
        session.unregister("before-call.sqs.ListQueues", mine)


class _Callable:
    def __call__(self, **kwargs):
        return kwargs


class _NoKwargs:
    def __call__(self, a):
        return a


def _with_kwargs(a=1, **kwargs):
    return a


def _without_kwargs(a=1):
    return a


class _Holder:
    def method(self, **kwargs):
        return kwargs

    def strict(self, a):
        return a


def _signed(**kwargs):
    return kwargs


def verified(func):
    emitter = botocore.hooks.HierarchicalEmitter()
    return outcome(emitter._verify_accept_kwargs, func)


def test_the_keyword_check_is_botocores_for_every_kind_of_handler():
    """Functions with and without ``**kwargs``, bound methods, partials, callable objects, builtins,
    a function given a ``__signature__`` or a new code after it was checked: the same answer, or the
    same error with the same message, as botocore's check."""
    import inspect
    import types

    swapped = types.FunctionType(_with_kwargs.__code__, globals(), "swapped")
    signed = types.FunctionType(_signed.__code__, globals(), "signed")
    cases = [
        _with_kwargs,
        _without_kwargs,
        _Holder().method,
        _Holder().strict,
        functools.partial(_with_kwargs, 2),
        functools.partial(_without_kwargs),
        _Callable(),
        _NoKwargs(),
        len,
        print,
        lambda **kw: kw,
        lambda x: x,
        swapped,
        signed,
    ]
    for installed in (True, False, True):  # the second pass of ours answers from its memory
        way(installed)
        theirs = [
            outcome(fast._client._verify_accept_kwargs, botocore.hooks.HierarchicalEmitter(), f)
            for f in cases
        ]
        assert [verified(f) for f in cases] == theirs
        assert theirs[1][0] == "error" and theirs[0] == ("ok", None)
    swapped.__code__ = _without_kwargs.__code__  # a function that no longer accepts them
    signed.__signature__ = inspect.signature(_without_kwargs)
    for installed in (True, False):
        way(installed)
        assert [verified(f) for f in (swapped, signed)] == [("error", "ValueError")] * 2
    way(True)
    with pytest.raises(ValueError, match="must accept keyword arguments"):
        botocore.hooks.HierarchicalEmitter().register("x", swapped)


def test_each_handler_function_is_inspected_once(session, monkeypatch):
    """A client registers its handlers each time one is made; ``getfullargspec`` is asked about each
    function once a process, not once a client (botocore's own code asks every time)."""
    import inspect

    asked = []
    real = inspect.getfullargspec

    def counting(func):
        asked.append(func)
        return real(func)

    monkeypatch.setattr(inspect, "getfullargspec", counting)
    way(False)
    try:
        client_for(session, "s3")
        theirs = len(asked)
    finally:
        way(True)
    client_for(session, "s3")  # what it had not seen yet
    del asked[:]
    for _ in range(3):
        client_for(session, "s3")
    assert theirs >= 4 and asked == [], (theirs, asked)


PROXY_NAMES = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "Https_Proxy",
    "NO_PROXY",
    "no_proxy",
]
proxy_values = st.sampled_from(
    [
        "",
        "http://proxy:3128",
        "http://other:8080",
        "*",
        "example.com",
        ".amazonaws.com",
        "s3.amazonaws.com:443",
        "localhost,127.0.0.1",
        " , .AMAZONAWS.com",
        "eu-west-1.amazonaws.com",
    ]
)
environments = st.dictionaries(st.sampled_from([*PROXY_NAMES, "REQUEST_METHOD"]), proxy_values, max_size=5)
endpoint_urls = st.sampled_from(
    [
        "https://s3.amazonaws.com",
        "https://sqs.eu-west-1.amazonaws.com",
        "http://localhost:4566",
        "http://127.0.0.1:9",
        "https://example.com:443/x",
        "https://s3.amazonaws.com:443",
        "http://[::1]:80",
        "http://[::1",
        "",
        None,
        b"x",
    ]
)


def proxies_for(url):
    creator = botocore.endpoint.EndpointCreator(botocore.hooks.HierarchicalEmitter())
    try:
        return ("ok", creator._get_proxies(url))
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(environments, st.lists(endpoint_urls, min_size=1, max_size=3)), min_size=1, max_size=4)
)
@example(
    [
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".amazonaws.com"}, ["https://s3.amazonaws.com"]),
        ({"HTTPS_PROXY": "http://proxy:3128"}, ["https://s3.amazonaws.com"]),
    ]
)
@example(
    [({"https_proxy": "http://proxy:3128", "Https_Proxy": "http://other:8080"}, ["https://s3.amazonaws.com"])]
)
def test_an_endpoints_proxies_are_botocores_in_any_environment(steps):
    """Environments one after another (proxy variables in either case, NO_PROXY, a CGI's
    REQUEST_METHOD, a variable set, changed or removed between two clients): each URL gets the proxies
    botocore's own code reads, or the same error."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [*PROXY_NAMES, "REQUEST_METHOD", "ALL_PROXY", "all_proxy"]:
            patch.delenv(name, raising=False)
        for environment, urls in steps:
            for name in [*PROXY_NAMES, "REQUEST_METHOD"]:
                if name in environment:
                    patch.setenv(name, environment[name])
                else:
                    patch.delenv(name, raising=False)
            for url in urls:
                ours = proxies_for(url)
                way(False)
                try:
                    assert ours == proxies_for(url), (environment, url)
                finally:
                    way(True)
                again = proxies_for(url)
                assert again == ours and (ours[0] == "error" or again[1] is not ours[1])


def test_the_proxies_follow_the_environments_order(monkeypatch):
    """Two variables of one proxy in two cases: the later one in the environment wins, so the same
    names and values in another order are another environment."""
    for name in PROXY_NAMES:
        monkeypatch.delenv(name, raising=False)
    url = "https://s3.amazonaws.com"
    monkeypatch.setenv("https_proxy", "http://first:1")
    monkeypatch.setenv("HTTPS_proxy", "http://second:2")
    assert proxies_for(url) == ("ok", {"https": "http://second:2"})
    monkeypatch.delenv("https_proxy")
    monkeypatch.setenv("https_proxy", "http://first:1")  # now after HTTPS_proxy
    assert proxies_for(url) == ("ok", {"https": "http://first:1"})
    way(False)
    try:
        assert proxies_for(url) == ("ok", {"https": "http://first:1"})
    finally:
        way(True)


def test_the_environment_is_read_once_while_it_is_unchanged(monkeypatch):
    """Endpoints for many URLs: the environment's variables are read once, and again after one changed
    (botocore's own code reads them twice an endpoint). Counted in walks of ``os.environ``, in units of
    one ``getproxies_environment()``: it walks it twice on Python 3.11 and older, reading every value,
    and once on 3.12 on, reading only the values of ``*_proxy`` names."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):  # the test's own, not the shell's:
        monkeypatch.delenv(name, raising=False)  # an empty https_proxy=, say, means "none" to urllib
        monkeypatch.delenv(name.lower(), raising=False)
    reads, walks = [], []
    real_read, real_walk = os._Environ.__getitem__, os._Environ.__iter__

    def counting_read(self, key):
        reads.append(key)
        return real_read(self, key)

    def counting_walk(self):
        walks.append(1)
        return real_walk(self)

    urllib.request.getproxies_environment()
    monkeypatch.setattr(os._Environ, "__getitem__", counting_read)
    monkeypatch.setattr(os._Environ, "__iter__", counting_walk)
    urllib.request.getproxies_environment()
    once = len(walks)  # the walks of one read of the proxy variables on this Python
    assert once >= 1
    urls = [f"https://svc{n}.us-east-1.amazonaws.com" for n in range(20)]
    proxies_for(urls[0])
    del reads[:], walks[:]
    for url in urls:
        proxies_for(url)
    assert reads == [] and walks == []
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert proxies_for(urls[0]) == ("ok", {"https": "http://proxy:3128"})
    assert len(walks) == once and "HTTPS_PROXY" in reads
    monkeypatch.setenv("NO_PROXY", "svc1.us-east-1.amazonaws.com")
    assert proxies_for(urls[1]) == ("ok", {})
    assert proxies_for(urls[2]) == (
        "ok",
        {"https": "http://proxy:3128", "no": "svc1.us-east-1.amazonaws.com"},
    )
    way(False)
    try:
        del walks[:]
        proxies_for(urls[0])
        assert len(walks) == 2 * once
    finally:
        way(True)


def test_a_clients_emitter_is_copied_without_a_copy_call_per_node(session, monkeypatch):
    """The trie's ``NodeList`` are copied without ``copy.copy`` (botocore's own code calls it for each
    ``NodeList`` and each of its lists: ~430 calls for an S3 client)."""
    calls = []
    real = copy.copy

    def counting(value):
        if isinstance(value, (botocore.hooks.NodeList, list)):
            calls.append(type(value).__name__)
        return real(value)

    monkeypatch.setattr(copy, "copy", counting)
    client_for(session, "s3")
    ours = len(calls)
    way(False)
    try:
        del calls[:]
        client_for(session, "s3")
        theirs = len(calls)
    finally:
        way(True)
    assert ours == 0 and theirs > 200, (ours, theirs)


env_names = st.sampled_from(
    ["GF_TEST_A", "GF_TEST_B", "AWS_DEFAULT_REGION", "gf_test_ü", "GF TEST", "GF_\udcff"]
)
env_texts = st.sampled_from(["", "x", "us-west-2", "ünï", " spaced ", "a=b", "\udcff"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(env_names, st.none() | env_texts), min_size=1, max_size=8))
def test_a_config_variable_from_the_environment_is_botocores(steps):
    """Variables set, changed and removed in turn: botocore's environment provider answers the same
    for each name (the value, an empty one, or None when unset), and the same error for a name that
    is not a str; a mapping other than ``os.environ`` goes through botocore's code."""
    provider = botocore.configprovider.EnvironmentProvider
    with pytest.MonkeyPatch.context() as patch:
        for name, value in steps:
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
            for asked in (
                "GF_TEST_A",
                "GF_TEST_B",
                "AWS_DEFAULT_REGION",
                "gf_test_ü",
                "GF TEST",
                "GF_\udcff",
                "GF_NEVER_SET",
            ):
                ours = outcome(provider(asked, os.environ).provide)
                assert ours == outcome(fast._client._env_provide, provider(asked, os.environ)), asked
                assert ours == ("ok", os.environ.get(asked))
    for env in ({"A": "1"}, os.environ):
        for asked in ("A", 5, b"A", None):
            mine, theirs = provider(asked, env), provider(asked, env)
            assert outcome(mine.provide) == outcome(fast._client._env_provide, theirs), (
                env is os.environ,
                asked,
            )


def test_a_clients_config_chain_raises_no_key_error_per_unset_variable(session):
    """Making a client asks dozens of configuration variables, nearly all unset: ``os.environ`` is not
    asked for an item it lacks (botocore's own code asks it each time, ``name in os.environ``: a
    ``KeyError`` raised and caught). Counted are the items ``in`` asks for (Python 3.11 and older also
    read every variable for the proxies, 3.12 on only those named ``*_proxy``: not what this checks)."""
    getitem = os._Environ.__getitem__.__code__
    contains = collections.abc.Mapping.__contains__.__code__
    calls = []

    def profiler(frame, event, arg):
        if event == "call" and frame.f_code is getitem and frame.f_back.f_code is contains:
            calls.append(frame.f_back.f_back.f_code.co_name)

    def counted():
        del calls[:]
        sys.setprofile(profiler)
        try:
            client_for(session, "s3")
        finally:
            sys.setprofile(None)
        return len(calls)

    client_for(session, "s3")  # the proxy variables read, if the environment changed since they were
    ours = counted()
    way(False)
    try:
        theirs = counted()
    finally:
        way(True)
    assert ours == 0 and theirs > 20, (ours, theirs)
