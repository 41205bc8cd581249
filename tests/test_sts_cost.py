"""What an account's AssumeRole and its session token cost a call (docs/performance/inventory-cost.md,
issue 24 part 13): a query body made once a request, the map of headers to sign built in one pass."""

from __future__ import annotations

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch._botocore_fast import _request, _sigv4

pytestmark = pytest.mark.usefixtures("fast_installed")

ARN = "arn:aws:iam::123456789012:role/InventoryReader"


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__)


# -- a query body, made once a request ------------------------------------------------------------

_texts = st.one_of(st.text(max_size=8), st.binary(max_size=8), st.sampled_from(["Action", "a b", "ü+&"]))
_scalars = st.one_of(_texts, st.integers(), st.floats(), st.booleans())
_values = st.one_of(_scalars, st.lists(_texts, max_size=2), st.none())


def _change(data: dict, how: str, key: object, value: object) -> dict:
    """``data`` as a handler between the two readings could leave it (or a new dict)."""
    if how == "set" and data:
        data[next(iter(data))] = value
    elif how == "add":
        data[key] = value
    elif how == "delete" and data:
        del data[next(iter(data))]
    elif how == "replace":
        return {key: value, **data}
    elif how == "same-text" and data:  # an equal value of another type or object: 1 -> 1.0, True -> 1
        name = next(iter(data))
        data[name] = _equal(data[name])
    return data


def _equal(old: object) -> object:
    """A value equal to ``old`` that is another object (or of another type)."""
    if type(old) is bool:
        return int(old)
    if type(old) is int:
        return float(old) if abs(old) < 2**53 else old + 1 - 1
    if type(old) is float:
        return float(repr(old))
    if type(old) in (str, bytes):
        return old[:1] + old[1:]  # a copy for two characters or more
    return old


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(_texts, _values, max_size=5),
    st.sampled_from(["none", "set", "add", "delete", "replace", "same-text"]),
    _texts,
    _values,
)
@example({"Action": "AssumeRole", "DurationSeconds": 1}, "same-text", "", "")
@example({"Action": "AssumeRole", "DurationSeconds": 1}, "set", "", True)
@example({"RoleArn": ARN}, "set", "", ARN)  # an equal text, another object
def test_a_query_body_asked_again_is_botocores_after_any_change(data, how, key, value):
    """The body asked for twice (the signature's payload, then the prepared request), the request's data
    changed between in any way (a value set to an equal one of another type, added, deleted, the dict
    replaced): each time botocore's preparer's body, or its error."""
    preparer = botocore.awsrequest.AWSRequestPreparer()
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.example/", data=data)
    first = outcome(_request.prepare_body, preparer, request)
    assert first == outcome(_request._Preparer_body, preparer, request)
    request.data = _change(request.data, how, key, value)
    assert outcome(_request.prepare_body, preparer, request) == outcome(
        _request._Preparer_body, preparer, request
    )


