"""greenfetch._botocore_fast's signing and endpoint adaptations against botocore's own code, piece by piece.

tests/test_headers_parity.py builds every request of a corpus both ways (all adaptations installed, then
none) and has a server recompute the signatures; this module checks each later adaptation where that
sweep cannot reach: the Host of URLs the corpus does not use (ports, user info, IPv6, case), the map of
headers to sign when one signer is reused on a request that changed, signing keys across secrets, days,
regions and services, and the endpoint ruleset's parameters for every operation of services whose
rulesets read the operation's input (static and operation context parameters, JMESPath paths, client
context) under several client configurations.
"""

import datetime
import itertools

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_headers_parity import client_for, sample

from greenfetch import _botocore_fast as fast


@pytest.fixture(autouse=True)
def _installed():
    was = fast.installed()
    assert fast.install()
    yield
    if not was:
        fast.uninstall()


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
    repeated, signs as botocore's own derivation does."""
    combos = list(
        itertools.product(
            ["secret-a", "secret-b", "sécret/ü"],
            ["20260102T030405Z", "20260103T000000Z"],
            ["us-east-1", "eu-west-1"],
            ["dynamodb", "s3"],
        )
    )
    for secret, stamp, region, service in combos * 2:
        creds = botocore.credentials.Credentials("AKID", secret, "token").get_frozen_credentials()
        signer = (botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth)(
            creds, service, region
        )
        req = request()
        req.context["timestamp"] = stamp
        string_to_sign = f"AWS4-HMAC-SHA256\n{stamp}\nscope\nhash"
        assert fast.signature(signer, string_to_sign, req) == fast._signature(signer, string_to_sign, req)


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
