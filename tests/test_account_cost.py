"""What an account costs the inventory (docs/performance/inventory-cost.md, issue 24 part 12): ``Request.coerce`` of a
``Request`` against the old comprehension and ``_evolve``, AssumeRole's flight key digested once per
role setup, ``role_arn_for`` remembered (an error never kept)."""

import hashlib
import threading
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenfetch import Config, Engine
from greenfetch._botocore_fast import _request
from greenfetch._models import Request
from greenfetch.inventory import _accounts, _credentials
from greenfetch.inventory._accounts import role_arn_for
from greenfetch.inventory._types import InventoryError


def old_coerce(raw, defaults):
    """``Request.coerce`` of a Request as it was: a comprehension over the defaults, then ``_evolve``."""
    if defaults is None:
        return raw
    changes = {
        name: value
        for name, value in zip(("profile", "region", "endpoint_url"), defaults, strict=True)
        if value and not getattr(raw, name)
    }
    return raw._evolve(**changes) if changes else raw


texts = st.none() | st.sampled_from(["", "dev", "us-west-2", "http://127.0.0.1:9"])


@given(
    st.fixed_dictionaries({"profile": texts, "region": texts, "endpoint_url": texts}),
    st.none() | st.tuples(texts, texts, texts),
)
def test_coerce_of_a_request_is_the_old_way(fields, defaults):
    """Every mix of set, empty and missing fields and defaults: the same fields, and the very request
    when no default applies."""
    raw = Request.built("sqs", "ListQueues", {}, account="123456789012", credentials=object(), **fields)
    ours, theirs = Request.coerce(raw, defaults), old_coerce(raw, defaults)
    assert ours.__dict__ == theirs.__dict__
    assert list(ours.__dict__) == list(theirs.__dict__)  # the dataclass's order
    assert (ours is raw) == (theirs is raw)
    assert type(ours) is Request


def test_coerce_of_a_request_makes_no_evolve(monkeypatch):
    """The run defaults put into the copy directly (``_evolve``'s keywords and the comprehension were
    ~9k instructions a call, the inventory's every request)."""

    def refused(self, **changes):
        raise AssertionError("_evolve called")

    monkeypatch.setattr(Request, "_evolve", refused)
    raw = Request.built("sqs", "ListQueues", {}, region="eu-west-1")
    got = Request.coerce(raw, (None, "us-east-1", "http://127.0.0.1:9"))
    assert (got.region, got.endpoint_url, got.profile) == ("eu-west-1", "http://127.0.0.1:9", None)
    assert raw.endpoint_url is None


def test_the_flight_key_is_digested_once_per_setup(monkeypatch):
    """Each account's flight key is the old formula's, its setup's SHA-256 made once, not per account."""
    digests = []
    real = hashlib.sha256

    def counted(data=b""):
        digests.append(data)
        return real(data)

    creds = _credentials.AccountCredentials(Engine(Config.resolve({"region": "us-east-1"})), "Reader")
    monkeypatch.setattr(_credentials.hashlib, "sha256", counted)
    keys = [creds._flight_key(f"{n:012d}", "Reader") for n in range(5)]
    setup = "\0".join(map(str, ("Reader", None, "greenfetch", 3600, None)))
    digest = real(setup.encode()).hexdigest()[:16]
    assert keys == [f"greenfetch:assume:{n:012d}:{digest}" for n in range(5)]
    assert len(digests) == 1
    creds.external_id = "other"  # another setup: its own digest
    assert creds._flight_key("000000000000", "Reader") != keys[0]
    assert len(digests) == 2


def test_role_arn_for_is_remembered_and_an_error_never_kept(monkeypatch):
    """A run asks for each account's ARN before any call and again at its AssumeRole: the second is
    remembered; a bad role raises every time, with the same message."""
    role_arn_for.cache_clear()
    matched = []
    pattern = _accounts.ROLE_ARN

    class Counted:
        def match(self, text):
            matched.append(text)
            return pattern.match(text)

    monkeypatch.setattr(_accounts, "ROLE_ARN", Counted())
    arn = "arn:aws:iam::123456789012:role/Reader"
    assert role_arn_for("123456789012", "Reader", region="us-east-1") == arn
    assert role_arn_for("123456789012", "Reader", region="us-east-1") == arn
    assert role_arn_for("123456789012", arn, region="us-east-1") == arn
    assert len(matched) == 2
    for _ in range(2):
        with pytest.raises(InventoryError, match="partition"):
            role_arn_for("123456789012", arn, region="cn-north-1")
    assert len(matched) == 4


@given(st.binary(max_size=40) | st.sampled_from([b"arn:aws:iam::123456789012:role/Reader", b"a b+c", b""]))
def test_a_query_values_quote_is_urllibs(text):
    """An AssumeRole's body values (its role ARN: ``:`` and ``/``) quoted as ``urlencode`` quotes them."""
    assert _request._quote(text) == urllib.parse.quote_plus(text)


def test_a_role_arn_is_quoted_without_quote_plus(monkeypatch):
    """The body's values go through the table, not ``quote_plus``'s three frames and comprehension."""
    monkeypatch.setattr(urllib.parse, "quote_plus", None)
    monkeypatch.setattr(urllib.parse, "quote_from_bytes", None)
    preparer = botocore.awsrequest.AWSRequestPreparer()
    arn = "arn:aws:iam::123456789012:role/Reader"
    request = botocore.awsrequest.AWSRequest(
        method="POST", url="https://sts.amazonaws.com/", data={"Action": "AssumeRole", "RoleArn": arn}
    )
    assert _request.prepare_body(preparer, request) == "Action=AssumeRole&RoleArn=" + arn.replace(
        ":", "%3A"
    ).replace("/", "%2F")