def test_an_assume_roles_body_is_quoted_once_a_request(monkeypatch):
    """The signature's payload hash and the prepared request read one text: the role ARN is quoted once
    a request (twice before), and a new request (a retry's) quotes it again."""
    quoted: list[bytes] = []
    quote = _request._quote
    monkeypatch.setattr(_request, "_quote", lambda text: quoted.append(text) or quote(text))
    data = {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": ARN, "RoleSessionName": "gf"}
    for attempt in (1, 2):
        request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.example/", data=dict(data))
        body = request.body
        prepared = request.prepare()
        assert (
            prepared.body.encode()
            == body
            == _request._Preparer_body(request._request_preparer, request).encode()
        )
        assert quoted.count(ARN.encode()) == attempt


def test_a_query_body_is_kept_only_by_its_request():
    """The text (which can carry a password or an external id) is kept on the request it was made for,
    nowhere across requests: the quoted values' memory holds names, Action and Version only."""
    _request._quoted.clear()
    data = {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": ARN, "ExternalId": "s3cr3t id"}
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.example/", data=data)
    body = request.body
    assert b"s3cr3t+id" in body
    assert request.__dict__[_request._MADE][1] == body.decode()
    assert not any(b"s3cr3t" in kept for kept in _request._quoted)
    other = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.example/", data=dict(data))
    assert _request._MADE not in other.__dict__


def test_a_request_without_attributes_of_its_own_keeps_no_body():
    """A request object with slots only (no ``__dict__``) is written as botocore writes it, each time."""

    class Slotted:
        __slots__ = ("data",)

        def __init__(self, data: dict) -> None:
            self.data = data

    preparer = botocore.awsrequest.AWSRequestPreparer()
    request = Slotted({"Action": "AssumeRole", "RoleArn": ARN})
    for _ in range(2):
        assert _request.prepare_body(preparer, request) == _request._Preparer_body(preparer, request)


# -- the map of headers to sign, in one pass ------------------------------------------------------

_NAMES = ["Host", "host", "User-Agent", "user-agent", "Expect", "X-Amz-Security-Token", "X-Amz-Date"]
_NAMES += ["Content-Type", "TE", "Transfer-Encoding", "X-Amzn-Trace-Id", "Authorization"]
_header_values = st.one_of(
    st.sampled_from(["v", "  two  spaces ", "ünï", "x\udcffy", "", "tok/en+="]), st.binary(max_size=2)
)
_BLACKLISTS = {
    "botocore's": None,
    "with host": [*botocore.auth.SIGNED_HEADERS_BLACKLIST, "host"],
    "empty": [],
    "unhashable": [["expect"], "user-agent"],
}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(_NAMES) | st.binary(max_size=2), _header_values), max_size=9),
    st.sampled_from(
        [
            "https://sts.amazonaws.com/",
            "http://127.0.0.1:8080/x",
            "https://[::1]:443/",
            "https://h.example:443",
        ]
    ),
    st.sampled_from(sorted(_BLACKLISTS)),
)
@example([("X-Amz-Security-Token", "t"), ("Host", "explicit")], "https://sts.amazonaws.com/", "with host")
def test_the_headers_to_sign_are_botocores(pairs, url, blacklist):
    """Any headers (names repeated, in any case, blacklisted or not, bytes names, values not ASCII,
    surrogate-escaped, bytes), any URL, and the blacklist botocore's, changed or unusable: the same
    pairs, in the same order, as botocore's own ``headers_to_sign``, or the same error."""
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials("AK", "s", "t"), "sts", "us-east-1")
    request = botocore.awsrequest.AWSRequest(method="POST", url=url)
    request.headers = _request.Headers()
    request.headers._headers = list(pairs)
    with pytest.MonkeyPatch.context() as patch:
        if _BLACKLISTS[blacklist] is not None:
            patch.setattr(botocore.auth, "SIGNED_HEADERS_BLACKLIST", list(_BLACKLISTS[blacklist]))
        ours = outcome(lambda: list(_sigv4._build_headers_to_sign(signer, request)._headers))
        theirs = outcome(lambda: list(_sigv4._headers_to_sign(signer, request)._headers))
    assert ours == theirs


def test_the_blacklist_changed_in_place_is_read_again(monkeypatch):
    """A name added to botocore's list after a signature is left out of the next one's map."""
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials("AK", "s"), "sts", "us-east-1")
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.amazonaws.com/")
    request.headers["X-Custom"] = "1"
    assert ("x-custom", "1") in _sigv4._build_headers_to_sign(signer, request)._headers
    monkeypatch.setattr(botocore.auth, "SIGNED_HEADERS_BLACKLIST", botocore.auth.SIGNED_HEADERS_BLACKLIST[:])
    botocore.auth.SIGNED_HEADERS_BLACKLIST.append("x-custom")
    assert ("x-custom", "1") not in _sigv4._build_headers_to_sign(signer, request)._headers


