"""Requests, results, signatures and JSON conversion: pure, no sockets."""

import datetime as dt
import decimal
import io
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenfetch import Request, RequestError, Result
from greenfetch._jsonable import jsonable

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.datetimes()
    | st.decimals(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_jsonable_never_fails_and_is_json(value):
    json.dumps(jsonable(value), allow_nan=False)


def test_jsonable_botocore_values():
    body = io.BytesIO(b"x" * 10)
    out = jsonable(
        {
            "When": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
            "N": decimal.Decimal("2"),
            "F": decimal.Decimal("2.5"),
            "Raw": b"\xff\x00",
            "Body": body,
        },
        body_limit=4,
    )
    assert out == {
        "When": "2024-05-06T07:08:09+00:00",
        "N": 2,
        "F": 2.5,
        "Raw": "base64:/wA=",
        "Body": "xxxx…[truncated]",
    }


params = st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5), max_size=5)


@given(params)
def test_signature_ignores_key_order_and_id(p):
    a = Request("s3", "ListObjectsV2", p, region="eu-west-1", id="one")
    b = Request("s3", "ListObjectsV2", dict(reversed(list(p.items()))), region="eu-west-1", id="two")
    assert a.signature == b.signature
    assert a.signature.startswith("s3:ListObjectsV2:")


@given(json_values, st.text(max_size=4), st.none() | st.booleans() | json_values)
def test_signature_is_the_canonical_json_s_hash(value, region, paginate):
    """The signature's JSON through the encoder made once is ``json.dumps``' with the same options."""
    import hashlib

    req = Request("s3", "ListObjectsV2", {"V": value}, region=region or None, paginate=paginate)
    canon = json.dumps(
        [
            "s3",
            "ListObjectsV2",
            jsonable({"V": value}),
            req.region,
            req.identity,
            req.endpoint_url,
            jsonable(paginate),
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    assert req.signature == "s3:ListObjectsV2:" + hashlib.sha256(canon.encode()).hexdigest()[:24]


@pytest.mark.parametrize(
    "change",
    [
        {"region": "us-east-1"},
        {"role": "arn:aws:iam::1:role/x"},
        {"params": {"Bucket": "other"}},
        {"operation": "ListObjects"},
        {"paginate": True},
        {"profile": "prod"},
    ],
)
def test_signature_changes_with_what_changes_the_answer(change):
    base = {"service": "s3", "operation": "ListObjectsV2", "params": {"Bucket": "b"}, "region": "eu-west-1"}
    assert Request.coerce(base).signature != Request.coerce({**base, **change}).signature


def test_signature_is_stable_across_processes():
    code = "import greenfetch; print(greenfetch.Request('s3','ListBuckets',{'a':[1,2]},region='x').signature)"
    out = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(out) == 1


def test_credentials_never_serialized_or_in_repr():
    secret = {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t", "SessionToken": "tok"}
    req = Request.coerce({"service": "s3", "operation": "ListBuckets", "credentials": secret})
    text = repr(req) + json.dumps(req.to_dict()) + req.signature + json.dumps(Result(0, req).to_dict())
    assert "s3cr3t" not in text and "tok" not in text


def test_result_shape_is_the_contract():
    row = Result(
        3,
        Request("s3", "ListBuckets"),
        result={"Buckets": []},
        request_id="r",
        duration_ms=1.23456,
        attempts=1,
    ).to_dict()
    assert list(row) == [
        "index",
        "request",
        "result",
        "error",
        "error_code",
        "retryable",
        "guidance",
        "request_id",
        "duration_ms",
        "attempts",
    ]
    assert row["duration_ms"] == 1.235


def test_paginate_must_be_bool_or_record():
    with pytest.raises(RequestError, match="paginate"):
        Request.coerce({"service": "s3", "operation": "ListBuckets", "paginate": "yes"})


records = st.fixed_dictionaries(
    {
        "service": st.sampled_from(["s3", " ec2 "]),
        "operation": st.sampled_from(["ListBuckets", "list_tables"]),
    },
    optional={
        "params": st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
        "region": st.sampled_from([None, "us-east-1"]),
        "account": st.sampled_from([None, "123456789012"]),
        "role": st.sampled_from([None, "arn:aws:iam::123456789012:role/r"]),
        "profile": st.sampled_from([None, "p"]),
        "endpoint_url": st.sampled_from([None, "http://x"]),
        "paginate": st.one_of(st.booleans(), st.just({"max_items": 3})),
        "id": st.one_of(st.none(), st.integers()),
        "credentials": st.sampled_from([None, {"AccessKeyId": "a"}]),
    },
)


@given(records)
def test_coerce_builds_what_the_dataclass_builds(raw):
    """A dict becomes the Request its fields construct: equal, the same repr, fields in the
    same order, a copy of the params, and still frozen."""
    import dataclasses
    import pickle

    got = Request.coerce(raw)
    fields = {
        f.name: raw.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
        for f in dataclasses.fields(Request)
    }
    fields.update(
        service=raw["service"].strip(),
        operation=raw["operation"].strip(),
        params=dict(raw.get("params") or {}),
    )
    fields["paginate"] = raw.get("paginate", False)
    built = Request(**fields)
    assert type(got) is Request
    assert got == built and repr(got) == repr(built)
    assert list(vars(got).items()) == list(vars(built).items())
    assert pickle.loads(pickle.dumps(got)) == got
    if raw.get("params") is not None:
        assert got.params is not raw["params"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.service = "x"

    class Sub(Request):
        pass

    assert type(Sub.coerce(raw)) is Sub and vars(Sub.coerce(raw)) == vars(got)


@given(
    records,
    st.tuples(*(st.sampled_from([None, "", value]) for value in ("q", "eu-west-1", "http://y"))),
    st.booleans(),
)
def test_coerce_with_defaults_takes_each_where_the_request_has_none(raw, defaults, built):
    """The engine's run defaults (profile, region, endpoint_url), applied while coercing, are what
    applying them to the coerced Request gives: a default where the request's value is empty, and only
    a default that is not empty; for a dict and for a Request alike."""
    import dataclasses

    plain = Request.coerce(raw)
    changes = {
        name: value
        for name, value in zip(("profile", "region", "endpoint_url"), defaults, strict=True)
        if value and not getattr(plain, name)
    }
    want = dataclasses.replace(plain, **changes)
    got = Request.coerce(plain if built else raw, defaults)
    assert got == want and repr(got) == repr(want)
    assert list(vars(got).items()) == list(vars(want).items())
    assert got.credentials is want.credentials


def test_result_fields_are_in_the_order_the_engine_builds_them():
    """``Engine.execute`` builds a success's Result positionally (every field at once): a field added
    or moved must be added or moved there too, and this fails until it is."""
    import dataclasses

    assert [f.name for f in dataclasses.fields(Result)] == [
        "index",
        "request",
        "result",
        "error",
        "error_code",
        "retryable",
        "guidance",
        "request_id",
        "duration_ms",
        "attempts",
        "concurrency",
        "deduped",
    ]