# -- the account view: the call's credentials in a context variable, set without an object -------------


def test_an_account_call_signs_without_a_signing_object(monkeypatch):
    """The engine's call for an account sets the credentials for the call itself (``signed``): no
    ``_Signing`` object, no ``with`` (its greenlet-local's reads and writes were ~8k a call); the call
    sees them, and nothing after it does."""
    from greenfetch import _caller, _signing
    from greenfetch._signing import AccountClient, CallCredentials

    shared = CallCredentials(None)
    seen = []

    class Base:
        def list_tables(self, **params):
            seen.append(shared.get_frozen_credentials())
            return {}

    def refused(*args):
        raise AssertionError("a _Signing object made")

    monkeypatch.setattr(_signing._Signing, "__init__", refused)
    creds = botocore.credentials.ReadOnlyCredentials("AK", "s", None)
    engine = Engine(Config.resolve({"region": "us-east-1"}))
    request = Request.built("dynamodb", "ListTables", {}, region="us-east-1")
    assert engine.caller.call(request, AccountClient(Base(), creds)) == {}
    assert seen == [creds]
    assert shared.get_frozen_credentials() is None
    assert _caller.signed is _signing.signed


def test_a_new_greenlet_or_thread_signs_as_nobody_until_it_says():
    """As the greenlet-local did: a greenlet or thread started inside a signed call has no credentials
    of its own (an AssumeRole's flight signs with the caller's own), two greenlets' switches keep each
    its own, and a failing call restores what was before."""
    import gevent

    from greenfetch._signing import CallCredentials, signed

    shared = CallCredentials(None)
    mine = botocore.credentials.ReadOnlyCredentials("MINE", "s", None)
    theirs = botocore.credentials.ReadOnlyCredentials("THEIRS", "s", None)

    def inside():
        spawned = gevent.spawn(lambda: shared.get_frozen_credentials()).get()
        box = []
        thread = threading.Thread(target=lambda: box.append(shared.get_frozen_credentials()))
        thread.start()
        thread.join()
        return spawned, box[0], shared.get_frozen_credentials()

    assert signed(mine, inside) == (None, None, mine)

    def switching(creds):
        keys = []
        for _ in range(20):
            keys.append(shared.get_frozen_credentials().access_key)
            gevent.sleep(0)
        return keys

    one = gevent.spawn(signed, mine, switching, mine)
    two = gevent.spawn(signed, theirs, switching, theirs)
    assert set(one.get()) == {"MINE"} and set(two.get()) == {"THEIRS"}

    def failing():
        raise ValueError("no")

    with pytest.raises(ValueError):
        signed(mine, signed, theirs, failing)
    assert shared.get_frozen_credentials() is None


# -- the headers set before signing: the names present read once --------------------------------------

_SIGNED_NAMES = ["Authorization", "authorization", "X-Amz-Date", "x-amz-date", "X-Amz-Security-Token"]
_SIGNED_NAMES += ["X-Amz-Content-SHA256", "Date", "Content-Type", "Host", "User-Agent"]


@given(
    st.lists(
        st.tuples(st.sampled_from(_SIGNED_NAMES) | st.binary(max_size=2), st.text(max_size=3)), max_size=9
    ),
    st.none() | st.sampled_from(["", "token"]),
    st.sampled_from([{}, {"payload_signing_enabled": False}, {"payload_signing_enabled": True}]),
)
def test_the_headers_set_before_signing_are_botocores(pairs, token, context):
    """Any headers (a name repeated, in any case, a bytes name, a ``Date``), a session token or none,
    payload signing on or off: the same pairs, in the same order, as botocore's own method."""
    from greenfetch._botocore_fast import _sigv4

    outcomes = []
    for modify in (_sigv4.before_signing, _sigv4._modify_request_before_signing):
        creds = botocore.credentials.Credentials("AK", "secret", token)
        signer = botocore.auth.SigV4Auth(creds, "sts", "us-east-1")
        request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.amazonaws.com/")
        request.headers = _request.Headers()
        request.headers._headers = list(pairs)
        request.context.update(context, timestamp="20261207T120000Z")
        try:
            modify(signer, request)
            outcomes.append(list(request.headers._headers))
        except Exception as exc:  # noqa: BLE001 - compared
            outcomes.append(type(exc).__name__)
    assert outcomes[0] == outcomes[1]


def test_the_headers_are_not_scanned_once_a_name(monkeypatch):
    """A first attempt's signature with a session token asks no ``in`` of the headers before signing
    (botocore's method asked four: each lowers every stored name)."""
    from greenfetch._botocore_fast import _sigv4

    asked: list[str] = []
    contains = _request.Headers.__contains__
    monkeypatch.setattr(
        _request.Headers, "__contains__", lambda self, name: asked.append(name) or contains(self, name)
    )
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials("AK", "s", "token"), "sts", "us-east-1")
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://sts.amazonaws.com/")
    request.headers = _request.Headers()
    request.headers["Content-Type"] = "application/x-www-form-urlencoded"
    request.context["timestamp"] = "20261207T120000Z"
    _sigv4.add_auth(signer, request)
    # none of the names it sets (canonical_request and headers_to_sign ask their own, as botocore's)
    assert not {"Authorization", "Date", "X-Amz-Date", "X-Amz-Security-Token"} & set(asked)
    assert request.headers["X-Amz-Security-Token"] == "token"