def test_the_map_to_sign_is_built_without_a_set_a_header(monkeypatch):
    """A session token's signature builds its map of headers without ``__setitem__`` a header (botocore's
    loop set each one, then scanned the map for ``host``)."""
    sets: list[str] = []
    setitem = _request.Headers.__setitem__
    monkeypatch.setattr(
        _request.Headers,
        "__setitem__",
        lambda self, name, value: sets.append(name) or setitem(self, name, value),
    )
    creds = botocore.credentials.Credentials("AK", "s", "token")
    signer = botocore.auth.SigV4Auth(creds, "sts", "us-east-1")
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.amazonaws.com/")
    request.headers = _request.Headers()
    request.headers._headers = [("Content-Type", "x"), ("X-Amz-Date", "d"), ("X-Amz-Security-Token", "token")]
    found = signer.headers_to_sign(request)
    assert sets == []
    assert found._headers == [
        ("content-type", "x"),
        ("x-amz-date", "d"),
        ("x-amz-security-token", "token"),
        ("host", "sts.amazonaws.com"),
    ]


# -- the signing key's chain: the date's and the region's links kept ------------------------------


def _signer(secret: str, region: str, service: str) -> botocore.auth.SigV4Auth:
    creds = botocore.credentials.Credentials("ASIA", secret, "token").get_frozen_credentials()
    return botocore.auth.SigV4Auth(creds, service, region)


def _fresh_chain(patch: pytest.MonkeyPatch, dates: int, regions: int, keys: int) -> None:
    for name, most in (("_date_keys", dates), ("_region_keys", regions), ("_signing_keys", keys)):
        patch.setattr(_sigv4, name, {})
        patch.setattr(_sigv4, name.upper(), most)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["secret-a", "secret-b", "sécret/ü", ""]),
            st.sampled_from(["20261207T120000Z", "20261208T000000Z"]),
            st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1"]),
            st.sampled_from(["dynamodb", "sts", "s3"]),
        ),
        min_size=1,
        max_size=12,
    ),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
)
def test_signatures_from_kept_links_are_botocores(signings, bounds):
    """Secrets, days, regions and services in any order and repeated, each memo emptied when full at
    any size: every signature is botocore's own derivation's."""
    with pytest.MonkeyPatch.context() as patch:
        _fresh_chain(patch, *bounds)
        for secret, stamp, region, service in signings:
            signer = _signer(secret, region, service)
            request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.amazonaws.com/")
            request.context["timestamp"] = stamp
            string_to_sign = f"AWS4-HMAC-SHA256\n{stamp}\nscope\n{secret}{region}"
            assert _sigv4.signature(signer, string_to_sign, request) == _sigv4._signature(
                signer, string_to_sign, request
            )


def test_an_accounts_new_region_or_service_derives_only_the_rest_of_the_chain(monkeypatch):
    """One account's secret signing in 2 regions x 3 services: the date key once, each region's once,
    then two HMACs a (region, service) and one a signature: 21 HMACs (four a new key before: 30). The
    secret is a key of the date links only (as it was of the signing keys'), not of the regions'."""
    _fresh_chain(monkeypatch, 256, 1024, 256)
    made = []
    new = botocore.auth.hmac.new
    monkeypatch.setattr(botocore.auth.hmac, "new", lambda *args: made.append(args[1]) or new(*args))
    for region in ("us-east-1", "eu-west-1"):
        for service in ("dynamodb", "sqs", "kms"):
            request = botocore.awsrequest.AWSRequest(method="POST", url="https://x.example/")
            request.context["timestamp"] = "20261207T120000Z"
            _sigv4.signature(_signer("account-secret", region, service), "to sign", request)
    assert len(made) == 1 + 2 + 6 * 2 + 6
    assert list(_sigv4._date_keys) == [("account-secret", "20261207")]
    assert not any("account-secret" in repr(key) for key in _sigv4._region_keys)
